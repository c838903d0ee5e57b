//! The verdict on a heartbeat: a pure function of its settings, its
//! [`Record`], the time this sitewatch started and `now`.
//!
//! In order, the first that holds decides:
//!
//! 1. a run started and has not finished within `max_runtime`: **overrun**;
//! 2. no signal (start, success or failure) by the deadline: **missed**.
//!    The deadline is the run expected after the latest signal, plus
//!    `grace`. A ping that comes a little early (within `grace`, and nearer
//!    the next run than the one before) counts for the next run;
//! 3. the latest run ended with a failure: **failed**;
//! 4. the expected time has passed, the grace has not, and `late = true`:
//!    **late** (degraded: the news of now outranks what the last run did);
//! 5. the latest run that reported its start took less than `min_runtime`:
//!    **too fast** (degraded);
//! 6. otherwise up, or *pending* (unknown) before the first ping.
//!
//! A deadline that fell before this sitewatch started is not judged: the
//! ping may have come while nobody listened. The heartbeat is pending until
//! the run expected after the start, plus grace (at least `grace` after the
//! start).

use super::ledger::Record;
use crate::config::{Due, HeartbeatSpec};
use crate::diagnosis::{Cause, Status};
use std::time::{Duration, SystemTime};

/// The part of a failed run's output shown in an alert, in bytes.
pub const EXCERPT_BYTES: usize = 1000;

/// What the record says now.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Nothing can be said yet (no ping so far, or sitewatch was not
    /// running when one was due): recorded as unknown, the state is kept.
    Pending(String),
    /// A verdict the state machine takes like a probe's.
    Judged {
        /// up, degraded or down.
        status: Status,
        /// Why, when not up.
        cause: Option<Cause>,
        /// One sentence with the facts.
        detail: String,
    },
}

/// The run expected after `t`, for `due`.
fn expected_after(due: &Due, t: SystemTime) -> Option<SystemTime> {
    match due {
        Due::Every(p) => t.checked_add(*p),
        Due::Cron(c) => c.next_after(t),
    }
}

/// The run a signal at `t` stands for: the next one, or the one after when
/// `t` is a little early for the next.
fn expected_after_signal(spec: &HeartbeatSpec, t: SystemTime) -> Option<SystemTime> {
    let Due::Cron(c) = &spec.due else {
        return expected_after(&spec.due, t);
    };
    let next = c.next_after(t)?;
    let gap = c
        .latest_at_or_before(t)
        .and_then(|prev| next.duration_since(prev).ok());
    let early = next.duration_since(t).unwrap_or(Duration::ZERO);
    let tolerance = gap.map_or(spec.grace, |g| spec.grace.min(g / 2));
    if early <= tolerance {
        c.next_after(next)
    } else {
        Some(next)
    }
}

fn at(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn took(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs().max(1))).to_string()
}

fn judged(status: Status, cause: Option<Cause>, detail: String) -> Verdict {
    Verdict::Judged {
        status,
        cause,
        detail,
    }
}

