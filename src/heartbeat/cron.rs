//! Cron schedules in an IANA time zone: when a heartbeat job must have pinged,
//! and (later) when a recurring maintenance window opens.
//!
//! A schedule is a classic 5-field crontab line, `minute hour day-of-month
//! month day-of-week`, or one of `@hourly`, `@daily`, `@weekly`, `@monthly`,
//! `@yearly` and `@annually`. Besides `*`, lists, ranges and steps, the
//! day-of-month field takes `L` (last day: `0 0 L * *`) and `W` (the weekday
//! nearest to a day, within its month: `0 9 15W * *`), and the day-of-week
//! field takes `#` (`0 3 * * TUE#2` is the second Tuesday) and `L` (`5L`, the
//! last Friday). When both day fields are restricted, a day matching either one
//! will do, as in Vixie cron: `0 0 1 * MON` runs on the 1st *and* on every
//! Monday. A day field starting with `*` (`*/2`) counts as unrestricted, again
//! as in Vixie cron, so then both must match; `+MON` asks for "both" outright.
//!
//! Times are read on the zone's wall clock, so twice a year its jumps matter
//! (the figures are Europe/Berlin's):
//!
//! - **Spring forward** (last Sunday of March, 02:00 becomes 03:00): a job set
//!   for one time that night does not have (`30 2 * * *`) runs once, at the
//!   first instant after the jump: 03:00 summer time.
//! - **Fall back** (last Sunday of October, 03:00 becomes 02:00 again): a job
//!   set for one time that happens twice runs once, the first time (02:30
//!   summer time), not again an hour later.
//! - Only a schedule with exactly one minute and one hour is such a fixed-time
//!   job. Any list, range, step or `*` in those two fields (`*/15 * * * *`,
//!   `0,30 2 * * *`, `30 1-3 * * *`) makes it a repeating job: its times inside
//!   the spring gap are skipped, and it runs in both passes of the repeated
//!   hour. That is croner's rule; Vixie cron would still treat the last two as
//!   fixed-time.
//!
//! So a daily job at 02:30 is due 23½ hours after the previous one on the spring
//! night and 25 hours after on the autumn night. A schedule in `UTC` has none
//! of this.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::DateTime;
use chrono_tz::Tz;
use croner::Cron;
use croner::errors::CronError;
use croner::parser::{CronParser, Seconds, Year};

/// The aliases accepted in place of five fields (lower case, as in crontab).
const ALIASES: &str = "@hourly, @daily, @weekly, @monthly, @yearly, @annually";

/// How far back [`CronSchedule::latest_at_or_before`] looks: a leap year and a day.
const LOOKBACK: Duration = Duration::from_secs(367 * 24 * 3600);

/// The span [`CronSchedule::shortest_gap`] looks at.
const GAP_SPAN: Duration = Duration::from_secs(366 * 24 * 3600);

/// The most occurrences [`CronSchedule::shortest_gap`] visits: enough for a
/// schedule that runs every minute of a year (527 040).
const GAP_STEPS: usize = 600_000;

/// A 5-field crontab line evaluated in an IANA time zone.
#[derive(Clone, Debug)]
pub struct CronSchedule {
    expr: String,
    tz: Tz,
    cron: Cron,
}

impl PartialEq for CronSchedule {
    /// Equal when the expression text and the zone name are equal.
    fn eq(&self, other: &Self) -> bool {
        self.expr == other.expr && self.tz.name() == other.tz.name()
    }
}

impl Eq for CronSchedule {}

