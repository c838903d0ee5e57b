//! What sitewatch knows of each heartbeat: the pings it received, kept in
//! one small record per heartbeat that is saved with every ping and read
//! back at start.
//!
//! [`Record::apply`] is pure (a ping and its time in, the record changed);
//! [`Ledger`] shares the records between the listener that receives pings
//! and the scheduler that judges them.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// How many runs may be open (started, not finished) at once; the oldest
/// is dropped beyond it.
pub const MAX_OPEN_RUNS: usize = 16;
/// The longest run id kept, in bytes.
pub const MAX_RID_BYTES: usize = 64;
/// The part of a ping's body kept with the record, in bytes.
pub const KEPT_BODY_BYTES: usize = 10 * 1024;

/// What a ping says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    /// The job finished well (`/ping/KEY`, `/ping/KEY/0`).
    Success,
    /// The job started (`/ping/KEY/start`).
    Start,
    /// The job failed (`/ping/KEY/fail`, or a non-zero exit code).
    Fail,
    /// A message only (`/ping/KEY/log`): changes nothing.
    Log,
}

/// One ping as received.
#[derive(Clone, Debug, PartialEq)]
pub struct Ping {
    /// What it says.
    pub signal: Signal,
    /// The exit code, when the URL carried one.
    pub exit: Option<u8>,
    /// The run id (`?rid=`), pairing a start with its end.
    pub rid: Option<String>,
    /// The request body (or message), already cut to a bounded size.
    pub body: String,
    /// Whether `body` was cut.
    pub truncated: bool,
}

/// A job that started and has not finished.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Its run id, if it gave one.
    pub rid: Option<String>,
    /// When it started.
    #[serde(with = "crate::timefmt")]
    pub started: SystemTime,
}

/// How the latest run ended, when it ended badly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// When.
    #[serde(with = "crate::timefmt")]
    pub at: SystemTime,
    /// The exit code, when given.
    pub exit: Option<u8>,
    /// The end of what it said (its output, for `sitewatch ping`).
    pub excerpt: String,
}

/// Everything kept of one heartbeat.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// When sitewatch began watching it (the first deadline of a job that
    /// never pinged counts from here).
    #[serde(with = "crate::timefmt::option", default)]
    pub watched_since: Option<SystemTime>,
    /// The latest signal of any kind but `log` (start, success or failure).
    #[serde(with = "crate::timefmt::option", default)]
    pub last_signal: Option<SystemTime>,
    /// The latest success.
    #[serde(with = "crate::timefmt::option", default)]
    pub last_success: Option<SystemTime>,
    /// The latest failure, kept until a success follows it.
    #[serde(default)]
    pub failure: Option<Failure>,
    /// Runs started and not finished, oldest first.
    #[serde(default)]
    pub open: Vec<Run>,
    /// How long the latest run that reported both ends took, in ms.
    #[serde(default)]
    pub last_duration_ms: Option<u64>,
    /// Whether that run ended well.
    #[serde(default)]
    pub last_duration_ok: bool,
    /// The latest body received (cut), for the page and the alert.
    #[serde(default)]
    pub last_body: String,
    /// Pings received in all.
    #[serde(default)]
    pub pings: u64,
}

impl Record {
    /// A record for a heartbeat first watched at `now`.
    pub fn new(now: SystemTime) -> Record {
        Record {
            watched_since: Some(now),
            ..Record::default()
        }
    }

