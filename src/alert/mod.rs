//! Alerts: every transition the state machine reports becomes an alert,
//! written to a durable outbox, then delivered to the site's channels
//! (email, Slack, a generic webhook) with retries, without ever holding up
//! probing.
//!
//! Sees transitions and site specs, never the store. The [`Dispatcher`] is
//! one task: it receives events over a channel, persists each delivery
//! before its first attempt, sends attempts as tasks of their own (a slow
//! mail server delays nothing else), retries transient failures with
//! exponential backoff and jitter, gives up on permanent ones loudly, and
//! sends reminders while a site stays down.

pub mod channel;
pub mod outbox;
pub mod policy;
pub mod render;

use crate::config::SiteSpec;
use crate::diagnosis::Cause;
use crate::probe::{LayerReport, ProbeReport};
use crate::state::{Health, Kind, Transition};
pub use channel::{Channel, SendError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// What an alert announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The site is down (confirmed).
    Down,
    /// Still down, for another reason.
    CauseChanged,
    /// Works, but needs attention.
    Degraded,
    /// Up again after an outage.
    Recovered,
    /// No longer degraded.
    Resolved,
    /// Still down, `remind_every` later.
    Reminder,
    /// `sitewatch notify-test`.
    Test,
    /// Many sites down at once, in one message.
    Storm,
    /// A site changes state too often; quiet until it settles.
    Flapping,
    /// A flapping site has settled; its state now.
    Settled,
}

impl AlertKind {
    /// The event word of the webhook body.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Down => "down",
            AlertKind::CauseChanged => "cause_changed",
            AlertKind::Degraded => "degraded",
            AlertKind::Recovered => "recovered",
            AlertKind::Resolved => "resolved",
            AlertKind::Reminder => "reminder",
            AlertKind::Test => "test",
            AlertKind::Storm => "storm",
            AlertKind::Flapping => "flapping",
            AlertKind::Settled => "settled",
        }
    }
}

/// Everything an alert says, fixed when it is made (and stored as is).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable id: the same alert keeps it across retries and restarts.
    pub id: String,
    /// What it announces.
    pub kind: AlertKind,
    /// The site's name.
    pub site: String,
    /// The site's URL.
    pub url: String,
    /// The new status word.
    pub status: String,
    /// The cause now.
    pub cause: Option<Cause>,
    /// The cause before (cause changed, resolved).
    pub previous_cause: Option<Cause>,
    /// The facts.
    pub detail: String,
    /// What to check first.
    pub hint: Option<String>,
    /// When the new status began (for down: the first failed probe).
    pub since: SystemTime,
    /// When the alert was made.
    pub at: SystemTime,
    /// For a recovery: the outage's length in seconds.
    pub outage_s: Option<u64>,
    /// For a recovery: the causes of the outage, in order.
    pub timeline: Vec<(SystemTime, Cause)>,
    /// For a recovery: the first and last failure's detail.
    pub first_error: Option<String>,
    /// See `first_error`.
    pub last_error: Option<String>,
    /// The probe's layers.
    pub layers: Vec<LayerReport>,
    /// The address the probe is about.
    pub addr: Option<SocketAddr>,
}

impl Alert {
    /// An alert with only its identity and status; the rest empty.
    pub fn bare(id: String, kind: AlertKind, site: String, status: &str, now: SystemTime) -> Alert {
        Alert {
            id,
            kind,
            site,
            url: String::new(),
            status: status.to_string(),
            cause: None,
            previous_cause: None,
            detail: String::new(),
            hint: None,
            since: now,
            at: now,
            outage_s: None,
            timeline: Vec::new(),
            first_error: None,
            last_error: None,
            layers: Vec::new(),
            addr: None,
        }
    }
}

fn ms(t: SystemTime) -> i64 {
    crate::history::unix_ms(t)
}

/// A confirmed change on its way to the dispatcher.
pub struct Event {
    /// The site.
    pub site: Arc<SiteSpec>,
    /// The change.
    pub transition: Transition,
    /// The probe that confirmed it.
    pub report: ProbeReport,
}

/// What an outage has been through so far (for the recovery alert and reminders).
struct Outage {
    timeline: Vec<(SystemTime, Cause)>,
    first_error: String,
    last: Alert,
    reminded: SystemTime,
}