impl CronSchedule {
    /// Parses `expr` (5 fields: minute hour day-of-month month day-of-week; or
    /// one of the `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly` and
    /// `@annually` aliases) in the zone named `timezone`.
    ///
    /// The error is one sentence for a config error message. Six- and
    /// seven-field forms (with seconds or years) are refused, so that a line
    /// copied from a crontab means what it meant there. A schedule no date can
    /// ever match (`0 0 30 2 *`) is refused too: its deadline would never come.
    pub fn parse(expr: &str, timezone: &str) -> Result<CronSchedule, String> {
        let tz = parse_timezone(timezone)?;
        let expr = expr.trim();
        let pattern = croner_pattern(expr)?;
        let cron = parser()
            .parse(&pattern)
            .map_err(|e| explain(expr, &pattern, &e))?;
        let expr = expr.to_owned();
        let schedule = CronSchedule { expr, tz, cron };
        // Day patterns repeat within 28 years (400 across century years);
        // croner searches on to the year 5000 before it gives up.
        if schedule.next_after(UNIX_EPOCH).is_none() {
            let expr = &schedule.expr;
            return Err(format!(
                "{expr:?} never runs: no date matches its day fields and month"
            ));
        }
        Ok(schedule)
    }

    /// The first occurrence strictly after `t`.
    pub fn next_after(&self, t: SystemTime) -> Option<SystemTime> {
        let start = self.in_zone(t)?;
        let next = self.cron.find_next_occurrence(&start, false).ok()?;
        Some(next.into())
    }

    /// The latest occurrence at or before `t`; `None` if there is none in the
    /// year (plus a leap day and a day) before `t`.
    pub fn latest_at_or_before(&self, t: SystemTime) -> Option<SystemTime> {
        let found = self.cron.find_previous_occurrence(&self.in_zone(t)?, true);
        let found = SystemTime::from(found.ok()?);
        (t.duration_since(found).ok()? <= LOOKBACK).then_some(found)
    }

    /// The shortest time between two consecutive occurrences in the 366 days
    /// after `from`, daylight-saving nights included; `None` if fewer than two
    /// occurrences fall in that span. For checking that a window is shorter
    /// than its period. Visits at most 600 000 occurrences.
    pub fn shortest_gap(&self, from: SystemTime) -> Option<Duration> {
        let end = from.checked_add(GAP_SPAN)?;
        let start = self.in_zone(from)?;
        let mut prev = self.cron.find_next_occurrence(&start, false).ok()?;
        let mut shortest: Option<Duration> = None;
        for _ in 0..GAP_STEPS {
            let Ok(next) = self.cron.find_next_occurrence(&prev, false) else {
                break;
            };
            if SystemTime::from(next) > end {
                break;
            }
            let gap = (next - prev).to_std().ok()?;
            shortest = Some(shortest.map_or(gap, |s| s.min(gap)));
            // Occurrences fall on whole minutes: nothing can beat one.
            if gap <= Duration::from_secs(60) {
                break;
            }
            prev = next;
        }
        shortest
    }

    /// The expression as written (trimmed).
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The IANA name of the zone.
    pub fn timezone(&self) -> &str {
        self.tz.name()
    }

    /// `t` on this schedule's wall clock, cut to the whole second (croner
    /// searches in seconds; occurrences fall on whole minutes, so the cut
    /// changes no answer).
    fn in_zone(&self, t: SystemTime) -> Option<DateTime<Tz>> {
        let secs = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).ok()?,
            Err(e) => {
                let d = e.duration(); // before 1970: round down, away from zero
                -i64::try_from(d.as_secs() + u64::from(d.subsec_nanos() > 0)).ok()?
            }
        };
        Some(DateTime::from_timestamp(secs, 0)?.with_timezone(&self.tz))
    }
}

/// Parses an IANA zone name ("Europe/Berlin", "UTC"); the error says the name
/// is unknown.
pub fn parse_timezone(name: &str) -> Result<Tz, String> {
    name.trim().parse::<Tz>().map_err(|_| {
        format!(
            "{name:?} is not a time zone: use an IANA name such as \"Europe/Berlin\" or \"UTC\""
        )
    })
}

/// The five fields, with what each takes.
const FIELDS: [(&str, &str); 5] = [
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31, L or nW"),
    ("month", "1-12 or JAN-DEC"),
    ("day-of-week", "0-7 or SUN-SAT, n#k or nL"),
];

