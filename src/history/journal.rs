//! The journal and the outbox, as the writer thread writes them: a
//! confirmed change with its incident bookkeeping and the alert it makes
//! due, resets that close an outage as forgotten, the dispatcher's
//! deliveries, and what a start resumes.
//!
//! Every function here runs inside a transaction the writer owns, so that a
//! change and its alert, or a storm and its members, are committed together
//! or not at all.

use super::{
    Change, DeliveryState, NewDelivery, OpenOutage, Remote, StoredDelivery, Thread, from_ms,
    unix_ms,
};
use crate::alert::{Alert, AlertKind, Event, Forget, Journal, OutageFacts};
use crate::diagnosis::Cause;
use crate::state::{Health, Kind};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;
use std::time::SystemTime;

/// What a journal row keeps of a due alert.
#[derive(Serialize, Deserialize)]
struct Due {
    alert: Alert,
    notify: Vec<String>,
}

/// The open incident of a site, as stored.
struct Open {
    id: i64,
    started_ms: i64,
    causes: Vec<serde_json::Value>,
    first_error: String,
    last_error: String,
    channels: Vec<String>,
}

impl Open {
    fn facts(&self) -> OutageFacts {
        OutageFacts {
            started: from_ms(self.started_ms),
            timeline: self
                .causes
                .iter()
                .filter_map(|c| {
                    let at = from_ms(c["at_ms"].as_i64()?);
                    let cause: Cause = serde_json::from_value(c["cause"].clone()).ok()?;
                    Some((at, cause))
                })
                .collect(),
            first_error: self.first_error.clone(),
            last_error: self.last_error.clone(),
        }
    }
}

fn json_err(e: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

/// An alert as stored in the incident (for reminders), if any.
fn to_json(alert: Option<&Alert>) -> Result<Option<String>, rusqlite::Error> {
    alert
        .map(serde_json::to_string)
        .transpose()
        .map_err(json_err)
}

fn open_incident(tx: &Connection, site_id: i64) -> Result<Option<Open>, rusqlite::Error> {
    tx.query_row(
        "SELECT id, started_ms, causes, first_error, last_error, channels FROM incident
         WHERE site_id = ?1 AND ended_ms IS NULL ORDER BY started_ms DESC LIMIT 1",
        [site_id],
        |r| {
            let causes: String = r.get(2)?;
            let channels: String = r.get(5)?;
            Ok(Open {
                id: r.get(0)?,
                started_ms: r.get(1)?,
                causes: serde_json::from_str(&causes).unwrap_or_default(),
                first_error: r.get(3)?,
                last_error: r.get(4)?,
                channels: serde_json::from_str(&channels).unwrap_or_default(),
            })
        },
    )
    .optional()
}

fn union(a: &[String], b: &[String]) -> Vec<String> {
    let mut out = a.to_vec();
    for c in b {
        if !out.contains(c) {
            out.push(c.clone());
        }
    }
    out
}

fn insert_transition(
    tx: &Transaction<'_>,
    site_id: i64,
    at: SystemTime,
    kind: &str,
    from: Health,
    to: Health,
    detail: &str,
) -> Result<i64, rusqlite::Error> {
    let cause = |h: Health| h.cause().map(|c| c.as_str());
    tx.prepare_cached(
        "INSERT INTO transition(site_id, at_ms, kind, from_status, from_cause, to_status, to_cause, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        site_id,
        unix_ms(at),
        kind,
        from.as_str(),
        cause(from),
        to.as_str(),
        cause(to),
        detail
    ])?;
    Ok(tx.last_insert_rowid())
}

/// Marks a journal row's alert due; returns the event to hand on once committed.
fn make_due(
    tx: &Transaction<'_>,
    row: i64,
    alert: Alert,
    notify: Vec<String>,
    failing: usize,
) -> Result<Event, rusqlite::Error> {
    let due = Due { alert, notify };
    tx.prepare_cached("UPDATE transition SET alert = ?2 WHERE id = ?1")?
        .execute(params![row, serde_json::to_string(&due).map_err(json_err)?])?;
    Ok(Event {
        journal: Some(Journal::Transition(row)),
        alert: due.alert,
        notify: due.notify,
        failing,
    })
}

