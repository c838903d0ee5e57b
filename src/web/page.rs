//! `GET /`: the HTML status page, rendered on the server with askama
//! (templates/status.html, checked at compile time, HTML auto-escaped).
//!
//! Per site: a colour *and* a word for its status, the cause in plain words
//! with its hint behind a `<details>`, a 90-day uptime bar (one cell per UTC
//! day), a 24-hour latency sparkline (median per hour) as inline SVG, and
//! the time of the last probe; then the last incidents. No script, font or
//! stylesheet from elsewhere: it works without internet, and a meta refresh
//! reloads it every 30 s.
//!
//! The graphs come from the hourly history (plus the raw samples of the hours
//! not yet rolled up), read in a blocking task. Reading 90 days for every
//! site on every request would not scale to a thousand sites, so the graphs
//! of each site are cached for [`GRAPH_TTL`] (statuses, causes and probe
//! times are always live), refreshed by one request at a time, and drawn for
//! the first [`GRAPH_LIMIT`] sites only (docs/http-api.md, "Scale").

use crate::diagnosis::Cause;
use crate::history::{HistoryPoint, HistoryReader, Incident, Resolution};
use crate::store::{SiteView, StatusStore};
use askama::Template;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Days in the uptime bar.
pub const DAYS: i64 = 90;
/// How long a site's graphs are reused before they are read again.
pub const GRAPH_TTL: Duration = Duration::from_secs(60);
/// Graphs are drawn for this many sites (in configuration order); the rest
/// show their status, cause and last probe only.
pub const GRAPH_LIMIT: usize = 500;
/// Incidents listed at the bottom of the page.
pub const INCIDENTS: usize = 10;

const HOUR_S: i64 = 3600;
const DAY_S: i64 = 86_400;
/// Sparkline geometry: 24 hourly slots across a 240 × 40 view box.
const SPARK_SLOT: f64 = 10.0;
const SPARK_HEIGHT: f64 = 40.0;

/// A stretch of the uptime bar (one slot of 10 view-box units per UTC day):
/// a day with something to tell (failures or degraded probes), drawn with
/// its own tooltip, or a run of quiet days (all good, or all without data)
/// drawn as one rectangle filled with a pattern of cells. Runs keep the page
/// small: 500 sites × 90 days of separate cells with tooltips weighed 6 MB.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// Left edge in the bar's view box.
    pub x: i64,
    /// Width in the view box: 8 for a single day, 10 per day for a run.
    pub width: i64,
    /// `ok` (no failure), `minor` (≥ 99% up, or only degraded), `major`
    /// (≥ 95%), `bad`, or `none` without data.
    pub class: &'static str,
    /// The tooltip of a day with something to tell: date, uptime, counts.
    /// `None` for a run of quiet days.
    pub title: Option<String>,
}

impl Cell {
    /// Days this stretch covers.
    pub fn days(&self) -> i64 {
        if self.title.is_some() {
            1
        } else {
            self.width / 10
        }
    }
}

/// A 24-hour latency sparkline (median probe time per hour).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Spark {
    /// Polyline point lists ("x,y x,y …"), one per run of hours with data.
    pub lines: Vec<String>,
    /// Single hours with data between two without: drawn as dots.
    pub dots: Vec<(f64, f64)>,
    /// The latest hour's median, ms.
    pub last_ms: Option<f64>,
    /// The highest hourly median of the 24 hours, ms (the top of the scale).
    pub max_ms: Option<f64>,
}

/// A site's graphs.
#[derive(Clone, Debug, PartialEq)]
pub struct Graphs {
    /// The uptime bar: [`DAYS`] days, oldest first, ending today (UTC).
    pub cells: Vec<Cell>,
    /// The last 24 hours.
    pub spark: Spark,
    /// Probes and failures over the whole bar, for when the writer's
    /// uptime figure is not there yet.
    pub totals: (i64, i64),
}

#[derive(Clone, Copy, Debug, Default)]
struct HourFigures {
    probes: i64,
    failures: i64,
    degraded: i64,
    p50_ms: Option<f64>,
}

fn unix_s(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64) - 1,
    }
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(values[(values.len() - 1) / 2])
}

