//! From committed changes to queued deliveries: the alert policy (flap
//! damping, the storm hold and grouping), reminders and settled messages,
//! and the outbox writes that store them before any attempt.

use super::super::policy::{self, FlapVerdict};
use super::super::{Alert, AlertKind, Event, Journal};
use super::{Dispatcher, Outage, Queued, after, ms};
use crate::cluster::sender::Decision;
use crate::history::NewDelivery;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::time::Instant;

impl Dispatcher {
    /// Whether a down alert of `site` should wait for others: another site
    /// began failing shortly before (`failing`), or another down alert came
    /// within the hold.
    pub(super) fn storm_forming(&mut self, site: &str, failing: usize) -> bool {
        if self.storm_hold.is_zero() {
            return false;
        }
        let now = Instant::now();
        while self
            .recent_downs
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > self.storm_hold)
        {
            self.recent_downs.pop_front();
        }
        let forming = failing > 0 || self.recent_downs.iter().any(|(_, s)| s != site);
        self.recent_downs.push_back((now, site.to_string()));
        forming
    }

    /// Stores `queued` (and marks `handled` journal rows and `reminded`
    /// outages) in one transaction, then puts the new deliveries in line.
    pub(super) async fn enqueue(
        &mut self,
        handled: Vec<Journal>,
        queued: Vec<Queued>,
        reminded: Vec<(String, SystemTime)>,
    ) {
        let mut rows = Vec::new();
        let mut plan = Vec::new();
        for q in queued {
            let kind = q.alert.kind;
            let channels: Vec<String> = q
                .channels
                .into_iter()
                .filter(|c| self.channels.get(c).is_some_and(|ch| ch.takes(kind)))
                .collect();
            if channels.is_empty() {
                continue;
            }
            let json = match serde_json::to_string(&q.alert) {
                Ok(j) => j,
                Err(e) => {
                    tracing::error!(alert = %q.alert.id, error = %e, "cannot serialize the alert");
                    String::new()
                }
            };
            let alert = Arc::new(q.alert);
            for channel in channels {
                rows.push(NewDelivery {
                    alert_id: alert.id.clone(),
                    channel: channel.clone(),
                    json: json.clone(),
                });
                plan.push((Arc::clone(&alert), channel, q.failing));
            }
        }
        if rows.is_empty() && handled.is_empty() && reminded.is_empty() {
            return;
        }
        tracing::debug!(
            deliveries = rows.len(),
            handled = handled.len(),
            "storing alerts in the outbox"
        );
        let fresh = match self.outbox.enqueue(handled, rows, reminded).await {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, "cannot store alerts in the outbox; sending them anyway, but they would not survive a restart");
                Vec::new()
            }
        };
        let now = Instant::now();
        // Several sites' down alerts in one batch (a restart resuming them,
        // or a storm arriving at once) are a storm forming too.
        let downs: HashSet<&str> = plan
            .iter()
            .filter(|(a, _, _)| a.kind == AlertKind::Down)
            .map(|(a, _, _)| a.site.as_str())
            .collect();
        let others_in_batch = downs.len().saturating_sub(1);
        let mut forming: HashMap<String, bool> = HashMap::new();
        for (i, (alert, channel, failing)) in plan.into_iter().enumerate() {
            if !fresh.get(i).copied().unwrap_or(true) {
                tracing::info!(alert = %alert.id, %channel, "alert already stored: not sent twice");
                continue;
            }
            if self
                .deliveries
                .values()
                .any(|d| d.alert.id == alert.id && d.channel == channel)
            {
                continue;
            }
            match self.who_sends(&alert, &channel) {
                Decision::Send => {}
                Decision::Skip(owner) => {
                    self.delegate(&alert, &channel, &owner);
                    continue;
                }
                Decision::Standby { ask, wait } => {
                    let wait = if wait {
                        self.handover(&alert.site)
                    } else {
                        std::time::Duration::ZERO
                    };
                    tracing::info!(alert = %alert.id, %channel, site = %alert.site, ask = %ask.join(", "), wait = %crate::alert::render::human(wait), "held: another vantage should send it");
                    self.push(alert, channel, 0, after(now, wait));
                    if let Some(d) = self.deliveries.get_mut(&self.next_id) {
                        d.standby = Some(ask);
                    }
                    continue;
                }
            }
            let channel_hold = self
                .channels
                .get(&channel)
                .map_or(self.storm_hold, |c| c.storm_hold);
            let forming = match forming.get(&alert.id) {
                Some(f) => *f,
                None => {
                    let f = alert.kind == AlertKind::Down
                        && self.storm_forming(&alert.site, failing + others_in_batch);
                    forming.insert(alert.id.clone(), f);
                    f
                }
            };
            let hold = forming && !channel_hold.is_zero();
            if !hold {
                // A later alert of a site releases its held down alert first.
                for d in self.deliveries.values_mut() {
                    if d.alert.site == alert.site
                        && d.alert.id != alert.id
                        && d.alert.kind == AlertKind::Down
                        && d.attempts == 0
                        && d.next > now
                        && d.standby.is_none()
                    {
                        d.next = now;
                    }
                }
            }
            let next = if hold { after(now, channel_hold) } else { now };
            self.push(alert, channel, 0, next);
        }
    }

    /// Turns committed changes into queued alerts.
    pub(super) async fn on_events(&mut self, events: Vec<Event>) {
        let now = Instant::now();
        let mut handled = Vec::new();
        let mut queued = Vec::new();
        for ev in events {
            if let Some(id) = ev.journal {
                handled.push(id);
            }
            self.observe(&ev);
            let site = ev.alert.site.clone();
            match ev.alert.kind {
                AlertKind::Down | AlertKind::CauseChanged => {
                    self.outages.insert(
                        site.clone(),
                        Outage {
                            last: ev.alert.clone(),
                            reminded: now,
                        },
                    );
                }
                AlertKind::Recovered | AlertKind::Forgotten => {
                    self.outages.remove(&site);
                }
                _ => {}
            }
            if ev.alert.kind == AlertKind::Forgotten {
                // Closes a page that is open somewhere: never damped.
                queued.push(Queued {
                    alert: ev.alert,
                    channels: ev.notify,
                    failing: 0,
                });
                continue;
            }
            if matches!(
                ev.alert.kind,
                AlertKind::NetworkLost
                    | AlertKind::NetworkBack
                    | AlertKind::VantageLost
                    | AlertKind::VantageBack
            ) {
                // About a monitor, not a site: every channel hears it.
                let mut channels: Vec<String> = self.channels.keys().cloned().collect();
                channels.sort();
                queued.push(Queued {
                    alert: ev.alert,
                    channels,
                    failing: 0,
                });
                continue;
            }
            if let Some(silence) = self.muted(&ev.alert) {
                tracing::info!(site = %site, change = ev.alert.kind.as_str(), %silence, "alert muted by a silence");
                continue;
            }
            self.last
                .insert(site.clone(), (ev.alert.clone(), ev.notify.clone()));
            match self.flaps.entry(site.clone()).or_default().on_change(now) {
                FlapVerdict::Pass => queued.push(Queued {
                    alert: ev.alert,
                    channels: ev.notify,
                    failing: ev.failing,
                }),
                FlapVerdict::Suppress => {
                    tracing::info!(site = %site, change = ev.alert.kind.as_str(), "site is flapping: change not alerted");
                }
                FlapVerdict::StartFlapping => {
                    let mut a = ev.alert;
                    a.id = format!("{site}-flapping-{}", ms(a.at));
                    a.kind = AlertKind::Flapping;
                    tracing::warn!(site = %site, "site is flapping: one alert now, then quiet until it settles");
                    queued.push(Queued {
                        alert: a,
                        channels: ev.notify,
                        failing: 0,
                    });
                }
            }
        }
        self.enqueue(handled, queued, Vec::new()).await;
    }

    /// Flapping sites that have been quiet long enough: say where they ended up.
    pub(super) async fn settle(&mut self) {
        let now = Instant::now();
        let wall = SystemTime::now();
        let settled: Vec<String> = self
            .flaps
            .iter_mut()
            .filter_map(|(site, g)| g.settled(now).then(|| site.clone()))
            .collect();
        let mut queued = Vec::new();
        for site in settled {
            if let Some((last, channels)) = self.last.get(&site).cloned() {
                let mut a = last;
                a.id = format!("{site}-settled-{}", ms(wall));
                a.kind = AlertKind::Settled;
                a.at = wall;
                queued.push(Queued {
                    alert: a,
                    channels,
                    failing: 0,
                });
            }
        }
        if !queued.is_empty() {
            self.enqueue(Vec::new(), queued, Vec::new()).await;
        }
    }

    /// Reminders of outages that have been quiet for their site's
    /// `remind_every`, to the site's current channels.
    pub(super) async fn reminders(&mut self) {
        let now = Instant::now();
        let wall = SystemTime::now();
        let mut queued = Vec::new();
        let mut reminded = Vec::new();
        for (site, o) in self.outages.iter_mut() {
            let Some(route) = self.routes.get(site) else {
                continue;
            };
            let Some(every) = route.remind_every else {
                continue;
            };
            // Paused under maintenance; due again when the window is over.
            if route
                .spec
                .as_ref()
                .is_some_and(|s| self.windows.covering(s, wall).is_some())
            {
                continue;
            }
            if super::muted_by(&self.silences, &self.routes, &o.last).is_some() {
                continue;
            }
            if now.duration_since(o.reminded) < every {
                continue;
            }
            o.reminded = now;
            let mut a = o.last.clone();
            a.kind = AlertKind::Reminder;
            a.at = wall;
            a.id = format!("{site}-reminder-{}", ms(wall));
            queued.push(Queued {
                alert: a,
                channels: route.notify.clone(),
                failing: 0,
            });
            reminded.push((site.clone(), wall));
        }
        if !queued.is_empty() {
            self.enqueue(Vec::new(), queued, reminded).await;
        }
    }

    /// Groups the held down alerts that are due where at least
    /// [`policy::STORM_MIN`] share a channel and a cause: the grouped alert
    /// is stored and its members marked in one transaction, then it is sent.
    pub(super) async fn group_storms(&mut self) {
        let now = Instant::now();
        // Every down alert not yet tried, by channel and cause; a group is
        // released when its oldest member's hold ends.
        let mut groups: HashMap<(String, String), (Vec<u64>, bool)> = HashMap::new();
        for (id, d) in &self.deliveries {
            let groups_storms = self
                .channels
                .get(&d.channel)
                .is_none_or(|c| c.groups_storms());
            if d.alert.kind == AlertKind::Down
                && d.attempts == 0
                && !d.busy
                && !d.done
                && d.standby.is_none()
                && groups_storms
            {
                let g = groups
                    .entry((d.channel.clone(), policy::storm_key(&d.alert)))
                    .or_default();
                g.0.push(*id);
                g.1 |= d.next <= now;
            }
        }
        for ((channel, _), (members, due)) in groups {
            if !due || members.len() < policy::STORM_MIN {
                continue;
            }
            let group = {
                let alerts: Vec<&Alert> = members
                    .iter()
                    .filter_map(|id| self.deliveries.get(id))
                    .map(|d| d.alert.as_ref())
                    .collect();
                let hold = self
                    .channels
                    .get(&channel)
                    .map_or(self.storm_hold, |c| c.storm_hold);
                policy::storm(&alerts, hold, SystemTime::now())
            };
            tracing::info!(channel = %channel, sites = members.len(), alert = %group.id, "many sites down at once: one grouped alert");
            let member_keys: Vec<(String, String)> = members
                .iter()
                .filter_map(|id| self.deliveries.get(id))
                .map(|d| (d.alert.id.clone(), d.channel.clone()))
                .collect();
            let row = NewDelivery {
                alert_id: group.id.clone(),
                channel: channel.clone(),
                json: serde_json::to_string(&group).unwrap_or_default(),
            };
            if let Err(e) = self.outbox.group(vec![row], member_keys).await {
                tracing::error!(alert = %group.id, error = %e, "cannot store the grouped alert; sending it anyway");
            }
            for id in &members {
                if let Some(d) = self.deliveries.get_mut(id) {
                    d.done = true;
                }
            }
            self.push(Arc::new(group), channel, 0, now);
        }
    }
}
