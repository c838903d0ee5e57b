//! Alerts: every transition the state machine reports becomes an alert,
//! written to a durable outbox, then delivered to the site's channels
//! (email, Slack, a generic webhook, Alertmanager) with retries, without
//! ever holding up probing. Alertmanager channels are also kept in step
//! with every site's state by a periodic refresh.
//!
//! Sees transitions and site specs, never the store. Alerts are made in
//! two durable steps: the history commits a change together with the alert
//! it makes due (the journal), then hands it to the [`Dispatcher`], which
//! applies the alert policy (flap damping, storm grouping), stores one
//! delivery per channel in the outbox and marks the journal row handled in
//! one transaction, and only then sends. A restart resumes whatever step
//! was reached: due journal rows, pending deliveries and open outages
//! (their reminders). The dispatcher is one task: attempts run as tasks of
//! their own (a slow mail server delays nothing else), transient failures
//! are retried with exponential backoff and jitter, permanent ones are
//! given up on loudly, and reminders repeat while a site stays down.

pub mod alertmanager;
pub mod channel;
mod dispatch;
pub mod exec;
pub mod hook;
pub mod outbox;
pub mod policy;
pub mod render;

pub use dispatch::{Control, Dispatcher, Resume};

use crate::config::SiteSpec;
use crate::diagnosis::Cause;
use crate::probe::{LayerReport, ProbeReport};
use crate::state::{Kind, Level, Transition};
pub use channel::{Channel, SendError, SetupError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

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
    /// An open outage is no longer tracked: the site's probe settings
    /// changed, or it was removed from the configuration.
    Forgotten,
    /// This monitor lost its network: failed probes are not believed.
    NetworkLost,
    /// This monitor's network is back.
    NetworkBack,
    /// A peer vantage no longer answers (its outage is nobody else's to see).
    VantageLost,
    /// A peer vantage answers again.
    VantageBack,
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
            AlertKind::Forgotten => "forgotten",
            AlertKind::NetworkLost => "network_lost",
            AlertKind::NetworkBack => "network_back",
            AlertKind::VantageLost => "vantage_lost",
            AlertKind::VantageBack => "vantage_back",
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
    /// The new status.
    pub status: Level,
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
    /// What each vantage saw when they voted on this change (empty
    /// without peers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<Seen>,
}

/// What one vantage saw of a site when the vantages voted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The vantage.
    pub vantage: String,
    /// `down`, `up`, or `abstains`.
    pub verdict: String,
    /// Its cause, when down.
    pub cause: Option<Cause>,
    /// Its facts, or why it abstained.
    pub detail: String,
    /// It had already confirmed the same before this vote (the change
    /// was announced from there first).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub earlier: bool,
}

impl Alert {
    /// An alert with only its identity and status; the rest empty.
    pub fn bare(
        id: String,
        kind: AlertKind,
        site: String,
        status: Level,
        now: SystemTime,
    ) -> Alert {
        Alert {
            id,
            kind,
            site,
            url: String::new(),
            status,
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
            seen: Vec::new(),
        }
    }
}

fn ms(t: SystemTime) -> i64 {
    crate::history::unix_ms(t)
}

/// A change the history has committed together with the alert it makes
/// due, on its way to the dispatcher.
#[derive(Clone, Debug)]
pub struct Event {
    /// The journal row to mark handled once the deliveries are stored;
    /// `None` when the history could not store the change (the alert still
    /// goes out, without surviving a restart).
    pub journal: Option<Journal>,
    /// The alert, complete: the outage's facts are filled in.
    pub alert: Alert,
    /// The channels it goes to.
    pub notify: Vec<String>,
    /// How many other sites began failing shortly before this change was
    /// confirmed: a storm may be forming.
    pub failing: usize,
}

/// Where a due alert is journaled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Journal {
    /// A site's confirmed change (a `transition` row).
    Transition(i64),
    /// A change of the monitor's own network (a `network_event` row).
    Network(i64),
}

