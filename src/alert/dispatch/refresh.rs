//! Keeping Alertmanager in step with every site's state.
//!
//! Alertmanager resolves an alert whose `endsAt` has passed, so while a
//! site is down (an open outage) or degraded, its alert is posted again
//! every `resend_interval` of each Alertmanager channel it is routed to,
//! in one array with this instance's always-firing watchdog and the
//! resolution of every alert that stopped firing since (a change the flap
//! damping kept quiet, a site removed, re-probed or routed elsewhere, a
//! delivery given up on). This is state sync, not delivery: idempotent,
//! never stored in the outbox, and a failed refresh is simply made again
//! at the next interval. Degraded sites are learnt from the events; the
//! open outages are the dispatcher's own (resumed after a restart).

use super::super::alertmanager::{Labels, Postable};
use super::super::{Alert, AlertKind, Event, Route, SendError};
use super::{Dispatcher, after};
use std::collections::HashMap;
use std::time::{Duration, SystemTime};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// What the refresh knows beyond the dispatcher's open outages.
pub(super) struct Refresher {
    /// When this sitewatch started: the watchdog's `startsAt`.
    started: SystemTime,
    /// Degraded sites, with the alert that made them so.
    degraded: HashMap<String, Alert>,
    /// Per Alertmanager channel, by name.
    channels: HashMap<String, Sync>,
}

/// One Alertmanager channel's refresh.
struct Sync {
    /// When it is next due.
    next: Instant,
    /// A refresh is in flight.
    busy: bool,
    /// The alerts that may fire in its Alertmanagers: those the last
    /// refresh posted firing, and those events fired since. The next
    /// refresh resolves those no longer firing.
    firing: HashMap<Labels, Postable>,
}

impl Sync {
    fn new(now: Instant) -> Sync {
        Sync {
            next: now,
            busy: false,
            firing: HashMap::new(),
        }
    }
}

impl Refresher {
    /// Knows of no site yet.
    pub(super) fn new() -> Refresher {
        Refresher {
            started: SystemTime::now(),
            degraded: HashMap::new(),
            channels: HashMap::new(),
        }
    }

    /// A new configuration (`old` routes replaced by `new`): a degraded
    /// site that is gone or probes something else now starts over, so its
    /// alert stops firing. Only the degraded sites' probe settings are
    /// compared, not every site's.
    pub(super) fn reconfigure(
        &mut self,
        old: &HashMap<String, Route>,
        new: &HashMap<String, Route>,
    ) {
        let probe = |routes: &HashMap<String, Route>, site: &str| {
            routes
                .get(site)
                .and_then(|r| r.spec.as_deref())
                .map(crate::config::probe_key)
        };
        self.degraded
            .retain(|site, _| probe(new, site).is_some_and(|p| probe(old, site) == Some(p)));
    }
}

/// A refresh that has ended.
pub(super) struct Done {
    channel: String,
    /// The resolutions it carried: still to be made if it failed.
    resolved: Vec<Postable>,
    result: Result<(), SendError>,
}

/// Refreshes in flight, each a task; one that panics still reports back,
/// so its channel is never left busy.
#[derive(Default)]
pub(super) struct Refreshes {
    set: JoinSet<Done>,
    ids: HashMap<tokio::task::Id, String>,
}

impl Refreshes {
    fn spawn(&mut self, channel: String, post: impl Future<Output = Done> + Send + 'static) {
        let handle = self.set.spawn(post);
        self.ids.insert(handle.id(), channel);
    }

    /// The next refresh to end.
    pub(super) async fn next(&mut self) -> Option<Done> {
        let done = self.set.join_next_with_id().await?;
        Some(match done {
            Ok((task, d)) => {
                self.ids.remove(&task);
                d
            }
            Err(e) => Done {
                channel: self.ids.remove(&e.id()).unwrap_or_default(),
                resolved: Vec::new(),
                result: Err(SendError::Transient {
                    message: format!("the refresh failed: {e}"),
                    retry_after: None,
                }),
            },
        })
    }
}

