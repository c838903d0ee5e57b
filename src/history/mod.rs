//! History and memory across restarts: an embedded SQLite database in the
//! state directory holding each site's state-machine state, raw probe
//! samples (48 hours), hourly aggregates (90 days), daily aggregates,
//! transitions and incidents (400 days) — each retention set by
//! [`Retention`] — and the alert outbox.
//!
//! One writer thread owns the database for writing; the scheduler and the
//! alert dispatcher hand it records over a channel and never wait on disk.
//! A confirmed change, the state it leads to, its incident bookkeeping and
//! the alert it makes due are one transaction (the journal), and the alert
//! is handed to the dispatcher only once that is committed: a kill at any
//! moment leaves either nothing or all of it, and a start resumes what was
//! due ([`Resumed`]). Readers (the API) open their own read-only
//! connections (WAL lets them read while it writes). Disk faults never stop
//! probing or alerting: the writer keeps records in memory, hands alerts on
//! anyway, reports the problem on `/healthz` and `/status`, and retries.

mod journal;
mod kept;
mod query;
mod record;
mod retention;
mod rollup;
mod schema;
mod writer;

pub use query::{HistoryPoint, Incident, IncidentCause, Resolution};
pub use retention::{DAILY_RETENTION, HOURLY_RETENTION, RAW_RETENTION, Retention};
pub use rollup::{Unverified, Uptime};

use crate::alert::{Alert, Forget};
use crate::config::SiteSpec;
use crate::diagnosis::{Cause, Status};
use crate::state::{SiteState, Transition};
pub(crate) use record::{Change, Record};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

/// The database file's name in the state directory.
pub const DB_FILE: &str = "sitewatch.db";

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
    retention: Retention,
}

impl HistoryReader {
    /// How long each resolution is kept.
    pub fn retention(&self) -> Retention {
        self.retention
    }

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
    ) -> Result<Vec<HistoryPoint>, Error> {
        query::history(&self.path, site, from, to, resolution).map_err(Error::Read)
    }

    /// The first hour the hourly rows keep: `hour` points before it stand
    /// for whole UTC days, read from the daily rows (`None` while no hour
    /// has been rolled into a day). Blocking.
    pub fn hourly_from(&self) -> Result<Option<SystemTime>, Error> {
        query::hourly_from(&self.path).map_err(Error::Read)
    }

    /// The deliveries still pending or given up on (dead letters), newest
    /// first; only one `state` when given (blocking).
    pub fn undelivered(
        &self,
        state: Option<&str>,
        limit: usize,
    ) -> Result<Vec<query::Undelivered>, Error> {
        query::undelivered(&self.path, state, limit).map_err(Error::Read)
    }

    /// Recent incidents, newest first, of one site or all (blocking).
    pub fn incidents(&self, site: Option<&str>, limit: usize) -> Result<Vec<Incident>, Error> {
        query::incidents(&self.path, site, limit).map_err(Error::Read)
    }
}

/// One probe result as the history keeps it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// When the probe started.
    pub at: SystemTime,
    /// What it found.
    pub status: Status,
    /// Why, when not up.
    pub cause: Option<Cause>,
    /// How long it took, milliseconds.
    pub ms: f64,
    /// It could not be believed (this monitor's network was down): kept as
    /// unknown, out of the uptime.
    pub unverified: bool,
    /// Made under a maintenance window that leaves it out of uptime:
    /// counted as maintenance time.
    pub maintenance: bool,
}

/// A change of this monitor's own network, with the alert it makes due.
#[derive(Clone, Debug)]
pub struct NetChange {
    /// Whose network: `None` for this monitor's own, or a peer vantage's
    /// name (reachable from here: `ok`; unreachable: `offline`).
    pub subject: Option<String>,
    /// The verdict before.
    pub from: crate::selfcheck::NetState,
    /// The verdict now.
    pub to: crate::selfcheck::NetState,
    /// When it was found.
    pub at: SystemTime,
    /// What the canaries did.
    pub evidence: String,
    /// The alert (lost, back), if this change makes one due.
    pub alert: Option<Alert>,
}

