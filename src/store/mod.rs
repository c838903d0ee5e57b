//! The status store: the latest state and probe report of every site, and
//! the scheduler's own health, shared between the scheduler (which writes)
//! and the API (which reads).
//!
//! A cheap-clone handle over `Arc<Mutex<…>>` with short critical sections
//! (mini-redis `Db`). It holds no I/O and decides nothing: the scheduler
//! hands it states the state machine already computed.

pub mod page;
mod view;

use crate::config::SiteSpec;
use crate::diagnosis::Cause;
use crate::history::{HistoryReader, Uptime};
use crate::probe::{LayerReport, ProbeReport};
use crate::state::{Health, Level, SiteState, Transition};
pub use page::{Board, Filter, Page, TagCount};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;
use view::view;

/// Handle to the shared status of every site.
#[derive(Clone)]
pub struct StatusStore {
    shared: Arc<Mutex<Shared>>,
}

struct Shared {
    config: ConfigStatus,
    history: Option<HistoryReader>,
    alerts: Option<crate::alert::SharedStats>,
    started_at: SystemTime,
    /// Indexed like the scheduler's slots; `None` where a site was removed.
    sites: Vec<Option<Entry>>,
    /// Slot indexes in configuration order.
    order: Vec<usize>,
    index: HashMap<String, usize>,
    scheduler: SchedulerStats,
    tasks: Vec<TaskView>,
    network: Option<crate::selfcheck::Handle>,
    peers: Option<crate::cluster::health::Health>,
    /// What the heartbeats have received.
    ledger: Option<crate::heartbeat::ledger::Ledger>,
    /// The maintenance windows in force.
    windows: crate::maintenance::Windows,
}

/// One of the daemon's long-lived tasks, as `/healthz` shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct TaskView {
    /// scheduler, dispatcher, history, api or heartbeat.
    pub name: &'static str,
    /// Whether it runs (for the scheduler: and its loop turns).
    pub running: bool,
}

impl TaskView {
    /// A task and whether it runs.
    pub fn new(name: &'static str, running: bool) -> TaskView {
        TaskView { name, running }
    }
}

struct Entry {
    spec: Arc<SiteSpec>,
    state: SiteState,
    report: Option<Arc<ProbeReport>>,
    last_error: Option<String>,
    /// Why nothing can be said yet (a heartbeat waiting for a ping).
    pending: Option<String>,
    last_transition: Option<Transition>,
    /// Confirmed changes since start, per kind name.
    transitions: u64,
    /// The last vote of the vantages on this site, and when.
    votes: Option<(SystemTime, Vec<crate::alert::Seen>)>,
    /// Its confirmed changes, judged as the alert policy judges them.
    flaps: crate::alert::policy::FlapGuard,
}

/// What one vantage saw of a site at the last vote, as `/status` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct VantageView {
    /// The vantage.
    pub vantage: String,
    /// `down`, `up` or `abstains`.
    pub verdict: String,
    /// Its cause, when down.
    pub cause: Option<Cause>,
    /// Its facts, or why it abstained.
    pub detail: String,
    /// How long ago the vote was, in seconds.
    pub age_s: f64,
}

/// How well the scheduler keeps its schedule.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct SchedulerStats {
    /// Probes completed since start.
    pub probes: u64,
    /// Probes that could not run at all (sitewatch's own failure).
    pub probe_errors: u64,
    /// Probe slots skipped because the previous probe of the site still ran.
    pub skipped: u64,
    /// Probes running now.
    pub in_flight: u64,
    /// Scheduling lag (actual start minus planned start), milliseconds.
    pub lag_ms: LagStats,
}

/// Percentiles of the scheduling lag.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct LagStats {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest seen.
    pub max: f64,
}

