//! The dispatcher: one task that turns committed changes into deliveries
//! and gets them delivered.
//!
//! Events arrive from the history writer once their change is committed.
//! The dispatcher applies the alert policy (flap damping, storm grouping),
//! stores the deliveries in the outbox and marks the events handled in one
//! transaction, then sends each delivery as a task of its own, one at a
//! time per site and channel (a receiver always hears "down" before
//! "recovered"), retrying transient failures with backoff. Open outages are
//! remembered for their reminders, which follow the current routing. Every
//! wait is measured on the monotonic clock; wall time is only what alerts
//! show.

use super::outbox::Outbox;
use super::policy::{self, FlapGuard, FlapVerdict};
use super::{
    Alert, AlertKind, Channel, ChannelSet, Event, GIVE_UP_AFTER, MAX_RETRY_AFTER, Route, SendError,
    SharedStats, backoff, channel, render,
};
use crate::history::{DeliveryState, NewDelivery, OpenOutage, StoredDelivery};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// What the dispatcher can be told while it runs.
pub enum Control {
    /// Switch to the channels and routing of a new configuration; the
    /// sender hears once it applies (before any event of the new sites).
    Channels(ChannelSet, oneshot::Sender<()>),
    /// The daemon stops: queue the events already here, let attempts in
    /// flight end (bounded), and return.
    Stop,
}

/// What a start resumes (from [`crate::history::Resumed`]).
#[derive(Default)]
pub struct Resume {
    /// Alerts committed with their change but not yet in the outbox.
    pub due: Vec<Event>,
    /// Deliveries not yet delivered.
    pub deliveries: Vec<StoredDelivery>,
    /// Outages still open.
    pub outages: Vec<OpenOutage>,
}

/// An open outage: what its reminders repeat, and when one was last made.
struct Outage {
    last: Alert,
    reminded: Instant,
}

/// One delivery in memory.
struct Delivery {
    alert: Arc<Alert>,
    channel: String,
    attempts: u32,
    next: Instant,
    first_try: Instant,
    busy: bool,
    done: bool,
}

/// An alert about to be queued: for these channels, with the storm signal.
struct Queued {
    alert: Alert,
    channels: Vec<String>,
    failing: usize,
}

/// Attempts in flight, each a task; a task that panics still reports back
/// (as a failed attempt), so its delivery is never left busy.
#[derive(Default)]
struct Attempts {
    set: JoinSet<(u64, Result<(), SendError>)>,
    ids: HashMap<tokio::task::Id, u64>,
}

impl Attempts {
    fn spawn(
        &mut self,
        id: u64,
        attempt: impl std::future::Future<Output = (u64, Result<(), SendError>)> + Send + 'static,
    ) {
        let handle = self.set.spawn(attempt);
        self.ids.insert(handle.id(), id);
    }

    fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// The next attempt to end: its delivery and outcome.
    async fn next(&mut self) -> Option<(u64, Result<(), SendError>)> {
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

/// The alert dispatcher.
pub struct Dispatcher {
    channels: HashMap<String, Arc<Channel>>,
    routes: HashMap<String, Route>,
    storm_hold: Duration,
    outbox: Outbox,
    stats: SharedStats,
    /// By id, which is also the order they were queued in.
    deliveries: BTreeMap<u64, Delivery>,
    next_id: u64,
    outages: HashMap<String, Outage>,
    flaps: HashMap<String, FlapGuard>,
    /// The last alert made for each site (sent or not), for the settled message.
    last: HashMap<String, (Alert, Vec<String>)>,
    /// Down alerts of the last `storm_hold`, by site: a storm forming.
    recent_downs: VecDeque<(Instant, String)>,
    seed: u64,
}

fn ms(t: SystemTime) -> i64 {
    crate::history::unix_ms(t)
}

/// `now + wait`, or a time far off if that overflows.
fn after(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait)
        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365))
}

