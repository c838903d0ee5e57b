//! What the loop does for planned things: heartbeats judged from their
//! pings, and sites starting over when a maintenance window is over.

use super::{Done, Outcome, Sinks, Slot};
use crate::alert;
use crate::state::{self, SiteState};
use std::collections::HashMap;
use std::time::SystemTime;
use tokio::time::Instant;

/// A down or degraded state confirmed under maintenance was never
/// announced: at the first probe no window covers, it starts over and must
/// be confirmed again (and alerts as "still down after maintenance"). A
/// site that came back meanwhile is up and says nothing. Stateless in
/// time: it holds however the windows ended (back to back, extended,
/// removed by a reload, or while sitewatch was stopped).
pub(super) fn after_window(slot: &mut Slot, sinks: &Sinks, at: SystemTime) {
    if !slot.state.unannounced
        || !matches!(
            slot.state.health,
            state::Health::Down(_) | state::Health::Degraded(_)
        )
        || sinks.windows.covering(&slot.spec, at).is_some()
    {
        return;
    }
    tracing::info!(site = %slot.spec.name, status = slot.state.health.as_str(), "maintenance over and the site is not up: confirming again");
    slot.state = SiteState::new(at);
    // Named after the window that ended last; else the one the state was
    // confirmed in (unless sitewatch restarted since: then unnamed).
    let last = sinks.windows.last_ended(&slot.spec, at).map(|w| w.title);
    slot.after_maintenance = last
        .or(slot.after_maintenance.take())
        .or(Some(String::new()));
    sinks
        .history
        .reset(&slot.spec, Some(slot.state), alert::Forget::Changed, at);
}

/// The heartbeats among `slots`, by name (a ping names its heartbeat).
pub(super) fn heartbeat_index(slots: &[Option<Slot>]) -> HashMap<String, usize> {
    slots
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            s.as_ref()
                .filter(|s| s.spec.heartbeat.is_some())
                .map(|s| (s.spec.name.clone(), i))
        })
        .collect()
}

/// Judges a heartbeat from what its ledger holds, as a finished "probe".
pub(super) fn judge_heartbeat(
    idx: usize,
    slot: &Slot,
    hub: Option<&crate::heartbeat::hub::Hub>,
    planned: Instant,
    began: Instant,
) -> Done {
    let outcome = match (&slot.spec.heartbeat, hub) {
        (Some(hb), Some(hub)) => {
            let now = SystemTime::now();
            let (record, new) = hub.ledger().watch(&slot.spec.name, now);
            if new {
                hub.save(&slot.spec.name, &record);
            }
            match crate::heartbeat::judge::judge(hb, &record, hub.started(), now) {
                crate::heartbeat::judge::Verdict::Pending(detail) => Outcome::Pending(detail),
                crate::heartbeat::judge::Verdict::Judged {
                    status,
                    cause,
                    detail,
                } => Outcome::Report(Box::new(crate::heartbeat::report(
                    &slot.spec.name,
                    status,
                    cause,
                    detail,
                    now,
                ))),
            }
        }
        _ => Outcome::Error("heartbeats are not received by this instance".to_string()),
    };
    Done {
        idx,
        generation: slot.generation,
        planned,
        began,
        outcome,
    }
}
