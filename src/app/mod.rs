//! The composition root: loads the configuration, takes the state
//! directory's lock, builds the probe dependencies, the history, the alert
//! dispatcher, the scheduler and the API, supervises them until a stop
//! signal, and reloads on SIGHUP. The only module that knows every other.
//!
//! Data flows scheduler → history (change, state and due alert in one
//! transaction) → dispatcher (outbox, then the channels). Every long-lived
//! task is watched: one that ends while the daemon runs stops the daemon
//! with a non-zero exit (systemd restarts it), `/healthz` shows each one,
//! and the watchdog is fed only while all of them live.

pub(crate) mod cluster;
mod liveness;
mod lock;
mod reload;

pub use liveness::Beat;
use liveness::{heartbeat, notify, scheduler_heartbeat};
pub use lock::{StateLock, state_dir};
use lock::{check_state_dir, raise_nofile_limit};
use reload::{Prepared, prepare, reload};

use crate::alert::{self, Dispatcher};
use crate::config::{self, Config, Diff};
use crate::history::{History, WriterThread};
use crate::probe::ProbeDeps;
use crate::schedule::{self, Control};
use crate::selfcheck::SelfCheck;
use crate::store::{StatusStore, TaskView};
use crate::{api, shutdown};
use anyhow::Context;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often the supervisor checks that every task lives (and feeds the
/// watchdog, at `WatchdogSec/2` when that is shorter).
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// A scheduler loop that has not turned for this long is stalled.
const STALLED_AFTER: Duration = Duration::from_secs(10);
/// On stop, the history gets this long to write what is queued.
const WRITER_STOP_LIMIT: Duration = Duration::from_secs(4);

/// A running daemon: its API address, its store, and the handles to
/// reconfigure, supervise and stop it.
pub struct Running {
    /// Where the API listens.
    pub addr: SocketAddr,
    /// The shared status (read it as the API does).
    pub store: StatusStore,
    current: Mutex<Config>,
    stop: CancellationToken,
    control: mpsc::UnboundedSender<Control>,
    alerts: mpsc::UnboundedSender<alert::Control>,
    history: History,
    beat: Beat,
    scheduler: JoinHandle<()>,
    api: JoinHandle<std::io::Result<()>>,
    dispatcher: JoinHandle<()>,
    heartbeat: Option<JoinHandle<()>>,
    selfcheck: Option<JoinHandle<()>>,
    peers: Option<(crate::cluster::server::PeerService, JoinHandle<()>)>,
    peer_watch: Option<JoinHandle<()>>,
    pings: Arc<crate::heartbeat::hub::Hub>,
    windows: crate::maintenance::Windows,
    /// The listener that serves only pings (`[daemon] ping_listen`).
    ping_api: Option<JoinHandle<std::io::Result<()>>>,
    writer: WriterThread,
    _lock: StateLock,
}

impl Running {
    /// Asks the daemon to stop: no new probes, the API stops accepting.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Switches to `config`: everything is prepared first, off the
    /// scheduler's thread (resolvers, TLS roots, alert channels and their
    /// secrets); if any of it fails nothing changes. Then the channels are
    /// swapped, then the sites, as [`config::diff`] sorts them. `[daemon]`
    /// settings need a restart and are kept.
    pub async fn reload(&self, config: &Config) -> Result<Diff, String> {
        let config = config.clone();
        let prepared = tokio::task::spawn_blocking(move || prepare(config))
            .await
            .map_err(|e| format!("preparing the configuration failed: {e}"))??;
        self.apply(prepared).await
    }

    async fn apply(&self, p: Prepared) -> Result<Diff, String> {
        let stopped = || "the daemon is stopping".to_string();
        let (flags, daemon_changed, restart_only) = {
            let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
            let d = config::diff(&current, &p.config);
            (
                d.channels,
                d.daemon,
                current.self_check != p.config.self_check || current.cluster != p.config.cluster,
            )
        };
        if daemon_changed {
            tracing::warn!(
                "[daemon] settings changed; they take effect at the next restart (the running daemon keeps its listen address, state directory and probe cap)"
            );
        }
        if restart_only {
            tracing::warn!(
                "[self_check] or [cluster] changed; they take effect at the next restart"
            );
        }
        // Channels first: the first alert of a changed site already goes
        // through the new ones, and reminders follow the new routing.
        let (done, applied) = oneshot::channel();
        self.alerts
            .send(alert::Control::Channels(p.channels, done))
            .map_err(|_| stopped())?;
        applied.await.map_err(|_| stopped())?;
        self.pings.set_keys(p.ping_keys);
        self.windows.set(p.config.maintenance.clone());
        let beats: std::collections::HashSet<String> = p
            .config
            .sites
            .iter()
            .filter(|s| s.heartbeat.is_some())
            .map(|s| s.name.clone())
            .collect();
        self.pings.ledger().retain(&|name| beats.contains(name));
        let deps = Arc::new(p.deps);
        if let Some((svc, _)) = &self.peers {
            svc.set_catalog(cluster::catalog(&p.config, &deps));
        }
        let (done, changes) = oneshot::channel();
        self.control
            .send(Control::Reconfigure {
                sites: p.config.sites.clone(),
                deps,
                done,
            })
            .map_err(|_| stopped())?;
        let mut diff = changes.await.map_err(|_| stopped())?;
        diff.channels = flags;
        diff.daemon = daemon_changed;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = p.config;
        Ok(diff)
    }

    /// Each long-lived task and whether it still runs.
    pub fn tasks(&self) -> Vec<TaskView> {
        let mut tasks = vec![
            TaskView::new(
                "scheduler",
                !self.scheduler.is_finished() && self.beat.age() < STALLED_AFTER,
            ),
            TaskView::new("dispatcher", !self.dispatcher.is_finished()),
            TaskView::new("history", self.writer.alive()),
            TaskView::new("api", !self.api.is_finished()),
        ];
        if let Some(h) = &self.heartbeat {
            tasks.push(TaskView::new("heartbeat", !h.is_finished()));
        }
        if let Some(h) = &self.selfcheck {
            tasks.push(TaskView::new("selfcheck", !h.is_finished()));
        }
        if let Some(h) = &self.peer_watch {
            tasks.push(TaskView::new("peer-watch", !h.is_finished()));
        }
        if let Some((_, h)) = &self.peers {
            tasks.push(TaskView::new("peers", !h.is_finished()));
        }
        if let Some(h) = &self.ping_api {
            tasks.push(TaskView::new("pings", !h.is_finished()));
        }
        tasks
    }

    /// Ends one task as a crash would (`scheduler`, `dispatcher` or `api`):
    /// how tests show that supervision notices. Not for production use.
    #[doc(hidden)]
    pub fn abort_task(&self, name: &str) {
        match name {
            "scheduler" => self.scheduler.abort(),
            "dispatcher" => self.dispatcher.abort(),
            "api" => self.api.abort(),
            _ => {}
        }
    }

    /// Publishes each task's liveness; `Err` names the first that ended
    /// (or stalled) while the daemon runs.
    pub fn check(&self) -> Result<(), &'static str> {
        let tasks = self.tasks();
        let dead = tasks.iter().find(|t| !t.running).map(|t| t.name);
        self.store.set_tasks(tasks);
        match dead {
            Some(name) if !self.stop.is_cancelled() => Err(name),
            _ => Ok(()),
        }
    }

    /// Waits until every task has ended, in order: the scheduler drains
    /// (probes in flight get [`schedule::DRAIN_LIMIT`]), the history writes
    /// the last changes and hands their alerts on, the dispatcher queues
    /// them and lets attempts in flight end, the history writes the rest
    /// (at most [`WRITER_STOP_LIMIT`]). Bounded to fit `TimeoutStopSec`.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.stop.cancel();
        let scheduler = self.scheduler.await;
        // The last changes are written and their alerts handed on.
        let history = self.history.clone();
        let _ = tokio::task::spawn_blocking(move || history.sync(Duration::from_secs(3))).await;
        let _ = self.alerts.send(alert::Control::Stop);
        let dispatcher = self.dispatcher.await;
        let writer = self.writer;
        tokio::task::spawn_blocking(move || writer.stop(WRITER_STOP_LIMIT))
            .await
            .context("the history writer failed")?;
        if let Some(h) = self.heartbeat {
            h.abort();
        }
        if let Some(h) = self.selfcheck {
            h.abort();
        }
        if let Some(h) = self.peer_watch {
            h.abort();
        }
        if let Some((_, h)) = self.peers {
            h.abort();
        }
        let api = self.api.await;
        if let Some(h) = self.ping_api
            && let Ok(Err(e)) = h.await
        {
            tracing::error!(error = %e, "the ping listener failed");
        }
        scheduler.context("the scheduler task failed")?;
        dispatcher.context("the alert dispatcher failed")?;
        api.context("the API task failed")?
            .context("the API server failed")?;
        Ok(())
    }
}