/// A confirmed change, handed to [`History::record`] with the result that
/// confirmed it.
#[derive(Clone, Debug)]
pub struct NewChange {
    /// The change.
    pub transition: Transition,
    /// The confirming probe's detail.
    pub detail: String,
    /// The alert it makes due (`None` for changes that alert nobody).
    pub alert: Option<Alert>,
    /// Other sites that began failing shortly before (a storm forming).
    pub failing: usize,
    /// Made inside a maintenance window: an outage it begins opens no
    /// incident (nobody was told of it).
    pub maintenance: bool,
}

/// What a delivery has come to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not yet delivered (first attempt or retry due).
    Pending,
    /// Delivered.
    Sent,
    /// Given up on.
    Failed,
    /// Sent as part of a grouped (storm) alert.
    Grouped,
    /// Sent by another vantage (the site's owner).
    Delegated,
}

impl DeliveryState {
    /// The word stored in the outbox.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Sent => "sent",
            DeliveryState::Failed => "failed",
            DeliveryState::Grouped => "grouped",
            DeliveryState::Delegated => "delegated",
        }
    }
}

/// A delivery to store before its first attempt.
#[derive(Clone, Debug)]
pub struct NewDelivery {
    /// The alert's stable id.
    pub alert_id: String,
    /// The channel's name.
    pub channel: String,
    /// The alert as JSON.
    pub json: String,
}

/// The dispatcher's writes to the outbox.
#[derive(Debug)]
pub enum OutboxOp {
    /// New deliveries, the journal rows they handle (no longer due) and the
    /// outages whose reminder clock restarts, in one transaction. Answers,
    /// per delivery, whether it was new (not stored before).
    Enqueue {
        /// Journal rows handled.
        handled: Vec<crate::alert::Journal>,
        /// Deliveries to store.
        deliveries: Vec<NewDelivery>,
        /// Sites whose open outage was just alerted or reminded, and when.
        reminded: Vec<(String, SystemTime)>,
    },
    /// A storm: the grouped alert's deliveries stored and its members
    /// marked as sent with it, in one transaction.
    Group {
        /// The grouped alert's deliveries.
        group: Vec<NewDelivery>,
        /// Members: (alert id, channel).
        members: Vec<(String, String)>,
    },
    /// An attempt's outcome.
    Attempt {
        /// The alert's id.
        alert_id: String,
        /// The channel.
        channel: String,
        /// Attempts made so far.
        attempts: u32,
        /// What the delivery has come to.
        state: DeliveryState,
        /// The last error, scrubbed of secrets.
        error: Option<String>,
        /// What the receiver named the message, and the thread it changes.
        remote: Remote,
    },
}

/// What a delivery left at the receiver.
#[derive(Clone, Debug, Default)]
pub struct Remote {
    /// The id the receiver gave the message.
    pub id: Option<String>,
    /// The alert's site.
    pub site: String,
    /// What happens to the site's thread on this channel.
    pub thread: Thread,
}

/// The message that opened a site's outage on a channel, as a delivery
/// changes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Thread {
    /// Unchanged.
    #[default]
    Keep,
    /// This message opens it (its remote id).
    Open(String),
    /// The outage ended: forget it.
    Close,
}

/// One pending delivery as stored.
#[derive(Clone, Debug)]
pub struct StoredDelivery {
    /// The alert.
    pub alert: Alert,
    /// The channel's name.
    pub channel: String,
    /// Attempts made so far.
    pub attempts: u32,
}

/// An outage open when sitewatch last stopped.
#[derive(Clone, Debug)]
pub struct OpenOutage {
    /// The site.
    pub site: String,
    /// The latest down alert, repeated by reminders.
    pub last: Alert,
    /// When it or the last reminder was made.
    pub reminded: SystemTime,
}