/// Writes a confirmed change of `site_id`: its transition row, the incident
/// it opens, extends or closes, and (unless already handed on) the alert it
/// makes due, completed with the outage's facts. Returns that alert's event.
pub(super) fn write_change(
    tx: &Transaction<'_>,
    site_id: i64,
    change: &Change,
    now: SystemTime,
) -> Result<Option<Event>, rusqlite::Error> {
    let t = &change.transition;
    let at = unix_ms(t.since);
    let row = insert_transition(
        tx,
        site_id,
        t.since,
        t.kind.as_str(),
        t.from,
        t.to,
        &change.detail,
    )?;
    let open = open_incident(tx, site_id)?;
    let mut alert = change.alert.clone();
    let mut notify = change.notify.clone();
    let cause = t.to.cause().map(|c| c.as_str());
    match t.kind {
        // An outage that begins inside a maintenance window: nobody is
        // told, no incident; if it outlasts the window it is confirmed
        // (and opened) again.
        Kind::Down if change.maintenance => {}
        Kind::Down => {
            if let Some(o) = &open {
                // An outage that was never closed (the state machine cannot
                // produce one; a database from elsewhere might hold one).
                tx.execute(
                    "UPDATE incident SET ended_ms = ?2, end_reason = 'forgotten' WHERE id = ?1",
                    params![o.id, at],
                )?;
            }
            let causes = serde_json::json!([{ "at_ms": at, "cause": cause }]).to_string();
            let last = to_json(alert.as_ref())?;
            tx.execute(
                "INSERT INTO incident(site_id, started_ms, causes, first_error, last_error, channels, last_alert, reminded_ms)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7)",
                params![
                    site_id,
                    at,
                    causes,
                    change.detail,
                    serde_json::to_string(&notify).map_err(json_err)?,
                    last,
                    unix_ms(now)
                ],
            )?;
        }
        Kind::CauseChanged => {
            if let Some(mut o) = open {
                o.causes
                    .push(serde_json::json!({ "at_ms": at, "cause": cause }));
                o.last_error = change.detail.clone();
                if let Some(a) = alert.as_mut() {
                    a.with_outage(&o.facts());
                }
                let last = to_json(alert.as_ref())?;
                tx.execute(
                    "UPDATE incident SET causes = ?2, last_error = ?3, channels = ?4, last_alert = ?5, reminded_ms = ?6 WHERE id = ?1",
                    params![
                        o.id,
                        serde_json::Value::Array(o.causes).to_string(),
                        change.detail,
                        serde_json::to_string(&union(&o.channels, &notify)).map_err(json_err)?,
                        last,
                        unix_ms(now)
                    ],
                )?;
            }
        }
        Kind::Recovered { .. } => {
            if let Some(o) = open {
                if let Some(a) = alert.as_mut() {
                    a.with_outage(&o.facts());
                }
                // Whoever heard of the outage hears that it is over.
                notify = union(&notify, &o.channels);
                tx.execute(
                    "UPDATE incident SET ended_ms = ?2, end_reason = 'recovered' WHERE id = ?1",
                    params![o.id, at],
                )?;
            }
        }
        Kind::Initial | Kind::Degraded | Kind::Resolved => {}
    }
    match alert {
        Some(a) if !change.forwarded => make_due(tx, row, a, notify, change.failing).map(Some),
        _ => Ok(None),
    }
}

/// Closes the open outage of `site_id` (if any) as forgotten: its incident
/// ends, a `forgotten` transition is journaled and a notice is made due for
/// the channels that heard of the outage. Returns the notice's event.
pub(super) fn forget(
    tx: &Transaction<'_>,
    site_id: i64,
    site: &str,
    url: &str,
    why: Forget,
    at: SystemTime,
    forwarded: bool,
) -> Result<Option<Event>, rusqlite::Error> {
    let Some(open) = open_incident(tx, site_id)? else {
        return Ok(None);
    };
    tx.execute(
        "UPDATE incident SET ended_ms = ?2, end_reason = ?3 WHERE id = ?1",
        params![open.id, unix_ms(at), why.as_str()],
    )?;
    let facts = open.facts();
    let last = facts.timeline.last().map(|(_, c)| *c);
    let from = last.map_or(Health::Unknown, Health::Down);
    let notice = crate::alert::forgotten(site, url, why, &facts, at);
    let row = insert_transition(
        tx,
        site_id,
        at,
        "forgotten",
        from,
        Health::Unknown,
        &notice.detail,
    )?;
    if forwarded || open.channels.is_empty() {
        return Ok(None);
    }
    make_due(tx, row, notice, open.channels, 0).map(Some)
}

