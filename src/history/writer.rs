//! The writer thread: owns the read-write connection, batches records into
//! transactions, rolls samples up into hourly aggregates, prunes, keeps the
//! uptime figures current, and survives every storage fault by keeping
//! records in memory and retrying.

use super::{Clock, Record, Shared, Uptime, schema, unix_ms};
use crate::config::SiteSpec;
use crate::diagnosis::Status;
use crate::state::{Health, Kind, SiteState};
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime};

/// Records kept in memory while the disk fails; beyond it the oldest probe
/// samples are dropped (transitions are kept).
const MAX_PENDING: usize = 200_000;
/// Records written per transaction at most.
const BATCH: usize = 5_000;
/// Time between attempts while the database cannot be opened or written.
const RETRY: Duration = Duration::from_secs(5);
/// After waking for a record, the writer waits this long for more, so a
/// busy scheduler wakes it at most a few times a second.
const GATHER: Duration = Duration::from_millis(200);
/// A site's state is saved at least this often even when only its run
/// counters moved (they matter only while a change is being confirmed).
const STATE_EVERY: Duration = Duration::from_secs(60);
/// How often the uptime figures are published.
const PUBLISH: Duration = Duration::from_secs(5);
/// Windows of the uptime figures, in hours.
const WINDOWS: [i64; 4] = [24, 7 * 24, 30 * 24, 90 * 24];

#[derive(Default, Clone, Copy)]
struct Counts {
    probes: u64,
    failures: u64,
}

#[derive(Default)]
struct SiteCounts {
    /// Probes of the current hour (not yet in `hourly`).
    current: Counts,
    /// Sums over the complete hours of each window.
    windows: [Counts; 4],
}