/// One site as `/status` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct SiteView {
    /// The site's name.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// Confirmed status: unknown, up, degraded or down.
    pub status: Level,
    /// Confirmed cause, when degraded or down.
    pub cause: Option<Cause>,
    /// The cause in words.
    pub cause_text: Option<&'static str>,
    /// When the confirmed status began.
    #[serde(with = "crate::timefmt")]
    pub since: SystemTime,
    /// Probe interval in seconds.
    pub interval_s: f64,
    /// When the last probe started.
    #[serde(with = "crate::timefmt::option")]
    pub last_probe: Option<SystemTime>,
    /// How long it took, milliseconds.
    pub duration_ms: Option<f64>,
    /// What the last probe found (it may differ from `status` while a change is being confirmed).
    pub probe_status: Option<crate::diagnosis::Status>,
    /// The last probe's cause.
    pub probe_cause: Option<Cause>,
    /// The last probe's facts.
    pub detail: Option<String>,
    /// What to check first, from the last probe.
    pub hint: Option<String>,
    /// The last probe's layers.
    pub layers: Vec<LayerReport>,
    /// sitewatch's own error on the last attempt, if it could not probe.
    pub error: Option<String>,
    /// The last confirmed change.
    pub last_change: Option<ChangeView>,
    /// Uptime percentages (24h, 7d, 30d, 90d) from the history.
    pub uptime: Option<Uptime>,
    /// The last probe's HTTP status, if any.
    pub http_status: Option<u16>,
    /// The leaf certificate the last probe saw, if any.
    pub cert: Option<crate::probe::tls::CertFacts>,
    /// The address the last probe is about.
    pub addr: Option<std::net::SocketAddr>,
    /// Confirmed changes since sitewatch started.
    pub transitions: u64,
    /// The maintenance window covering it now, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<crate::maintenance::Occurrence>,
    /// For a heartbeat: what its pings said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<crate::heartbeat::ledger::HeartbeatView>,
    /// With peers: who sees the last failure. `all` (enough vantages
    /// agree), `partial` (some vantages fail, others reach the site) or
    /// `local` (no other vantage could vote); `null` without a vote yet.
    pub scope: Option<&'static str>,
    /// With peers: what each vantage saw at the last vote.
    pub vantages: Vec<VantageView>,
    /// How its latest probes went (failures since the last confirmed outage).
    pub recent: RecentView,
    /// Whether it changes state so often that alerts are held back
    /// (5 changes within 20 minutes; settled after 15 quiet minutes).
    pub flapping: bool,
    /// What the registry says of its domain, when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<crate::domain::watch::DomainFacts>,
}

/// A site's latest probes, as `/status` shows them.
#[derive(Clone, Debug, Serialize)]
pub struct RecentView {
    /// Probes counted (the site's `intermittent_window`, fewer at first).
    pub probes: u8,
    /// How many of them failed.
    pub failed: u8,
    /// `failed / probes` (0 with no probe yet).
    pub failure_rate: f64,
    /// The failures' causes with their counts, most frequent first.
    pub causes: Vec<CauseCount>,
}

/// One cause and how often it was seen.
#[derive(Clone, Debug, Serialize)]
pub struct CauseCount {
    /// The cause.
    pub cause: Cause,
    /// How many times.
    pub count: u8,
}

/// A confirmed change as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ChangeView {
    /// Its kind: initial, down, cause_changed, degraded, recovered, resolved.
    pub kind: &'static str,
    /// Status before.
    pub from: &'static str,
    /// Status after.
    pub to: &'static str,
    /// When the new status began.
    #[serde(with = "crate::timefmt")]
    pub since: SystemTime,
    /// For a recovery: how long the outage lasted, in seconds.
    pub outage_s: Option<f64>,
}

