//! What a start reads back beside the journal, and how it is kept: the
//! last network verdicts (this monitor's and its peers'), each heartbeat's
//! record, and the silences. Each function runs inside a transaction (or
//! on a connection) the writer owns.

use super::{from_ms, unix_ms};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use std::time::SystemTime;

/// The network verdict the last run ended with, if not ok, and since when
/// it was not ok.
pub(super) fn network_state(
    conn: &Connection,
) -> Result<Option<(crate::selfcheck::NetState, std::time::SystemTime)>, rusqlite::Error> {
    let last: Option<String> = conn
        .query_row(
            "SELECT to_state FROM network_event WHERE subject = '' ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let state = match last.as_deref() {
        Some("offline") => crate::selfcheck::NetState::Offline,
        Some("dns_broken") => crate::selfcheck::NetState::DnsBroken,
        Some("ipv6_broken") => crate::selfcheck::NetState::Ipv6Broken,
        _ => return Ok(None),
    };
    let since: Option<i64> = conn
        .query_row(
            "SELECT at_ms FROM network_event WHERE subject = '' AND from_state = 'ok' ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(since.map(|ms| (state, from_ms(ms))))
}

/// The peers whose last journaled change was to unreachable (`offline`),
/// and since when.
pub(super) fn peers_lost(conn: &Connection) -> Result<Vec<(String, SystemTime)>, rusqlite::Error> {
    let mut stmt = conn.prepare(
        "SELECT subject, to_state, at_ms FROM network_event
         WHERE id IN (SELECT max(id) FROM network_event WHERE subject != '' GROUP BY subject)",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (subject, to, at) = row?;
        if to != "ok" {
            out.push((subject, from_ms(at)));
        }
    }
    Ok(out)
}

/// Saves a heartbeat's record (JSON), replacing the one before.
pub(super) fn save_heartbeat(
    tx: &Transaction<'_>,
    name: &str,
    record: &str,
    now: SystemTime,
) -> Result<(), rusqlite::Error> {
    tx.execute(
        "INSERT INTO heartbeat (name, record, updated_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT(name) DO UPDATE SET record = excluded.record, updated_ms = excluded.updated_ms",
        rusqlite::params![name, record, unix_ms(now)],
    )?;
    Ok(())
}

/// Rows of (key, JSON) read with `sql` and `params`, each decoded; an
/// unreadable one is logged (naming `what`) and skipped.
fn decoded<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    what: &str,
) -> Result<Vec<(String, T)>, rusqlite::Error> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(params, |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (key, json) = row?;
        match serde_json::from_str(&json) {
            Ok(v) => out.push((key, v)),
            Err(e) => tracing::error!(%key, error = %e, "unreadable saved {what}, skipped"),
        }
    }
    Ok(out)
}

/// Every heartbeat's saved record (an unreadable one starts afresh).
pub(super) fn heartbeats(
    conn: &Connection,
) -> Result<std::collections::HashMap<String, crate::heartbeat::ledger::Record>, rusqlite::Error> {
    Ok(decoded(
        conn,
        "SELECT name, record FROM heartbeat",
        [],
        "heartbeat record",
    )?
    .into_iter()
    .collect())
}

/// Saves a silence (JSON), replacing the one with its id, and forgets
/// those that ended more than [`crate::silence::KEEP_EXPIRED`] ago.
pub(super) fn save_silence(
    tx: &Transaction<'_>,
    id: &str,
    body: &str,
    ends: SystemTime,
    now: SystemTime,
) -> Result<(), rusqlite::Error> {
    tx.execute(
        "INSERT INTO silence (id, body, ends_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT(id) DO UPDATE SET body = excluded.body, ends_ms = excluded.ends_ms",
        params![id, body, unix_ms(ends)],
    )?;
    let keep = now
        .checked_sub(crate::silence::KEEP_EXPIRED)
        .unwrap_or(std::time::UNIX_EPOCH);
    tx.execute("DELETE FROM silence WHERE ends_ms < ?1", [unix_ms(keep)])?;
    Ok(())
}

/// The silences that ended less than [`crate::silence::KEEP_EXPIRED`] ago
/// (or not yet).
pub(super) fn silences(
    conn: &Connection,
    now: SystemTime,
) -> Result<Vec<crate::silence::Silence>, rusqlite::Error> {
    let keep = now
        .checked_sub(crate::silence::KEEP_EXPIRED)
        .unwrap_or(std::time::UNIX_EPOCH);
    Ok(decoded(
        conn,
        "SELECT id, body FROM silence WHERE ends_ms >= ?1",
        [unix_ms(keep)],
        "silence",
    )?
    .into_iter()
    .map(|(_, s)| s)
    .collect())
}