pub(super) struct Writer {
    path: PathBuf,
    clock: Clock,
    shared: Arc<Shared>,
    conn: Option<Connection>,
    next_try: Instant,
    site_ids: HashMap<String, i64>,
    pending: VecDeque<Record>,
    dropped: u64,
    counts: HashMap<String, SiteCounts>,
    /// The hour whose maintenance (aggregation, pruning, windows) is done.
    maintained_hour: Option<i64>,
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

fn hour_of(t: SystemTime) -> i64 {
    unix_ms(t).div_euclid(3_600_000)
}

impl Writer {
    pub(super) fn start(
        path: PathBuf,
        shared: Arc<Shared>,
        sites: &[Arc<SiteSpec>],
        clock: Clock,
    ) -> (Writer, HashMap<String, SiteState>) {
        let mut w = Writer {
            path,
            clock,
            shared,
            conn: None,
            next_try: Instant::now(),
            site_ids: HashMap::new(),
            pending: VecDeque::new(),
            dropped: 0,
            counts: HashMap::new(),
            maintained_hour: None,
            next_publish: Instant::now(),
            last_logged: None,
            saved: HashMap::new(),
        };
        w.ensure_open();
        let states = w.load_states(sites);
        let now = (w.clock)();
        w.maintain(now);
        w.publish();
        (w, states)
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
        match self.open() {
            Ok(conn) => {
                self.conn = Some(conn);
                self.maintained_hour = None;
                true
            }
            Err(e) if is_corrupt(&e) => {
                self.move_aside();
                match self.open() {
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
            Err(e) => {
                self.fail(format!("cannot open {}: {e}", self.path.display()));
                false
            }
        }
    }

    fn load_states(&mut self, sites: &[Arc<SiteSpec>]) -> HashMap<String, SiteState> {
        let mut out = HashMap::new();
        let Some(conn) = &self.conn else { return out };
        let rows: Result<Vec<(String, String, String)>, rusqlite::Error> = conn
            .prepare("SELECT s.name, st.url, st.state FROM site_state st JOIN site s ON s.id = st.site_id")
            .and_then(|mut stmt| stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect());
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                self.fail(format!("cannot read saved states: {e}"));
                return out;
            }
        };
        let saved: HashMap<String, (String, String)> =
            rows.into_iter().map(|(n, u, s)| (n, (u, s))).collect();
        for site in sites {
            let Some((url, json)) = saved.get(&site.name) else {
                continue;
            };
            if *url != site.target.url {
                tracing::info!(site = %site.name, old = %url, new = %site.target.url, "the site's url changed: its saved state is not resumed");
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
        out
    }

    pub(super) fn run(mut self, rx: mpsc::Receiver<Record>) {
        let mut stop = false;
        let mut acks: Vec<mpsc::Sender<()>> = Vec::new();
        let mut backlog = false;
        while !stop {
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(Record::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => stop = true,
                Ok(Record::Sync(ack)) => acks.push(ack),
                Ok(r) => {
                    self.accept(r);
                    // Let a batch gather instead of waking for every record
                    // (not when records are already backed up).
                    if !backlog {
                        std::thread::sleep(GATHER);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            while !stop && acks.is_empty() && self.pending.len() < BATCH * 4 {
                match rx.try_recv() {
                    Ok(Record::Stop) | Err(mpsc::TryRecvError::Disconnected) => stop = true,
                    Ok(Record::Sync(ack)) => acks.push(ack),
                    Ok(r) => self.accept(r),
                    Err(mpsc::TryRecvError::Empty) => break,
                }
            }
            backlog = self.pending.len() >= BATCH * 4;
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
        if let Record::Probe { site, status, .. } = &r {
            let c = match self.counts.get_mut(&site.name) {
                Some(c) => c,
                None => self.counts.entry(site.name.clone()).or_default(),
            };
            c.current.probes += 1;
            c.current.failures += u64::from(*status == Status::Down);
        }
        self.pending.push_back(r);
        if self.pending.len() > MAX_PENDING {
            // Keep transitions (they carry incidents); shed the oldest sample.
            if let Some(i) = self
                .pending
                .iter()
                .position(|r| matches!(r, Record::Probe { .. }))
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

    /// Writes pending records in transactions of at most [`BATCH`].
    fn flush(&mut self, stopping: bool) {
        while !self.pending.is_empty() {
            if stopping {
                // On the way out, try once more now rather than waiting for the retry delay.
                self.next_try = Instant::now();
            }
            if !self.ensure_open() {
                return;
            }
            let n = self.pending.len().min(BATCH);
            let result = self.write_batch(n);
            match result {
                Ok(()) => {
                    self.pending.drain(..n);
                    self.recovered();
                }
                Err(e) => {
                    let corrupt = is_corrupt(&e);
                    self.fail(format!("cannot write to {}: {e}", self.path.display()));
                    if corrupt {
                        self.move_aside();
                    }
                    return;
                }
            }
        }
    }

    fn write_batch(&mut self, n: usize) -> Result<(), rusqlite::Error> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(rusqlite::Error::InvalidQuery);
        };
        // Ids first, outside the transaction, so a rollback cannot leave stale ids cached.
        for r in self.pending.iter().take(n) {
            let name = match r {
                Record::Probe { site, .. } | Record::Transition { site, .. } => &site.name,
                Record::Stop | Record::Sync(_) => continue,
            };
            Self::site_id(conn, &mut self.site_ids, name)?;
        }
        let tx = conn.transaction()?;
        let mut saved_now = Vec::new();
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO site_state(site_id, url, status, cause, since_ms, state, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(site_id) DO UPDATE SET url = excluded.url, status = excluded.status,
                   cause = excluded.cause, since_ms = excluded.since_ms, state = excluded.state,
                   updated_ms = excluded.updated_ms",
            )?;
            let mut sample = tx.prepare_cached(
                "INSERT OR REPLACE INTO sample(site_id, at_ms, status, cause, ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for r in self.pending.iter().take(n) {
                match r {
                    Record::Probe {
                        site,
                        at,
                        status,
                        cause,
                        ms,
                        state,
                    } => {
                        let id = self.site_ids[&site.name];
                        if worth_saving(self.saved.get(&id), state, site, *at) {
                            let json = serde_json::to_string(state).map_err(|e| {
                                rusqlite::Error::ToSqlConversionFailure(Box::new(e))
                            })?;
                            upsert.execute(params![
                                id,
                                site.target.url,
                                state.health.as_str(),
                                state.health.cause().map(|c| c.as_str()),
                                unix_ms(state.since),
                                json,
                                unix_ms(*at)
                            ])?;
                            saved_now.push((id, *state, *at));
                        }
                        sample.execute(params![
                            id,
                            unix_ms(*at),
                            status_code(*status),
                            cause.map(|c| c.as_str()),
                            ms
                        ])?;
                    }
                    Record::Transition {
                        site,
                        transition,
                        detail,
                    } => {
                        let id = self.site_ids[&site.name];
                        write_transition(&tx, id, transition, detail)?;
                    }
                    Record::Stop | Record::Sync(_) => {}
                }
            }
        }
        tx.commit()?;
        // Only what was committed counts as saved.
        for (id, state, at) in saved_now {
            self.saved.insert(id, (state, at));
        }
        Ok(())
    }

    /// Hourly roll-up, pruning and uptime windows, once per hour.
    fn maintain(&mut self, now: SystemTime) {
        let hour = hour_of(now);
        if self.maintained_hour == Some(hour) {
            return;
        }
        if !self.ensure_open() {
            return;
        }
        match self.roll_up(hour, now) {
            Ok(()) => self.maintained_hour = Some(hour),
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
        let tx = conn.transaction()?;
        for h in (done + 1).max(hour - raw_hours)..hour {
            aggregate_hour(&tx, h)?;
        }
        tx.execute("INSERT INTO meta(key, value) VALUES ('aggregated_hour', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value", [hour - 1])?;
        let now_ms = unix_ms(now);
        let ids: Vec<i64> = tx
            .prepare("SELECT id FROM site")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let raw_cutoff = now_ms - super::RAW_RETENTION.as_millis() as i64;
        for &id in &ids {
            tx.prepare_cached("DELETE FROM sample WHERE site_id = ?1 AND at_ms < ?2")?
                .execute([id, raw_cutoff])?;
        }
        let keep_ms = now_ms - super::AGGREGATE_RETENTION.as_millis() as i64;
        tx.execute(
            "DELETE FROM hourly WHERE hour < ?1",
            [keep_ms.div_euclid(3_600_000)],
        )?;
        tx.execute("DELETE FROM transition WHERE at_ms < ?1", [keep_ms])?;
        tx.execute(
            "DELETE FROM incident WHERE ended_ms IS NOT NULL AND ended_ms < ?1",
            [keep_ms],
        )?;
        tx.commit()?;

        // Windows over complete hours (one scan of the 90 days for all
        // four), and the current hour from its samples.
        let mut fresh: HashMap<String, SiteCounts> = HashMap::new();
        let num = |r: &rusqlite::Row<'_>, i: usize| {
            r.get::<_, Option<i64>>(i).map(|v| v.unwrap_or(0) as u64)
        };
        let mut stmt = conn.prepare(
            "SELECT s.name,
                    SUM(CASE WHEN h.hour >= ?1 THEN h.probes END), SUM(CASE WHEN h.hour >= ?1 THEN h.failures END),
                    SUM(CASE WHEN h.hour >= ?2 THEN h.probes END), SUM(CASE WHEN h.hour >= ?2 THEN h.failures END),
                    SUM(CASE WHEN h.hour >= ?3 THEN h.probes END), SUM(CASE WHEN h.hour >= ?3 THEN h.failures END),
                    SUM(h.probes), SUM(h.failures)
             FROM hourly h JOIN site s ON s.id = h.site_id
             WHERE h.hour >= ?4 AND h.hour < ?5 GROUP BY s.name",
        )?;
        let bounds = [
            hour - WINDOWS[0],
            hour - WINDOWS[1],
            hour - WINDOWS[2],
            hour - WINDOWS[3],
            hour,
        ];
        let rows = stmt.query_map(bounds, |r| {
            let mut windows = [Counts::default(); 4];
            for (w, c) in windows.iter_mut().enumerate() {
                *c = Counts {
                    probes: num(r, 1 + 2 * w)?,
                    failures: num(r, 2 + 2 * w)?,
                };
            }
            Ok((r.get::<_, String>(0)?, windows))
        })?;
        for row in rows {
            let (name, windows) = row?;
            fresh.entry(name).or_default().windows = windows;
        }
        let mut stmt = conn.prepare(
            "SELECT s.name, COUNT(*), SUM(x.status = 2) FROM site s CROSS JOIN sample x
             WHERE x.site_id = s.id AND x.at_ms >= ?1 GROUP BY s.name",
        )?;
        let rows = stmt.query_map([hour * 3_600_000], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Counts {
                    probes: num(r, 1)?,
                    failures: num(r, 2)?,
                },
            ))
        })?;
        for row in rows {
            let (name, current) = row?;
            fresh.entry(name).or_default().current = current;
        }
        // Samples still queued (not yet written) belong to the current hour too.
        for r in &self.pending {
            if let Record::Probe {
                site, status, at, ..
            } = r
                && hour_of(*at) == hour
            {
                let c = fresh.entry(site.name.clone()).or_default();
                c.current.probes += 1;
                c.current.failures += u64::from(*status == Status::Down);
            }
        }
        self.counts = fresh;
        Ok(())
    }

    fn publish(&mut self) {
        self.next_publish = Instant::now() + PUBLISH;
        let pct = |c: Counts| {
            (c.probes > 0).then(|| 100.0 * (c.probes - c.failures) as f64 / c.probes as f64)
        };
        let map: HashMap<String, Uptime> = self
            .counts
            .iter()
            .map(|(name, c)| {
                let w = |i: usize| {
                    pct(Counts {
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

/// Rolls one hour of samples into `hourly` (idempotent).
fn aggregate_hour(tx: &rusqlite::Transaction<'_>, hour: i64) -> Result<(), rusqlite::Error> {
    let mut stmt = tx.prepare(
        // CROSS JOIN keeps site as the outer loop: one primary-key range per site.
        "SELECT x.site_id, x.status, x.ms FROM site s CROSS JOIN sample x
         WHERE x.site_id = s.id AND x.at_ms >= ?1 AND x.at_ms < ?2 ORDER BY s.id",
    )?;
    let rows = stmt.query_map([hour * 3_600_000, (hour + 1) * 3_600_000], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, f64>(2)?,
        ))
    })?;
    let mut insert = tx.prepare_cached(
        "INSERT OR REPLACE INTO hourly(site_id, hour, probes, failures, degraded, p50_ms, p95_ms, max_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let mut current: Option<i64> = None;
    let mut ms: Vec<f64> = Vec::new();
    let (mut failures, mut degraded) = (0i64, 0i64);
    let mut emit = |site: i64,
                    ms: &mut Vec<f64>,
                    failures: i64,
                    degraded: i64|
     -> Result<(), rusqlite::Error> {
        if ms.is_empty() {
            return Ok(());
        }
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
        insert.execute(params![
            site,
            hour,
            ms.len() as i64,
            failures,
            degraded,
            at(0.5),
            at(0.95),
            ms[ms.len() - 1]
        ])?;
        ms.clear();
        Ok(())
    };
    for row in rows {
        let (site, status, t) = row?;
        if current != Some(site) {
            if let Some(prev) = current {
                emit(prev, &mut ms, failures, degraded)?;
            }
            current = Some(site);
            failures = 0;
            degraded = 0;
        }
        ms.push(t);
        failures += i64::from(status == 2);
        degraded += i64::from(status == 1);
    }
    if let Some(prev) = current {
        emit(prev, &mut ms, failures, degraded)?;
    }
    Ok(())
}

fn write_transition(
    tx: &rusqlite::Transaction<'_>,
    site_id: i64,
    t: &crate::state::Transition,
    detail: &str,
) -> Result<(), rusqlite::Error> {
    let cause = |h: Health| h.cause().map(|c| c.as_str());
    let at = unix_ms(t.since);
    tx.prepare_cached(
        "INSERT INTO transition(site_id, at_ms, kind, from_status, from_cause, to_status, to_cause, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![site_id, at, t.kind.as_str(), t.from.as_str(), cause(t.from), t.to.as_str(), cause(t.to), detail])?;
    let open: Option<(i64, String)> = tx
        .query_row("SELECT id, causes FROM incident WHERE site_id = ?1 AND ended_ms IS NULL ORDER BY started_ms DESC LIMIT 1", [site_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    match t.kind {
        Kind::Down => {
            if let Some((id, _)) = open {
                // An outage that was never closed (it cannot happen through the state machine).
                tx.execute(
                    "UPDATE incident SET ended_ms = ?2 WHERE id = ?1",
                    params![id, at],
                )?;
            }
            let causes = serde_json::json!([{ "at_ms": at, "cause": cause(t.to) }]).to_string();
            tx.execute(
                "INSERT INTO incident(site_id, started_ms, causes, first_error, last_error) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![site_id, at, causes, detail],
            )?;
        }
        Kind::CauseChanged => {
            if let Some((id, causes)) = open {
                let mut list: Vec<serde_json::Value> =
                    serde_json::from_str(&causes).unwrap_or_default();
                list.push(serde_json::json!({ "at_ms": at, "cause": cause(t.to) }));
                tx.execute(
                    "UPDATE incident SET causes = ?2, last_error = ?3 WHERE id = ?1",
                    params![id, serde_json::Value::Array(list).to_string(), detail],
                )?;
            }
        }
        Kind::Recovered { .. } => {
            if let Some((id, _)) = open {
                tx.execute(
                    "UPDATE incident SET ended_ms = ?2 WHERE id = ?1",
                    params![id, at],
                )?;
            }
        }
        Kind::Initial | Kind::Degraded | Kind::Resolved => {}
    }
    Ok(())
}
