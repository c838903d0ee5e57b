//! The dispatcher: one task that turns committed changes into deliveries
//! and gets them delivered.
//!
//! Events arrive from the history writer once their change is committed.
//! The dispatcher applies the alert policy (flap damping, storm grouping),
//! stores the deliveries in the outbox and marks the events handled in one
//! transaction, then sends each delivery as a task of its own, one at a
//! time per site and channel (a receiver always hears "down" before
//! "recovered"), retrying transient failures with backoff. Open outages are
//! remembered for their reminders, which follow the current routing.
//! Alertmanager channels are also refreshed with the alerts that still
//! fire (`refresh`). Every wait is measured on the monotonic clock; wall
//! time is only what alerts show.

mod deliver;
mod handover;
mod queue;
mod refresh;

use super::outbox::Outbox;
use super::policy::FlapGuard;
use super::{Alert, Channel, ChannelSet, Event, Route, SharedStats};
use crate::history::{DeliveryState, OpenOutage, StoredDelivery};
use deliver::Attempts;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot};
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
    /// (site, channel) → the message that opened the site's outage there.
    pub threads: HashMap<(String, String), String>,
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
    /// Held for other vantages (the site's owner first), which are asked
    /// when this is due; `None`: sent from here.
    standby: Option<Vec<String>>,
}

/// An alert about to be queued: for these channels, with the storm signal.
struct Queued {
    alert: Alert,
    channels: Vec<String>,
    failing: usize,
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
    /// What keeps Alertmanager channels in step.
    refresh: refresh::Refresher,
    /// With peers: who sends chat and email alerts.
    senders: Option<Arc<crate::cluster::sender::Senders>>,
    /// (site, channel) where this vantage announced the open outage or
    /// degradation: it also sends what follows there.
    announced: HashSet<(String, String)>,
    /// (site, channel) where the owner took it up, and which owner.
    delegated: HashMap<(String, String), String>,
    /// Maintenance windows: reminders of a covered site pause.
    windows: crate::maintenance::Windows,
    /// Silences: the alerts they match are not sent.
    silences: crate::silence::Silences,
    /// (site, channel) → the remote id of the message that opened the
    /// site's outage there, for its recovery to edit, reply to or cancel.
    threads: HashMap<(String, String), String>,
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
                refresh: refresh::Refresher::new(),
                senders: None,
                announced: HashSet::new(),
                delegated: HashMap::new(),
                windows: crate::maintenance::Windows::default(),
                silences: crate::silence::Silences::default(),
                threads: HashMap::new(),
            },
            stats,
        )
    }

    /// Decides who sends chat and email alerts with `senders` (a vantage
    /// with peers).
    pub fn with_senders(mut self, senders: Arc<crate::cluster::sender::Senders>) -> Dispatcher {
        self.senders = Some(senders);
        self
    }

    /// Mutes the alerts `silences` match.
    pub fn with_silences(mut self, silences: crate::silence::Silences) -> Dispatcher {
        self.silences = silences;
        self
    }

    /// The silence that mutes `alert` now, if any.
    fn muted(&self, alert: &crate::alert::Alert) -> Option<String> {
        muted_by(&self.silences, &self.routes, alert)
    }

    /// Pauses the reminders of sites under maintenance in `windows`.
    pub fn with_windows(mut self, windows: crate::maintenance::Windows) -> Dispatcher {
        self.windows = windows;
        self
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
                standby: None,
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
        self.threads = resume.threads;
        for s in resume.deliveries {
            if !self.channels.contains_key(&s.channel) {
                tracing::warn!(alert = %s.alert.id, channel = %s.channel, "the channel of a pending alert no longer exists; dropping it");
                self.outbox.attempt(
                    &s.alert.id,
                    &s.channel,
                    s.attempts,
                    DeliveryState::Failed,
                    Some("channel removed"),
                    crate::history::Remote::default(),
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
        let mut refreshes = refresh::Refreshes::default();
        let mut checks = handover::Checks::default();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut batch = Vec::new();
        loop {
            self.group_storms().await;
            self.start_handovers(&mut checks);
            self.start_due(&mut inflight);
            self.publish();
            let wake = self
                .next_due()
                .unwrap_or_else(|| after(Instant::now(), Duration::from_secs(3600)));
            let refresh_at = self.refresh_at();
            tokio::select! {
                biased;
                Some(c) = control.recv() => match c {
                    Control::Channels(set, done) => {
                        // Deliveries to a channel that is gone are given up on when due.
                        self.channels = set.channels;
                        let old = std::mem::replace(&mut self.routes, set.routes);
                        self.storm_hold = set.storm_hold;
                        self.refresh.reconfigure(&old, &self.routes);
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
                Some(done) = refreshes.next() => self.refreshed(done),
                Some((id, taken)) = checks.next() => self.handed_over(id, taken),
                () = tokio::time::sleep_until(refresh_at) => self.refresh_due(&mut refreshes),
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

/// The silence among `silences` that mutes `alert` now, if any; the site's
/// tags come from its route.
fn muted_by(
    silences: &crate::silence::Silences,
    routes: &HashMap<String, Route>,
    alert: &crate::alert::Alert,
) -> Option<String> {
    if silences.is_empty() {
        return None;
    }
    let cause = alert.cause.map(|c| c.as_str());
    let spec = routes.get(&alert.site).and_then(|r| r.spec.as_ref());
    let labels = match spec {
        Some(s) => crate::silence::Labels::of(s, cause),
        None => crate::silence::Labels {
            site: &alert.site,
            cause,
            ..Default::default()
        },
    };
    silences.muting(&labels, SystemTime::now())
}