impl Dispatcher {
    /// A dispatcher for `set`'s channels, storing through `outbox`.
    pub fn new(set: ChannelSet, outbox: Outbox) -> (Dispatcher, SharedStats) {
        let stats: SharedStats = Arc::default();
        let seed = (ms(SystemTime::now()) as u64) | 1;
        (
            Dispatcher {
                channels: set.channels,
                routes: set.routes,
                storm_hold: set.storm_hold,
                outbox,
                stats: Arc::clone(&stats),
                deliveries: BTreeMap::new(),
                next_id: 0,
                outages: HashMap::new(),
                flaps: HashMap::new(),
                last: HashMap::new(),
                recent_downs: VecDeque::new(),
                seed,
            },
            stats,
        )
    }

    fn push(&mut self, alert: Arc<Alert>, channel: String, attempts: u32, next: Instant) {
        self.next_id += 1;
        self.deliveries.insert(
            self.next_id,
            Delivery {
                alert,
                channel,
                attempts,
                next,
                first_try: Instant::now(),
                busy: false,
                done: false,
            },
        );
    }

    fn resume(&mut self, resume: Resume) -> Vec<Event> {
        if !resume.deliveries.is_empty() {
            tracing::info!(
                pending = resume.deliveries.len(),
                "sending alerts left pending before the restart"
            );
        }
        let now = Instant::now();
        for s in resume.deliveries {
            if !self.channels.contains_key(&s.channel) {
                tracing::warn!(alert = %s.alert.id, channel = %s.channel, "the channel of a pending alert no longer exists; dropping it");
                self.outbox.attempt(
                    &s.alert.id,
                    &s.channel,
                    s.attempts,
                    DeliveryState::Failed,
                    Some("channel removed"),
                );
                continue;
            }
            self.push(Arc::new(s.alert), s.channel, s.attempts, now);
        }
        // Wall time only to learn how long ago; the monotonic clock from here on.
        let wall = SystemTime::now();
        for o in resume.outages {
            let ago = wall.duration_since(o.reminded).unwrap_or_default();
            let reminded = now.checked_sub(ago).unwrap_or(now);
            self.outages.insert(
                o.site,
                Outage {
                    last: o.last,
                    reminded,
                },
            );
        }
        if !resume.due.is_empty() {
            tracing::info!(
                alerts = resume.due.len(),
                "alerts committed before the restart but not yet queued: queuing them now"
            );
        }
        resume.due
    }

