//! The writer thread: owns the read-write connection, batches records into
//! transactions, hands committed alerts to the dispatcher, rolls samples up,
//! keeps the uptime figures current, and survives every storage fault by
//! keeping records in memory, handing alerts on anyway, and retrying.

use super::rollup::{self, SiteCounts, hour_of};
use super::{Clock, Error, Events, Record, Resumed, Shared, Uptime, journal, schema, unix_ms};
use crate::alert::{Event, Forget};
use crate::config::SiteSpec;
use crate::diagnosis::Status;
use crate::state::SiteState;
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
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

pub(super) struct Writer {
    path: PathBuf,
    clock: Clock,
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
        shared: Arc<Shared>,
        sites: &[Arc<SiteSpec>],
        events: Option<Events>,
        clock: Clock,
    ) -> (Writer, Resumed) {
        let mut w = Writer {
            path,
            clock,
            shared,
            events,
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

    /// Loads what the last run left and settles what the configuration no
    /// longer matches: an outage of a site that is gone, or whose probe
    /// settings changed while sitewatch was stopped, is closed as forgotten
    /// (as a reload would), and the alerts that were due are resumed.
    fn resume(&mut self, dir: &Path, sites: &[Arc<SiteSpec>]) -> Resumed {
        let mut out = Resumed::default();
        let now = (self.clock)();
        let Some(conn) = self.conn.as_mut() else {
            return out;
        };
        match journal::import_legacy_outbox(conn, dir, now) {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                deliveries = n,
                "took over the pending alerts of the old outbox.db"
            ),
            Err(e) => {
                tracing::error!(error = %e, "cannot take over the old outbox.db; it is left in place")
            }
        }
        let loaded = self.load_states(sites);
        let (states, stale) = match loaded {
            Ok(v) => v,
            Err(e) => {
                self.fail(format!("cannot read saved states: {e}"));
                return out;
            }
        };
        out.states = states;
        let configured: HashSet<&str> = sites.iter().map(|s| s.name.as_str()).collect();
        for site in stale {
            self.pending.push_back(Record::Reset {
                state: Some(SiteState::new(now)),
                site,
                why: Forget::Changed,
                at: now,
                forwarded: false,
            });
        }
        let gone = self
            .conn
            .as_ref()
            .map(journal::sites_with_open_outage)
            .transpose();
        match gone {
            Ok(list) => {
                for (_, name) in list.unwrap_or_default() {
                    if !configured.contains(name.as_str()) {
                        tracing::info!(site = %name, "the site is no longer configured: its open outage is closed");
                        self.pending.push_back(Record::Reset {
                            site: Arc::new(placeholder(&name)),
                            state: None,
                            why: Forget::Removed,
                            at: now,
                            forwarded: false,
                        });
                    }
                }
            }
            Err(e) => self.fail(format!("cannot read open outages: {e}")),
        }
        // Written now; their notices are read back below with every other
        // due alert rather than handed on twice.
        let events = self.events.take();
        self.flush(true);
        self.events = events;
        let Some(conn) = self.conn.as_ref() else {
            return out;
        };
        let read = journal::due(conn).and_then(|due| {
            Ok((
                due,
                journal::pending(conn)?,
                journal::outages(conn, &configured)?,
            ))
        });
        match read {
            Ok((due, deliveries, outages)) => {
                out.due = due;
                out.deliveries = deliveries;
                out.outages = outages;
            }
            Err(e) => self.fail(format!("cannot read the alert journal: {e}")),
        }
        out
    }

    /// Saved states of `sites`, and the sites whose saved state was observed
    /// with other probe settings (to be reset).
    #[allow(clippy::type_complexity)]
    fn load_states(
        &mut self,
        sites: &[Arc<SiteSpec>],
    ) -> Result<(HashMap<String, SiteState>, Vec<Arc<SiteSpec>>), rusqlite::Error> {
        let mut out = HashMap::new();
        let mut stale = Vec::new();
        let Some(conn) = &self.conn else {
            return Ok((out, stale));
        };
        let rows: Vec<(String, String, Option<String>, String)> = conn
            .prepare("SELECT s.name, st.url, st.probe_key, st.state FROM site_state st JOIN site s ON s.id = st.site_id")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?;
        let saved: HashMap<String, (String, Option<String>, String)> = rows
            .into_iter()
            .map(|(n, u, k, s)| (n, (u, k, s)))
            .collect();
        for site in sites {
            let Some((url, key, json)) = saved.get(&site.name) else {
                continue;
            };
            // States saved before probe keys existed are matched by url.
            let same = match key {
                Some(k) => *k == crate::config::probe_key(site),
                None => *url == site.target.url,
            };
            if !same {
                tracing::info!(site = %site.name, "the site's probe settings changed while sitewatch was stopped: it starts over");
                stale.push(Arc::clone(site));
                continue;
            }
            match serde_json::from_str::<SiteState>(json) {
                Ok(state) => {
                    out.insert(site.name.clone(), state);
                }
                Err(e) => {
                    tracing::warn!(site = %site.name, error = %e, "unreadable saved state, starting unknown")
                }
            }
        }
        if !out.is_empty() {
            tracing::info!(resumed = out.len(), "resumed saved site states");
        }
        Ok((out, stale))
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
            site, status, at, ..
        } = &r
            && Some(hour_of(*at)) == self.maintained_hour
        {
            let c = match self.counts.get_mut(&site.name) {
                Some(c) => c,
                None => self.counts.entry(site.name.clone()).or_default(),
            };
            c.current.probes += 1;
            c.current.failures += u64::from(*status == Status::Down);
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
                Record::Outbox(_, answer) => {
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
                Record::Outbox(..) | Record::Stop | Record::Sync(_) => continue,
            };
            Self::site_id(conn, &mut self.site_ids, name)?;
        }
        // Alerts must survive power loss once committed: sync this commit.
        let durable = self.pending.iter().take(n).any(Record::urgent);
        if durable {
            conn.pragma_update(None, "synchronous", "FULL")?;
        }
        let result = write_records(
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
        let raw_hours = (super::RAW_RETENTION.as_secs() / 3600) as i64;
        let done: i64 = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'aggregated_hour'",
                [],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(hour - raw_hours - 1);
        let mut hours: BTreeSet<i64> = ((done + 1).max(hour - raw_hours)..hour).collect();
        hours.extend(self.late_hours.iter().filter(|h| **h < hour));
        rollup::roll_up(conn, hours, now)?;
        conn.execute(
            "INSERT INTO meta(key, value) VALUES ('aggregated_hour', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [hour - 1],
        )?;
        self.counts = rollup::counts(conn, hour, &self.pending)?;
        Ok(())
    }

    fn publish(&mut self) {
        self.next_publish = Instant::now() + PUBLISH;
        let pct = |c: rollup::Counts| {
            (c.probes > 0).then(|| 100.0 * (c.probes - c.failures) as f64 / c.probes as f64)
        };
        let map: HashMap<String, Uptime> = self
            .counts
            .iter()
            .map(|(name, c)| {
                let w = |i: usize| {
                    pct(rollup::Counts {
                        probes: c.windows[i].probes + c.current.probes,
                        failures: c.windows[i].failures + c.current.failures,
                    })
                };
                (
                    name.clone(),
                    Uptime {
                        d1: w(0),
                        d7: w(1),
                        d30: w(2),
                        d90: w(3),
                    },
                )
            })
            .collect();
        *self.shared.uptime.lock().unwrap_or_else(|p| p.into_inner()) = map;
    }
}

