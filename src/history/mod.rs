//! History and memory across restarts: an embedded SQLite database in the
//! state directory holding each site's state-machine state, raw probe
//! samples (48 hours), hourly aggregates (400 days), transitions and
//! incidents.
//!
//! One writer thread owns the database for writing; the scheduler hands it
//! records over a channel and never waits on disk. Readers (the API) open
//! their own read-only connections (WAL lets them read while it writes).
//! Disk faults never stop probing: the writer keeps records in memory,
//! reports the problem on `/healthz` and `/status`, and retries.

mod query;
mod schema;
mod writer;

pub use query::{HistoryPoint, Incident, IncidentCause, Resolution};

use crate::config::SiteSpec;
use crate::diagnosis::{Cause, Status};
use crate::state::{SiteState, Transition};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The database file's name in the state directory.
pub const DB_FILE: &str = "sitewatch.db";
/// How long raw samples are kept.
pub const RAW_RETENTION: Duration = Duration::from_secs(48 * 3600);
/// How long hourly aggregates, transitions and incidents are kept.
pub const AGGREGATE_RETENTION: Duration = Duration::from_secs(400 * 24 * 3600);

/// Uptime percentages over the usual windows (`None` without probes in it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Uptime {
    /// Last 24 hours.
    #[serde(rename = "24h")]
    pub d1: Option<f64>,
    /// Last 7 days.
    #[serde(rename = "7d")]
    pub d7: Option<f64>,
    /// Last 30 days.
    #[serde(rename = "30d")]
    pub d30: Option<f64>,
    /// Last 90 days.
    #[serde(rename = "90d")]
    pub d90: Option<f64>,
}

/// What the writer shares with readers.
#[derive(Default)]
struct Shared {
    /// The current storage problem, if any.
    error: Mutex<Option<String>>,
    /// Uptime per site name.
    uptime: Mutex<HashMap<String, Uptime>>,
}

/// Read access for the API: the database path and the writer's shared figures.
#[derive(Clone)]
pub struct HistoryReader {
    path: PathBuf,
    shared: Arc<Shared>,
}

impl HistoryReader {
    /// The storage problem now, if any.
    pub fn error(&self) -> Option<String> {
        self.shared
            .error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A site's uptime percentages.
    pub fn uptime(&self, site: &str) -> Option<Uptime> {
        self.shared
            .uptime
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(site)
            .copied()
    }

    /// Probe history of a site (blocking: call from a blocking task).
    pub fn history(
        &self,
        site: &str,
        from: SystemTime,
        to: SystemTime,
        resolution: Resolution,
    ) -> Result<Vec<HistoryPoint>, String> {
        query::history(&self.path, site, from, to, resolution)
    }

    /// Recent incidents, newest first, of one site or all (blocking).
    pub fn incidents(&self, site: Option<&str>, limit: usize) -> Result<Vec<Incident>, String> {
        query::incidents(&self.path, site, limit)
    }
}

/// One thing to write.
pub(crate) enum Record {
    Probe {
        site: Arc<SiteSpec>,
        at: SystemTime,
        status: Status,
        cause: Option<Cause>,
        ms: f64,
        state: SiteState,
    },
    Transition {
        site: Arc<SiteSpec>,
        transition: Transition,
        detail: String,
    },
    /// Write everything queued before it, do the due maintenance, then ack.
    Sync(mpsc::Sender<()>),
    Stop,
}

/// Where the writer reads the time: the wall clock, or a simulated one
/// (tests and the growth benchmark replay days of history in seconds).
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The writing side: a cheap handle the scheduler sends records through.
#[derive(Clone)]
pub struct History {
    tx: mpsc::Sender<Record>,
    reader: HistoryReader,
}

/// The writer thread, to join on shutdown.
pub struct WriterThread {
    handle: Option<std::thread::JoinHandle<()>>,
    tx: mpsc::Sender<Record>,
}

impl WriterThread {
    /// Flushes what is queued and stops the writer (bounded wait).
    pub fn stop(mut self) {
        let _ = self.tx.send(Record::Stop);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Milliseconds since the Unix epoch (negative before it).
pub fn unix_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

pub(crate) fn from_ms(ms: i64) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

impl History {
    /// Opens (or creates) the database in `dir`, loads the saved state of
    /// `sites` and starts the writer thread. Never fails: a database that
    /// cannot be opened is reported and retried by the writer, and the
    /// sites then start unknown.
    pub fn open(
        dir: &Path,
        sites: &[Arc<SiteSpec>],
    ) -> (History, WriterThread, HashMap<String, SiteState>) {
        Self::open_with_clock(dir, sites, Arc::new(SystemTime::now))
    }

    /// [`History::open`] with the writer reading time from `clock`.
    pub fn open_with_clock(
        dir: &Path,
        sites: &[Arc<SiteSpec>],
        clock: Clock,
    ) -> (History, WriterThread, HashMap<String, SiteState>) {
        let path = dir.join(DB_FILE);
        let shared = Arc::new(Shared::default());
        let (tx, rx) = mpsc::channel();
        let (writer, states) =
            writer::Writer::start(path.clone(), Arc::clone(&shared), sites, clock);
        let handle = std::thread::Builder::new()
            .name("sitewatch-history".into())
            .spawn(move || writer.run(rx))
            .ok();
        if handle.is_none() {
            tracing::error!("cannot start the history writer thread; history is not kept");
        }
        let reader = HistoryReader { path, shared };
        (
            History {
                tx: tx.clone(),
                reader,
            },
            WriterThread { handle, tx },
            states,
        )
    }

    /// The read side, for the API.
    pub fn reader(&self) -> HistoryReader {
        self.reader.clone()
    }

    /// Queues a probe result and the state it led to.
    pub fn probe(
        &self,
        site: &Arc<SiteSpec>,
        at: SystemTime,
        status: Status,
        cause: Option<Cause>,
        ms: f64,
        state: SiteState,
    ) {
        let _ = self.tx.send(Record::Probe {
            site: Arc::clone(site),
            at,
            status,
            cause,
            ms,
            state,
        });
    }

    /// Waits until everything queued so far is written and the maintenance
    /// due by the writer's clock is done (at most `limit`). Returns whether
    /// the writer answered in time.
    pub fn sync(&self, limit: Duration) -> bool {
        let (tx, rx) = mpsc::channel();
        self.tx.send(Record::Sync(tx)).is_ok() && rx.recv_timeout(limit).is_ok()
    }

    /// Queues a transition (and the incident bookkeeping it implies).
    pub fn transition(&self, site: &Arc<SiteSpec>, transition: Transition, detail: &str) {
        let _ = self.tx.send(Record::Transition {
            site: Arc::clone(site),
            transition,
            detail: detail.to_string(),
        });
    }
}