impl Dispatcher {
    /// Notes what an event changes (every event, whether the flap damping
    /// lets its alert through or not): degraded sites, and the alerts it
    /// fires in the Alertmanagers it goes to.
    pub(super) fn observe(&mut self, ev: &Event) {
        let a = &ev.alert;
        match a.kind {
            AlertKind::Degraded => {
                self.refresh.degraded.insert(a.site.clone(), a.clone());
            }
            AlertKind::Recovered if a.status == crate::state::Level::Degraded => {
                self.refresh.degraded.insert(a.site.clone(), a.clone());
            }
            AlertKind::Down | AlertKind::Recovered | AlertKind::Resolved | AlertKind::Forgotten => {
                self.refresh.degraded.remove(&a.site);
            }
            _ => {}
        }
        let wall = SystemTime::now();
        let now = Instant::now();
        for name in &ev.notify {
            let Some(t) = self.channels.get(name).and_then(|c| c.alertmanager()) else {
                continue;
            };
            let sync = self
                .refresh
                .channels
                .entry(name.clone())
                .or_insert_with(|| Sync::new(now));
            for p in t.shape.for_alert(a, wall) {
                if p.ends_at > wall {
                    sync.firing.insert(p.labels.clone(), p);
                }
            }
        }
    }

    /// When the next refresh is due (an hour off without Alertmanager
    /// channels). A channel new to the dispatcher is due at once.
    pub(super) fn refresh_at(&mut self) -> Instant {
        let now = Instant::now();
        let channels = &self.channels;
        let syncs = &mut self.refresh.channels;
        syncs.retain(|name, _| {
            channels
                .get(name)
                .is_some_and(|c| c.alertmanager().is_some())
        });
        for (name, ch) in channels {
            if ch.alertmanager().is_some() {
                syncs.entry(name.clone()).or_insert_with(|| Sync::new(now));
            }
        }
        syncs
            .values()
            .filter(|s| !s.busy)
            .map(|s| s.next)
            .min()
            .unwrap_or_else(|| after(now, Duration::from_secs(3600)))
    }

    /// Starts every refresh that is due.
    pub(super) fn refresh_due(&mut self, running: &mut Refreshes) {
        let now = Instant::now();
        let wall = SystemTime::now();
        let Self {
            channels,
            routes,
            outages,
            refresh,
            ..
        } = self;
        for (name, sync) in refresh.channels.iter_mut() {
            if sync.busy || sync.next > now {
                continue;
            }
            let Some(ch) = channels.get(name).cloned() else {
                continue;
            };
            let Some(t) = ch.alertmanager() else {
                continue;
            };
            let routed = |site: &str| {
                routes
                    .get(site)
                    .is_some_and(|r| r.notify.iter().any(|n| n == name))
            };
            let mut firing: Vec<Postable> = Vec::new();
            for (site, o) in outages.iter() {
                if routed(site) {
                    firing.extend(t.shape.firing(&o.last, wall));
                }
            }
            for (site, a) in &refresh.degraded {
                if routed(site) && !outages.contains_key(site) {
                    firing.extend(t.shape.firing(a, wall));
                }
            }
            firing.push(t.shape.watchdog(refresh.started, wall));
            let now_firing: HashMap<Labels, Postable> = firing
                .iter()
                .map(|p| (p.labels.clone(), p.clone()))
                .collect();
            let resolved: Vec<Postable> = sync
                .firing
                .values()
                .filter(|p| !now_firing.contains_key(&p.labels))
                .map(|p| p.resolved(wall))
                .collect();
            sync.firing = now_firing;
            sync.busy = true;
            sync.next = after(now, t.shape.resend_interval);
            tracing::debug!(channel = %name, firing = firing.len(), resolved = resolved.len(), "refreshing alertmanager");
            let mut body = resolved.clone();
            body.extend(firing);
            let channel = name.clone();
            running.spawn(name.clone(), async move {
                let result = ch.post_alerts(&body).await;
                Done {
                    channel,
                    resolved,
                    result,
                }
            });
        }
    }

    /// A refresh has ended: a failed one keeps its resolutions for the
    /// next, and shows on `/healthz` as the channel's last error.
    pub(super) fn refreshed(&mut self, done: Done) {
        if let Some(sync) = self.refresh.channels.get_mut(&done.channel) {
            sync.busy = false;
            if done.result.is_err() {
                for p in done.resolved {
                    sync.firing.entry(p.labels.clone()).or_insert(p);
                }
            }
        }
        if let Err(e) = done.result {
            tracing::warn!(channel = %done.channel, error = %e, "cannot refresh the alerts in alertmanager; trying again at the next refresh");
            let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
            let c = stats.channels.entry(done.channel).or_default();
            c.last_error = Some(format!("refresh: {e}"));
            c.last_error_at = Some(SystemTime::now());
        }
    }
}