/// Stores new deliveries, marks the journal rows handled and restarts the
/// reminder clock of alerted outages. Returns, per delivery, whether it is
/// new (one stored before is neither stored nor sent again).
pub(super) fn enqueue(
    tx: &Transaction<'_>,
    handled: &[Journal],
    deliveries: &[NewDelivery],
    reminded: &[(String, SystemTime)],
    now: SystemTime,
) -> Result<Vec<bool>, rusqlite::Error> {
    let mut fresh = Vec::with_capacity(deliveries.len());
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO delivery(alert_id, channel, alert, state, attempts, created_ms)
             VALUES (?1, ?2, ?3, 'pending', 0, ?4)",
        )?;
        for d in deliveries {
            fresh.push(insert.execute(params![d.alert_id, d.channel, d.json, unix_ms(now)])? == 1);
        }
    }
    for j in handled {
        match j {
            Journal::Transition(id) => tx
                .prepare_cached("UPDATE transition SET alert = NULL WHERE id = ?1")?
                .execute([id])?,
            Journal::Network(id) => tx
                .prepare_cached("UPDATE network_event SET alert = NULL WHERE id = ?1")?
                .execute([id])?,
        };
    }
    let mut remind = tx.prepare_cached(
        "UPDATE incident SET reminded_ms = ?2 WHERE ended_ms IS NULL
           AND site_id = (SELECT id FROM site WHERE name = ?1)",
    )?;
    for (site, at) in reminded {
        remind.execute(params![site, unix_ms(*at)])?;
    }
    Ok(fresh)
}

/// Records an attempt's outcome.
pub(super) fn attempt(
    tx: &Transaction<'_>,
    (alert_id, channel): (&str, &str),
    attempts: u32,
    state: DeliveryState,
    error: Option<&str>,
    remote: &Remote,
    now: SystemTime,
) -> Result<(), rusqlite::Error> {
    let done = (state != DeliveryState::Pending).then(|| unix_ms(now));
    tx.prepare_cached(
        "UPDATE delivery SET state = ?3, attempts = ?4, last_error = ?5, done_ms = ?6,
                remote_id = COALESCE(?7, remote_id)
         WHERE alert_id = ?1 AND channel = ?2",
    )?
    .execute(params![
        alert_id,
        channel,
        state.as_str(),
        attempts,
        error,
        done,
        remote.id
    ])?;
    match &remote.thread {
        Thread::Keep => {}
        Thread::Open(id) => {
            tx.prepare_cached(
                "INSERT INTO thread(site, channel, remote_id, opened_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(site, channel) DO UPDATE SET remote_id = excluded.remote_id, opened_ms = excluded.opened_ms",
            )?
            .execute(params![remote.site, channel, id, unix_ms(now)])?;
        }
        Thread::Close => {
            tx.prepare_cached("DELETE FROM thread WHERE site = ?1 AND channel = ?2")?
                .execute(params![remote.site, channel])?;
        }
    }
    Ok(())
}

/// The messages that opened outages still open: (site, channel) → remote id.
pub(super) fn threads(
    conn: &Connection,
) -> Result<std::collections::HashMap<(String, String), String>, rusqlite::Error> {
    conn.prepare("SELECT site, channel, remote_id FROM thread")?
        .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?
        .collect()
}

/// A storm: the grouped alert's deliveries and its members marked grouped.
pub(super) fn group(
    tx: &Transaction<'_>,
    group: &[NewDelivery],
    members: &[(String, String)],
    now: SystemTime,
) -> Result<(), rusqlite::Error> {
    enqueue(tx, &[], group, &[], now)?;
    let note = group
        .first()
        .map(|g| format!("sent as part of {}", g.alert_id));
    for (id, channel) in members {
        attempt(
            tx,
            (id, channel),
            0,
            DeliveryState::Grouped,
            note.as_deref(),
            &Remote::default(),
            now,
        )?;
    }
    Ok(())
}

/// Forgets deliveries finished more than a week ago.
pub(super) fn prune(tx: &Transaction<'_>, now: SystemTime) -> Result<(), rusqlite::Error> {
    tx.execute(
        "DELETE FROM delivery WHERE state != 'pending' AND done_ms < ?1",
        [unix_ms(now) - 7 * 86_400_000],
    )?;
    Ok(())
}

/// Alerts committed with their change and not yet handed to the outbox, oldest first.
pub(super) fn due(conn: &Connection) -> Result<Vec<Event>, rusqlite::Error> {
    due_in(conn, "transition", Journal::Transition)
}

/// The due alerts journaled in `table` (`transition` or `network_event`),
/// oldest first; an unreadable one is logged and skipped.
fn due_in(
    conn: &Connection,
    table: &str,
    journal: fn(i64) -> Journal,
) -> Result<Vec<Event>, rusqlite::Error> {
    let mut stmt = conn.prepare(&format!(
        "SELECT id, alert FROM {table} WHERE alert IS NOT NULL ORDER BY id"
    ))?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, json) = row?;
        match serde_json::from_str::<Due>(&json) {
            Ok(d) => out.push(Event {
                journal: Some(journal(id)),
                alert: d.alert,
                notify: d.notify,
                failing: 0,
            }),
            Err(e) => {
                tracing::error!(table, row = id, error = %e, "unreadable due alert in the journal, skipped")
            }
        }
    }
    Ok(out)
}