/// What the history knows of the outage a change belongs to (the open
/// incident), for alerts that tell its whole story.
#[derive(Clone, Debug, PartialEq)]
pub struct OutageFacts {
    /// The first failed probe of the outage.
    pub started: SystemTime,
    /// Its causes, in order, with when each began.
    pub timeline: Vec<(SystemTime, Cause)>,
    /// The first failure's detail.
    pub first_error: String,
    /// The latest failure's detail.
    pub last_error: String,
}

impl Alert {
    /// Fills in what the outage knows: a later cause, a reminder or a
    /// forgotten outage count from the outage's start; a recovery and a
    /// forgotten outage carry its causes and first and last error.
    pub fn with_outage(&mut self, o: &OutageFacts) {
        match self.kind {
            AlertKind::CauseChanged | AlertKind::Reminder => self.since = o.started,
            AlertKind::Recovered | AlertKind::Forgotten => {
                if self.kind == AlertKind::Forgotten {
                    self.since = o.started;
                }
                self.timeline = o.timeline.clone();
                self.first_error = Some(o.first_error.clone());
                self.last_error = Some(o.last_error.clone());
            }
            _ => {}
        }
    }
}

/// Why an open outage stops being tracked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forget {
    /// What the site probes changed (a reload, or a restart on an edited file).
    Changed,
    /// The site is no longer in the configuration.
    Removed,
}

impl Forget {
    /// The incident's `end_reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            Forget::Changed => "forgotten",
            Forget::Removed => "removed",
        }
    }
}

/// The notice that closes an outage sitewatch no longer tracks, so that the
/// receivers of its down alert are not left with an open page.
pub fn forgotten(
    site: &str,
    url: &str,
    why: Forget,
    outage: &OutageFacts,
    now: SystemTime,
) -> Alert {
    let mut a = Alert::bare(
        format!("{site}-forgotten-{}", ms(now)),
        AlertKind::Forgotten,
        site.to_string(),
        Level::Unknown,
        now,
    );
    a.url = url.to_string();
    a.cause = outage.timeline.last().map(|(_, c)| *c);
    a.previous_cause = a.cause;
    a.detail = match why {
        Forget::Changed => "the site's probe settings changed: the outage is closed without a verdict and the site is probed afresh".to_string(),
        Forget::Removed => "the site was removed from the configuration: the outage is closed without a verdict".to_string(),
    };
    a.with_outage(outage);
    a
}

/// Delivery figures for `/status` and `/healthz`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AlertStats {
    /// Deliveries waiting (first attempt or retry).
    pub pending: usize,
    /// Outages the dispatcher tracks (their reminders), by site.
    pub outages: Vec<OutageView>,
    /// Per channel: sent, failed (gave up), and the last error.
    pub channels: HashMap<String, ChannelStats>,
}

/// An open outage as the dispatcher tracks it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct OutageView {
    /// The site.
    pub site: String,
    /// When the outage began.
    #[serde(with = "crate::timefmt")]
    pub since: SystemTime,
    /// When its next reminder is due, if the site has `remind_every`.
    #[serde(with = "crate::timefmt::option")]
    pub next_reminder: Option<SystemTime>,
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
    /// Alerts another vantage sent instead (the site's owner).
    pub delegated: u64,
    /// Alerts delivered, by event (`down`, `recovered`, …).
    pub sent_events: std::collections::BTreeMap<String, u64>,
    /// Failed attempts by reason: `transient` (retried), `permanent`
    /// (refused for good: a dead letter), `expired` (given up after 24 hours
    /// of retries).
    pub failures: std::collections::BTreeMap<String, u64>,
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
        status: t.to.level(),
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
        seen: Vec::new(),
    })
}

/// Retries stop after this long; the delivery is then given up on.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The longest wait a receiver's retry hint (`Retry-After`) can ask for.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Backoff before attempt `n + 1`: 5 s doubling to 10 min, ±20 % jitter.
pub fn backoff(attempts: u32, jitter_seed: u64) -> Duration {
    let base = 5u64.saturating_mul(1u64 << attempts.min(10)).min(600);
    let spread = (jitter_seed % 401) as i64 - 200; // -200..=200 per mille
    let ms = (base * 1000) as i64 + (base as i64 * spread);
    Duration::from_millis(ms.max(1000) as u64)
}

