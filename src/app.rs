//! The composition root: loads the configuration, builds the probe
//! dependencies, the store, the scheduler and the API, and runs them until a
//! stop signal. The only module that knows every other.

use crate::config::{self, Config};
use crate::history::{History, WriterThread};
use crate::probe::ProbeDeps;
use crate::store::StatusStore;
use crate::{api, schedule, shutdown};
use anyhow::Context;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running daemon: its API address, its store, and the handles to stop it.
pub struct Running {
    /// Where the API listens.
    pub addr: SocketAddr,
    /// The shared status (read it as the API does).
    pub store: StatusStore,
    stop: CancellationToken,
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

    /// Waits until the scheduler has drained and the API has closed.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.scheduler.await.context("the scheduler task failed")?;
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

/// Starts the daemon for `config` with its API on `listener`.
pub fn start(config: &Config, listener: TcpListener) -> anyhow::Result<Running> {
    let addr = listener
        .local_addr()
        .context("the API listener has no address")?;
    let deps = ProbeDeps::new(config.sites.iter().map(|s| s.as_ref()))
        .context("cannot prepare the probes")?;
    let dir = state_dir(config);
    let (dispatcher, alert_stats) =
        crate::alert::Dispatcher::new(config, &dir).map_err(anyhow::Error::msg)?;
    let (history, writer, saved) = History::open(&dir, &config.sites);
    let store = StatusStore::new(
        &config.sites,
        SystemTime::now(),
        &saved,
        Some(history.reader()),
    )
    .with_alert_stats(alert_stats);
    let stop = CancellationToken::new();
    let (alert_tx, alert_rx) = tokio::sync::mpsc::unbounded_channel();
    // The dispatcher ends when the scheduler drops its sender, after its last event.
    let alerts = tokio::spawn(dispatcher.run(config.sites.clone(), alert_rx));
    let scheduler = tokio::spawn(schedule::run(
        config.sites.clone(),
        saved,
        Arc::new(deps),
        schedule::Sinks {
            store: store.clone(),
            history: Some(history),
            alerts: Some(alert_tx),
        },
        config.daemon.max_concurrent_probes,
        stop.clone(),
    ));
    let api_stop = stop.clone();
    let api = tokio::spawn(api::serve(listener, store.clone(), async move {
        api_stop.cancelled().await
    }));
    tracing::info!(%addr, "api listening");
    Ok(Running {
        addr,
        store,
        stop,
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

/// Raises the open-files limit to its hard maximum: each probe in flight
/// holds a socket, and the default soft limit (1024) is below the default
/// probe cap plus the API's connections.
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

/// `sitewatch run`: the daemon, until SIGTERM or SIGINT.
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
        let listener = TcpListener::bind(config.daemon.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.daemon.listen))?;
        let running = start(&config, listener)?;
        tracing::info!(config = %config.path.display(), sites = config.sites.len(), version = env!("CARGO_PKG_VERSION"), "sitewatch started");
        let signal = stop_signal.await;
        tracing::info!(signal, "stopping");
        running.stop();
        running.wait().await?;
        tracing::info!("stopped");
        Ok(())
    })
}