/// Delivery figures for `/status` and `/healthz`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AlertStats {
    /// Deliveries waiting (first attempt or retry).
    pub pending: usize,
    /// Per channel: sent, failed (gave up), and the last error.
    pub channels: HashMap<String, ChannelStats>,
}

/// One channel's delivery figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ChannelStats {
    /// Alerts delivered.
    pub sent: u64,
    /// Failed attempts, retried or not.
    pub failed_attempts: u64,
    /// Deliveries given up on.
    pub given_up: u64,
    /// The last failure, scrubbed of secrets.
    pub last_error: Option<String>,
    /// When it happened.
    #[serde(with = "crate::timefmt::option")]
    pub last_error_at: Option<SystemTime>,
}

/// Shared delivery figures.
pub type SharedStats = Arc<Mutex<AlertStats>>;

/// Builds the alert for a transition (`None` for changes that alert nobody).
pub fn from_transition(
    site: &SiteSpec,
    t: &Transition,
    report: &ProbeReport,
    now: SystemTime,
) -> Option<Alert> {
    if !t.kind.alerts() {
        return None;
    }
    let kind = match t.kind {
        Kind::Down => AlertKind::Down,
        Kind::CauseChanged => AlertKind::CauseChanged,
        Kind::Degraded => AlertKind::Degraded,
        Kind::Recovered { .. } => AlertKind::Recovered,
        Kind::Resolved => AlertKind::Resolved,
        Kind::Initial => return None,
    };
    Some(Alert {
        id: format!("{}-{}-{}", site.name, kind.as_str(), ms(t.since)),
        kind,
        site: site.name.clone(),
        url: site.target.url.clone(),
        status: t.to.as_str().to_string(),
        cause: t.to.cause(),
        previous_cause: t.from.cause(),
        detail: report.detail.clone(),
        hint: report.hint.clone(),
        since: t.since,
        at: now,
        outage_s: match t.kind {
            Kind::Recovered { outage } => Some(outage.as_secs()),
            _ => None,
        },
        timeline: Vec::new(),
        first_error: None,
        last_error: None,
        layers: report.layers.clone(),
        addr: report.addr,
    })
}

/// One delivery in memory.
struct Delivery {
    alert: Arc<Alert>,
    channel: String,
    attempts: u32,
    next: Instant,
    first_try: SystemTime,
}

/// Retries stop after this long; the delivery is then given up on.
const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Backoff before attempt `n + 1`: 5 s doubling to 10 min, ±20 % jitter.
pub fn backoff(attempts: u32, jitter_seed: u64) -> Duration {
    let base = 5u64.saturating_mul(1u64 << attempts.min(10)).min(600);
    let spread = (jitter_seed % 401) as i64 - 200; // -200..=200 per mille
    let ms = (base * 1000) as i64 + (base as i64 * spread);
    Duration::from_millis(ms.max(1000) as u64)
}

/// The channels of one configuration, ready to send (secrets resolved),
/// and the reminder interval of each site.
pub struct ChannelSet {
    channels: HashMap<String, Arc<Channel>>,
    remind: HashMap<String, Duration>,
}

impl ChannelSet {
    /// Prepares every channel of `config`; a missing secret is an error
    /// naming the channel.
    pub fn from_config(config: &crate::config::Config) -> Result<ChannelSet, String> {
        let mut channels = HashMap::new();
        for spec in &config.channels {
            let ch = Channel::new(spec).map_err(|e| format!("alert channel {}: {e}", spec.name))?;
            channels.insert(spec.name.clone(), Arc::new(ch));
        }
        let remind = config
            .sites
            .iter()
            .filter_map(|s| s.remind_every.map(|r| (s.name.clone(), r)))
            .collect();
        Ok(ChannelSet { channels, remind })
    }
}

/// The alert dispatcher.
pub struct Dispatcher {
    channels: HashMap<String, Arc<Channel>>,
    outbox: Arc<Mutex<outbox::Outbox>>,
    stats: SharedStats,
    deliveries: Vec<Delivery>,
    outages: HashMap<String, Outage>,
    remind: HashMap<String, Duration>,
    flaps: HashMap<String, policy::FlapGuard>,
    /// The last alert made for each site (sent or not), for the settled message.
    last: HashMap<String, (Alert, Vec<String>)>,
}