/// Who hears of one site's changes, and how often a down site is repeated.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Route {
    /// The channels its alerts go to.
    pub notify: Vec<String>,
    /// Repeat a down alert this often while it stays down.
    pub remind_every: Option<Duration>,
    /// The vantages that watch the site (empty: every one).
    pub vantages: Vec<String>,
    /// How long a vantage that does not own the site's alerts waits
    /// before it asks the owner whether it took them up: the owner's own
    /// confirmation and vote take about this long.
    pub handover: Duration,
    /// The site itself (for the maintenance windows that cover it).
    pub spec: Option<Arc<crate::config::SiteSpec>>,
}

/// The channels of one configuration, ready to send (secrets resolved),
/// and the routing of each site. Built off the scheduler's thread: it
/// reads secret and CA files.
pub struct ChannelSet {
    channels: HashMap<String, Arc<Channel>>,
    routes: HashMap<String, Route>,
    storm_hold: Duration,
}

impl ChannelSet {
    /// Prepares every channel of `config`; a missing secret is an error
    /// naming the channel.
    pub fn from_config(config: &crate::config::Config) -> Result<ChannelSet, SetupError> {
        let mut channels = HashMap::new();
        for spec in &config.channels {
            let ch = Channel::new(spec, &config.cluster)?;
            channels.insert(spec.name.clone(), Arc::new(ch));
        }
        let routes = config
            .sites
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    Route {
                        notify: s.notify.clone(),
                        remind_every: s.remind_every,
                        vantages: s.vantages.clone(),
                        handover: handover(s, &config.cluster),
                        spec: Some(Arc::clone(s)),
                    },
                )
            })
            .collect();
        // The longest hold of any channel: how far back another site's down
        // alert still means a storm is forming.
        let storm_hold = config
            .channels
            .iter()
            .map(|c| c.storm_hold)
            .max()
            .unwrap_or(crate::config::STORM_HOLD);
        Ok(ChannelSet {
            channels,
            routes,
            storm_hold,
        })
    }
}

/// How long a site's non-owners wait for its owner: enough probes for the
/// owner to confirm the change too, plus its vote.
fn handover(s: &SiteSpec, cluster: &crate::config::Cluster) -> Duration {
    let probes = s.confirm_down.max(s.confirm_up).saturating_add(1);
    s.interval
        .saturating_mul(probes)
        .saturating_add(cluster.peer_timeout.saturating_mul(2))
}

/// `sitewatch notify-test`: sends a test alert through each channel (or the
/// named one) now, without the outbox, and says how each went.
pub async fn notify_test(
    config: &crate::config::Config,
    only: Option<&str>,
) -> Result<Vec<TestOutcome>, String> {
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
    let mut outcomes = Vec::new();
    for spec in specs {
        let now = SystemTime::now();
        let result = match Channel::new(spec, &config.cluster) {
            Err(e) => Err(SendError::Permanent(e.reason)),
            Ok(ch) => {
                let alert = Alert::bare(
                    format!("test-{}-{}", spec.name, ms(now)),
                    AlertKind::Test,
                    spec.name.clone(),
                    Level::Up,
                    now,
                );
                ch.send(&alert, None, now).await.map(|_| ())
            }
        };
        outcomes.push(TestOutcome {
            channel: spec.name.clone(),
            kind: spec.kind.as_str(),
            result,
        });
    }
    Ok(outcomes)
}

/// How one channel's test message went.
#[derive(Debug)]
pub struct TestOutcome {
    /// The channel's name.
    pub channel: String,
    /// Its type (`type` in sites.toml).
    pub kind: &'static str,
    /// Sent, or why not.
    pub result: Result<(), SendError>,
}

impl std::fmt::Display for TestOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.result {
            Ok(()) => write!(f, "{} ({}): sent", self.channel, self.kind),
            Err(e) => write!(f, "{} ({}): FAILED: {e}", self.channel, self.kind),
        }
    }
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