/// Checks the shape of `expr` and returns the text to hand to croner.
fn croner_pattern(expr: &str) -> Result<String, String> {
    let names = "minute hour day-of-month month day-of-week";
    if expr.is_empty() {
        return Err(format!(
            "the schedule is empty: write 5 fields ({names}) such as \"*/5 * * * *\", or @daily"
        ));
    }
    if expr.starts_with('@') {
        if ALIASES.split(", ").any(|alias| alias == expr) {
            return Ok(expr.to_owned());
        }
        return Err(format!(
            "{expr:?} is not a cron schedule: the aliases are {ALIASES}"
        ));
    }
    let mut fields: Vec<String> = expr.split_whitespace().map(str::to_owned).collect();
    if fields.len() != 5 {
        let n = fields.len();
        return Err(format!(
            "a schedule has 5 fields ({names}); {expr:?} has {n}"
        ));
    }
    // croner swaps names for numbers anywhere in the line, so "0 0 * * JAN"
    // would quietly mean Mondays.
    for (i, field) in fields.iter().enumerate() {
        if has_stray_name(i, field) {
            let (name, takes) = FIELDS[i];
            return Err(format!(
                "{expr:?} is not a cron schedule: the {name} field {field:?} has letters it \
                 does not take ({name}: {takes})"
            ));
        }
    }
    // Vixie cron: a day field that starts with `*` ("*/2") is unrestricted, so
    // the other day field must match as well. croner treats only a bare `*`
    // (or `?`) so; its `+` prefix on day-of-week asks for "both".
    let bare = |f: &str| f == "*" || f == "?";
    let (dom, dow) = (&fields[2], &fields[4]);
    let starred = dom.starts_with('*') || dow.starts_with('*');
    if starred && !bare(dom) && !bare(dow) && !dow.starts_with('+') {
        fields[4] = format!("+{dow}");
    }
    Ok(fields.join(" "))
}

/// Whether field `i` holds letters other than its own names and modifiers.
fn has_stray_name(i: usize, field: &str) -> bool {
    let (names, letters) = match i {
        2 => ("", "LW"),
        3 => ("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC", ""),
        4 => ("SUN MON TUE WED THU FRI SAT", "L"),
        _ => ("", ""),
    };
    let field = field.to_ascii_uppercase();
    let rest = names
        .split_whitespace()
        .fold(field, |rest, name| rest.replace(name, ""));
    rest.chars()
        .any(|c| c.is_ascii_alphabetic() && !letters.contains(c))
}

/// The one parser: 5 fields, no seconds, no years.
fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
}

/// Says which field of `expr` croner refused (trying each alone, as croner
/// sees it in `pattern`), and why.
fn explain(expr: &str, pattern: &str, e: &CronError) -> String {
    let written: Vec<&str> = expr.split_whitespace().collect();
    for (i, field) in pattern.split_whitespace().enumerate().take(5) {
        let mut alone = ["*"; 5];
        alone[i] = field;
        if let Err(e) = parser().parse(&alone.join(" ")) {
            let ((name, takes), why) = (FIELDS[i], reason(&e));
            let field = written.get(i).copied().unwrap_or(field);
            let what = format!("the {name} field {field:?}: {why} ({name}: {takes})");
            return format!("{expr:?} is not a cron schedule: {what}");
        }
    }
    format!("{expr:?} is not a cron schedule: {}", reason(e))
}

