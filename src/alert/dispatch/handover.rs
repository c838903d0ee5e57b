//! Who sends, on this vantage's side ([`crate::cluster::sender`]): each
//! chat or email delivery is sent from here, dropped for another vantage,
//! or held for the site's owner and then checked with it. Receivers that
//! deduplicate (Alertmanager, webhooks) hear every vantage.

use super::super::{Alert, AlertKind};
use super::{Dispatcher, after};
use crate::cluster::sender::Decision;
use crate::history::DeliveryState;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How long asking the owner may take, at most.
const ASK_LIMIT: Duration = Duration::from_secs(30);

/// Vantages being asked: (delivery, who told it, if one did).
#[derive(Default)]
pub(super) struct Checks {
    set: JoinSet<(u64, Option<String>)>,
    ids: HashMap<tokio::task::Id, u64>,
}

impl Checks {
    /// The next answer; a check that panicked counts as "nobody told it".
    pub(super) async fn next(&mut self) -> Option<(u64, Option<String>)> {
        let done = self.set.join_next_with_id().await?;
        Some(match done {
            Ok((task, r)) => {
                self.ids.remove(&task);
                r
            }
            Err(e) => {
                tracing::warn!(error = %e, "asking the other vantages failed");
                (self.ids.remove(&e.id()).unwrap_or(0), None)
            }
        })
    }
}

/// Whether `kind` opens (or goes on with) an episode a channel was told of.
fn opens(kind: AlertKind) -> bool {
    matches!(
        kind,
        AlertKind::Down | AlertKind::CauseChanged | AlertKind::Reminder | AlertKind::Degraded
    )
}

/// Whether `kind` ends one.
fn closes(kind: AlertKind) -> bool {
    matches!(
        kind,
        AlertKind::Recovered | AlertKind::Resolved | AlertKind::Forgotten
    )
}

impl Dispatcher {
    /// Who sends `a` on `channel`, keeping track of who announced what.
    pub(super) fn who_sends(&mut self, a: &Alert, channel: &str) -> Decision {
        let Some(senders) = &self.senders else {
            return Decision::Send;
        };
        let broadcast = self.channels.get(channel).is_none_or(|c| c.broadcast());
        if broadcast {
            return Decision::Send;
        }
        let key = (a.site.clone(), channel.to_string());
        let decision = if a.kind != AlertKind::Down && self.announced.contains(&key) {
            // This vantage announced it here: it goes on saying it.
            Decision::Send
        } else if let Some(owner) = self
            .delegated
            .get(&key)
            .filter(|_| a.kind != AlertKind::Down)
        {
            // The vantage that announced it says what follows; asked first.
            if a.kind == AlertKind::Forgotten {
                Decision::Skip(owner.clone())
            } else {
                let mut d = senders.decide(a, &self.watching(&a.site));
                if let Decision::Standby { ask, .. } = &mut d {
                    ask.retain(|n| n != owner);
                    ask.insert(0, owner.clone());
                } else {
                    d = Decision::Standby {
                        ask: vec![owner.clone()],
                        wait: true,
                    };
                }
                d
            }
        } else {
            senders.decide(a, &self.watching(&a.site))
        };
        if decision == Decision::Send {
            senders.sending(a);
        }
        match &decision {
            Decision::Send if opens(a.kind) => {
                self.delegated.remove(&key);
                self.announced.insert(key);
            }
            Decision::Send | Decision::Skip(_) if closes(a.kind) => {
                self.delegated.remove(&key);
                self.announced.remove(&key);
            }
            _ => {}
        }
        decision
    }

    /// The vantages that watch `site` (empty: every one).
    fn watching(&self, site: &str) -> Vec<String> {
        self.routes
            .get(site)
            .map(|r| r.vantages.clone())
            .unwrap_or_default()
    }

    /// How long a held delivery of `site` waits for its owner.
    pub(super) fn handover(&self, site: &str) -> Duration {
        self.routes
            .get(site)
            .map_or(Duration::from_secs(60), |r| r.handover)
    }

    /// Records `a` on `channel` as sent by `owner` instead.
    pub(super) fn delegate(&mut self, a: &Alert, channel: &str, owner: &str) {
        tracing::info!(alert = %a.id, %channel, site = %a.site, %owner, "alert sent by another vantage (the site's owner)");
        self.stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .channels
            .entry(channel.to_string())
            .or_default()
            .delegated += 1;
        self.outbox.attempt(
            &a.id,
            channel,
            0,
            DeliveryState::Delegated,
            Some(&format!("sent by {owner}")),
            crate::history::Remote::default(),
        );
    }

    /// Asks the owner of each held delivery that is due.
    pub(super) fn start_handovers(&mut self, checks: &mut Checks) {
        let Some(senders) = self.senders.clone() else {
            return;
        };
        let now = Instant::now();
        let due: Vec<(u64, Vec<String>, Arc<Alert>)> = self
            .deliveries
            .iter_mut()
            .filter(|(_, d)| d.standby.is_some() && !d.done && !d.busy && d.next <= now)
            .map(|(id, d)| {
                d.busy = true;
                (
                    *id,
                    d.standby.clone().unwrap_or_default(),
                    Arc::clone(&d.alert),
                )
            })
            .collect();
        for (id, ask, alert) in due {
            let senders = Arc::clone(&senders);
            let handover = self.handover(&alert.site);
            let handle = checks.set.spawn(async move {
                let asked = senders.taken_up(&ask, &alert, handover);
                let told = match tokio::time::timeout(ASK_LIMIT, asked).await {
                    Ok(Some(by)) => Some(by),
                    _ => None,
                };
                (id, told)
            });
            checks.ids.insert(handle.id(), id);
        }
    }

    /// The others' answer about a held delivery: dropped when one of them
    /// told it, sent from here at once otherwise.
    pub(super) fn handed_over(&mut self, id: u64, told: Option<String>) {
        let Some(d) = self.deliveries.get_mut(&id) else {
            return;
        };
        d.busy = false;
        let Some(asked) = d.standby.take() else {
            return;
        };
        let alert = Arc::clone(&d.alert);
        let channel = d.channel.clone();
        let key = (alert.site.clone(), channel.clone());
        match told {
            Some(owner) => {
                d.done = true;
                if opens(alert.kind) {
                    self.announced.remove(&key);
                    self.delegated.insert(key, owner.clone());
                } else if closes(alert.kind) {
                    self.delegated.remove(&key);
                }
                self.delegate(&alert, &channel, &owner);
            }
            None => {
                tracing::warn!(alert = %alert.id, %channel, site = %alert.site, asked = %asked.join(", "), "no other vantage told it: sending it from here");
                d.next = after(Instant::now(), Duration::ZERO);
                if let Some(s) = &self.senders {
                    s.sending(&alert);
                }
                if opens(alert.kind) {
                    self.delegated.remove(&key);
                    self.announced.insert(key);
                } else if closes(alert.kind) {
                    self.delegated.remove(&key);
                    self.announced.remove(&key);
                }
            }
        }
    }
}