/// What a start resumes: the saved states and every step of alerting that
/// was not finished.
#[derive(Default)]
pub struct Resumed {
    /// Each configured site's state-machine state.
    pub states: HashMap<String, SiteState>,
    /// Alerts committed with their change but not yet handed to the outbox.
    pub due: Vec<crate::alert::Event>,
    /// Deliveries not yet delivered or given up on.
    pub deliveries: Vec<StoredDelivery>,
    /// Outages still open (their reminders go on).
    pub outages: Vec<OpenOutage>,
    /// This monitor's network verdict when it stopped, if it was not ok,
    /// and since when.
    pub network: Option<(crate::selfcheck::NetState, SystemTime)>,
    /// The peer vantages last reported unreachable from here, and since
    /// when (their return is still to be told).
    pub peers_lost: Vec<(String, SystemTime)>,
    /// What each heartbeat had received when sitewatch stopped.
    pub heartbeats: HashMap<String, crate::heartbeat::ledger::Record>,
    /// The silences not expired for long.
    pub silences: Vec<crate::silence::Silence>,
    /// (site, channel) → the remote id of the message that opened the
    /// site's outage there.
    pub threads: HashMap<(String, String), String>,
}

/// Where committed alerts go: the dispatcher's inbox.
pub type Events = tokio::sync::mpsc::UnboundedSender<crate::alert::Event>;

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
    /// Flushes what is queued and stops the writer, waiting at most
    /// `limit`; returns whether it finished in time.
    pub fn stop(mut self, limit: Duration) -> bool {
        let _ = self.tx.send(Record::Stop);
        let Some(h) = self.handle.take() else {
            return true;
        };
        let deadline = std::time::Instant::now() + limit;
        while !h.is_finished() {
            if std::time::Instant::now() >= deadline {
                tracing::error!(
                    "the history writer did not finish within {} s; exiting without it",
                    limit.as_secs()
                );
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = h.join();
        true
    }

    /// Whether the writer thread still runs.
    pub fn alive(&self) -> bool {
        self.handle.as_ref().is_some_and(|h| !h.is_finished())
    }
}

/// Why the history could not do what was asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The database could not be written (the record is kept and retried).
    #[error("{0}")]
    Storage(String),
    /// The writer has stopped.
    #[error("the history writer has stopped")]
    Stopped,
    /// The database could not be read (for the API).
    #[error("{0}")]
    Read(String),
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
    /// Opens (or creates) the database in `dir`, resumes what `sites` left
    /// (states, due alerts, pending deliveries, open outages), settles what
    /// the configuration no longer matches (outages of sites removed or
    /// re-targeted while sitewatch was stopped are closed as forgotten) and
    /// starts the writer thread, which hands every committed alert to
    /// `events` and keeps each resolution as long as `retention` says.
    /// Never fails: a database that cannot be opened is reported and
    /// retried by the writer, and the sites then start unknown.
    pub fn open(
        dir: &Path,
        sites: &[Arc<SiteSpec>],
        events: Option<Events>,
        retention: Retention,
    ) -> (History, WriterThread, Resumed) {
        Self::open_with_clock(dir, sites, events, retention, Arc::new(SystemTime::now))
    }

    /// [`History::open`] with the writer reading time from `clock`.
    pub fn open_with_clock(
        dir: &Path,
        sites: &[Arc<SiteSpec>],
        events: Option<Events>,
        retention: Retention,
        clock: Clock,
    ) -> (History, WriterThread, Resumed) {
        let path = dir.join(DB_FILE);
        let shared = Arc::new(Shared::default());
        let (tx, rx) = mpsc::channel();
        let (writer, resumed) = writer::Writer::start(
            path.clone(),
            dir,
            writer::Setup {
                shared: Arc::clone(&shared),
                events,
                clock,
                retention,
            },
            sites,
        );
        let handle = std::thread::Builder::new()
            .name("sitewatch-history".into())
            .spawn(move || writer.run(rx))
            .ok();
        if handle.is_none() {
            tracing::error!("cannot start the history writer thread; history is not kept");
        }
        let reader = HistoryReader {
            path,
            shared,
            retention,
        };
        (
            History {
                tx: tx.clone(),
                reader,
            },
            WriterThread { handle, tx },
            resumed,
        )
    }

    /// The read side, for the API.
    pub fn reader(&self) -> HistoryReader {
        self.reader.clone()
    }

    /// Queues a probe result and the state it led to. With a `change`
    /// (the state is a confirmed change), the change, the state, the
    /// incident bookkeeping and the alert it makes due are written in one
    /// transaction, and only then is the alert handed on.
    pub fn record(
        &self,
        site: &Arc<SiteSpec>,
        sample: Sample,
        state: SiteState,
        change: Option<NewChange>,
    ) {
        let _ = self.tx.send(Record::Probe {
            site: Arc::clone(site),
            at: sample.at,
            status: sample.status,
            cause: sample.cause,
            ms: sample.ms,
            unverified: sample.unverified,
            maintenance: sample.maintenance,
            state,
            change: change.map(|c| {
                Box::new(Change {
                    transition: c.transition,
                    detail: c.detail,
                    alert: c.alert,
                    notify: site.notify.clone(),
                    failing: c.failing,
                    maintenance: c.maintenance,
                    forwarded: false,
                })
            }),
        });
    }

    /// Queues the save of a heartbeat's record (written at once: a ping
    /// must not be lost to a crash).
    pub fn heartbeat(&self, name: &str, record: &crate::heartbeat::ledger::Record) {
        match serde_json::to_string(record) {
            Ok(json) => {
                let _ = self.tx.send(Record::Heartbeat {
                    name: name.to_string(),
                    record: json,
                });
            }
            Err(e) => {
                tracing::error!(heartbeat = name, error = %e, "cannot encode a heartbeat's record")
            }
        }
    }

    /// Saves a silence; resolves once it is on disk (or could not be).
    pub async fn save_silence(&self, s: &crate::silence::Silence) -> Result<(), Error> {
        let body = serde_json::to_string(s).map_err(|e| Error::Storage(e.to_string()))?;
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Record::Silence {
                id: s.id.clone(),
                body,
                ends: s.ends_at,
                answer: Some(tx),
            })
            .map_err(|_| Error::Stopped)?;
        match tokio::time::timeout(Duration::from_secs(5), rx).await {
            Ok(Ok(r)) => r.map(|_| ()),
            Ok(Err(_)) => Err(Error::Stopped),
            Err(_) => Err(Error::Storage(
                "the state database did not answer within 5 s".to_string(),
            )),
        }
    }

    /// Queues a change of this monitor's network: journaled with its alert,
    /// which is handed on once stored.
    pub fn network(&self, change: NetChange) {
        let _ = self.tx.send(Record::Network {
            change: Box::new(change),
            forwarded: false,
        });
    }

    /// Queues a reset: the site's state starts over as `state` (or is
    /// dropped, when `None`: the site was removed), and its open outage, if
    /// any, is closed as forgotten with a notice to the channels that heard
    /// of it.
    pub fn reset(
        &self,
        site: &Arc<SiteSpec>,
        state: Option<SiteState>,
        why: Forget,
        at: SystemTime,
    ) {
        let _ = self.tx.send(Record::Reset {
            site: Arc::clone(site),
            state,
            why,
            at,
            forwarded: false,
        });
    }

    /// Sends an outbox write; `answer` hears how it went.
    pub(crate) fn outbox(
        &self,
        op: OutboxOp,
        answer: Option<oneshot::Sender<Result<Vec<bool>, Error>>>,
    ) -> Result<(), Error> {
        self.tx
            .send(Record::Outbox(op, answer))
            .map_err(|_| Error::Stopped)
    }

    /// Waits until everything queued so far is written and the maintenance
    /// due by the writer's clock is done (at most `limit`). Returns whether
    /// the writer answered in time.
    pub fn sync(&self, limit: Duration) -> bool {
        let (tx, rx) = mpsc::channel();
        self.tx.send(Record::Sync(tx)).is_ok() && rx.recv_timeout(limit).is_ok()
    }
}