/// croner's reason, without the prefix of its error kind and the full stop.
fn reason(e: &CronError) -> String {
    let text = match e {
        CronError::InvalidPattern(m)
        | CronError::IllegalCharacters(m)
        | CronError::ComponentError(m) => m.clone(),
        other => other.to_string(),
    };
    let mut text = text.trim_end_matches('.').to_owned();
    if let Some(first) = text.get_mut(..1) {
        first.make_ascii_lowercase();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{SecondsFormat, Utc};

    const BERLIN: &str = "Europe/Berlin";

    fn at(rfc3339: &str) -> SystemTime {
        DateTime::parse_from_rfc3339(rfc3339).expect(rfc3339).into()
    }

    fn utc(t: SystemTime) -> String {
        DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }

    fn schedule(expr: &str, tz: &str) -> CronSchedule {
        CronSchedule::parse(expr, tz).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn next_after_runs_on_the_documented_instants() {
        #[rustfmt::skip]
        let table: &[(&str, &str, &str, &[&str])] = &[
            // Spring forward, 2026-03-29 02:00 CET -> 03:00 CEST: 02:30 does
            // not exist, so the run is at 03:00 CEST.
            ("30 2 * * *", BERLIN, "2026-03-28T00:00:00Z",
             &["2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]),
            // Strictly after, to the nanosecond.
            ("30 2 * * *", BERLIN, "2026-03-28T01:29:59.5Z", &["2026-03-28T01:30:00Z"]),
            ("30 2 * * *", BERLIN, "2026-03-28T01:30:00.001Z", &["2026-03-29T01:00:00Z"]),
            // Fall back, 2026-10-25 03:00 CEST -> 02:00 CET: once, at 02:30 CEST.
            ("30 2 * * *", BERLIN, "2026-10-24T12:00:00Z", &["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]),
            ("30 2 * * *", BERLIN, "2026-10-25T01:00:00Z", &["2026-10-26T01:30:00Z"]),
            // Repeating jobs lose the gap and run in both passes of the fold.
            ("30 * * * *", BERLIN, "2026-03-29T00:00:00Z", &["2026-03-29T00:30:00Z", "2026-03-29T01:30:00Z"]),
            ("*/30 * * * *", BERLIN, "2026-10-24T23:45:00Z", &["2026-10-25T00:00:00Z",
             "2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z", "2026-10-25T01:30:00Z", "2026-10-25T02:00:00Z"]),
            // Two minutes make a repeating job for croner (Vixie: fixed-time).
            ("0,30 2 * * *", BERLIN, "2026-03-28T12:00:00Z", &["2026-03-30T00:00:00Z", "2026-03-30T00:30:00Z"]),
            ("0,30 2 * * *", BERLIN, "2026-10-24T12:00:00Z", &["2026-10-25T00:00:00Z",
             "2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z", "2026-10-25T01:30:00Z", "2026-10-26T01:00:00Z"]),
            // Second Tuesday, across the change to summer time.
            ("0 3 * * TUE#2", BERLIN, "2026-01-01T00:00:00Z", &["2026-01-13T02:00:00Z",
             "2026-02-10T02:00:00Z", "2026-03-10T02:00:00Z", "2026-04-14T01:00:00Z"]),
            ("0 3 * * TUE#2", "UTC", "2026-01-01T00:00:00Z", &["2026-01-13T03:00:00Z",
             "2026-02-10T03:00:00Z", "2026-03-10T03:00:00Z", "2026-04-14T03:00:00Z"]),
            // Last day of the month; 2028 is a leap year.
            ("0 0 L * *", "UTC", "2028-01-15T00:00:00Z", &["2028-01-31T00:00:00Z",
             "2028-02-29T00:00:00Z", "2028-03-31T00:00:00Z", "2028-04-30T00:00:00Z"]),
            ("0 0 L 2 *", BERLIN, "2027-03-01T00:00:00Z", &["2028-02-28T23:00:00Z", "2029-02-27T23:00:00Z"]),
            // Nearest weekday to the 15th: 2026-08-15 is a Saturday (-> Fri
            // 14th), 2026-11-15 a Sunday (-> Mon 16th).
            ("0 9 15W * *", "UTC", "2026-07-20T00:00:00Z", &["2026-08-14T09:00:00Z",
             "2026-09-15T09:00:00Z", "2026-10-15T09:00:00Z", "2026-11-16T09:00:00Z"]),
            ("0 9 15W * *", BERLIN, "2026-07-20T00:00:00Z", &["2026-08-14T07:00:00Z",
             "2026-09-15T07:00:00Z", "2026-10-15T07:00:00Z", "2026-11-16T08:00:00Z"]),
            // Vixie OR: the 1st and every Monday (2026-06-29 and -07-06 are Mondays).
            ("0 0 1 * MON", "UTC", "2026-06-28T12:00:00Z", &["2026-06-29T00:00:00Z",
             "2026-07-01T00:00:00Z", "2026-07-06T00:00:00Z", "2026-07-13T00:00:00Z"]),
            // Vixie: a starred day field makes it AND (odd-numbered Mondays) ...
            ("0 0 */2 * MON", "UTC", "2026-07-01T12:00:00Z", &["2026-07-13T00:00:00Z", "2026-07-27T00:00:00Z"]),
            // ... and `+` asks for AND outright: a 1st that is a Monday.
            ("0 0 1 * +MON", "UTC", "2026-01-01T00:00:00Z",
             &["2026-06-01T00:00:00Z", "2027-02-01T00:00:00Z", "2027-03-01T00:00:00Z"]),
            ("@weekly", "UTC", "2026-07-01T12:00:00Z", &["2026-07-05T00:00:00Z", "2026-07-12T00:00:00Z"]),
            ("@daily", BERLIN, "2026-07-01T12:00:00Z", &["2026-07-01T22:00:00Z"]),
        ];
        for (expr, tz, start, want) in table {
            let s = schedule(expr, tz);
            let mut t = at(start);
            let mut got = Vec::new();
            for _ in 0..want.len() {
                t = s.next_after(t).expect("an occurrence");
                got.push(utc(t));
            }
            assert_eq!(got, *want, "{expr} in {tz} after {start}");
        }
    }

    #[test]
    fn latest_at_or_before_is_inclusive_and_knows_the_dst_nights() {
        #[rustfmt::skip]
        let table: &[(&str, &str, &str, Option<&str>)] = &[
            ("30 2 * * *", BERLIN, "2026-03-29T00:59:59Z", Some("2026-03-28T01:30:00Z")),
            ("30 2 * * *", BERLIN, "2026-03-29T01:00:00Z", Some("2026-03-29T01:00:00Z")),
            ("30 2 * * *", BERLIN, "2026-03-29T12:00:00Z", Some("2026-03-29T01:00:00Z")),
            ("30 2 * * *", BERLIN, "2026-10-25T00:29:59Z", Some("2026-10-24T00:30:00Z")),
            ("30 2 * * *", BERLIN, "2026-10-25T00:30:00Z", Some("2026-10-25T00:30:00Z")),
            ("30 2 * * *", BERLIN, "2026-10-25T00:30:00.5Z", Some("2026-10-25T00:30:00Z")),
            // The second 02:30 (CET) is not a run.
            ("30 2 * * *", BERLIN, "2026-10-25T01:30:00Z", Some("2026-10-25T00:30:00Z")),
            ("30 2 * * *", BERLIN, "2026-10-26T01:29:59Z", Some("2026-10-25T00:30:00Z")),
            ("30 2 * * *", BERLIN, "2026-10-26T01:30:00Z", Some("2026-10-26T01:30:00Z")),
            // A repeating job ran in the second pass too.
            ("*/30 * * * *", BERLIN, "2026-10-25T01:15:00Z", Some("2026-10-25T01:00:00Z")),
            ("0 9 15W * *", "UTC", "2026-08-14T09:00:00Z", Some("2026-08-14T09:00:00Z")),
            ("0 0 L 2 *", "UTC", "2027-03-01T00:00:00Z", Some("2027-02-28T00:00:00Z")),
            ("0 0 29 2 *", "UTC", "2028-03-01T00:00:00Z", Some("2028-02-29T00:00:00Z")),
            // The last 29 February (2024) is more than a year back.
            ("0 0 29 2 *", "UTC", "2027-03-01T00:00:00Z", None),
        ];
        for (expr, tz, t, want) in table {
            let got = schedule(expr, tz).latest_at_or_before(at(t)).map(utc);
            assert_eq!(got.as_deref(), *want, "{expr} in {tz} at or before {t}");
        }
    }

    #[test]
    fn shortest_gap_sees_the_dst_nights() {
        let hm = |h: u64, m: u64| Some(Duration::from_secs(h * 3600 + m * 60));
        #[rustfmt::skip]
        let table: &[(&str, &str, &str, Option<Duration>)] = &[
            ("0 * * * *", BERLIN, "2026-01-01T00:00:00Z", hm(1, 0)),
            ("*/15 * * * *", BERLIN, "2026-01-01T00:00:00Z", hm(0, 15)),
            ("* * * * *", "UTC", "2026-01-01T00:00:00Z", hm(0, 1)),
            // 02:30 CET on 28 March, 03:00 CEST on the 29th, 02:30 CEST on
            // the 30th: 23h30 each; 25h on the autumn night.
            ("30 2 * * *", BERLIN, "2026-01-01T00:00:00Z", hm(23, 30)),
            // 03:00 exists every day: the spring day is 23h long.
            ("0 3 * * *", BERLIN, "2026-01-01T00:00:00Z", hm(23, 0)),
            ("30 2 * * *", "UTC", "2026-01-01T00:00:00Z", hm(24, 0)),
            ("0 0 1 * MON", "UTC", "2026-01-01T00:00:00Z", hm(24, 0)),
            ("@yearly", "UTC", "2026-06-01T00:00:00Z", None),
            ("0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z", None),
        ];
        for (expr, tz, from, want) in table {
            let got = schedule(expr, tz).shortest_gap(at(from));
            assert_eq!(got, *want, "{expr} in {tz} from {from}");
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let fields = "5 fields (minute hour day-of-month month day-of-week)";
        #[rustfmt::skip]
        let table: &[(&str, &str, String)] = &[
            ("61 * * * *", "UTC", "\"61 * * * *\" is not a cron schedule: the minute field \"61\": \
              number out of bounds (minute: 0-59)".into()),
            ("0 0 1 * * *", "UTC", format!("a schedule has {fields}; \"0 0 1 * * *\" has 6")),
            ("0 0 0 1 * * 2026", "UTC", format!("a schedule has {fields}; \"0 0 0 1 * * 2026\" has 7")),
            ("", "UTC", format!("the schedule is empty: write {fields} such as \"*/5 * * * *\", or @daily")),
            ("0 0 * * JAN", "UTC", "\"0 0 * * JAN\" is not a cron schedule: the day-of-week field \
              \"JAN\" has letters it does not take (day-of-week: 0-7 or SUN-SAT, n#k or nL)".into()),
            ("@reboot", "UTC", "\"@reboot\" is not a cron schedule: the aliases are @hourly, @daily, \
              @weekly, @monthly, @yearly, @annually".into()),
            ("0 0 30 2 *", "UTC", "\"0 0 30 2 *\" never runs: no date matches its day fields and month".into()),
            ("0 3 * * *", "Europe/Berln", "\"Europe/Berln\" is not a time zone: use an IANA name \
              such as \"Europe/Berlin\" or \"UTC\"".into()),
        ];
        for (expr, tz, want) in table {
            let got = CronSchedule::parse(expr, tz).unwrap_err();
            assert_eq!(got, *want, "{expr:?} in {tz:?}");
        }
    }

    #[test]
    fn equality_is_by_text_and_zone() {
        let s = schedule(" 0 3 * * * ", BERLIN);
        assert_eq!((s.expr(), s.timezone()), ("0 3 * * *", "Europe/Berlin"));
        assert_eq!(s, schedule("0 3 * * *", "Europe/Berlin"));
        assert_ne!(s, schedule("0 3 * * *", "UTC"));
        assert_ne!(s, schedule("0 3 * * 0-7", BERLIN));
        assert_eq!(parse_timezone("UTC").map(|tz| tz.name()), Ok("UTC"));
    }
}