/// The daemon's own health, as `/healthz` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct HealthView {
    /// "ok", or "error" when sitewatch cannot keep its history or one of
    /// its tasks has ended.
    pub status: &'static str,
    /// Each long-lived task and whether it runs.
    pub tasks: Vec<TaskView>,
    /// This monitor's own network, as its self-check sees it (absent
    /// without a `[self_check]`).
    pub network: Option<crate::selfcheck::NetView>,
    /// The peer vantages as seen from here (absent without peers).
    pub peers: Option<Vec<crate::cluster::health::PeerView>>,
    /// The storage problem, if any (probing and alerting go on).
    pub storage_error: Option<String>,
    /// sitewatch's version.
    pub version: &'static str,
    /// When the daemon started.
    #[serde(with = "crate::timefmt")]
    pub started_at: SystemTime,
    /// Sites configured.
    pub sites: usize,
    /// Sites per confirmed status.
    pub up: usize,
    /// Degraded sites.
    pub degraded: usize,
    /// Down sites.
    pub down: usize,
    /// Sites not yet known.
    pub unknown: usize,
    /// The scheduler's figures.
    pub scheduler: SchedulerStats,
    /// Alert deliveries: pending, and per channel sent, failed, last error.
    pub alerts: Option<crate::alert::AlertStats>,
    /// The configuration in use and the last reload.
    pub config: ConfigStatus,
}

/// The configuration in use and how the last (re)load went.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ConfigStatus {
    /// The file.
    pub path: String,
    /// When the configuration in use was loaded.
    #[serde(with = "crate::timefmt")]
    pub loaded_at: SystemTime,
    /// Whether the last load or reload succeeded.
    pub last_reload_ok: bool,
    /// When it was attempted.
    #[serde(with = "crate::timefmt")]
    pub last_reload_at: SystemTime,
    /// Why it failed (every error, file:line:column), if it did.
    pub last_reload_error: Option<String>,
}

impl StatusStore {
    /// A store for `sites` as of `now`, with the states saved before a
    /// restart (others start unknown) and the history to read uptime from.
    pub fn new(
        sites: &[Arc<SiteSpec>],
        now: SystemTime,
        saved: &std::collections::HashMap<String, SiteState>,
        history: Option<HistoryReader>,
    ) -> StatusStore {
        // One pass over the sites, each entry built in place.
        let mut entries: Vec<Option<Entry>> = Vec::with_capacity(sites.len());
        let mut index = HashMap::with_capacity(sites.len());
        for (i, spec) in sites.iter().enumerate() {
            index.insert(spec.name.clone(), i);
            entries.push(Some(Entry {
                spec: Arc::clone(spec),
                state: saved
                    .get(&spec.name)
                    .copied()
                    .unwrap_or_else(|| SiteState::new(now)),
                report: None,
                last_error: None,
                pending: None,
                last_transition: None,
                transitions: 0,
                votes: None,
                flaps: Default::default(),
            }));
        }
        StatusStore {
            shared: Arc::new(Mutex::new(Shared {
                config: ConfigStatus {
                    path: String::new(),
                    loaded_at: now,
                    last_reload_ok: true,
                    last_reload_at: now,
                    last_reload_error: None,
                },
                history,
                alerts: None,
                started_at: now,
                order: (0..entries.len()).collect(),
                sites: entries,
                index,
                scheduler: SchedulerStats::default(),
                tasks: Vec::new(),
                ledger: None,
                windows: crate::maintenance::Windows::default(),
                network: None,
                peers: None,
            })),
        }
    }

    /// Follows a reconfiguration of the scheduler: `order` lists, in file
    /// order, each site's slot index, spec, and whether it starts over
    /// (changed or new). Slots not listed are gone.
    pub fn reconfigure(&self, order: &[(usize, Arc<SiteSpec>, bool)], now: SystemTime) {
        let mut shared = self.lock();
        let mut keep: Vec<Option<Entry>> = Vec::new();
        let len = order
            .iter()
            .map(|(i, _, _)| i + 1)
            .max()
            .unwrap_or(0)
            .max(shared.sites.len());
        keep.resize_with(len, || None);
        for (i, spec, fresh) in order {
            let old = shared.sites.get_mut(*i).and_then(Option::take);
            keep[*i] = Some(match old {
                Some(mut e) if !fresh => {
                    e.spec = Arc::clone(spec);
                    e
                }
                _ => Entry {
                    spec: Arc::clone(spec),
                    state: SiteState::new(now),
                    report: None,
                    last_error: None,
                    pending: None,
                    last_transition: None,
                    transitions: 0,
                    votes: None,
                    flaps: Default::default(),
                },
            });
        }
        shared.sites = keep;
        shared.order = order.iter().map(|(i, _, _)| *i).collect();
        shared.index = order.iter().map(|(i, s, _)| (s.name.clone(), *i)).collect();
    }