/// A spec that only names a site: for closing the outage of a site that is
/// no longer configured.
fn placeholder(name: &str) -> SiteSpec {
    SiteSpec {
        name: name.to_string(),
        target: crate::config::Target {
            url: String::new(),
            scheme: crate::config::Scheme::Tcp,
            host: crate::config::Host::Name(String::new()),
            host_str: String::new(),
            port: 0,
            path: String::new(),
        },
        interval: crate::config::INTERVAL,
        timeout: crate::config::TIMEOUT,
        confirm_down: crate::config::CONFIRM_DOWN,
        confirm_up: crate::config::CONFIRM_UP,
        expect: crate::config::Expect {
            status: crate::config::StatusSet(Vec::new()),
            body: None,
            forbid_body: None,
            ips: Vec::new(),
            slow: None,
            cert_warn_days: 0,
            resolvers: Vec::new(),
            ca_file: None,
            addresses: crate::config::AddressMode::Any,
            banner: None,
        },
        http: crate::config::HttpOptions::default(),
        notify: Vec::new(),
        remind_every: None,
    }
}

fn upsert_state(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    site: &SiteSpec,
    state: &SiteState,
    at: SystemTime,
) -> Result<(), rusqlite::Error> {
    let json = serde_json::to_string(state)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    tx.prepare_cached(
        "INSERT INTO site_state(site_id, url, status, cause, since_ms, state, updated_ms, probe_key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT(site_id) DO UPDATE SET url = excluded.url, status = excluded.status,
           cause = excluded.cause, since_ms = excluded.since_ms, state = excluded.state,
           updated_ms = excluded.updated_ms, probe_key = excluded.probe_key",
    )?
    .execute(params![
        id,
        site.target.url,
        state.health.as_str(),
        state.health.cause().map(|c| c.as_str()),
        unix_ms(state.since),
        json,
        unix_ms(at),
        crate::config::probe_key(site)
    ])?;
    Ok(())
}