    /// Takes in a ping received at `at`.
    pub fn apply(&mut self, ping: &Ping, at: SystemTime) {
        self.pings += 1;
        if !ping.body.is_empty() {
            self.last_body = keep_tail(&ping.body, KEPT_BODY_BYTES);
        }
        match ping.signal {
            Signal::Log => {}
            Signal::Start => {
                self.last_signal = Some(at);
                // A start with the id of a run still open restarts it.
                self.open.retain(|r| r.rid != ping.rid);
                self.open.push(Run {
                    rid: ping.rid.clone(),
                    started: at,
                });
                if self.open.len() > MAX_OPEN_RUNS {
                    self.open.remove(0);
                }
            }
            Signal::Success | Signal::Fail => {
                self.last_signal = Some(at);
                // The run it ends: the one with its id, else the latest
                // started without one.
                let ended = match &ping.rid {
                    Some(_) => self.open.iter().rposition(|r| r.rid == ping.rid),
                    None => self.open.iter().rposition(|r| r.rid.is_none()),
                };
                if let Some(i) = ended {
                    let run = self.open.remove(i);
                    let took = at.duration_since(run.started).unwrap_or(Duration::ZERO);
                    self.last_duration_ms =
                        Some(u64::try_from(took.as_millis()).unwrap_or(u64::MAX));
                    self.last_duration_ok = ping.signal == Signal::Success;
                } else {
                    self.last_duration_ms = None;
                }
                if ping.signal == Signal::Success {
                    self.last_success = Some(at);
                    self.failure = None;
                } else {
                    self.failure = Some(Failure {
                        at,
                        exit: ping.exit,
                        excerpt: keep_tail(&ping.body, super::judge::EXCERPT_BYTES),
                    });
                }
            }
        }
    }
}

/// What `/status` and the page show of a heartbeat's record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HeartbeatView {
    /// The latest start, success or failure.
    #[serde(with = "crate::timefmt::option")]
    pub last_ping: Option<SystemTime>,
    /// The latest success.
    #[serde(with = "crate::timefmt::option")]
    pub last_success: Option<SystemTime>,
    /// The oldest run still open, if any.
    #[serde(with = "crate::timefmt::option")]
    pub running_since: Option<SystemTime>,
    /// Runs started and not finished.
    pub open_runs: usize,
    /// How long the latest run with both ends took, in seconds.
    pub last_duration_s: Option<f64>,
    /// The end of the latest body received.
    pub last_output: String,
    /// Pings received in all.
    pub pings: u64,
}

impl HeartbeatView {
    /// The view of `r`.
    pub fn of(r: &Record) -> HeartbeatView {
        HeartbeatView {
            last_ping: r.last_signal,
            last_success: r.last_success,
            running_since: r.open.iter().map(|run| run.started).min(),
            open_runs: r.open.len(),
            last_duration_s: r.last_duration_ms.map(|ms| ms as f64 / 1000.0),
            last_output: keep_tail(&r.last_body, 1000),
            pings: r.pings,
        }
    }
}

/// The last `max` bytes of `text`, cut at a character boundary.
pub fn keep_tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

/// The records of every heartbeat, shared between the ping listener and
/// the scheduler. Cheap to clone.
#[derive(Clone, Default)]
pub struct Ledger {
    records: Arc<Mutex<HashMap<String, Record>>>,
}