/// Who may see what on the API: `[daemon] api_token_file` and
/// `public_page`, else `SITEWATCH_API_TOKEN` and `SITEWATCH_PUBLIC_PAGE`.
fn access(config: &Config) -> anyhow::Result<api::Access> {
    let mut access = api::Access::from_env();
    if let Some(path) = &config.daemon.api_token_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read api_token_file {}", path.display()))?;
        access.token = Some(
            api::ApiToken::new(&text)
                .with_context(|| format!("api_token_file {} is empty", path.display()))?,
        );
    }
    if config.daemon.public_page {
        access.public_page = true;
    }
    Ok(access)
}

/// Starts the daemon for `config` with its API on `listener`.
pub fn start(config: &Config, listener: TcpListener) -> anyhow::Result<Running> {
    let config = &config.for_this_vantage();
    let addr = listener
        .local_addr()
        .context("the API listener has no address")?;
    let dir = state_dir(config);
    let lock = StateLock::acquire(&dir)?;
    check_state_dir(&dir);
    let deps = Arc::new(
        ProbeDeps::new(config.sites.iter().map(|s| s.as_ref()))
            .context("cannot prepare the probes")?,
    );
    let voting = cluster::voting(config)?;
    let channels = alert::ChannelSet::from_config(config)?;
    let ping_keys =
        crate::heartbeat::hub::resolve_keys(&config.sites).map_err(|e| anyhow::anyhow!(e))?;
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let (history, writer, mut resumed) =
        History::open(&dir, &config.sites, Some(events_tx), config.daemon.history);
    let windows = crate::maintenance::Windows::new(config.maintenance.clone());
    let (dispatcher, alert_stats) =
        Dispatcher::new(channels, alert::outbox::Outbox::new(history.clone()));
    let silences = crate::silence::Silences::new(std::mem::take(&mut resumed.silences));
    let dispatcher = dispatcher
        .with_windows(windows.clone())
        .with_silences(silences.clone());
    let peer_health = voting.as_ref().map(|v| {
        let names: Vec<String> = v.peers.all().iter().map(|p| p.name.clone()).collect();
        crate::cluster::health::Health::new(&names, &resumed.peers_lost)
    });
    let senders = match (&voting, &peer_health) {
        (Some(v), Some(h)) => Some(Arc::new(crate::cluster::sender::Senders::new(
            Arc::clone(v),
            h.clone(),
        ))),
        _ => None,
    };
    let dispatcher = match &senders {
        Some(s) => dispatcher.with_senders(Arc::clone(s)),
        None => dispatcher,
    };
    let (selfcheck, network) = match &config.self_check {
        Some(spec) => {
            let (task, handle) = SelfCheck::new(
                spec.clone(),
                config.cluster.vantage.clone(),
                history.clone(),
                resumed.network,
            )
            .context("cannot prepare the self-check")?;
            (Some(task), handle)
        }
        None => (None, crate::selfcheck::Handle::none()),
    };
    let store = StatusStore::new(
        &config.sites,
        SystemTime::now(),
        &resumed.states,
        Some(history.reader()),
    )
    .with_alert_stats(alert_stats);
    let store = if config.self_check.is_some() {
        store.with_network(network.clone())
    } else {
        store
    };
    let store = match &peer_health {
        Some(h) => store.with_peers(h.clone()),
        None => store,
    };
    store.set_config_path(&config.path);
    // Records of heartbeats no longer configured are dropped: one added
    // again starts afresh.
    let beats: std::collections::HashSet<&str> = config
        .sites
        .iter()
        .filter(|s| s.heartbeat.is_some())
        .map(|s| s.name.as_str())
        .collect();
    let mut saved_beats = resumed.heartbeats;
    saved_beats.retain(|name, _| beats.contains(name.as_str()));
    let ledger = crate::heartbeat::ledger::Ledger::new(saved_beats);
    let store = store
        .with_ledger(ledger.clone())
        .with_windows(windows.clone());
    let stop = CancellationToken::new();
    let (alerts_tx, alerts_rx) = mpsc::unbounded_channel();
    let resume = alert::Resume {
        due: resumed.due,
        deliveries: resumed.deliveries,
        outages: resumed.outages,
        threads: resumed.threads,
    };
    let dispatcher = tokio::spawn(dispatcher.run(resume, events_rx, alerts_rx));
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    let pings = Arc::new(crate::heartbeat::hub::Hub::new(
        ping_keys,
        ledger,
        history.clone(),
        control_tx.clone(),
        SystemTime::now(),
    ));
    let beat = Beat::new();
    beat.mark();
    let peer_api = cluster::peer_api(
        config,
        &deps,
        network.clone(),
        store.clone(),
        senders.as_ref().map(|s| s.told()),
        &stop,
    )?;
    let peer_watch = match (&voting, peer_health) {
        (Some(v), Some(h)) => Some(tokio::spawn(crate::cluster::health::watch(
            Arc::clone(v),
            h,
            config.cluster.peer_interval,
            network.clone(),
            history.clone(),
            stop.clone(),
        ))),
        _ => None,
    };
    let domains = config
        .daemon
        .rdap_bootstrap
        .as_deref()
        .and_then(|bootstrap| {
            crate::domain::watch::DomainWatch::new(bootstrap)
                .map_err(|e| tracing::warn!(error = %e, "domain expiry is not watched"))
                .ok()
                .map(Arc::new)
        });
    let scheduler = tokio::spawn(schedule::run(
        config.sites.clone(),
        resumed.states,
        Arc::clone(&deps),
        schedule::Sinks {
            store: store.clone(),
            history: history.clone(),
            heartbeat: Some(scheduler_heartbeat(store.clone(), beat.clone())),
            network,
            voting,
            pings: Some(Arc::clone(&pings)),
            windows: windows.clone(),
            domains,
        },
        config.daemon.max_concurrent_probes,
        control_rx,
        stop.clone(),
    ));
    let selfcheck = selfcheck.map(|task| tokio::spawn(task.run(stop.clone())));
    let heartbeat = config.daemon.heartbeat_url.as_ref().map(|url| {
        tokio::spawn(heartbeat(
            url.clone(),
            config.daemon.heartbeat_every,
            beat.clone(),
            stop.clone(),
        ))
    });
    let access = access(config)?;
    // The API runs on a thread of its own: rendering /status, the page or
    // /metrics never delays a probe.
    let listener = listener
        .into_std()
        .context("cannot hand the API listener to its thread")?;
    let api = api::spawn_serving(
        listener,
        store.clone(),
        access,
        api::Limits::default(),
        api::Serving::Api(api::Extras {
            pings: Some(Arc::clone(&pings)),
            silences: Some((silences.clone(), history.clone())),
        }),
        stop.clone(),
    )
    .context("cannot start the API thread")?;
    let api = tokio::spawn(api.wait());
    tracing::info!(%addr, "api listening");
    let ping_api = match config.daemon.ping_listen {
        Some(ping_addr) => {
            let ping_listener = std::net::TcpListener::bind(ping_addr)
                .with_context(|| format!("cannot listen for pings on {ping_addr} (ping_listen)"))?;
            let ping_addr = ping_listener.local_addr().unwrap_or(ping_addr);
            let thread = api::spawn_serving(
                ping_listener,
                store.clone(),
                api::Access::default(),
                api::Limits::default(),
                api::Serving::PingsOnly(Arc::clone(&pings)),
                stop.clone(),
            )
            .context("cannot start the ping listener's thread")?;
            tracing::info!(addr = %ping_addr, "listening for heartbeat pings");
            Some(tokio::spawn(thread.wait()))
        }
        None => None,
    };
    let running = Running {
        addr,
        store,
        current: Mutex::new(config.clone()),
        stop,
        control: control_tx,
        alerts: alerts_tx,
        history,
        beat,
        scheduler,
        api,
        dispatcher,
        heartbeat,
        selfcheck,
        peers: peer_api,
        peer_watch,
        pings,
        windows,
        ping_api,
        writer,
        _lock: lock,
    };
    running.store.set_tasks(running.tasks());
    Ok(running)
}