impl Dispatcher {
    /// Prepares every channel of the configuration (secrets resolved now,
    /// so a missing one stops start-up) and opens the outbox in `state_dir`.
    pub fn new(
        config: &crate::config::Config,
        state_dir: &Path,
    ) -> Result<(Dispatcher, SharedStats), String> {
        let set = ChannelSet::from_config(config)?;
        let stats: SharedStats = Arc::default();
        Ok((
            Dispatcher {
                channels: set.channels,
                outbox: Arc::new(Mutex::new(outbox::Outbox::open(state_dir))),
                stats: Arc::clone(&stats),
                deliveries: Vec::new(),
                outages: HashMap::new(),
                remind: set.remind,
                flaps: HashMap::new(),
                last: HashMap::new(),
            },
            stats,
        ))
    }

    fn with_outbox<T>(
        &self,
        f: impl FnOnce(&mut outbox::Outbox) -> Result<T, String>,
    ) -> Result<T, String> {
        let mut o = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut o)
    }

    /// Queues `alert` for `channels`: stored (and synced) first, then due at once.
    fn enqueue(&mut self, alert: Alert, channels: &[String]) {
        let channels: Vec<String> = channels
            .iter()
            .filter(|c| self.channels.contains_key(*c))
            .cloned()
            .collect();
        if channels.is_empty() {
            return;
        }
        let channels = match self.with_outbox(|o| o.add(&alert, &channels)) {
            Ok(new) => {
                if new.len() < channels.len() {
                    tracing::info!(alert = %alert.id, "alert already stored (confirmed again after a restart): not sent twice");
                }
                new
            }
            Err(e) => {
                tracing::error!(alert = %alert.id, error = %e, "cannot store the alert in the outbox; sending it anyway, but it would not survive a restart");
                channels
            }
        };
        // Also in memory: the same alert must not be queued twice.
        let channels: Vec<String> = channels
            .into_iter()
            .filter(|c| {
                !self
                    .deliveries
                    .iter()
                    .any(|d| d.alert.id == alert.id && d.channel == *c)
            })
            .collect();
        if channels.is_empty() {
            return;
        }
        let now = Instant::now();
        if alert.kind == AlertKind::Down {
            // Held briefly, so that many sites going down together become one message.
            self.hold(alert, channels, now + policy::STORM_WINDOW);
            return;
        }
        // A later alert of a site releases its held down alert first.
        for d in self.deliveries.iter_mut() {
            if d.alert.site == alert.site
                && d.alert.kind == AlertKind::Down
                && d.attempts == 0
                && d.next > now
            {
                d.next = now;
            }
        }
        self.hold(alert, channels, now);
    }

    fn hold(&mut self, alert: Alert, channels: Vec<String>, until: Instant) {
        let alert = Arc::new(alert);
        for channel in channels {
            self.deliveries.push(Delivery {
                alert: Arc::clone(&alert),
                channel,
                attempts: 0,
                next: until,
                first_try: SystemTime::now(),
            });
        }
    }

    /// Turns the held down alerts that are due into grouped messages where
    /// at least [`policy::STORM_MIN`] share a channel and a cause.
    fn group_storms(&mut self, busy: &[bool], now: Instant) {
        let mut groups: HashMap<(String, String), Vec<usize>> = HashMap::new();
        for (i, d) in self.deliveries.iter().enumerate() {
            if d.alert.kind == AlertKind::Down
                && d.attempts == 0
                && d.next <= now
                && !busy.get(i).copied().unwrap_or(false)
            {
                groups
                    .entry((d.channel.clone(), policy::storm_key(&d.alert)))
                    .or_default()
                    .push(i);
            }
        }
        for ((channel, _), members) in groups {
            if members.len() < policy::STORM_MIN {
                continue;
            }
            let group = {
                let alerts: Vec<&Alert> = members
                    .iter()
                    .map(|&i| self.deliveries[i].alert.as_ref())
                    .collect();
                policy::storm(&alerts, SystemTime::now())
            };
            tracing::info!(channel = %channel, sites = members.len(), alert = %group.id, "many sites down at once: one grouped alert");
            for &i in &members {
                let d = &mut self.deliveries[i];
                d.attempts = u32::MAX;
                let (id, ch) = (d.alert.id.clone(), d.channel.clone());
                let note = format!("sent as part of {}", group.id);
                if let Err(e) = self.with_outbox(|o| o.update(&id, &ch, 0, "grouped", Some(&note)))
                {
                    tracing::error!(alert = %id, error = %e, "cannot record the grouped alert in the outbox");
                }
            }
            self.enqueue(group, &[channel]);
        }
    }

    fn on_event(&mut self, ev: Event) {
        let now = SystemTime::now();
        let site = &ev.site.name;
        let Some(mut alert) = from_transition(&ev.site, &ev.transition, &ev.report, now) else {
            return;
        };
        match ev.transition.kind {
            Kind::Down => {
                self.outages.insert(
                    site.clone(),
                    Outage {
                        timeline: alert
                            .cause
                            .map(|c| vec![(alert.since, c)])
                            .unwrap_or_default(),
                        first_error: alert.detail.clone(),
                        last: alert.clone(),
                        reminded: now,
                    },
                );
            }
            Kind::CauseChanged => {
                if let Some(o) = self.outages.get_mut(site) {
                    if let Some(c) = alert.cause {
                        o.timeline.push((alert.since, c));
                    }
                    o.last = alert.clone();
                    o.reminded = now;
                }
                // The outage began before the new cause: say so.
                if let Health::Down(_) = ev.transition.from {
                    alert.since = self
                        .outages
                        .get(site)
                        .and_then(|o| o.timeline.first().map(|(t, _)| *t))
                        .unwrap_or(alert.since);
                }
            }
            Kind::Recovered { .. } => {
                if let Some(o) = self.outages.remove(site) {
                    alert.timeline = o.timeline;
                    alert.first_error = Some(o.first_error);
                    alert.last_error = Some(o.last.detail);
                }
            }
            _ => {}
        }
        let channels = ev.site.notify.clone();
        self.last
            .insert(site.clone(), (alert.clone(), channels.clone()));
        match self.flaps.entry(site.clone()).or_default().on_change(now) {
            policy::FlapVerdict::Pass => self.enqueue(alert, &channels),
            policy::FlapVerdict::Suppress => {
                tracing::info!(site = %site, change = ev.transition.kind.as_str(), "site is flapping: change not alerted");
            }
            policy::FlapVerdict::StartFlapping => {
                let mut a = alert;
                a.id = format!("{site}-flapping-{}", ms(now));
                a.kind = AlertKind::Flapping;
                tracing::warn!(site = %site, "site is flapping: one alert now, then quiet until it settles");
                self.enqueue(a, &channels);
            }
        }
    }

    /// Flapping sites that have been quiet long enough: say where they ended up.
    fn settle(&mut self) {
        let now = SystemTime::now();
        let settled: Vec<String> = self
            .flaps
            .iter_mut()
            .filter_map(|(site, g)| g.settled(now).then(|| site.clone()))
            .collect();
        for site in settled {
            if let Some((last, channels)) = self.last.get(&site).cloned() {
                let mut a = last;
                a.id = format!("{site}-settled-{}", ms(now));
                a.kind = AlertKind::Settled;
                a.at = now;
                self.enqueue(a, &channels);
            }
        }
    }

    fn reminders(&mut self, channels_of: &HashMap<String, Vec<String>>) {
        let now = SystemTime::now();
        let mut due = Vec::new();
        for (site, o) in self.outages.iter_mut() {
            let Some(every) = self.remind.get(site) else {
                continue;
            };
            if now.duration_since(o.reminded).unwrap_or_default() >= *every {
                o.reminded = now;
                let mut a = o.last.clone();
                a.kind = AlertKind::Reminder;
                a.since = o.timeline.first().map_or(a.since, |(t, _)| *t);
                a.at = now;
                a.id = format!("{}-reminder-{}", site, ms(now));
                due.push((site.clone(), a));
            }
        }
        for (site, a) in due {
            let channels = channels_of.get(&site).cloned().unwrap_or_default();
            self.enqueue(a, &channels);
        }
    }

    /// Runs until the event channel closes (the scheduler has stopped and
    /// handed over its last events): events in, deliveries out. Deliveries
    /// still pending then stay in the outbox for the next start.
    pub async fn run(
        mut self,
        sites: Vec<Arc<SiteSpec>>,
        mut events: mpsc::UnboundedReceiver<Event>,
        mut updates: mpsc::UnboundedReceiver<ChannelSet>,
    ) {
        let channels_of: HashMap<String, Vec<String>> = sites
            .iter()
            .map(|s| (s.name.clone(), s.notify.clone()))
            .collect();
        // What an earlier run left pending goes first, with its ids.
        match self.with_outbox(|o| o.pending()) {
            Ok(left) => {
                if !left.is_empty() {
                    tracing::info!(
                        pending = left.len(),
                        "sending alerts left pending before the restart"
                    );
                }
                for s in left {
                    if !self.channels.contains_key(&s.channel) {
                        tracing::warn!(alert = %s.alert.id, channel = %s.channel, "the channel of a pending alert no longer exists; dropping it");
                        let _ = self.with_outbox(|o| {
                            o.update(
                                &s.alert.id,
                                &s.channel,
                                s.attempts,
                                "failed",
                                Some("channel removed"),
                            )
                        });
                        continue;
                    }
                    self.deliveries.push(Delivery {
                        alert: Arc::new(s.alert),
                        channel: s.channel,
                        attempts: s.attempts,
                        next: Instant::now(),
                        first_try: SystemTime::now(),
                    });
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the alert outbox"),
        }
        let _ = self.with_outbox(|o| o.prune());
        let mut inflight: JoinSet<(usize, Result<(), SendError>)> = JoinSet::new();
        let mut busy: Vec<bool> = Vec::new();
        let mut seed: u64 = (ms(SystemTime::now()) as u64) | 1;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Start every due delivery that is not in flight.
            busy.resize(self.deliveries.len(), false);
            let now = Instant::now();
            self.group_storms(&busy, now);
            busy.resize(self.deliveries.len(), false);
            // One delivery at a time per site and channel, oldest first, so a
            // receiver always hears "down" before "recovered".
            let mut blocked: std::collections::HashSet<(&str, &str)> =
                std::collections::HashSet::new();
            for (i, d) in self.deliveries.iter().enumerate() {
                if d.attempts == u32::MAX {
                    continue;
                }
                let key = (d.alert.site.as_str(), d.channel.as_str());
                if !blocked.insert(key) || busy[i] || d.next > now {
                    continue;
                }
                let ch = self.channels.get(&d.channel).cloned();
                busy[i] = true;
                let alert = Arc::clone(&d.alert);
                let Some(ch) = ch else {
                    // The channel was removed by a reload: say so, once.
                    inflight.spawn(async move {
                        (
                            i,
                            Err(SendError::Permanent(
                                "the channel was removed by a reload".to_string(),
                            )),
                        )
                    });
                    continue;
                };
                inflight.spawn(async move {
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
                    (i, r)
                });
            }
            self.publish();
            tokio::select! {
                Some(set) = updates.recv() => {
                    // Channel changes apply from the next alert on; deliveries
                    // to a channel that is gone are given up on when due.
                    self.channels = set.channels;
                    self.remind = set.remind;
                }
                ev = events.recv() => match ev {
                    Some(ev) => self.on_event(ev),
                    None => break,
                },
                Some(done) = inflight.join_next() => {
                    let Ok((i, result)) = done else { continue };
                    busy[i] = false;
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    self.finish(i, result, seed);
                    // Drop finished deliveries (indexes shift: only when nothing is in flight).
                    if inflight.is_empty() {
                        self.deliveries.retain(|d| d.attempts != u32::MAX);
                        busy.clear();
                    }
                }
                _ = tick.tick() => {
                    self.reminders(&channels_of);
                    self.settle();
                }
            }
        }
        // Let attempts in flight end (bounded by their timeout), recording results.
        let deadline = tokio::time::sleep(Duration::from_secs(5));
        tokio::pin!(deadline);
        while !inflight.is_empty() {
            tokio::select! {
                Some(done) = inflight.join_next() => {
                    if let Ok((i, result)) = done {
                        self.finish(i, result, seed);
                    }
                }
                () = &mut deadline => break,
            }
        }
        self.publish();
    }

    fn finish(&mut self, i: usize, result: Result<(), SendError>, seed: u64) {
        let Some(d) = self.deliveries.get_mut(i) else {
            return;
        };
        let alert_id = d.alert.id.clone();
        let channel = d.channel.clone();
        d.attempts += 1;
        let attempts = d.attempts;
        let (state, error) = match &result {
            Ok(()) => {
                tracing::info!(alert = %alert_id, %channel, site = %d.alert.site, kind = d.alert.kind.as_str(), "alert sent");
                ("sent", None)
            }
            Err(SendError::Permanent(msg)) => {
                tracing::error!(alert = %alert_id, %channel, error = %msg, "alert NOT delivered: the channel refused it permanently; fix the channel (sitewatch notify-test) — not retried");
                ("failed", Some(msg.clone()))
            }
            Err(SendError::Transient {
                message,
                retry_after,
            }) => {
                if SystemTime::now()
                    .duration_since(d.first_try)
                    .unwrap_or_default()
                    > GIVE_UP_AFTER
                {
                    tracing::error!(alert = %alert_id, %channel, error = %message, "alert NOT delivered after 24 hours of retries; giving up");
                    ("failed", Some(message.clone()))
                } else {
                    let wait = retry_after.unwrap_or_else(|| backoff(attempts - 1, seed));
                    d.next = Instant::now() + wait;
                    tracing::warn!(alert = %alert_id, %channel, error = %message, retry_in = %render::human(wait), "alert delivery failed, will retry");
                    ("pending", Some(message.clone()))
                }
            }
        };
        if state != "pending" {
            d.attempts = u32::MAX;
        }
        {
            let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
            let c = stats.channels.entry(channel.clone()).or_default();
            match state {
                "sent" => c.sent += 1,
                "failed" => {
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
        if let Err(e) =
            self.with_outbox(|o| o.update(&alert_id, &channel, attempts, state, error.as_deref()))
        {
            tracing::error!(alert = %alert_id, error = %e, "cannot record the delivery in the outbox");
        }
    }

    fn publish(&self) {
        let pending = self
            .deliveries
            .iter()
            .filter(|d| d.attempts != u32::MAX)
            .count();
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).pending = pending;
    }
}

/// `sitewatch notify-test`: sends a test alert through each channel (or the
/// named one) now, without the outbox, and says what happened. Returns
/// whether every attempt succeeded.
pub async fn notify_test(
    config: &crate::config::Config,
    only: Option<&str>,
) -> Result<bool, String> {
    let specs: Vec<_> = config
        .channels
        .iter()
        .filter(|c| only.is_none_or(|n| n == c.name))
        .collect();
    if specs.is_empty() {
        return Err(match only {
            Some(n) => format!(
                "no alert channel named \"{n}\" in {}",
                config.path.display()
            ),
            None => format!(
                "{} defines no alert channel ([alert.NAME])",
                config.path.display()
            ),
        });
    }
    let mut all_ok = true;
    for spec in specs {
        let now = SystemTime::now();
        let result = match Channel::new(spec) {
            Err(e) => Err(SendError::Permanent(e)),
            Ok(ch) => {
                let alert = Alert::bare(
                    format!("test-{}-{}", spec.name, ms(now)),
                    AlertKind::Test,
                    spec.name.clone(),
                    "up",
                    now,
                );
                ch.send(&alert, now).await
            }
        };
        match result {
            Ok(()) => println!("{} ({}): sent", spec.name, spec.kind.as_str()),
            Err(e) => {
                all_ok = false;
                println!("{} ({}): FAILED: {e}", spec.name, spec.kind.as_str());
            }
        }
    }
    Ok(all_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_ten_minutes_with_bounded_jitter() {
        for seed in [0u64, 200, 400, 12345] {
            let b0 = backoff(0, seed).as_secs_f64();
            assert!((4.0..=6.0).contains(&b0), "{b0}");
            let b3 = backoff(3, seed).as_secs_f64();
            assert!((32.0..=48.0).contains(&b3), "{b3}");
            let b20 = backoff(20, seed).as_secs_f64();
            assert!((480.0..=720.0).contains(&b20), "{b20}");
        }
    }
}
