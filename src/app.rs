//! The composition root: loads the configuration, builds the probe
//! dependencies, the store, the history, the alert dispatcher, the scheduler
//! and the API, and runs them until a stop signal; reloads on SIGHUP. The
//! only module that knows every other.

use crate::alert::{self, Dispatcher};
use crate::config::{self, Config};
use crate::history::{History, WriterThread};
use crate::probe::ProbeDeps;
use crate::schedule::{self, Changes, Control};
use crate::store::{SchedulerStats, StatusStore};
use crate::{api, shutdown};
use anyhow::Context;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running daemon: its API address, its store, and the handles to
/// reconfigure and stop it.
pub struct Running {
    /// Where the API listens.
    pub addr: SocketAddr,
    /// The shared status (read it as the API does).
    pub store: StatusStore,
    daemon: config::Daemon,
    stop: CancellationToken,
    control: mpsc::UnboundedSender<Control>,
    channels: mpsc::UnboundedSender<alert::ChannelSet>,
    scheduler: JoinHandle<()>,
    api: JoinHandle<std::io::Result<()>>,
    alerts: JoinHandle<()>,
    writer: WriterThread,
}

impl Running {
    /// Asks the daemon to stop: no new probes, the API stops accepting.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Switches to `config`: everything is prepared first (resolvers, TLS
    /// configurations, alert channels and their secrets); if any of it
    /// fails nothing changes. Unchanged sites keep their state and
    /// schedule. `[daemon]` settings need a restart and are kept.
    pub async fn reload(&self, config: &Config) -> Result<Changes, String> {
        let deps = ProbeDeps::new(config.sites.iter().map(|s| s.as_ref()))
            .map_err(|e| format!("cannot prepare the probes: {e}"))?;
        let channels = alert::ChannelSet::from_config(config)?;
        if config.daemon != self.daemon {
            tracing::warn!(
                "[daemon] settings changed; they take effect at the next restart (the running daemon keeps its listen address, state directory and probe cap)"
            );
        }
        let (done, changes) = tokio::sync::oneshot::channel();
        self.control
            .send(Control::Reconfigure {
                sites: config.sites.clone(),
                deps: Arc::new(deps),
                done,
            })
            .map_err(|_| "the scheduler has stopped".to_string())?;
        let changes = changes
            .await
            .map_err(|_| "the scheduler has stopped".to_string())?;
        let _ = self.channels.send(channels);
        Ok(changes)
    }

    /// Waits until the scheduler has drained and the API has closed.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.scheduler.await.context("the scheduler task failed")?;
        drop(self.channels);
        // Then the alerts it handed over are stored (and tried once more).
        self.alerts.await.context("the alert dispatcher failed")?;
        // The scheduler has handed over its last records: flush them to disk.
        let writer = self.writer;
        tokio::task::spawn_blocking(move || writer.stop())
            .await
            .context("the history writer failed")?;
        self.api
            .await
            .context("the API task failed")?
            .context("the API server failed")?;
        Ok(())
    }
}

/// Tells systemd (`NOTIFY_SOCKET`) how things are.
fn notify(states: &[crate::notify::State<'_>]) {
    if let Err(e) = crate::notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// Called by the scheduler about once a second: pings the watchdog (so a
/// stuck scheduler gets the service restarted), updates the status line,
/// and marks the scheduler alive for the heartbeat.
fn scheduler_heartbeat(
    store: StatusStore,
    last_tick: Arc<AtomicU64>,
) -> Box<dyn FnMut(&SchedulerStats) + Send> {
    let watchdog = crate::notify::watchdog().map(|d| d / 2);
    let mut next_ping = tokio::time::Instant::now();
    let mut last_status = String::new();
    Box::new(move |_stats| {
        let now = tokio::time::Instant::now();
        last_tick.store(
            crate::history::unix_ms(SystemTime::now()) as u64 / 1000,
            Ordering::Relaxed,
        );
        if let Some(every) = watchdog
            && now >= next_ping
        {
            next_ping = now + every;
            notify(&[crate::notify::State::Watchdog]);
        }
        let h = store.health();
        let status = format!(
            "{} sites: {} up, {} degraded, {} down, {} unknown",
            h.sites, h.up, h.degraded, h.down, h.unknown
        );
        if status != last_status {
            notify(&[crate::notify::State::Status(&status)]);
            last_status = status;
        }
    })
}

/// Requests `url` every `every` while the scheduler is alive, so that an
/// outside dead man's switch notices when sitewatch itself stops working.
async fn heartbeat(
    url: String,
    every: Duration,
    last_tick: Arc<AtomicU64>,
    stop: CancellationToken,
) {
    let client = match alert::channel::http_client(None) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the heartbeat client; no heartbeat is sent");
            return;
        }
    };
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = crate::history::unix_ms(SystemTime::now()) as u64 / 1000;
        let age = now.saturating_sub(last_tick.load(Ordering::Relaxed));
        if age > 10 {
            tracing::error!(
                seconds = age,
                "the scheduler has not run for a while; heartbeat withheld"
            );
            continue;
        }
        match client.get(&url).send().await {
            Ok(r) if r.status().is_success() => tracing::debug!("heartbeat sent"),
            Ok(r) => tracing::warn!(status = %r.status(), "the heartbeat URL answered an error"),
            Err(e) => tracing::warn!(error = %e.without_url(), "cannot reach the heartbeat URL"),
        }
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
    let addr = listener
        .local_addr()
        .context("the API listener has no address")?;
    let deps = ProbeDeps::new(config.sites.iter().map(|s| s.as_ref()))
        .context("cannot prepare the probes")?;
    let dir = state_dir(config);
    let (dispatcher, alert_stats) = Dispatcher::new(config, &dir).map_err(anyhow::Error::msg)?;
    let (history, writer, saved) = History::open(&dir, &config.sites);
    let store = StatusStore::new(
        &config.sites,
        SystemTime::now(),
        &saved,
        Some(history.reader()),
    )
    .with_alert_stats(alert_stats);
    store.set_config_path(&config.path);
    let stop = CancellationToken::new();
    let (alert_tx, alert_rx) = mpsc::unbounded_channel();
    let (channels_tx, channels_rx) = mpsc::unbounded_channel();
    // The dispatcher ends when the scheduler drops its sender, after its last event.
    let alerts = tokio::spawn(dispatcher.run(config.sites.clone(), alert_rx, channels_rx));
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    let last_tick = Arc::new(AtomicU64::new(
        crate::history::unix_ms(SystemTime::now()) as u64 / 1000,
    ));
    let scheduler = tokio::spawn(schedule::run(
        config.sites.clone(),
        saved,
        Arc::new(deps),
        schedule::Sinks {
            store: store.clone(),
            history: Some(history),
            alerts: Some(alert_tx),
            heartbeat: Some(scheduler_heartbeat(store.clone(), Arc::clone(&last_tick))),
        },
        config.daemon.max_concurrent_probes,
        control_rx,
        stop.clone(),
    ));
    if let Some(url) = &config.daemon.heartbeat_url {
        tokio::spawn(heartbeat(
            url.clone(),
            config.daemon.heartbeat_every,
            Arc::clone(&last_tick),
            stop.clone(),
        ));
    }
    let access = access(config)?;
    // The API runs on a thread of its own: rendering /status, the page or
    // /metrics never delays a probe.
    let listener = listener
        .into_std()
        .context("cannot hand the API listener to its thread")?;
    let api = api::spawn(
        listener,
        store.clone(),
        access,
        api::Limits::default(),
        stop.clone(),
    )
    .context("cannot start the API thread")?;
    let api = tokio::spawn(api.wait());
    tracing::info!(%addr, "api listening");
    Ok(Running {
        addr,
        store,
        daemon: config.daemon.clone(),
        stop,
        control: control_tx,
        channels: channels_tx,
        scheduler,
        api,
        alerts,
        writer,
    })
}

