//! Getting queued deliveries delivered: one task per attempt, one at a
//! time per site and channel, and what each outcome means (sent, retried
//! after backoff or the receiver's capped hint, given up).

use super::super::channel::Sent;
use super::super::{GIVE_UP_AFTER, MAX_RETRY_AFTER, SendError, backoff, channel, hook, render};
use super::{Dispatcher, after};
use crate::history::{DeliveryState, Remote, Thread};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Attempts in flight, each a task; a task that panics still reports back
/// (as a failed attempt), so its delivery is never left busy.
#[derive(Default)]
pub(super) struct Attempts {
    set: JoinSet<(u64, Result<Sent, SendError>)>,
    ids: HashMap<tokio::task::Id, u64>,
}

impl Attempts {
    pub(super) fn spawn(
        &mut self,
        id: u64,
        attempt: impl std::future::Future<Output = (u64, Result<Sent, SendError>)> + Send + 'static,
    ) {
        let handle = self.set.spawn(attempt);
        self.ids.insert(handle.id(), id);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// The next attempt to end: its delivery and outcome.
    pub(super) async fn next(&mut self) -> Option<(u64, Result<Sent, SendError>)> {
        let done = self.set.join_next_with_id().await?;
        Some(match done {
            Ok((task, r)) => {
                self.ids.remove(&task);
                r
            }
            Err(e) => {
                let id = self.ids.remove(&e.id()).unwrap_or(0);
                (
                    id,
                    Err(SendError::Transient {
                        message: format!("the attempt failed: {e}"),
                        retry_after: None,
                    }),
                )
            }
        })
    }
}

impl Dispatcher {
    /// Starts every due delivery that may go: one at a time per site and
    /// channel, oldest first.
    pub(super) fn start_due(&mut self, inflight: &mut Attempts) {
        let now = Instant::now();
        let mut blocked: HashSet<(String, String)> = HashSet::new();
        for (id, d) in self.deliveries.iter_mut() {
            if d.done {
                continue;
            }
            if !blocked.insert((d.alert.site.clone(), d.channel.clone()))
                || d.busy
                || d.next > now
                || d.standby.is_some()
            {
                continue;
            }
            d.busy = true;
            let id = *id;
            let alert = Arc::clone(&d.alert);
            let thread = self
                .threads
                .get(&(d.alert.site.clone(), d.channel.clone()))
                .cloned();
            let Some(ch) = self.channels.get(&d.channel).cloned() else {
                inflight.spawn(id, async move {
                    (
                        id,
                        Err(SendError::Permanent(
                            "the channel was removed by a reload".to_string(),
                        )),
                    )
                });
                continue;
            };
            inflight.spawn(id, async move {
                let r = match tokio::time::timeout(
                    channel::ATTEMPT_TIMEOUT + Duration::from_secs(5),
                    ch.send(&alert, thread.as_deref(), SystemTime::now()),
                )
                .await
                {
                    Ok(r) => r,
                    Err(_) => Err(SendError::Transient {
                        message: "the attempt timed out".to_string(),
                        retry_after: None,
                    }),
                };
                (id, r)
            });
        }
    }

    /// When the next delivery not in flight is due.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.deliveries
            .values()
            .filter(|d| !d.done && !d.busy)
            .map(|d| d.next)
            .min()
    }

    pub(super) fn finish(&mut self, id: u64, result: Result<Sent, SendError>) {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let seed = self.seed;
        let Some(d) = self.deliveries.get_mut(&id) else {
            return;
        };
        d.busy = false;
        d.attempts = d.attempts.saturating_add(1);
        let attempts = d.attempts;
        let (state, error) = match &result {
            Ok(_) => {
                tracing::info!(alert = %d.alert.id, channel = %d.channel, site = %d.alert.site, kind = d.alert.kind.as_str(), "alert sent");
                (DeliveryState::Sent, None)
            }
            Err(SendError::Permanent(msg)) => {
                tracing::error!(alert = %d.alert.id, channel = %d.channel, error = %msg, "alert NOT delivered: the channel refused it permanently; fix the channel (sitewatch notify-test) — not retried");
                (DeliveryState::Failed, Some(msg.clone()))
            }
            Err(SendError::Transient {
                message,
                retry_after,
            }) => {
                if d.first_try.elapsed() > GIVE_UP_AFTER {
                    tracing::error!(alert = %d.alert.id, channel = %d.channel, error = %message, "alert NOT delivered after 24 hours of retries; giving up");
                    (DeliveryState::Failed, Some(message.clone()))
                } else {
                    // A receiver's hint is followed, but never beyond the cap.
                    let wait = retry_after
                        .map(|w| w.min(MAX_RETRY_AFTER))
                        .unwrap_or_else(|| backoff(attempts - 1, seed));
                    d.next = after(Instant::now(), wait);
                    tracing::warn!(alert = %d.alert.id, channel = %d.channel, error = %message, retry_in = %render::human(wait), "alert delivery failed, will retry");
                    (DeliveryState::Pending, Some(message.clone()))
                }
            }
        };
        if state != DeliveryState::Pending {
            d.done = true;
        }
        {
            let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
            let c = stats.channels.entry(d.channel.clone()).or_default();
            let reason = match (&result, state) {
                (Ok(_), _) => None,
                (Err(SendError::Permanent(_)), _) => Some("permanent"),
                (Err(SendError::Transient { .. }), DeliveryState::Failed) => Some("expired"),
                (Err(SendError::Transient { .. }), _) => Some("transient"),
            };
            if let Some(reason) = reason {
                *c.failures.entry(reason.to_string()).or_default() += 1;
            }
            match state {
                DeliveryState::Sent => {
                    c.sent += 1;
                    *c.sent_events
                        .entry(d.alert.kind.as_str().to_string())
                        .or_default() += 1;
                }
                DeliveryState::Failed => {
                    c.given_up += 1;
                    c.failed_attempts += 1;
                }
                _ => c.failed_attempts += 1,
            }
            if let Some(e) = &error {
                c.last_error = Some(e.clone());
                c.last_error_at = Some(SystemTime::now());
            }
        }
        // The message an outage opened, for its recovery to edit, reply to
        // or cancel; kept until the outage ends.
        let key = (d.alert.site.clone(), d.channel.clone());
        let remote_id = result.as_ref().ok().and_then(|s| s.remote_id.clone());
        let thread = match (&remote_id, state) {
            (Some(id), DeliveryState::Sent) if hook::opens_thread(d.alert.kind) => {
                self.threads.insert(key, id.clone());
                Thread::Open(id.clone())
            }
            (_, DeliveryState::Sent | DeliveryState::Failed)
                if hook::closes_thread(d.alert.kind) && self.threads.remove(&key).is_some() =>
            {
                Thread::Close
            }
            _ => Thread::Keep,
        };
        self.outbox.attempt(
            &d.alert.id,
            &d.channel,
            attempts,
            state,
            error.as_deref(),
            Remote {
                id: remote_id,
                site: d.alert.site.clone(),
                thread,
            },
        );
    }
}
