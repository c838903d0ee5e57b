//! The SQLite schema and its migrations, versioned with `PRAGMA user_version`.
//!
//! Each migration runs once, in order, inside a transaction; a database
//! newer than this sitewatch is refused rather than damaged.

use rusqlite::Connection;

/// Migration N brings the schema from version N to N + 1.
const MIGRATIONS: &[&str] = &[
    // 0 → 1: sites, current state, probe samples, hourly aggregates,
    // transitions and incidents.
    "
    CREATE TABLE site (
        id    INTEGER PRIMARY KEY,
        name  TEXT NOT NULL UNIQUE
    ) STRICT;

    -- The state machine's memory of each site, so a restart resumes it.
    CREATE TABLE site_state (
        site_id    INTEGER PRIMARY KEY REFERENCES site(id),
        url        TEXT NOT NULL,
        status     TEXT NOT NULL,          -- unknown, up, degraded, down
        cause      TEXT,                   -- cause code when degraded or down
        since_ms   INTEGER NOT NULL,       -- when the status began (unix ms)
        state      TEXT NOT NULL,          -- the full state as JSON
        updated_ms INTEGER NOT NULL
    ) STRICT;

    -- Raw probe results, kept 48 hours. One b-tree keyed by site and time:
    -- every read and every prune goes by site.
    CREATE TABLE sample (
        site_id  INTEGER NOT NULL,
        at_ms    INTEGER NOT NULL,
        status   INTEGER NOT NULL,         -- 0 up, 1 degraded, 2 down
        cause    TEXT,
        ms       REAL NOT NULL,
        PRIMARY KEY (site_id, at_ms)
    ) STRICT, WITHOUT ROWID;

    -- One row per site and hour, kept 400 days.
    CREATE TABLE hourly (
        site_id   INTEGER NOT NULL,
        hour      INTEGER NOT NULL,        -- unix seconds / 3600
        probes    INTEGER NOT NULL,
        failures  INTEGER NOT NULL,        -- probes that found the site down
        degraded  INTEGER NOT NULL,
        p50_ms    REAL NOT NULL,
        p95_ms    REAL NOT NULL,
        max_ms    REAL NOT NULL,
        PRIMARY KEY (site_id, hour)
    ) STRICT, WITHOUT ROWID;

    -- Every confirmed change of a site's status.
    CREATE TABLE transition (
        id         INTEGER PRIMARY KEY,
        site_id    INTEGER NOT NULL,
        at_ms      INTEGER NOT NULL,       -- when the new status began
        kind       TEXT NOT NULL,          -- initial, down, cause_changed, degraded, recovered, resolved
        from_status TEXT NOT NULL,
        from_cause TEXT,
        to_status  TEXT NOT NULL,
        to_cause   TEXT,
        detail     TEXT NOT NULL
    ) STRICT;
    CREATE INDEX transition_site_at ON transition(site_id, at_ms);

    -- Outages: from the first failed probe to the first good one.
    CREATE TABLE incident (
        id          INTEGER PRIMARY KEY,
        site_id     INTEGER NOT NULL,
        started_ms  INTEGER NOT NULL,
        ended_ms    INTEGER,               -- NULL while the outage lasts
        causes      TEXT NOT NULL,         -- JSON timeline: [{\"at_ms\":…,\"cause\":\"…\"}]
        first_error TEXT NOT NULL,
        last_error  TEXT NOT NULL
    ) STRICT;
    CREATE INDEX incident_site_started ON incident(site_id, started_ms);

    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) STRICT;
    ",
    // 1 → 2: alerts live in this database, committed with the state change
    // that makes them due (the journal), and outages remember what a
    // restart needs to resume reminders and tell the whole story.
    "
    -- Which probe settings the saved state was observed with (config::probe_key).
    ALTER TABLE site_state ADD COLUMN probe_key TEXT;

    -- The alert a change makes due, as JSON, until the dispatcher has
    -- stored its deliveries (then NULL). Written in the same transaction as
    -- the change and the state it leads to.
    ALTER TABLE transition ADD COLUMN alert TEXT;
    CREATE INDEX transition_alert_due ON transition(id) WHERE alert IS NOT NULL;

    ALTER TABLE incident ADD COLUMN end_reason TEXT;   -- recovered, forgotten, removed
    ALTER TABLE incident ADD COLUMN channels TEXT NOT NULL DEFAULT '[]'; -- JSON: channels told of the outage
    ALTER TABLE incident ADD COLUMN last_alert TEXT;   -- JSON: the latest down alert, repeated by reminders
    ALTER TABLE incident ADD COLUMN reminded_ms INTEGER; -- when the last alert or reminder of the outage was made

    -- The outbox: every delivery (alert x channel), stored before its first attempt.
    CREATE TABLE delivery (
        alert_id   TEXT NOT NULL,
        channel    TEXT NOT NULL,
        alert      TEXT NOT NULL,          -- the alert as JSON
        state      TEXT NOT NULL,          -- pending, sent, failed, grouped
        attempts   INTEGER NOT NULL,
        last_error TEXT,
        created_ms INTEGER NOT NULL,
        done_ms    INTEGER,
        PRIMARY KEY (alert_id, channel)
    ) STRICT;
    CREATE INDEX delivery_pending ON delivery(created_ms) WHERE state = 'pending';
    ",
    // 2 → 3: the monitor's own network (self-check), and probes that could
    // not be believed while it was down.
    "
    -- Each change of this monitor's network verdict, with the alert it
    -- makes due (lost, back) until the dispatcher has stored it.
    CREATE TABLE network_event (
        id         INTEGER PRIMARY KEY,
        at_ms      INTEGER NOT NULL,
        from_state TEXT NOT NULL,           -- ok, offline, dns_broken, ipv6_broken
        to_state   TEXT NOT NULL,
        evidence   TEXT NOT NULL,
        alert      TEXT
    ) STRICT;

    -- Samples with status 3 could not be verified (the monitor's network
    -- was down): counted here, and left out of uptime.
    ALTER TABLE hourly ADD COLUMN unknown INTEGER NOT NULL DEFAULT 0;
    ",
    // 3 → 4: a peer vantage's reachability, as seen from here, journaled
    // like this monitor's own network: '' is this monitor, otherwise the
    // peer's vantage name (its states: ok, or offline = unreachable).
    "
    ALTER TABLE network_event ADD COLUMN subject TEXT NOT NULL DEFAULT '';
    ",
    // 4 → 5: heartbeats: what each has received (its latest pings, the
    // runs still open), saved with every ping and read back at start.
    "
    CREATE TABLE heartbeat (
        name       TEXT PRIMARY KEY,
        record     TEXT NOT NULL,           -- JSON: heartbeat::ledger::Record
        updated_ms INTEGER NOT NULL
    ) STRICT;
    ",
    // 5 → 6: silences (Alertmanager's shape), kept a week after they end.
    "
    CREATE TABLE silence (
        id      TEXT PRIMARY KEY,
        body    TEXT NOT NULL,              -- JSON: silence::Silence
        ends_ms INTEGER NOT NULL
    ) STRICT;
    ",
    // 6 → 7: probes made under a maintenance window that leaves them out
    // of uptime (samples with status 4), counted apart from the unknown.
    "
    ALTER TABLE hourly ADD COLUMN maintenance INTEGER NOT NULL DEFAULT 0;
    ",
    // 7 → 8: what a receiver named a delivered message (its remote id), and
    // the messages that opened outages still open, per site and channel,
    // for the recovery to edit, reply to or cancel after a restart.
    "
    ALTER TABLE delivery ADD COLUMN remote_id TEXT;
    CREATE TABLE thread (
        site      TEXT NOT NULL,
        channel   TEXT NOT NULL,
        remote_id TEXT NOT NULL,
        opened_ms INTEGER NOT NULL,
        PRIMARY KEY (site, channel)
    ) STRICT;
    ",
];

/// The schema version this sitewatch writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings `conn` to [`VERSION`].
pub fn migrate(conn: &mut Connection) -> Result<(), String> {
    let current: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if current > VERSION {
        return Err(format!(
            "the database has schema version {current}, newer than this sitewatch's {VERSION}: upgrade sitewatch or move the file aside"
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction().map_err(|e| e.to_string())?;
        tx.execute_batch(sql)
            .map_err(|e| format!("migration {i}: {e}"))?;
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())?;
    }
    Ok(())
}
