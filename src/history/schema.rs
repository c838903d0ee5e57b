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
    // 8 → 9: smaller rows, and daily rows. Raw samples keep their time in
    // whole seconds (4 bytes instead of 6) and their probe time in whole
    // milliseconds (1 or 2 bytes instead of an 8-byte float); hourly rows
    // keep whole milliseconds too. Hourly rows older than the hourly
    // retention are rolled into one row per site and UTC day by the writer
    // (see retention.rs), which also records where `hourly` begins
    // (meta.hourly_from).
    "
    CREATE TABLE sample_v9 (
        site_id  INTEGER NOT NULL,
        at       INTEGER NOT NULL,         -- unix seconds
        status   INTEGER NOT NULL,         -- 0 up, 1 degraded, 2 down, 3 unverified, 4 maintenance
        cause    TEXT,
        ms       INTEGER NOT NULL,         -- probe time, whole milliseconds
        PRIMARY KEY (site_id, at)
    ) STRICT, WITHOUT ROWID;
    -- Two samples of a site within one second (a rare 1 s interval) keep the first.
    INSERT OR IGNORE INTO sample_v9(site_id, at, status, cause, ms)
        SELECT site_id, at_ms / 1000, status, cause, CAST(round(ms) AS INTEGER) FROM sample;
    DROP TABLE sample;
    ALTER TABLE sample_v9 RENAME TO sample;

    CREATE TABLE hourly_v9 (
        site_id     INTEGER NOT NULL,
        hour        INTEGER NOT NULL,      -- unix seconds / 3600
        probes      INTEGER NOT NULL,
        failures    INTEGER NOT NULL,      -- probes that found the site down
        degraded    INTEGER NOT NULL,
        unknown     INTEGER NOT NULL,      -- probes that could not be believed
        maintenance INTEGER NOT NULL,      -- probes under a maintenance window left out of uptime
        p50_ms      INTEGER NOT NULL,
        p95_ms      INTEGER NOT NULL,
        max_ms      INTEGER NOT NULL,
        PRIMARY KEY (site_id, hour)
    ) STRICT, WITHOUT ROWID;
    INSERT INTO hourly_v9
        SELECT site_id, hour, probes, failures, degraded, unknown, maintenance,
               CAST(round(p50_ms) AS INTEGER), CAST(round(p95_ms) AS INTEGER), CAST(round(max_ms) AS INTEGER)
        FROM hourly;
    DROP TABLE hourly;
    ALTER TABLE hourly_v9 RENAME TO hourly;

    -- One row per site and UTC day, from the hourly rows once they are
    -- older than the hourly retention: the same counters; p50 and p95 are
    -- those of the day's hours (the median of their medians, and so on).
    CREATE TABLE daily (
        site_id     INTEGER NOT NULL,
        day         INTEGER NOT NULL,      -- unix seconds / 86400
        probes      INTEGER NOT NULL,
        failures    INTEGER NOT NULL,
        degraded    INTEGER NOT NULL,
        unknown     INTEGER NOT NULL,
        maintenance INTEGER NOT NULL,
        p50_ms      INTEGER NOT NULL,
        p95_ms      INTEGER NOT NULL,
        max_ms      INTEGER NOT NULL,
        PRIMARY KEY (site_id, day)
    ) STRICT, WITHOUT ROWID;

    -- The writer rewrites the file once its first roll-up is done, so the
    -- space of the old rows goes back to the disk.
    INSERT OR REPLACE INTO meta(key, value) VALUES ('vacuum_due', 1);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{History, HistoryPoint, Resolution, Retention};
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    /// A database as version 8 left it, with `rows` written into it.
    fn version_8(conn: &mut Connection, rows: &str) {
        for (i, sql) in MIGRATIONS[..8].iter().enumerate() {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", i as i64 + 1)
                .unwrap();
        }
        conn.execute_batch(rows).unwrap();
    }

    #[test]
    fn version_8_samples_and_hours_are_copied_into_the_compact_tables() {
        let mut conn = Connection::open_in_memory().unwrap();
        version_8(
            &mut conn,
            "INSERT INTO site(id, name) VALUES (1, 'a'), (40000, 'b');
             INSERT INTO sample(site_id, at_ms, status, cause, ms) VALUES
                 (1, 1700000000123, 0, NULL, 41.6),
                 (1, 1700000060999, 2, 'tcp.refused', 10000.0),
                 (40000, 1700000000500, 3, NULL, 0.4);
             INSERT INTO hourly(site_id, hour, probes, failures, degraded, p50_ms, p95_ms, max_ms, unknown, maintenance)
                 VALUES (1, 472222, 60, 1, 2, 41.5, 88.2, 130.5, 3, 4);",
        );
        migrate(&mut conn).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 9);
        let samples: Vec<(i64, i64, i64, Option<String>, i64)> = conn
            .prepare("SELECT site_id, at, status, cause, ms FROM sample ORDER BY site_id, at")
            .unwrap()
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            samples,
            [
                (1, 1_700_000_000, 0, None, 42),
                (1, 1_700_000_060, 2, Some("tcp.refused".to_string()), 10_000),
                (40000, 1_700_000_000, 3, None, 0),
            ]
        );
        let hour: (i64, i64, i64, i64, i64, i64, i64, i64, i64, i64) = conn
            .query_row(
                "SELECT site_id, hour, probes, failures, degraded, unknown, maintenance, p50_ms, p95_ms, max_ms FROM hourly",
                [],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                        r.get(8)?,
                        r.get(9)?,
                    ))
                },
            )
            .unwrap();
        assert_eq!(hour, (1, 472_222, 60, 1, 2, 3, 4, 42, 88, 131));
        let daily: i64 = conn
            .query_row("SELECT COUNT(*) FROM daily", [], |r| r.get(0))
            .unwrap();
        assert_eq!(daily, 0);
        let due: i64 = conn
            .query_row("SELECT value FROM meta WHERE key = 'vacuum_due'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(
            due, 1,
            "the writer rewrites the file after its first roll-up"
        );
    }

    /// An upgrade from version 8, which kept hourly rows 400 days: at its
    /// first roll-up the writer turns the hours older than the hourly
    /// retention into days, and the figures still count them.
    #[test]
    fn an_upgraded_database_rolls_its_old_hours_into_days() {
        let dir = tempfile::tempdir().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let today = now / 86_400;
        // Two hours 200 days ago, one hour 10 days ago.
        let old = (today - 200) * 24;
        let recent = (today - 10) * 24 + 5;
        let mut conn = Connection::open(dir.path().join(crate::history::DB_FILE)).unwrap();
        version_8(
            &mut conn,
            &format!(
                "INSERT INTO site(id, name) VALUES (1, 'a');
                 INSERT INTO hourly(site_id, hour, probes, failures, degraded, p50_ms, p95_ms, max_ms, unknown, maintenance) VALUES
                     (1, {old}, 60, 6, 0, 40.2, 90.0, 120.0, 0, 0),
                     (1, {}, 60, 0, 1, 50.0, 70.0, 300.0, 0, 0),
                     (1, {recent}, 60, 3, 0, 45.0, 80.0, 99.0, 0, 0);",
                old + 1
            ),
        );
        drop(conn);
        let sites = crate::config::parse(
            std::path::Path::new("h.toml"),
            "[[site]]\nname = \"a\"\nurl = \"tcp://127.0.0.1:1\"\n",
        )
        .unwrap()
        .sites;
        let clock: crate::history::Clock =
            Arc::new(move || UNIX_EPOCH + Duration::from_secs(now as u64));
        let (h, writer, _) =
            History::open_with_clock(dir.path(), &sites, None, Retention::default(), clock);
        assert!(h.sync(Duration::from_secs(30)));
        let reader = h.reader();
        let from = UNIX_EPOCH + Duration::from_secs(((today - 250) * 86_400) as u64);
        let to = UNIX_EPOCH + Duration::from_secs(now as u64);
        let points = reader.history("a", from, to, Resolution::Hour).unwrap();
        let seen: Vec<(i64, i64, i64, i64, f64)> = points
            .iter()
            .map(|p| match p {
                HistoryPoint::Hour {
                    at,
                    probes,
                    failures,
                    degraded,
                    max_ms,
                    ..
                } => (
                    crate::history::unix_ms(*at) / 3_600_000,
                    *probes,
                    *failures,
                    *degraded,
                    *max_ms,
                ),
                other => panic!("{other:?}"),
            })
            .collect();
        // The old day is one point at its midnight; the recent hour stays.
        assert_eq!(
            seen,
            [(old, 120, 6, 1, 300.0), (recent, 60, 3, 0, 99.0)],
            "{points:?}"
        );
        let hourly_from = reader.hourly_from().unwrap().unwrap();
        assert_eq!(
            hourly_from,
            UNIX_EPOCH + Duration::from_secs(((now - 90 * 86_400) / 86_400 * 86_400) as u64)
        );
        // The 90-day window holds the recent hour only; 200 days ago is
        // outside every window.
        let up = reader.uptime("a").unwrap();
        assert_eq!(up.d90, Some(95.0));
        assert!(writer.stop(Duration::from_secs(30)));
        let conn = Connection::open(dir.path().join(crate::history::DB_FILE)).unwrap();
        let left: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM hourly WHERE hour < ?1",
                [old + 24],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0, "the rolled-up hours are gone");
        let due: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM meta WHERE key = 'vacuum_due'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(due, 0, "the file was rewritten once");
    }
}