    /// Whether a down alert of `site` should wait for others: another site
    /// began failing shortly before (`failing`), or another down alert came
    /// within the hold.
    fn storm_forming(&mut self, site: &str, failing: usize) -> bool {
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
    async fn enqueue(
        &mut self,
        handled: Vec<i64>,
        queued: Vec<Queued>,
        reminded: Vec<(String, SystemTime)>,
    ) {
        let mut rows = Vec::new();
        let mut plan = Vec::new();
        for q in queued {
            let channels: Vec<String> = q
                .channels
                .into_iter()
                .filter(|c| self.channels.contains_key(c))
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
            let hold = alert.kind == AlertKind::Down
                && self.storm_forming(&alert.site, failing + others_in_batch);
            if !hold {
                // A later alert of a site releases its held down alert first.
                for d in self.deliveries.values_mut() {
                    if d.alert.site == alert.site
                        && d.alert.kind == AlertKind::Down
                        && d.attempts == 0
                        && d.next > now
                    {
                        d.next = now;
                    }
                }
            }
            let next = if hold {
                after(now, self.storm_hold)
            } else {
                now
            };
            self.push(alert, channel, 0, next);
        }
    }

    /// Turns committed changes into queued alerts.
    async fn on_events(&mut self, events: Vec<Event>) {
        let now = Instant::now();
        let mut handled = Vec::new();
        let mut queued = Vec::new();
        for ev in events {
            if let Some(id) = ev.journal {
                handled.push(id);
            }
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
    async fn settle(&mut self) {
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
    async fn reminders(&mut self) {
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
    async fn group_storms(&mut self) {
        let now = Instant::now();
        // Every down alert not yet tried, by channel and cause; a group is
        // released when its oldest member's hold ends.
        let mut groups: HashMap<(String, String), (Vec<u64>, bool)> = HashMap::new();
        for (id, d) in &self.deliveries {
            if d.alert.kind == AlertKind::Down && d.attempts == 0 && !d.busy && !d.done {
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
                policy::storm(&alerts, self.storm_hold, SystemTime::now())
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

    /// Starts every due delivery that may go: one at a time per site and
    /// channel, oldest first.
    fn start_due(&mut self, inflight: &mut Attempts) {
        let now = Instant::now();
        let mut blocked: HashSet<(String, String)> = HashSet::new();
        for (id, d) in self.deliveries.iter_mut() {
            if d.done {
                continue;
            }
            if !blocked.insert((d.alert.site.clone(), d.channel.clone())) || d.busy || d.next > now
            {
                continue;
            }
            d.busy = true;
            let id = *id;
            let alert = Arc::clone(&d.alert);
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
                    ch.send(&alert, SystemTime::now()),
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
    fn next_due(&self) -> Option<Instant> {
        self.deliveries
            .values()
            .filter(|d| !d.done && !d.busy)
            .map(|d| d.next)
            .min()
    }

    /// Runs until the event channel closes (the history writer has handed
    /// over its last events): events in, deliveries out. Deliveries still
    /// pending then stay in the outbox for the next start.
    pub async fn run(
        mut self,
        resume: Resume,
        mut events: mpsc::UnboundedReceiver<Event>,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) {
        let due = self.resume(resume);
        if !due.is_empty() {
            self.on_events(due).await;
        }
        let mut inflight = Attempts::default();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut batch = Vec::new();
        loop {
            self.group_storms().await;
            self.start_due(&mut inflight);
            self.publish();
            let wake = self
                .next_due()
                .unwrap_or_else(|| after(Instant::now(), Duration::from_secs(3600)));
            tokio::select! {
                biased;
                Some(c) = control.recv() => match c {
                    Control::Channels(set, done) => {
                        // Deliveries to a channel that is gone are given up on when due.
                        self.channels = set.channels;
                        self.routes = set.routes;
                        self.storm_hold = set.storm_hold;
                        let _ = done.send(());
                    }
                    Control::Stop => {
                        while let Ok(ev) = events.try_recv() {
                            batch.push(ev);
                        }
                        let evs: Vec<Event> = std::mem::take(&mut batch);
                        if !evs.is_empty() {
                            self.on_events(evs).await;
                        }
                        self.group_storms().await;
                        self.start_due(&mut inflight);
                        break;
                    }
                },
                n = events.recv_many(&mut batch, 256) => {
                    if n == 0 {
                        break;
                    }
                    let evs: Vec<Event> = std::mem::take(&mut batch);
                    self.on_events(evs).await;
                    self.publish_outages();
                }
                Some((id, result)) = inflight.next() => self.finish(id, result),
                () = tokio::time::sleep_until(wake) => {}
                _ = tick.tick() => {
                    self.reminders().await;
                    self.settle().await;
                    self.publish_outages();
                }
            }
            self.deliveries.retain(|_, d| !d.done);
        }
        // Let attempts in flight end (bounded by their timeout), recording results.
        let deadline = tokio::time::sleep(Duration::from_secs(5));
        tokio::pin!(deadline);
        while !inflight.is_empty() {
            tokio::select! {
                Some((id, result)) = inflight.next() => self.finish(id, result),
                () = &mut deadline => break,
            }
        }
        self.publish();
    }

    fn finish(&mut self, id: u64, result: Result<(), SendError>) {
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
            Ok(()) => {
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
            match state {
                DeliveryState::Sent => c.sent += 1,
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
        self.outbox
            .attempt(&d.alert.id, &d.channel, attempts, state, error.as_deref());
    }

    fn publish(&self) {
        let pending = self.deliveries.values().filter(|d| !d.done).count();
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).pending = pending;
    }

    /// Shows the open outages and their next reminders (on `/healthz`).
    fn publish_outages(&self) {
        let now = Instant::now();
        let wall = SystemTime::now();
        let mut outages: Vec<super::OutageView> =
            self.outages
                .iter()
                .map(|(site, o)| super::OutageView {
                    site: site.clone(),
                    since: o.last.since,
                    next_reminder: self.routes.get(site).and_then(|r| r.remind_every).map(
                        |every| {
                            let left = (o.reminded + every).saturating_duration_since(now);
                            wall + left
                        },
                    ),
                })
                .collect();
        outages.sort_by(|a, b| a.site.cmp(&b.site));
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).outages = outages;
    }
}