/// How the main loop ended.
enum Ending {
    Signal(&'static str),
    Died(&'static str),
}

/// Runs a started daemon until `stop` resolves (with the signal's name) or
/// one of its tasks ends on its own; reloads `config_path` on each
/// `hangup` (installed before the daemon started, so that no early SIGHUP
/// takes the default action and ends the process), feeds
/// the watchdog while every task lives, then drains. A second stop signal
/// during the drain exits at once. `Err` when a task ended: the service
/// manager should restart sitewatch.
pub async fn serve(
    running: Running,
    config_path: &Path,
    stop: impl Future<Output = &'static str>,
    mut hangup: tokio::signal::unix::Signal,
) -> anyhow::Result<()> {
    let watchdog = crate::notify::watchdog().map(|d| d / 2);
    let mut check = tokio::time::interval(watchdog.map_or(CHECK_EVERY, |w| w.min(CHECK_EVERY)));
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_ping = Instant::now();
    tokio::pin!(stop);
    let ending = loop {
        tokio::select! {
            signal = &mut stop => break Ending::Signal(signal),
            _ = hangup.recv() => reload(&running, config_path).await,
            _ = check.tick() => match running.check() {
                Err(task) => break Ending::Died(task),
                Ok(()) => {
                    // Fed only while every task lives and the scheduler turns.
                    if let Some(every) = watchdog && Instant::now() >= next_ping {
                        next_ping = Instant::now() + every;
                        notify(&[crate::notify::State::Watchdog]);
                    }
                }
            },
        }
    };
    match ending {
        Ending::Signal(signal) => tracing::info!(signal, "stopping"),
        Ending::Died(task) => tracing::error!(
            task,
            "a sitewatch task ended unexpectedly; stopping so that the service manager restarts sitewatch"
        ),
    }
    notify(&[crate::notify::State::Stopping]);
    running.stop();
    let second = shutdown::stop_signal().context("cannot install signal handlers")?;
    let waited = tokio::select! {
        r = running.wait() => r,
        signal = second => {
            tracing::warn!(signal, "second stop signal: exiting at once");
            std::process::exit(130);
        }
    };
    match ending {
        Ending::Signal(_) => {
            waited?;
            tracing::info!("stopped");
            Ok(())
        }
        Ending::Died(task) => {
            if let Err(e) = waited {
                tracing::error!("{e:#}");
            }
            Err(anyhow::anyhow!("the {task} task ended unexpectedly"))
        }
    }
}

/// `sitewatch run`: the daemon, until SIGTERM or SIGINT; SIGHUP reloads.
pub fn run(config_path: &Path) -> anyhow::Result<()> {
    let config = config::load(config_path)?;
    raise_nofile_limit(config.daemon.max_concurrent_probes);
    // One thread by default: the scheduler loop and every probe share it,
    // which measured cheapest per probe (docs/performance.md). With
    // `worker_threads` > 1 the probes' tasks spread over that many threads
    // (the scheduler is still one task).
    let runtime = match config.daemon.worker_threads {
        0 | 1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .thread_name("sitewatch-probe")
            .enable_all()
            .build(),
    }
    .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let stop_signal = shutdown::stop_signal().context("cannot install signal handlers")?;
        let hangup = shutdown::reload_signal().context("cannot install the SIGHUP handler")?;
        let listener = TcpListener::bind(config.daemon.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.daemon.listen))?;
        let running = start(&config, listener)?;
        tracing::info!(config = %config.path.display(), sites = config.sites.len(), version = env!("CARGO_PKG_VERSION"), "sitewatch started");
        notify(&[crate::notify::State::Ready]);
        serve(running, &config.path, stop_signal, hangup).await
    })
}
