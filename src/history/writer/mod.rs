//! The writer thread: owns the read-write connection, batches records into
//! transactions, hands committed alerts to the dispatcher, rolls samples up,
//! keeps the uptime figures current, and survives every storage fault by
//! keeping records in memory, handing alerts on anyway, and retrying.
//!
//! [`resume`] is what a start reads back; [`batch`] writes one batch.

mod batch;
mod resume;

use super::rollup::{self, SiteCounts, hour_of};
use super::{Clock, Error, Events, Record, Resumed, Retention, Shared, Uptime, schema};
use crate::alert::Event;
use crate::config::SiteSpec;
use crate::diagnosis::Status;
use crate::state::SiteState;
use rusqlite::{Connection, ErrorCode, OptionalExtension};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime};

/// Records kept in memory while the disk fails; beyond it the oldest probe
/// samples are dropped (changes, resets and outbox writes are kept).
const MAX_PENDING: usize = 200_000;
/// Records written per transaction at most.
const BATCH: usize = 5_000;
/// Time between attempts while the database cannot be opened or written.
const RETRY: Duration = Duration::from_secs(5);
/// After waking for a record, the writer waits this long for more, so a
/// busy scheduler wakes it at most a few times a second. Changes and outbox
/// writes are not kept waiting: alerts wait for them.
const GATHER: Duration = Duration::from_millis(200);
/// A site's state is saved at least this often even when only its run
/// counters moved (they matter only while a change is being confirmed).
const STATE_EVERY: Duration = Duration::from_secs(60);
/// How often the uptime figures are published.
const PUBLISH: Duration = Duration::from_secs(5);

/// What the writer is started with beside its file and sites.
pub(in crate::history) struct Setup {
    /// What it shares with readers.
    pub(in crate::history) shared: Arc<Shared>,
    /// Where committed alerts go.
    pub(in crate::history) events: Option<Events>,
    /// Where it reads the time.
    pub(in crate::history) clock: Clock,
    /// How long each resolution is kept.
    pub(in crate::history) retention: Retention,
}

pub(super) struct Writer {
    path: PathBuf,
    clock: Clock,
    retention: Retention,
    shared: Arc<Shared>,
    events: Option<Events>,
    conn: Option<Connection>,
    next_try: Instant,
    site_ids: HashMap<String, i64>,
    pending: VecDeque<Record>,
    dropped: u64,
    counts: HashMap<String, SiteCounts>,
    /// The hour whose maintenance (aggregation, pruning, windows) is done.
    maintained_hour: Option<i64>,
    /// Complete hours that received a sample after they were rolled up.
    late_hours: BTreeSet<i64>,
    next_publish: Instant,
    last_logged: Option<(String, Instant)>,
    /// The state last saved per site id, and when.
    saved: HashMap<i64, (SiteState, SystemTime)>,
}

/// The sample status of a result that could not be believed.
const UNVERIFIED: i64 = 3;
/// The status of a sample made under a maintenance window that leaves it
/// out of uptime.
const MAINTENANCE: i64 = 4;

fn status_code(s: Status) -> i64 {
    match s {
        Status::Up => 0,
        Status::Degraded => 1,
        Status::Down => 2,
    }
}