/// Writes one batch in one transaction.
fn write_records<'a>(
    conn: &mut Connection,
    records: impl Iterator<Item = &'a mut Record>,
    site_ids: &HashMap<String, i64>,
    saved: &HashMap<i64, (SiteState, SystemTime)>,
    maintained_hour: Option<i64>,
    late_hours: &mut BTreeSet<i64>,
    now: SystemTime,
) -> Result<Committed, rusqlite::Error> {
    let tx = conn.transaction()?;
    let mut done = Committed::default();
    let mut late = Vec::new();
    for (i, r) in records.enumerate() {
        match r {
            Record::Probe {
                site,
                at,
                status,
                cause,
                ms,
                state,
                change,
            } => {
                let id = site_ids[&site.name];
                if change.is_some() || worth_saving(saved.get(&id), state, site, *at) {
                    upsert_state(&tx, id, site, state, *at)?;
                    done.saved.push((id, *state, *at));
                }
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO sample(site_id, at_ms, status, cause, ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    id,
                    unix_ms(*at),
                    status_code(*status),
                    cause.map(|c| c.as_str()),
                    *ms
                ])?;
                if maintained_hour.is_some_and(|h| hour_of(*at) < h) {
                    late.push(hour_of(*at));
                }
                if let Some(c) = change
                    && let Some(ev) = journal::write_change(&tx, id, c, now)?
                {
                    done.events.push(ev);
                }
            }
            Record::Reset {
                site,
                state,
                why,
                at,
                forwarded,
            } => {
                let id = site_ids[&site.name];
                if let Some(ev) =
                    journal::forget(&tx, id, &site.name, &site.target.url, *why, *at, *forwarded)?
                {
                    done.events.push(ev);
                }
                match state {
                    Some(s) => {
                        upsert_state(&tx, id, site, s, *at)?;
                        done.saved.push((id, *s, *at));
                    }
                    None => {
                        tx.execute("DELETE FROM site_state WHERE site_id = ?1", [id])?;
                        done.unsaved.push(id);
                    }
                }
            }
            Record::Outbox(op, _) => {
                use super::OutboxOp;
                match op {
                    OutboxOp::Enqueue {
                        handled,
                        deliveries,
                        reminded,
                    } => {
                        let flags = journal::enqueue(&tx, handled, deliveries, reminded, now)?;
                        done.answers.push((i, flags));
                    }
                    OutboxOp::Group { group, members } => {
                        journal::group(&tx, group, members, now)?;
                    }
                    OutboxOp::Attempt {
                        alert_id,
                        channel,
                        attempts,
                        state,
                        error,
                    } => journal::attempt(
                        &tx,
                        alert_id,
                        channel,
                        *attempts,
                        *state,
                        error.as_deref(),
                        now,
                    )?,
                }
            }
            Record::Stop | Record::Sync(_) => {}
        }
    }
    tx.commit()?;
    late_hours.extend(late);
    Ok(done)
}

/// Whether a site's new state must be saved now. Everything but the run
/// counters is saved at once; the counters are saved while they are within
/// a confirmation window (where a restart would otherwise change when a
/// change is confirmed) and otherwise at least every [`STATE_EVERY`].
fn worth_saving(
    last: Option<&(SiteState, SystemTime)>,
    state: &SiteState,
    site: &SiteSpec,
    at: SystemTime,
) -> bool {
    let Some((prev, saved_at)) = last else {
        return true;
    };
    let window = site.confirm_down.max(site.confirm_up) + 1;
    let count = |r: Option<crate::state::Run>| r.map_or(0, |r| r.count);
    prev.health != state.health
        || prev.since != state.since
        || prev.cause_since != state.cause_since
        || prev.last != state.last
        || count(state.fails)
            .max(count(state.oks))
            .max(count(state.same_run))
            .max(count(state.class_run))
            <= window
        || at.duration_since(*saved_at).unwrap_or_default() >= STATE_EVERY
}