/// Deliveries not yet delivered or given up on, oldest first.
pub(super) fn pending(conn: &Connection) -> Result<Vec<StoredDelivery>, rusqlite::Error> {
    let mut stmt = conn.prepare(
        "SELECT alert, channel, attempts FROM delivery WHERE state = 'pending' ORDER BY created_ms",
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
        let (json, channel, attempts) = row?;
        match serde_json::from_str::<Alert>(&json) {
            Ok(alert) => out.push(StoredDelivery {
                alert,
                channel,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX - 1),
            }),
            Err(e) => tracing::error!(error = %e, "unreadable alert in the outbox, skipped"),
        }
    }
    Ok(out)
}

/// Open outages of the configured sites, with what their reminders repeat.
pub(super) fn outages(
    conn: &Connection,
    configured: &HashSet<&str>,
) -> Result<Vec<OpenOutage>, rusqlite::Error> {
    let mut stmt = conn.prepare(
        "SELECT s.name, i.last_alert, i.reminded_ms, i.started_ms FROM incident i JOIN site s ON s.id = i.site_id
         WHERE i.ended_ms IS NULL AND i.last_alert IS NOT NULL",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<i64>>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (site, json, reminded, started) = row?;
        if !configured.contains(site.as_str()) {
            continue;
        }
        match serde_json::from_str::<Alert>(&json) {
            Ok(last) if matches!(last.kind, AlertKind::Down | AlertKind::CauseChanged) => {
                out.push(OpenOutage {
                    site,
                    last,
                    reminded: from_ms(reminded.unwrap_or(started)),
                })
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(site = %site, error = %e, "unreadable outage alert, its reminders are not resumed")
            }
        }
    }
    Ok(out)
}

/// Sites with an open outage, by name.
pub(super) fn sites_with_open_outage(
    conn: &Connection,
) -> Result<Vec<(i64, String)>, rusqlite::Error> {
    let mut stmt = conn.prepare(
        "SELECT DISTINCT s.id, s.name FROM incident i JOIN site s ON s.id = i.site_id WHERE i.ended_ms IS NULL",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// Takes in what an older sitewatch left pending in its separate
/// `outbox.db`, then removes that file: its deliveries go on from here.
pub(super) fn import_legacy_outbox(
    conn: &mut Connection,
    dir: &Path,
    now: SystemTime,
) -> Result<usize, String> {
    let path = dir.join("outbox.db");
    if !path.exists() {
        return Ok(0);
    }
    let old = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let rows: Vec<(String, String, String, i64)> = old
        .prepare("SELECT alert_id, channel, alert, attempts FROM delivery WHERE state = 'pending'")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect()
        })
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    drop(old);
    let tx = conn.transaction().map_err(|e| e.to_string())?;
    for (id, channel, json, attempts) in &rows {
        // Older alerts carried their status as free text; the word is the same.
        tx.execute(
            "INSERT OR IGNORE INTO delivery(alert_id, channel, alert, state, attempts, created_ms)
             VALUES (?1, ?2, ?3, 'pending', ?4, ?5)",
            params![id, channel, json, attempts, unix_ms(now)],
        )
        .map_err(|e| e.to_string())?;
    }
    tx.commit().map_err(|e| e.to_string())?;
    for suffix in ["", "-wal", "-shm"] {
        let f = dir.join(format!("outbox.db{suffix}"));
        if f.exists()
            && let Err(e) = std::fs::remove_file(&f)
        {
            tracing::warn!(file = %f.display(), error = %e, "cannot remove the old outbox file");
        }
    }
    Ok(rows.len())
}

/// Journals a change of this monitor's network (and the alert it makes
/// due, unless already handed on). Returns that alert's event.
pub(super) fn network(
    tx: &Transaction<'_>,
    change: &super::NetChange,
    forwarded: bool,
) -> Result<Option<Event>, rusqlite::Error> {
    tx.prepare_cached(
        "INSERT INTO network_event(at_ms, from_state, to_state, evidence, subject) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        unix_ms(change.at),
        change.from.as_str(),
        change.to.as_str(),
        change.evidence,
        change.subject.as_deref().unwrap_or("")
    ])?;
    let row = tx.last_insert_rowid();
    let Some(alert) = change.alert.clone().filter(|_| !forwarded) else {
        return Ok(None);
    };
    let due = Due {
        alert,
        notify: Vec::new(),
    };
    tx.prepare_cached("UPDATE network_event SET alert = ?2 WHERE id = ?1")?
        .execute(params![row, serde_json::to_string(&due).map_err(json_err)?])?;
    Ok(Some(Event {
        journal: Some(Journal::Network(row)),
        alert: due.alert,
        notify: due.notify,
        failing: 0,
    }))
}

/// Network alerts journaled and not yet handed to the outbox.
pub(super) fn due_network(conn: &Connection) -> Result<Vec<Event>, rusqlite::Error> {
    due_in(conn, "network_event", Journal::Network)
}