fn is_corrupt(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

/// After the upgrade to smaller rows (schema version 9) and its first
/// roll-up, which turns the hours past the hourly retention into days, the
/// file is rewritten once (`VACUUM`) so that the space the old rows took
/// goes back to the disk instead of staying in the file as free pages. If
/// that fails (it needs about the database's size of free disk), the file
/// keeps its size and reuses the space as it grows.
fn compact_after_upgrade(conn: &Connection, path: &Path) {
    let due = conn
        .query_row(
            "SELECT 1 FROM meta WHERE key = 'vacuum_due'",
            [],
            |_| Ok(()),
        )
        .optional();
    if !matches!(due, Ok(Some(()))) {
        return;
    }
    let size = |c: &Connection| -> Result<i64, rusqlite::Error> {
        c.query_row(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
            [],
            |r| r.get(0),
        )
    };
    let before = size(conn).unwrap_or(0);
    let began = Instant::now();
    match conn.execute_batch("VACUUM; DELETE FROM meta WHERE key = 'vacuum_due';") {
        Ok(()) => tracing::info!(
            db = %path.display(),
            before_mib = before >> 20,
            after_mib = size(conn).unwrap_or(0) >> 20,
            seconds = began.elapsed().as_secs(),
            "the history database was rewritten with its smaller rows"
        ),
        Err(e) => {
            tracing::warn!(db = %path.display(), error = %e, "cannot rewrite the history database to give its free space back; it keeps its size");
            let _ = conn.execute("DELETE FROM meta WHERE key = 'vacuum_due'", []);
        }
    }
}

/// What one committed batch hands on.
#[derive(Default)]
struct Committed {
    /// Alerts now due, for the dispatcher.
    events: Vec<Event>,
    /// Answers to outbox writes, by position in the batch.
    answers: Vec<(usize, Vec<bool>)>,
    /// States now saved.
    saved: Vec<(i64, SiteState, SystemTime)>,
    /// Sites whose saved state is gone.
    unsaved: Vec<i64>,
}

impl Writer {
    pub(super) fn start(
        path: PathBuf,
        dir: &Path,
        setup: Setup,
        sites: &[Arc<SiteSpec>],
    ) -> (Writer, Resumed) {
        let mut w = Writer {
            path,
            clock: setup.clock,
            retention: setup.retention,
            shared: setup.shared,
            events: setup.events,
            conn: None,
            next_try: Instant::now(),
            site_ids: HashMap::new(),
            pending: VecDeque::new(),
            dropped: 0,
            counts: HashMap::new(),
            maintained_hour: None,
            late_hours: BTreeSet::new(),
            next_publish: Instant::now(),
            last_logged: None,
            saved: HashMap::new(),
        };
        w.ensure_open();
        let resumed = w.resume(dir, sites);
        let now = (w.clock)();
        w.maintain(now);
        w.publish();
        (w, resumed)
    }

    /// Records a storage problem: logged loudly (once per distinct message
    /// per minute) and shown on /healthz and /status.
    fn fail(&mut self, what: String) {
        let now = Instant::now();
        let repeat = self
            .last_logged
            .as_ref()
            .is_some_and(|(m, at)| *m == what && now.duration_since(*at) < Duration::from_secs(60));
        if !repeat {
            tracing::error!(db = %self.path.display(), error = %what, pending = self.pending.len(), "history storage failed; probing and alerting go on, records are kept in memory and retried");
            self.last_logged = Some((what.clone(), now));
        }
        *self.shared.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(what);
        self.next_try = now + RETRY;
    }

    fn recovered(&mut self) {
        let mut error = self.shared.error.lock().unwrap_or_else(|p| p.into_inner());
        if error.take().is_some() {
            tracing::warn!(db = %self.path.display(), "history storage works again");
        }
        self.last_logged = None;
    }

    /// Moves a corrupt database aside (never deletes it) so a fresh one can start.
    fn move_aside(&mut self) {
        self.conn = None;
        self.site_ids.clear();
        self.saved.clear();
        let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
            .to_string()
            .replace(':', "");
        for suffix in ["", "-wal", "-shm"] {
            let from = PathBuf::from(format!("{}{suffix}", self.path.display()));
            if from.exists() {
                let to = PathBuf::from(format!("{}.corrupt-{stamp}{suffix}", self.path.display()));
                match std::fs::rename(&from, &to) {
                    Ok(()) => {
                        tracing::error!(from = %from.display(), to = %to.display(), "the history database is corrupt: moved aside, starting a new one")
                    }
                    Err(e) => {
                        tracing::error!(file = %from.display(), error = %e, "the history database is corrupt and cannot be moved aside")
                    }
                }
            }
        }
    }

    fn open(&self) -> Result<Connection, rusqlite::Error> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        }
        let mut conn = Connection::open(&self.path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // Reading the header first tells a corrupt file from a good one.
        let _: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        schema::migrate(&mut conn)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
        Ok(conn)
    }

    /// Opens the database if it is not open and a retry is due.
    fn ensure_open(&mut self) -> bool {
        if self.conn.is_some() {
            return true;
        }
        if Instant::now() < self.next_try {
            return false;
        }
        let mut opened = self.open();
        if let Err(e) = &opened
            && is_corrupt(e)
        {
            self.move_aside();
            opened = self.open();
        }
        match opened {
            Ok(conn) => {
                self.conn = Some(conn);
                self.maintained_hour = None;
                true
            }
            Err(e) => {
                self.fail(format!("cannot open {}: {e}", self.path.display()));
                false
            }
        }
    }

    pub(super) fn run(mut self, rx: mpsc::Receiver<Record>) {
        let mut stop = false;
        let mut acks: Vec<mpsc::Sender<()>> = Vec::new();
        while !stop {
            let mut take = |w: &mut Writer, r: Record, stop: &mut bool| -> bool {
                match r {
                    Record::Stop => *stop = true,
                    Record::Sync(ack) => acks.push(ack),
                    r => {
                        let urgent = r.urgent();
                        w.accept(r);
                        return urgent;
                    }
                }
                true
            };
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(r) => {
                    // Let a batch gather instead of waking for every record,
                    // unless something waits for it or records back up.
                    let mut urgent = take(&mut self, r, &mut stop);
                    let until = Instant::now() + GATHER;
                    while !urgent && !stop && self.pending.len() < BATCH * 4 {
                        let left = until.saturating_duration_since(Instant::now());
                        match rx.recv_timeout(left) {
                            Ok(r) => urgent = take(&mut self, r, &mut stop),
                            Err(mpsc::RecvTimeoutError::Timeout) => break,
                            Err(mpsc::RecvTimeoutError::Disconnected) => stop = true,
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => stop = true,
            }
            while !stop && self.pending.len() < BATCH * 4 {
                match rx.try_recv() {
                    Ok(r) => {
                        take(&mut self, r, &mut stop);
                    }
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => stop = true,
                }
            }
            if !acks.is_empty() {
                // A sync promises that the records before it are written.
                self.next_try = Instant::now();
            }
            self.flush(stop);
            let now = (self.clock)();
            self.maintain(now);
            if stop || !acks.is_empty() || Instant::now() >= self.next_publish {
                self.publish();
            }
            for ack in acks.drain(..) {
                let _ = ack.send(());
            }
        }
        if !self.pending.is_empty() {
            tracing::error!(
                pending = self.pending.len(),
                "stopping with history records that could not be written"
            );
        }
    }

    fn accept(&mut self, r: Record) {
        if let Record::Probe {
            site,
            status,
            at,
            unverified,
            maintenance,
            ..
        } = &r
            && Some(hour_of(*at)) == self.maintained_hour
        {
            let c = match self.counts.get_mut(&site.name) {
                Some(c) => c,
                None => self.counts.entry(site.name.clone()).or_default(),
            };
            c.current.add(*status, *unverified, *maintenance);
        }
        self.pending.push_back(r);
        if self.pending.len() > MAX_PENDING {
            // Keep changes, resets and the outbox; shed the oldest sample.
            if let Some(i) = self
                .pending
                .iter()
                .position(|r| matches!(r, Record::Probe { change: None, .. }))
            {
                self.pending.remove(i);
                self.dropped += 1;
                if self.dropped.is_power_of_two() {
                    tracing::warn!(
                        dropped = self.dropped,
                        "history records dropped while the disk fails"
                    );
                }
            }
        }
    }

    fn site_id(
        conn: &Connection,
        cache: &mut HashMap<String, i64>,
        name: &str,
    ) -> Result<i64, rusqlite::Error> {
        if let Some(&id) = cache.get(name) {
            return Ok(id);
        }
        conn.execute("INSERT OR IGNORE INTO site(name) VALUES (?1)", [name])?;
        let id = conn.query_row("SELECT id FROM site WHERE name = ?1", [name], |r| r.get(0))?;
        cache.insert(name.to_string(), id);
        Ok(id)
    }

    /// Hands on what cannot be stored now: alerts go out without surviving
    /// a restart, and outbox writes hear that they are not stored yet. The
    /// records stay queued and are written when the disk works again.
    fn hand_on_unstored(&mut self, error: &str) {
        for r in self.pending.iter_mut() {
            match r {
                Record::Probe {
                    change: Some(c), ..
                } if !c.forwarded => {
                    c.forwarded = true;
                    if let (Some(alert), Some(events)) = (&c.alert, &self.events) {
                        let _ = events.send(Event {
                            journal: None,
                            alert: alert.clone(),
                            notify: c.notify.clone(),
                            failing: c.failing,
                        });
                    }
                }
                Record::Network { change, forwarded } if !*forwarded => {
                    *forwarded = true;
                    if let (Some(alert), Some(events)) = (&change.alert, &self.events) {
                        let _ = events.send(Event {
                            journal: None,
                            alert: alert.clone(),
                            notify: Vec::new(),
                            failing: 0,
                        });
                    }
                }
                Record::Outbox(_, answer) | Record::Silence { answer, .. } => {
                    if let Some(a) = answer.take() {
                        let _ = a.send(Err(Error::Storage(error.to_string())));
                    }
                }
                _ => {}
            }
        }
    }

    /// Writes pending records in transactions of at most [`BATCH`].
    fn flush(&mut self, stopping: bool) {
        while !self.pending.is_empty() {
            if stopping {
                // On the way out, try once more now rather than waiting for the retry delay.
                self.next_try = Instant::now();
            }
            if !self.ensure_open() {
                let what = self
                    .shared
                    .error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone()
                    .unwrap_or_default();
                self.hand_on_unstored(&what);
                return;
            }
            let n = self.pending.len().min(BATCH);
            match self.write_batch(n) {
                Ok(done) => self.committed(n, done),
                Err(e) => {
                    let corrupt = is_corrupt(&e);
                    let what = format!("cannot write to {}: {e}", self.path.display());
                    self.fail(what.clone());
                    self.hand_on_unstored(&what);
                    if corrupt {
                        self.move_aside();
                    }
                    return;
                }
            }
        }
    }

    /// After a commit: the records leave the queue, alerts go to the
    /// dispatcher, outbox writes get their answers.
    fn committed(&mut self, n: usize, done: Committed) {
        for (id, state, at) in done.saved {
            self.saved.insert(id, (state, at));
        }
        for id in done.unsaved {
            self.saved.remove(&id);
        }
        let mut answers = done.answers.into_iter().peekable();
        for (i, r) in self.pending.drain(..n).enumerate() {
            if let Record::Silence {
                answer: Some(answer),
                ..
            } = r
            {
                let _ = answer.send(Ok(Vec::new()));
                continue;
            }
            if let Record::Outbox(_, Some(answer)) = r {
                let flags = match answers.peek() {
                    Some((at, _)) if *at == i => answers.next().map(|(_, f)| f).unwrap_or_default(),
                    _ => Vec::new(),
                };
                let _ = answer.send(Ok(flags));
            }
        }
        if let Some(events) = &self.events {
            for ev in done.events {
                let _ = events.send(ev);
            }
        }
        self.recovered();
    }

    fn write_batch(&mut self, n: usize) -> Result<Committed, rusqlite::Error> {
        let now = (self.clock)();
        let Some(conn) = self.conn.as_mut() else {
            return Err(rusqlite::Error::InvalidQuery);
        };
        // Ids first, outside the transaction, so a rollback cannot leave stale ids cached.
        for r in self.pending.iter().take(n) {
            let name = match r {
                Record::Probe { site, .. } | Record::Reset { site, .. } => &site.name,
                Record::Network { .. }
                | Record::Heartbeat { .. }
                | Record::Silence { .. }
                | Record::Outbox(..)
                | Record::Stop
                | Record::Sync(_) => {
                    continue;
                }
            };
            Self::site_id(conn, &mut self.site_ids, name)?;
        }
        // Alerts must survive power loss once committed: sync this commit.
        let durable = self.pending.iter().take(n).any(Record::urgent);
        if durable {
            conn.pragma_update(None, "synchronous", "FULL")?;
        }
        let result = batch::write_records(
            conn,
            self.pending.iter_mut().take(n),
            &self.site_ids,
            &self.saved,
            self.maintained_hour,
            &mut self.late_hours,
            now,
        );
        if durable {
            conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        result
    }

    /// Hourly roll-up, pruning and uptime windows, once per hour; hours
    /// that received late samples are rolled up again.
    fn maintain(&mut self, now: SystemTime) {
        let hour = hour_of(now);
        if self.maintained_hour == Some(hour) && self.late_hours.is_empty() {
            return;
        }
        if !self.ensure_open() {
            return;
        }
        match self.roll_up(hour, now) {
            Ok(()) => {
                self.maintained_hour = Some(hour);
                self.late_hours.clear();
                if let Some(conn) = &self.conn {
                    compact_after_upgrade(conn, &self.path);
                }
            }
            Err(e) => {
                let corrupt = is_corrupt(&e);
                self.fail(format!(
                    "hourly maintenance of {} failed: {e}",
                    self.path.display()
                ));
                if corrupt {
                    self.move_aside();
                }
            }
        }
    }

    fn roll_up(&mut self, hour: i64, now: SystemTime) -> Result<(), rusqlite::Error> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(rusqlite::Error::InvalidQuery);
        };
        let raw_hours = self.retention.raw.as_secs().div_ceil(3600) as i64;
        let done: i64 = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'aggregated_hour'",
                [],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(hour - raw_hours - 1);
        let mut hours: BTreeSet<i64> = ((done + 1).max(hour - raw_hours)..hour).collect();
        // The hour the writer last stopped in, however long ago: its
        // samples are pruned only once it is rolled up.
        if done + 1 < hour {
            hours.insert(done + 1);
        }
        hours.extend(self.late_hours.iter().filter(|h| **h < hour));
        let hourly_from = rollup::roll_up(conn, hours, now, &self.retention)?;
        conn.execute(
            "INSERT INTO meta(key, value) VALUES ('aggregated_hour', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [hour - 1],
        )?;
        self.counts = rollup::counts(conn, hour, hourly_from, &self.pending)?;
        Ok(())
    }

    fn publish(&mut self) {
        self.next_publish = Instant::now() + PUBLISH;
        let map: HashMap<String, Uptime> = self
            .counts
            .iter()
            .map(|(name, c)| (name.clone(), rollup::uptime(c)))
            .collect();
        *self.shared.uptime.lock().unwrap_or_else(|p| p.into_inner()) = map;
    }
}
