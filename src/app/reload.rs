//! A reload (SIGHUP): the file is read, parsed and everything it needs is
//! prepared off the scheduler's thread; [`super::Running::reload`] then
//! swaps channels, keys, windows and sites in that order.

use super::{Running, liveness::notify};
use crate::alert;
use crate::config::{self, Config};
use crate::probe::ProbeDeps;
use std::path::Path;
use std::time::SystemTime;

/// What a reload prepares off the scheduler's thread: the parsed file,
/// resolvers and TLS roots, channels with their secrets.
pub(super) struct Prepared {
    pub(super) config: Config,
    pub(super) deps: ProbeDeps,
    pub(super) channels: alert::ChannelSet,
    pub(super) ping_keys: std::collections::HashMap<String, String>,
}

pub(super) fn prepare(config: Config) -> Result<Prepared, String> {
    let config = config.for_this_vantage();
    let deps = ProbeDeps::new(config.sites.iter().map(|s| s.as_ref()))
        .map_err(|e| format!("cannot prepare the probes: {e}"))?;
    let channels = alert::ChannelSet::from_config(&config).map_err(|e| e.to_string())?;
    let ping_keys = crate::heartbeat::hub::resolve_keys(&config.sites)?;
    Ok(Prepared {
        config,
        deps,
        channels,
        ping_keys,
    })
}

/// Reloads from `path`: the file is read, parsed and prepared off the
/// scheduler's thread; an invalid file is reported with every error and the
/// running configuration stays as it is.
pub(super) async fn reload(running: &Running, path: &Path) {
    notify(&[crate::notify::State::Reloading]);
    let now = SystemTime::now();
    let path = path.to_path_buf();
    let prepared = tokio::task::spawn_blocking(move || match config::load(&path) {
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
        Ok(config) => prepare(config),
    })
    .await
    .unwrap_or_else(|e| Err(format!("preparing the configuration failed: {e}")));
    let result = match prepared {
        Ok(p) => running.apply(p).await.inspect(|d| {
            tracing::info!(
                unchanged = d.unchanged.len(),
                restarted = ?d.restarted,
                kept = ?d.kept,
                added = ?d.added,
                removed = ?d.removed,
                channels_changed = d.channels,
                "configuration reloaded"
            );
        }),
        Err(e) => Err(e),
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