    /// Records which configuration file is in use.
    pub fn set_config_path(&self, path: &std::path::Path) {
        self.lock().config.path = path.display().to_string();
    }

    /// Records the outcome of a reload (`Err` keeps the old configuration).
    pub fn reloaded(&self, at: SystemTime, result: Result<(), String>) {
        let mut shared = self.lock();
        shared.config.last_reload_at = at;
        match result {
            Ok(()) => {
                shared.config.loaded_at = at;
                shared.config.last_reload_ok = true;
                shared.config.last_reload_error = None;
            }
            Err(e) => {
                shared.config.last_reload_ok = false;
                shared.config.last_reload_error = Some(e);
            }
        }
    }

    /// Shows the alert dispatcher's figures on `/healthz` and `/status`.
    pub fn with_alert_stats(self, stats: crate::alert::SharedStats) -> StatusStore {
        self.lock().alerts = Some(stats);
        self
    }

    /// The alert delivery figures, if alerts are configured.
    pub fn alerts(&self) -> Option<crate::alert::AlertStats> {
        let stats = self.lock().alerts.clone()?;
        let s = stats.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Some(s)
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic while holding this short lock leaves plain data behind;
        // keep serving it rather than poisoning the whole daemon.
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a probe report and the state it led to.
    pub fn record(
        &self,
        idx: usize,
        state: SiteState,
        report: ProbeReport,
        transition: Option<Transition>,
    ) {
        let mut shared = self.lock();
        if let Some(Some(e)) = shared.sites.get_mut(idx) {
            e.state = state;
            e.report = Some(Arc::new(report));
            e.last_error = None;
            e.pending = None;
            if transition.is_some() {
                e.transitions += 1;
                e.flaps.on_change(tokio::time::Instant::now());
            }
            if transition.is_some() {
                e.last_transition = transition;
            }
        }
    }

    /// Records what the vantages saw when they last voted on a site.
    pub fn record_votes(&self, idx: usize, seen: &[crate::alert::Seen]) {
        if let Some(Some(e)) = self.lock().sites.get_mut(idx) {
            e.votes = Some((SystemTime::now(), seen.to_vec()));
        }
    }

    /// Records that nothing can be said of a site yet (a heartbeat before
    /// its first ping), and why.
    pub fn record_pending(&self, idx: usize, detail: String) {
        if let Some(Some(e)) = self.lock().sites.get_mut(idx) {
            e.report = None;
            e.last_error = None;
            e.pending = Some(detail);
        }
    }

    /// Records that sitewatch could not probe a site.
    pub fn record_error(&self, idx: usize, error: String) {
        if let Some(Some(e)) = self.lock().sites.get_mut(idx) {
            e.last_error = Some(error);
        }
    }

    /// Shows the peer vantages as `health` sees them.
    pub fn with_peers(self, health: crate::cluster::health::Health) -> StatusStore {
        self.lock().peers = Some(health);
        self
    }

    /// The peer vantages as seen from here (`None` without peers).
    pub fn peers(&self) -> Option<Vec<crate::cluster::health::PeerView>> {
        self.lock()
            .peers
            .as_ref()
            .map(crate::cluster::health::Health::views)
    }

    /// Shows the maintenance windows on `/status`, the page and `/metrics`.
    pub fn with_windows(self, windows: crate::maintenance::Windows) -> StatusStore {
        self.lock().windows = windows;
        self
    }

    /// Maintenance in force or announced, soonest first (for the page).
    pub fn announced_maintenance(&self) -> Vec<crate::maintenance::Occurrence> {
        let windows = self.lock().windows.clone();
        windows.announced(SystemTime::now())
    }

    /// Shows what heartbeats received on `/status`, the page and `/metrics`.
    pub fn with_ledger(self, ledger: crate::heartbeat::ledger::Ledger) -> StatusStore {
        self.lock().ledger = Some(ledger);
        self
    }

    /// Shows the self-check's verdict on `/healthz`, `/status` and `/metrics`.
    pub fn with_network(self, network: crate::selfcheck::Handle) -> StatusStore {
        self.lock().network = Some(network);
        self
    }

    /// The self-check's verdict, if a self-check is configured.
    pub fn network(&self) -> Option<crate::selfcheck::NetView> {
        self.lock()
            .network
            .as_ref()
            .map(crate::selfcheck::Handle::view)
    }

    /// Publishes each task's liveness.
    pub fn set_tasks(&self, tasks: Vec<TaskView>) {
        self.lock().tasks = tasks;
    }

    /// Publishes the scheduler's figures.
    pub fn set_scheduler(&self, stats: SchedulerStats) {
        self.lock().scheduler = stats;
    }

    /// Every site, in configuration order. The lock is held only to copy
    /// each site's entry (its report is shared, not copied); the views are
    /// built after it is released.
    pub fn sites(&self) -> Vec<SiteView> {
        let (snaps, ctx) = {
            let shared = self.lock();
            let snaps: Vec<view::Snap> = shared
                .order
                .iter()
                .filter_map(|&i| shared.sites[i].as_ref())
                .map(Entry::snap)
                .collect();
            (snaps, shared.ctx())
        };
        snaps.iter().map(|s| view(s, &ctx)).collect()
    }

    /// Whether a site of this name is configured.
    pub fn contains(&self, name: &str) -> bool {
        self.lock().index.contains_key(name)
    }

    /// One site by name.
    pub fn site(&self, name: &str) -> Option<SiteView> {
        let (snap, ctx) = {
            let shared = self.lock();
            let snap = shared
                .index
                .get(name)
                .and_then(|&i| shared.sites[i].as_ref())
                .map(Entry::snap)?;
            (snap, shared.ctx())
        };
        Some(view(&snap, &ctx))
    }

    /// The daemon's own health.
    pub fn health(&self) -> HealthView {
        let shared = self.lock();
        let count = |f: fn(&Health) -> bool| {
            shared
                .sites
                .iter()
                .flatten()
                .filter(|e| f(&e.state.health))
                .count()
        };
        let storage_error = shared.history.as_ref().and_then(HistoryReader::error);
        let task_down = shared.tasks.iter().any(|t| !t.running);
        HealthView {
            status: if storage_error.is_some() || task_down {
                "error"
            } else {
                "ok"
            },
            tasks: shared.tasks.clone(),
            network: shared.network.as_ref().map(crate::selfcheck::Handle::view),
            peers: shared
                .peers
                .as_ref()
                .map(crate::cluster::health::Health::views),
            storage_error,
            version: env!("CARGO_PKG_VERSION"),
            started_at: shared.started_at,
            sites: shared.order.len(),
            up: count(|h| matches!(h, Health::Up)),
            degraded: count(|h| matches!(h, Health::Degraded(_))),
            down: count(|h| matches!(h, Health::Down(_))),
            unknown: count(|h| matches!(h, Health::Unknown)),
            scheduler: shared.scheduler.clone(),
            config: shared.config.clone(),
            alerts: shared
                .alerts
                .as_ref()
                .map(|a| a.lock().unwrap_or_else(|p| p.into_inner()).clone()),
        }
    }

    /// The history, for the API's history and incident endpoints.
    pub fn history(&self) -> Option<HistoryReader> {
        self.lock().history.clone()
    }
}