/// Per hour (Unix hour number): the hourly aggregates, completed with the
/// raw samples of hours that are not rolled up yet (the current one).
fn hours(hourly: &[HistoryPoint], raw: &[HistoryPoint]) -> BTreeMap<i64, HourFigures> {
    let mut out = BTreeMap::new();
    for p in hourly {
        if let HistoryPoint::Hour {
            at,
            probes,
            failures,
            degraded,
            p50_ms,
            ..
        } = p
        {
            out.insert(
                unix_s(*at).div_euclid(HOUR_S),
                HourFigures {
                    probes: *probes,
                    failures: *failures,
                    degraded: *degraded,
                    p50_ms: (*probes > 0).then_some(*p50_ms),
                },
            );
        }
    }
    let mut pending: BTreeMap<i64, (HourFigures, Vec<f64>)> = BTreeMap::new();
    for p in raw {
        if let HistoryPoint::Raw { at, status, ms, .. } = p {
            let hour = unix_s(*at).div_euclid(HOUR_S);
            if out.contains_key(&hour) {
                continue;
            }
            let (f, times) = pending.entry(hour).or_default();
            f.probes += 1;
            f.failures += i64::from(*status == "down");
            f.degraded += i64::from(*status == "degraded");
            times.push(*ms);
        }
    }
    for (hour, (mut f, mut times)) in pending {
        f.p50_ms = median(&mut times);
        out.insert(hour, f);
    }
    out
}

/// The UTC date of a Unix day number, `2026-11-25`.
fn date(day: i64) -> String {
    let t = if day >= 0 {
        UNIX_EPOCH + Duration::from_secs((day * DAY_S) as u64)
    } else {
        UNIX_EPOCH
    };
    let s = humantime::format_rfc3339_seconds(t).to_string();
    s[..10].to_string()
}

fn day_class(probes: i64, failures: i64, degraded: i64) -> &'static str {
    if probes == 0 {
        return "none";
    }
    if failures == 0 && degraded == 0 {
        return "ok";
    }
    let up = 100.0 * (probes - failures) as f64 / probes as f64;
    match up {
        u if u >= 99.0 => "minor",
        u if u >= 95.0 => "major",
        _ => "bad",
    }
}