impl Ledger {
    /// A ledger holding what a start read back.
    pub fn new(saved: HashMap<String, Record>) -> Ledger {
        Ledger {
            records: Arc::new(Mutex::new(saved)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        // A panic while holding the lock cannot leave a record half
        // written (`apply` does not panic); the data stays usable.
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes in a ping for `name` at `at` and returns the record as it is
    /// now (to be saved).
    pub fn ping(&self, name: &str, ping: &Ping, at: SystemTime) -> Record {
        let mut records = self.lock();
        let rec = records
            .entry(name.to_string())
            .or_insert_with(|| Record::new(at));
        rec.apply(ping, at);
        rec.clone()
    }

    /// The record of `name`, created (first watched at `now`) if missing.
    /// Returns it and whether it was created (to be saved).
    pub fn watch(&self, name: &str, now: SystemTime) -> (Record, bool) {
        let mut records = self.lock();
        match records.get(name) {
            Some(r) => (r.clone(), false),
            None => {
                let r = Record::new(now);
                records.insert(name.to_string(), r.clone());
                (r, true)
            }
        }
    }

    /// The record of `name`, if any.
    pub fn get(&self, name: &str) -> Option<Record> {
        self.lock().get(name).cloned()
    }

    /// Forgets the heartbeats not in `keep` (removed from the configuration).
    pub fn retain(&self, keep: &dyn Fn(&str) -> bool) {
        self.lock().retain(|name, _| keep(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s)
    }

    fn ping(signal: Signal, rid: Option<&str>) -> Ping {
        Ping {
            signal,
            exit: None,
            rid: rid.map(str::to_string),
            body: String::new(),
            truncated: false,
        }
    }

    #[test]
    fn run_ids_pair_overlapping_runs() {
        let mut r = Record::new(t(0));
        r.apply(&ping(Signal::Start, Some("a")), t(10));
        r.apply(&ping(Signal::Start, Some("b")), t(20));
        r.apply(&ping(Signal::Success, Some("a")), t(70));
        assert_eq!(r.last_duration_ms, Some(60_000));
        assert_eq!(r.open.len(), 1);
        assert_eq!(r.open[0].rid.as_deref(), Some("b"));
        assert_eq!(r.open[0].started, t(20));
        r.apply(&ping(Signal::Fail, Some("b")), t(30 + 20));
        assert_eq!(r.last_duration_ms, Some(30_000));
        assert!(!r.last_duration_ok);
        assert!(r.open.is_empty());
        assert_eq!(r.failure.as_ref().map(|f| f.at), Some(t(50)));
    }

    #[test]
    fn an_end_without_an_id_closes_the_latest_start_without_one() {
        let mut r = Record::new(t(0));
        r.apply(&ping(Signal::Start, Some("x")), t(5));
        r.apply(&ping(Signal::Start, None), t(10));
        r.apply(&ping(Signal::Success, None), t(15));
        assert_eq!(r.last_duration_ms, Some(5_000));
        assert_eq!(r.open.len(), 1, "the run with an id stays open");
        // A success with no run open measures nothing.
        r.apply(&ping(Signal::Success, None), t(20));
        assert_eq!(r.last_duration_ms, None);
        assert_eq!(r.last_success, Some(t(20)));
    }

    #[test]
    fn a_success_clears_a_failure_and_log_changes_nothing() {
        let mut r = Record::new(t(0));
        let mut fail = ping(Signal::Fail, None);
        fail.exit = Some(3);
        fail.body = "disk full".into();
        r.apply(&fail, t(1));
        assert_eq!(r.failure.as_ref().unwrap().exit, Some(3));
        assert_eq!(r.failure.as_ref().unwrap().excerpt, "disk full");
        let before = r.clone();
        r.apply(&ping(Signal::Log, None), t(2));
        assert_eq!(r.last_signal, before.last_signal);
        assert_eq!(r.failure, before.failure);
        r.apply(&ping(Signal::Success, None), t(3));
        assert!(r.failure.is_none());
    }

    #[test]
    fn open_runs_are_bounded() {
        let mut r = Record::new(t(0));
        for i in 0..(MAX_OPEN_RUNS as u64 + 5) {
            r.apply(&ping(Signal::Start, Some(&format!("r{i}"))), t(i));
        }
        assert_eq!(r.open.len(), MAX_OPEN_RUNS);
        assert_eq!(r.open[0].rid.as_deref(), Some("r5"));
    }

    #[test]
    fn kept_text_is_cut_at_a_character_boundary() {
        let s = "é".repeat(10);
        let kept = keep_tail(&s, 5);
        assert_eq!(kept, "éé");
        assert_eq!(keep_tail("short", 100), "short");
    }

    #[test]
    fn a_record_survives_its_json() {
        let mut r = Record::new(t(0));
        r.apply(&ping(Signal::Start, Some("a")), t(1));
        let back: Record = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
