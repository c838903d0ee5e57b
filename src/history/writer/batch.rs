//! One batch of records in one transaction: samples and saved states,
//! changes with their journal rows, resets, and the dispatcher's outbox
//! writes.

use super::super::rollup::hour_of;
use super::super::{Record, journal, kept, unix_ms};
use super::{Committed, MAINTENANCE, STATE_EVERY, UNVERIFIED, status_code};
use crate::config::SiteSpec;
use crate::state::SiteState;
use rusqlite::{Connection, params};
use std::collections::{BTreeSet, HashMap};
use std::time::SystemTime;

pub(super) fn upsert_state(
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
pub(super) fn write_records<'a>(
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
                unverified,
                maintenance,
                state,
                change,
            } => {
                let id = site_ids[&site.name];
                if change.is_some() || worth_saving(saved.get(&id), state, site, *at) {
                    upsert_state(&tx, id, site, state, *at)?;
                    done.saved.push((id, *state, *at));
                }
                let code = if *maintenance {
                    MAINTENANCE
                } else if *unverified {
                    UNVERIFIED
                } else {
                    status_code(*status)
                };
                insert_sample(&tx, id, *at, code, cause.map(|c| c.as_str()), *ms)?;
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
                use super::super::OutboxOp;
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
                        remote,
                    } => journal::attempt(
                        &tx,
                        (alert_id, channel),
                        *attempts,
                        *state,
                        error.as_deref(),
                        remote,
                        now,
                    )?,
                }
            }
            Record::Network { change, forwarded } => {
                if let Some(ev) = journal::network(&tx, change, *forwarded)? {
                    done.events.push(ev);
                }
            }
            Record::Heartbeat { name, record } => {
                kept::save_heartbeat(&tx, name, record, now)?;
            }
            Record::Silence { id, body, ends, .. } => {
                kept::save_silence(&tx, id, body, *ends, now)?;
            }
            Record::Stop | Record::Sync(_) => {}
        }
    }
    tx.commit()?;
    late_hours.extend(late);
    Ok(done)
}

/// Stores one sample: its time in whole seconds, its probe time in whole
/// milliseconds. A second sample of a site within the same second (only a
/// 1 s interval can make one) takes the next free second rather than
/// replacing the first, so that every probe is counted.
fn insert_sample(
    tx: &rusqlite::Transaction<'_>,
    site: i64,
    at: SystemTime,
    status: i64,
    cause: Option<&str>,
    ms: f64,
) -> Result<(), rusqlite::Error> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO sample(site_id, at, status, cause, ms) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(site_id, at) DO NOTHING",
    )?;
    let ms = ms.round().clamp(0.0, i64::MAX as f64) as i64;
    let second = unix_ms(at).div_euclid(1000);
    for at in second..second + 60 {
        if insert.execute(params![site, at, status, cause, ms])? == 1 {
            break;
        }
    }
    Ok(())
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
        || prev.unannounced != state.unannounced
        || prev.since != state.since
        || prev.cause_since != state.cause_since
        || prev.last != state.last
        || prev.recent.failures(crate::state::recent::MAX_WINDOW as u8)
            != state
                .recent
                .failures(crate::state::recent::MAX_WINDOW as u8)
        || count(state.fails)
            .max(count(state.oks))
            .max(count(state.same_run))
            .max(count(state.class_run))
            <= window
        || at.duration_since(*saved_at).unwrap_or_default() >= STATE_EVERY
}