/// Builds a site's graphs from its hourly history over the last [`DAYS`]
/// days and its raw samples since the last rolled-up hour, as of `now`.
pub fn graphs(hourly: &[HistoryPoint], raw: &[HistoryPoint], now: SystemTime) -> Graphs {
    let hours = hours(hourly, raw);
    let now_s = unix_s(now);
    let today = now_s.div_euclid(DAY_S);
    let first = today - (DAYS - 1);
    let mut per_day = vec![(0i64, 0i64, 0i64); DAYS as usize];
    for (hour, f) in &hours {
        let day = (hour * HOUR_S).div_euclid(DAY_S);
        if (first..=today).contains(&day) {
            let d = &mut per_day[(day - first) as usize];
            d.0 += f.probes;
            d.1 += f.failures;
            d.2 += f.degraded;
        }
    }
    let totals = per_day.iter().fold((0, 0), |(p, f), d| (p + d.0, f + d.1));
    let mut cells: Vec<Cell> = Vec::new();
    for (i, &(probes, failures, degraded)) in per_day.iter().enumerate() {
        let x = i as i64 * 10;
        let class = day_class(probes, failures, degraded);
        if matches!(class, "ok" | "none") {
            match cells.last_mut() {
                Some(run) if run.title.is_none() && run.class == class => run.width += 10,
                _ => cells.push(Cell {
                    x,
                    width: 10,
                    class,
                    title: None,
                }),
            }
            continue;
        }
        let up = 100.0 * (probes - failures) as f64 / probes as f64;
        let mut title = format!(
            "{}: {} up, {probes} probes, {failures} failed",
            date(first + i as i64),
            super::badge::percent(up)
        );
        if degraded > 0 {
            title.push_str(&format!(", {degraded} degraded"));
        }
        cells.push(Cell {
            x,
            width: 8,
            class,
            title: Some(title),
        });
    }

    // The sparkline: the 24 hours ending with the current one.
    let current = now_s.div_euclid(HOUR_S);
    let slots: Vec<Option<f64>> = (current - 23..=current)
        .map(|h| hours.get(&h).and_then(|f| f.p50_ms))
        .collect();
    let max = slots
        .iter()
        .flatten()
        .copied()
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    let mut spark = Spark {
        last_ms: slots.iter().rev().flatten().next().copied(),
        max_ms: max,
        ..Spark::default()
    };
    if let Some(max) = max {
        let scale = if max > 0.0 { max } else { 1.0 };
        let point = |i: usize, v: f64| {
            let x = i as f64 * SPARK_SLOT + SPARK_SLOT / 2.0;
            // The highest hour reaches 80% of the height: a flat line reads as steady, not as high.
            let y = (SPARK_HEIGHT - 3.0) - (v / scale) * 0.8 * (SPARK_HEIGHT - 6.0);
            (x, y)
        };
        let mut run: Vec<(f64, f64)> = Vec::new();
        let flush = |run: &mut Vec<(f64, f64)>, spark: &mut Spark| {
            match run.len() {
                0 => {}
                1 => spark.dots.push(run[0]),
                _ => spark.lines.push(
                    run.iter()
                        .map(|(x, y)| format!("{x:.1},{y:.1}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
            }
            run.clear();
        };
        for (i, v) in slots.iter().enumerate() {
            match v {
                Some(v) => run.push(point(i, *v)),
                None => flush(&mut run, &mut spark),
            }
        }
        flush(&mut run, &mut spark);
    }
    Graphs {
        cells,
        spark,
        totals,
    }
}

/// Reads one site's graphs (blocking: call from a blocking task).
fn read_graphs(reader: &HistoryReader, site: &str, now: SystemTime) -> Result<Graphs, String> {
    let from = now - Duration::from_secs((DAYS * DAY_S) as u64);
    let hourly = reader.history(site, from, now, Resolution::Hour)?;
    // Samples since the start of the previous hour: the hours the writer
    // has not rolled up yet (the current one, and the last one for a while).
    let hour_start = now_s_floor(now, HOUR_S) - HOUR_S;
    let since = UNIX_EPOCH + Duration::from_secs(hour_start.max(0) as u64);
    let raw = reader.history(site, since, now + Duration::from_secs(1), Resolution::Raw)?;
    Ok(graphs(&hourly, &raw, now))
}

fn now_s_floor(now: SystemTime, unit: i64) -> i64 {
    unix_s(now).div_euclid(unit) * unit
}

/// Each site's graphs, kept for [`GRAPH_TTL`].
#[derive(Default)]
pub struct GraphCache {
    entries: Mutex<HashMap<String, (Instant, Arc<Graphs>)>>,
    /// Held while graphs are being read, so that a burst of page loads
    /// reads the history once.
    refresh: tokio::sync::Mutex<()>,
}

impl GraphCache {
    /// An empty cache.
    pub fn new() -> GraphCache {
        GraphCache::default()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Arc<Graphs>)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The graphs of `names`, reading those missing or older than
    /// [`GRAPH_TTL`]; the error, if the history could not be read.
    async fn get(
        &self,
        reader: Option<HistoryReader>,
        names: Vec<String>,
        now: SystemTime,
    ) -> (HashMap<String, Arc<Graphs>>, Option<String>) {
        let _refreshing = self.refresh.lock().await;
        let stale: Vec<String> = {
            let entries = self.entries();
            names
                .iter()
                .filter(|n| {
                    entries
                        .get(*n)
                        .is_none_or(|(at, _)| at.elapsed() >= GRAPH_TTL)
                })
                .cloned()
                .collect()
        };
        let mut error = None;
        if let (Some(reader), false) = (reader, stale.is_empty()) {
            let read = tokio::task::spawn_blocking(move || {
                stale
                    .into_iter()
                    .map(|name| {
                        let g = read_graphs(&reader, &name, now);
                        (name, g)
                    })
                    .collect::<Vec<_>>()
            })
            .await;
            match read {
                Ok(results) => {
                    let mut entries = self.entries();
                    let at = Instant::now();
                    for (name, g) in results {
                        match g {
                            Ok(g) => {
                                entries.insert(name, (at, Arc::new(g)));
                            }
                            Err(e) => error = Some(e),
                        }
                    }
                }
                Err(e) => error = Some(e.to_string()),
            }
        }
        let mut entries = self.entries();
        let wanted: HashSet<&String> = names.iter().collect();
        // Sites removed from the configuration leave the cache.
        entries.retain(|name, _| wanted.contains(name));
        let out = names
            .iter()
            .filter_map(|n| entries.get(n).map(|(_, g)| (n.clone(), Arc::clone(g))))
            .collect();
        (out, error)
    }
}

/// A time shown on the page: machine-readable and for people.
#[derive(Clone, Debug)]
pub struct Stamp {
    /// RFC 3339, for `<time datetime>`.
    pub iso: String,
    /// `2026-11-25 19:00:03 UTC`.
    pub text: String,
}

fn stamp(t: SystemTime) -> Stamp {
    let s = humantime::format_rfc3339_seconds(t).to_string();
    Stamp {
        iso: crate::timefmt::rfc3339(t),
        text: format!("{} UTC", s.trim_end_matches('Z').replacen('T', " ", 1)),
    }
}

/// A duration for people: `42 s`, `3 min 12 s`, `2 h 5 min`, `3 d 4 h`.
pub fn span(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

fn ms_text(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// A site as the page shows it.
pub struct Row {
    name: String,
    /// `up`, `degraded`, `down` or `unknown` (the CSS class).
    status: &'static str,
    /// The status word shown: Up, Degraded, Down, Unknown.
    word: &'static str,
    /// A symbol beside the word, so the status never rests on colour.
    symbol: &'static str,
    cause_words: Option<&'static str>,
    cause_code: Option<&'static str>,
    /// Hidden in public mode.
    url: Option<String>,
    hint: Option<String>,
    detail: Option<String>,
    error: Option<String>,
    /// How long the status has lasted.
    since: String,
    /// What the last probe found, when it differs from the confirmed status.
    confirming: Option<String>,
    last_probe: Option<Stamp>,
    ago: String,
    duration: Option<String>,
    uptime90: String,
    graphs: Option<Arc<Graphs>>,
    spark_text: String,
}

/// An incident as the page shows it.
pub struct IncidentRow {
    site: String,
    started: Stamp,
    ended: Option<Stamp>,
    duration: String,
    causes: String,
    /// The first error's detail; hidden in public mode.
    first_error: Option<String>,
}

/// The counts at the top.
pub struct Counts {
    total: usize,
    up: usize,
    degraded: usize,
    down: usize,
    unknown: usize,
}

#[derive(Template)]
#[template(path = "status.html")]
struct PageTemplate {
    title: String,
    generated: Stamp,
    counts: Counts,
    sites: Vec<Row>,
    incidents: Vec<IncidentRow>,
    notes: Vec<String>,
    public: bool,
    version: &'static str,
}

/// The window title: problems first, so a tab shows them.
fn page_title(c: &Counts) -> String {
    let mut parts = Vec::new();
    for (n, word) in [(c.down, "down"), (c.degraded, "degraded")] {
        if n > 0 {
            parts.push(format!("{n} {word}"));
        }
    }
    parts.push(format!("{} of {} up", c.up, c.total));
    format!("sitewatch: {}", parts.join(", "))
}

fn word_and_symbol(status: &str) -> (&'static str, &'static str) {
    match status {
        "up" => ("Up", "✔"),
        "degraded" => ("Degraded", "▲"),
        "down" => ("Down", "✖"),
        _ => ("Unknown", "?"),
    }
}

fn row(s: SiteView, graphs: Option<Arc<Graphs>>, public: bool, now: SystemTime) -> Row {
    let (word, symbol) = word_and_symbol(s.status);
    let status = match s.status {
        "up" => "up",
        "degraded" => "degraded",
        "down" => "down",
        _ => "unknown",
    };
    let since = now.duration_since(s.since).unwrap_or_default();
    let confirming = match s.probe_status {
        Some(p) if p != s.status => Some(match s.probe_cause {
            Some(c) => format!("the last probe found it {p} ({}); confirming", c.words()),
            None => format!("the last probe found it {p}; confirming"),
        }),
        _ => None,
    };
    let uptime90 = match s.uptime.and_then(|u| u.d90) {
        Some(p) => format!("{} over 90 days", super::badge::percent(p)),
        None => match graphs.as_ref().map(|g| g.totals) {
            Some((probes, failures)) if probes > 0 => format!(
                "{} over 90 days",
                super::badge::percent(100.0 * (probes - failures) as f64 / probes as f64)
            ),
            _ => "no data yet".to_string(),
        },
    };
    let spark_text = match graphs.as_ref().map(|g| &g.spark) {
        Some(Spark {
            last_ms: Some(last),
            max_ms: Some(max),
            ..
        }) => format!(
            "median {} latest hour, max {}",
            ms_text(*last),
            ms_text(*max)
        ),
        Some(_) => "no probes in 24 h".to_string(),
        None => String::new(),
    };
    Row {
        word,
        symbol,
        status,
        cause_words: s.cause.map(Cause::words),
        cause_code: s.cause.map(Cause::as_str),
        url: (!public).then(|| s.url.clone()),
        hint: if public { None } else { s.hint.clone() },
        detail: if public { None } else { s.detail.clone() },
        error: if public { None } else { s.error.clone() },
        since: span(since),
        confirming,
        last_probe: s.last_probe.map(stamp),
        ago: s
            .last_probe
            .map(|t| format!("{} ago", span(now.duration_since(t).unwrap_or_default())))
            .unwrap_or_default(),
        duration: s.duration_ms.map(ms_text),
        uptime90,
        graphs,
        spark_text,
        name: s.name,
    }
}

fn incident_row(i: Incident, public: bool) -> IncidentRow {
    let mut causes: Vec<&str> = Vec::new();
    for c in &i.causes {
        let words = c
            .cause
            .as_deref()
            .and_then(Cause::from_code)
            .map_or("unknown cause", Cause::words);
        if causes.last() != Some(&words) {
            causes.push(words);
        }
    }
    IncidentRow {
        site: i.site,
        started: stamp(i.started_at),
        ended: i.ended_at.map(stamp),
        duration: span(Duration::from_secs_f64(i.duration_s.max(0.0))),
        causes: causes.join(", then "),
        first_error: (!public && !i.first_error.is_empty()).then_some(i.first_error),
    }
}

/// Renders the page from the store's current state; `public` hides
/// targets, addresses and details.
pub async fn render(
    store: &StatusStore,
    cache: &GraphCache,
    public: bool,
) -> Result<String, String> {
    let now = SystemTime::now();
    let sites = store.sites();
    let health = store.health();
    let reader = store.history();
    let names: Vec<String> = sites
        .iter()
        .take(GRAPH_LIMIT)
        .map(|s| s.name.clone())
        .collect();
    let (graphs, graph_error) = cache.get(reader.clone(), names, now).await;

    let configured: HashSet<String> = sites.iter().map(|s| s.name.clone()).collect();
    let (incidents, incident_error) = match reader {
        None => (Vec::new(), None),
        Some(reader) => {
            match tokio::task::spawn_blocking(move || reader.incidents(None, INCIDENTS * 5)).await {
                Ok(Ok(list)) => (list, None),
                Ok(Err(e)) => (Vec::new(), Some(e)),
                Err(e) => (Vec::new(), Some(e.to_string())),
            }
        }
    };
    let incidents: Vec<IncidentRow> = incidents
        .into_iter()
        // Sites removed from the configuration are not on the page.
        .filter(|i| configured.contains(&i.site))
        .take(INCIDENTS)
        .map(|i| incident_row(i, public))
        .collect();

    let mut notes = Vec::new();
    if sites.len() > GRAPH_LIMIT {
        notes.push(format!(
            "Uptime bars and latency graphs are drawn for the first {GRAPH_LIMIT} of {} sites; the others show their status only.",
            sites.len()
        ));
    }
    if let Some(e) = graph_error.or(incident_error).or(health.storage_error) {
        notes.push(if public {
            "The history cannot be read right now; graphs may be missing.".to_string()
        } else {
            format!("The history cannot be read right now ({e}); graphs may be missing.")
        });
    }
    let counts = Counts {
        total: health.sites,
        up: health.up,
        degraded: health.degraded,
        down: health.down,
        unknown: health.unknown,
    };
    let title = page_title(&counts);
    let rows = sites
        .into_iter()
        .map(|s| {
            let g = graphs.get(&s.name).cloned();
            row(s, g, public, now)
        })
        .collect();
    PageTemplate {
        title,
        generated: stamp(now),
        counts,
        sites: rows,
        incidents,
        notes,
        public,
        version: env!("CARGO_PKG_VERSION"),
    }
    .render()
    .map_err(|e| format!("cannot render the status page: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s as u64)
    }

    fn hour(h: i64, probes: i64, failures: i64, p50: f64) -> HistoryPoint {
        HistoryPoint::Hour {
            at: at(h * HOUR_S),
            probes,
            failures,
            degraded: 0,
            uptime: 0.0,
            p50_ms: p50,
            p95_ms: p50,
            max_ms: p50,
        }
    }

    fn raw(s: i64, status: &'static str, ms: f64) -> HistoryPoint {
        HistoryPoint::Raw {
            at: at(s),
            status,
            cause: None,
            ms,
        }
    }

    #[test]
    fn days_aggregate_hours_per_utc_day_and_quiet_days_merge_into_runs() {
        // 2026-11-25T12:30:00Z
        let now_s = 1_795_609_800;
        let now = at(now_s);
        let today = now_s / DAY_S;
        let h0 = today * 24;
        let pts = vec![
            hour(h0, 60, 0, 10.0),
            hour(h0 + 1, 60, 6, 20.0),
            // Yesterday and the day before: all good.
            hour(h0 - 5, 60, 0, 10.0),
            hour(h0 - 30, 60, 0, 10.0),
            // 100 days ago: outside the bar.
            hour(h0 - 100 * 24, 60, 60, 10.0),
        ];
        let g = graphs(&pts, &[], now);
        assert_eq!(
            g.cells.iter().map(Cell::days).sum::<i64>(),
            90,
            "{:?}",
            g.cells
        );
        let [none, ok, today_cell] = &g.cells[..] else {
            panic!("{:?}", g.cells);
        };
        assert_eq!((none.x, none.width, none.class), (0, 870, "none"));
        assert_eq!(none.title, None);
        assert_eq!((ok.x, ok.width, ok.class), (870, 20, "ok"));
        // 114 of 120: 95%.
        assert_eq!(
            (today_cell.x, today_cell.width, today_cell.class),
            (890, 8, "major")
        );
        assert_eq!(
            today_cell.title.as_deref(),
            Some("2026-11-25: 95.00% up, 120 probes, 6 failed")
        );
        assert_eq!(g.totals, (240, 6));
    }

    #[test]
    fn a_day_with_one_failure_or_only_degraded_probes_is_not_ok() {
        assert_eq!(day_class(1440, 1, 0), "minor");
        assert_eq!(day_class(1440, 0, 3), "minor");
        assert_eq!(day_class(1440, 0, 0), "ok");
        assert_eq!(day_class(100, 5, 0), "major");
        assert_eq!(day_class(100, 50, 0), "bad");
        assert_eq!(day_class(0, 0, 0), "none");
    }

    #[test]
    fn raw_samples_fill_hours_not_rolled_up_and_the_sparkline_has_gaps() {
        let now_s = 1_795_609_800; // 12:30 UTC
        let current = now_s / HOUR_S;
        let pts = vec![
            hour(current - 23, 10, 0, 5.0),
            hour(current - 22, 10, 0, 15.0),
            hour(current - 10, 10, 0, 30.0),
        ];
        let raws = vec![
            raw(now_s - 60, "up", 2.0),
            raw(now_s - 50, "down", 4.0),
            raw(now_s - 40, "up", 9.0),
            // An hour already rolled up: ignored in favour of the aggregate.
            raw((current - 10) * HOUR_S + 5, "down", 999.0),
        ];
        let g = graphs(&pts, &raws, at(now_s));
        assert_eq!(g.spark.lines.len(), 1, "{:?}", g.spark);
        assert_eq!(g.spark.dots.len(), 2, "{:?}", g.spark);
        assert_eq!(g.spark.last_ms, Some(4.0));
        assert_eq!(g.spark.max_ms, Some(30.0));
        // The current hour's raw samples count in today's cell.
        let today = g.cells.last().unwrap();
        assert!(
            today
                .title
                .as_deref()
                .unwrap()
                .contains("13 probes, 1 failed"),
            "{today:?}"
        );
    }

    #[test]
    fn the_title_puts_problems_first() {
        let counts = |up, degraded, down, unknown| Counts {
            total: up + degraded + down + unknown,
            up,
            degraded,
            down,
            unknown,
        };
        assert_eq!(page_title(&counts(3, 0, 0, 0)), "sitewatch: 3 of 3 up");
        assert_eq!(page_title(&counts(0, 0, 0, 2)), "sitewatch: 0 of 2 up");
        assert_eq!(
            page_title(&counts(1, 1, 2, 0)),
            "sitewatch: 2 down, 1 degraded, 1 of 4 up"
        );
    }

    #[test]
    fn spans_read_naturally() {
        assert_eq!(span(Duration::from_secs(42)), "42 s");
        assert_eq!(span(Duration::from_secs(192)), "3 min 12 s");
        assert_eq!(span(Duration::from_secs(7500)), "2 h 5 min");
        assert_eq!(span(Duration::from_secs(3 * 86_400 + 4 * 3600)), "3 d 4 h");
    }

    #[test]
    fn stamps_are_utc_and_say_so() {
        let s = stamp(at(1_795_609_800));
        assert_eq!(s.text, "2026-11-25 12:30:00 UTC");
        assert_eq!(s.iso, "2026-11-25T12:30:00.000Z");
    }
}