/// Judges one heartbeat at `now`; `started` is when this sitewatch started.
pub fn judge(spec: &HeartbeatSpec, rec: &Record, started: SystemTime, now: SystemTime) -> Verdict {
    let since = |t: SystemTime| took(now.duration_since(t).unwrap_or(Duration::ZERO));
    // 1. A run that does not end.
    if let Some(max) = spec.max_runtime
        && let Some(run) = rec
            .open
            .iter()
            .filter(|r| now.duration_since(r.started).unwrap_or(Duration::ZERO) > max)
            .min_by_key(|r| r.started)
    {
        let rid = run
            .rid
            .as_ref()
            .map_or_else(String::new, |r| format!(" (run {r})"));
        return judged(
            Status::Down,
            Some(Cause::HeartbeatOverrun),
            format!(
                "started at {}{rid} and has not finished after {} (max_runtime {})",
                at(run.started),
                since(run.started),
                took(max)
            ),
        );
    }

    // 2. The deadline.
    let base = rec.last_signal.or(rec.watched_since).unwrap_or(started);
    let Some(mut expected) = expected_after_signal(spec, base) else {
        return Verdict::Pending("no further run is expected by the schedule".to_string());
    };
    let mut deadline = expected + spec.grace;
    let mut unjudged = None;
    if deadline <= started {
        // Due while this sitewatch was not running: not judged.
        unjudged = Some(expected);
        let Some(next) = expected_after(&spec.due, started) else {
            return Verdict::Pending("no further run is expected by the schedule".to_string());
        };
        expected = next;
        deadline = (next + spec.grace).max(started + spec.grace);
    }
    if now >= deadline {
        let detail = match rec.last_signal {
            Some(t) => format!(
                "no ping since {} ({} ago); a run was expected at {} and the grace of {} has passed",
                at(t),
                since(t),
                at(expected),
                took(spec.grace)
            ),
            None => format!(
                "no ping received yet; a run was expected at {} and the grace of {} has passed",
                at(expected),
                took(spec.grace)
            ),
        };
        return judged(Status::Down, Some(Cause::HeartbeatMissed), detail);
    }

    // 3. The latest run failed.
    if let Some(f) = &rec.failure {
        let code = f
            .exit
            .map_or_else(String::new, |c| format!(" with exit code {c}"));
        let said = f.excerpt.trim();
        let said = if said.is_empty() {
            String::new()
        } else {
            format!(": \"{}\"", super::ledger::keep_tail(said, EXCERPT_BYTES))
        };
        return judged(
            Status::Down,
            Some(Cause::HeartbeatFailed),
            format!("the run reported failure{code} at {}{said}", at(f.at)),
        );
    }

    // 4. Late, inside the grace.
    if spec.late && now >= expected {
        return judged(
            Status::Degraded,
            Some(Cause::HeartbeatLate),
            format!(
                "a run was expected at {}; no ping yet, grace until {}",
                at(expected),
                at(deadline)
            ),
        );
    }

    // 5. Too fast to be true.
    if let (Some(min), Some(ms), true) =
        (spec.min_runtime, rec.last_duration_ms, rec.last_duration_ok)
        && Duration::from_millis(ms) < min
    {
        return judged(
            Status::Degraded,
            Some(Cause::HeartbeatTooFast),
            format!(
                "the latest run took {}, under min_runtime {}",
                humantime::format_duration(Duration::from_millis(ms)),
                took(min)
            ),
        );
    }

    // 6. Fine, or nothing known yet.
    if let Some(missed) = unjudged {
        return Verdict::Pending(format!(
            "sitewatch was not running when a run was due at {}: waiting for the next ping, due by {}",
            at(missed),
            at(deadline)
        ));
    }
    match rec.last_signal {
        None => Verdict::Pending(format!(
            "waiting for the first ping, due by {}",
            at(deadline)
        )),
        Some(t) => {
            let ran = rec.last_duration_ms.map_or_else(String::new, |ms| {
                format!(
                    ", ran {}",
                    humantime::format_duration(Duration::from_millis(ms))
                )
            });
            let what = if rec.open.is_empty() {
                "last ping"
            } else {
                "running since"
            };
            let t = if rec.open.is_empty() {
                t
            } else {
                rec.open.iter().map(|r| r.started).min().unwrap_or(t)
            };
            judged(
                Status::Up,
                None,
                format!("{what} {}{ran}; next due by {}", at(t), at(deadline)),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretRef;
    use crate::heartbeat::cron::CronSchedule;
    use crate::heartbeat::ledger::{Ping, Signal};

    const MIN: u64 = 60;
    const HOUR: u64 = 3600;

    /// 2026-03-01T00:00:00Z plus `s` seconds.
    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_772_323_200 + s)
    }

    fn spec(due: Due) -> HeartbeatSpec {
        HeartbeatSpec {
            key: SecretRef::Value("k".repeat(22)),
            due,
            grace: Duration::from_secs(5 * MIN),
            max_runtime: None,
            min_runtime: None,
            late: false,
        }
    }

    fn every(h: u64) -> HeartbeatSpec {
        spec(Due::Every(Duration::from_secs(h * HOUR)))
    }

    fn ping(rec: &mut Record, signal: Signal, at: SystemTime) {
        rec.apply(
            &Ping {
                signal,
                exit: None,
                rid: None,
                body: String::new(),
                truncated: false,
            },
            at,
        );
    }

    fn cause(v: &Verdict) -> Option<Cause> {
        match v {
            Verdict::Judged { cause, .. } => *cause,
            Verdict::Pending(_) => None,
        }
    }

    fn status(v: &Verdict) -> Option<Status> {
        match v {
            Verdict::Judged { status, .. } => Some(*status),
            Verdict::Pending(_) => None,
        }
    }

    #[test]
    fn a_period_heartbeat_is_pending_then_up_then_missed_after_its_grace() {
        let s = every(1);
        let mut rec = Record::new(t(0));
        assert!(matches!(judge(&s, &rec, t(0), t(10)), Verdict::Pending(_)));
        // Never pinged: missed once the first period and grace have passed.
        assert_eq!(
            cause(&judge(&s, &rec, t(0), t(HOUR + 5 * MIN))),
            Some(Cause::HeartbeatMissed)
        );
        ping(&mut rec, Signal::Success, t(HOUR + 6 * MIN));
        let v = judge(&s, &rec, t(0), t(HOUR + 7 * MIN));
        assert_eq!(status(&v), Some(Status::Up), "{v:?}");
        // Due at 2h06, grace until 2h11.
        assert_eq!(
            status(&judge(&s, &rec, t(0), t(2 * HOUR + 10 * MIN))),
            Some(Status::Up)
        );
        let v = judge(&s, &rec, t(0), t(2 * HOUR + 11 * MIN));
        assert_eq!(cause(&v), Some(Cause::HeartbeatMissed));
        let Verdict::Judged { detail, .. } = v else {
            unreachable!()
        };
        assert!(
            detail.contains("no ping since 2026-03-01T01:06:00Z"),
            "{detail}"
        );
    }

    #[test]
    fn late_is_reported_inside_the_grace_only_when_asked() {
        let mut s = every(1);
        let mut rec = Record::new(t(0));
        ping(&mut rec, Signal::Success, t(0));
        assert_eq!(
            status(&judge(&s, &rec, t(0), t(HOUR + MIN))),
            Some(Status::Up)
        );
        s.late = true;
        assert_eq!(
            cause(&judge(&s, &rec, t(0), t(HOUR + MIN))),
            Some(Cause::HeartbeatLate)
        );
        assert_eq!(
            status(&judge(&s, &rec, t(0), t(HOUR - 1))),
            Some(Status::Up)
        );
    }

    #[test]
    fn a_failure_is_down_until_a_success_and_names_its_exit_code_and_output() {
        let s = every(24);
        let mut rec = Record::new(t(0));
        rec.apply(
            &Ping {
                signal: Signal::Fail,
                exit: Some(2),
                rid: None,
                body: "pg_dump: error: connection refused\n".into(),
                truncated: false,
            },
            t(10),
        );
        let v = judge(&s, &rec, t(0), t(20));
        assert_eq!(cause(&v), Some(Cause::HeartbeatFailed));
        let Verdict::Judged { detail, .. } = v else {
            unreachable!()
        };
        assert!(detail.contains("exit code 2"), "{detail}");
        assert!(
            detail.contains("pg_dump: error: connection refused"),
            "{detail}"
        );
        ping(&mut rec, Signal::Success, t(30));
        assert_eq!(status(&judge(&s, &rec, t(0), t(40))), Some(Status::Up));
    }

    #[test]
    fn a_run_that_does_not_end_overruns_and_a_quick_one_is_too_fast() {
        let mut s = every(24);
        s.max_runtime = Some(Duration::from_secs(HOUR));
        s.min_runtime = Some(Duration::from_secs(MIN));
        let mut rec = Record::new(t(0));
        ping(&mut rec, Signal::Start, t(0));
        assert_eq!(status(&judge(&s, &rec, t(0), t(HOUR))), Some(Status::Up));
        assert_eq!(
            cause(&judge(&s, &rec, t(0), t(HOUR + 1))),
            Some(Cause::HeartbeatOverrun)
        );
        ping(&mut rec, Signal::Success, t(HOUR + 2));
        assert_eq!(
            status(&judge(&s, &rec, t(0), t(HOUR + 3))),
            Some(Status::Up)
        );
        ping(&mut rec, Signal::Start, t(2 * HOUR));
        ping(&mut rec, Signal::Success, t(2 * HOUR + 5));
        assert_eq!(
            cause(&judge(&s, &rec, t(0), t(2 * HOUR + 6))),
            Some(Cause::HeartbeatTooFast)
        );
    }

    #[test]
    fn a_deadline_that_fell_while_sitewatch_was_stopped_is_not_judged() {
        let s = every(1);
        let mut rec = Record::new(t(0));
        ping(&mut rec, Signal::Success, t(0));
        // Stopped from 0h30 to 3h: the deadline 1h05 fell meanwhile.
        let started = t(3 * HOUR);
        let v = judge(&s, &rec, started, t(3 * HOUR + MIN));
        assert!(
            matches!(v, Verdict::Pending(ref d) if d.contains("not running")),
            "{v:?}"
        );
        // The next run is due a period after the start, plus grace.
        assert!(matches!(
            judge(&s, &rec, started, t(4 * HOUR + 4 * MIN)),
            Verdict::Pending(_)
        ));
        assert_eq!(
            cause(&judge(&s, &rec, started, t(4 * HOUR + 5 * MIN))),
            Some(Cause::HeartbeatMissed)
        );
        // A ping after the start is judged as usual.
        ping(&mut rec, Signal::Success, t(3 * HOUR + 2 * MIN));
        assert_eq!(
            status(&judge(&s, &rec, started, t(3 * HOUR + 3 * MIN))),
            Some(Status::Up)
        );
    }

    #[test]
    fn a_cron_ping_a_little_early_counts_for_the_coming_run() {
        // Daily at 02:30 UTC, grace 5 min.
        let s = spec(Due::Cron(Box::new(
            CronSchedule::parse("30 2 * * *", "UTC").unwrap(),
        )));
        let mut rec = Record::new(t(0));
        // 02:29:58 on March 1st: two seconds early.
        ping(&mut rec, Signal::Success, t(2 * HOUR + 29 * MIN + 58));
        // Still up long after 02:35 the same day...
        assert_eq!(
            status(&judge(&s, &rec, t(0), t(12 * HOUR))),
            Some(Status::Up)
        );
        // ...and missed at 02:35 the next day.
        assert_eq!(
            cause(&judge(&s, &rec, t(0), t(24 * HOUR + 2 * HOUR + 35 * MIN))),
            Some(Cause::HeartbeatMissed)
        );
        assert_eq!(
            status(&judge(&s, &rec, t(0), t(24 * HOUR + 2 * HOUR + 34 * MIN))),
            Some(Status::Up)
        );
    }

    #[test]
    fn a_cron_heartbeat_follows_its_time_zone_across_the_spring_forward_night() {
        // 02:30 Berlin does not exist on 2026-03-29; the run is at 03:00
        // CEST (01:00Z). A ping at 01:00Z that night is on time.
        let s = spec(Due::Cron(Box::new(
            CronSchedule::parse("30 2 * * *", "Europe/Berlin").unwrap(),
        )));
        let day = |d: u64| t((d - 1) * 24 * HOUR);
        let mut rec = Record::new(day(28));
        // 02:30 CET on the 28th = 01:30Z.
        ping(
            &mut rec,
            Signal::Success,
            day(28) + Duration::from_secs(HOUR + 30 * MIN),
        );
        // Due 01:00Z on the 29th, grace until 01:05Z.
        let due = day(29) + Duration::from_secs(HOUR);
        assert_eq!(
            status(&judge(
                &s,
                &rec,
                day(28),
                due + Duration::from_secs(4 * MIN)
            )),
            Some(Status::Up)
        );
        assert_eq!(
            cause(&judge(
                &s,
                &rec,
                day(28),
                due + Duration::from_secs(5 * MIN)
            )),
            Some(Cause::HeartbeatMissed)
        );
        ping(&mut rec, Signal::Success, due);
        // Next: 02:30 CEST on the 30th = 00:30Z.
        let next = day(30) + Duration::from_secs(30 * MIN);
        assert_eq!(
            status(&judge(
                &s,
                &rec,
                day(28),
                next + Duration::from_secs(4 * MIN)
            )),
            Some(Status::Up)
        );
        assert_eq!(
            cause(&judge(
                &s,
                &rec,
                day(28),
                next + Duration::from_secs(5 * MIN)
            )),
            Some(Cause::HeartbeatMissed)
        );
    }
}