/// The state directory: `state_dir`, else `$STATE_DIRECTORY` (systemd), else the default.
pub fn state_dir(config: &Config) -> PathBuf {
    if let Some(dir) = &config.daemon.state_dir {
        return dir.clone();
    }
    match std::env::var_os("STATE_DIRECTORY") {
        // systemd may pass several, separated by ':'; the first is ours.
        Some(v) => PathBuf::from(v.to_string_lossy().split(':').next().unwrap_or_default()),
        None => PathBuf::from(config::STATE_DIR),
    }
}

fn check_state_dir(dir: &Path) {
    let probe = dir.join(".sitewatch-write-test");
    let result = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b""))
        .and_then(|()| std::fs::remove_file(&probe));
    match result {
        Ok(()) => tracing::info!(dir = %dir.display(), "state directory"),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "state directory is not writable")
        }
    }
}
fn raise_nofile_limit(wanted: usize) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            if (limit as usize) < wanted + 64 {
                tracing::warn!(
                    limit,
                    max_concurrent_probes = wanted,
                    "the open-files limit is below the probe cap; probes may fail with 'too many open files'"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-files limit"),
    }
}

/// Reloads from `path`: an invalid file is reported with every error and
/// the running configuration stays as it is.
async fn reload(running: &Running, path: &Path) {
    notify(&[crate::notify::State::Reloading]);
    let now = SystemTime::now();
    let result = match config::load(path) {
        Err(config::Error::Invalid(diags)) => {
            for d in &diags {
                tracing::error!("{d}");
            }
            Err(diags
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n"))
        }
        Err(e) => {
            tracing::error!("{e}");
            Err(e.to_string())
        }
        Ok(config) => running.reload(&config).await.inspect(|c| {
            tracing::info!(
                unchanged = c.unchanged.len(),
                changed = ?c.changed,
                added = ?c.added,
                removed = ?c.removed,
                "configuration reloaded"
            );
        }),
    };
    match &result {
        Ok(_) => running.store.reloaded(now, Ok(())),
        Err(e) => {
            tracing::error!("reload failed; the running configuration is unchanged");
            running.store.reloaded(now, Err(e.clone()));
        }
    }
    notify(&[crate::notify::State::Ready]);
}

/// `sitewatch run`: the daemon, until SIGTERM or SIGINT; SIGHUP reloads.
pub fn run(config_path: &Path) -> anyhow::Result<()> {
    let config = config::load(config_path)?;
    raise_nofile_limit(config.daemon.max_concurrent_probes);
    check_state_dir(&state_dir(&config));
    // One thread: the scheduler loop and every probe share it, which
    // measured cheapest per probe (docs/performance.md).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let stop_signal = shutdown::stop_signal().context("cannot install signal handlers")?;
        let mut hangup = shutdown::reload_signal().context("cannot install the SIGHUP handler")?;
        let listener = TcpListener::bind(config.daemon.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.daemon.listen))?;
        let running = start(&config, listener)?;
        tracing::info!(config = %config.path.display(), sites = config.sites.len(), version = env!("CARGO_PKG_VERSION"), "sitewatch started");
        notify(&[crate::notify::State::Ready]);
        tokio::pin!(stop_signal);
        let signal = loop {
            tokio::select! {
                signal = &mut stop_signal => break signal,
                _ = hangup.recv() => reload(&running, &config.path).await,
            }
        };
        tracing::info!(signal, "stopping");
        notify(&[crate::notify::State::Stopping]);
        running.stop();
        running.wait().await?;
        tracing::info!("stopped");
        Ok(())
    })
}
