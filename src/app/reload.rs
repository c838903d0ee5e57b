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

/// The most errors of an invalid file, and names of each kind of change,
/// a reload logs (a file of 100,000 sites would make one line of megabytes).
const LOGGED: usize = 20;

/// `names` as the reload's log line shows them: all of a few, the first
/// [`LOGGED`] of many and how many more.
fn some(names: &[String]) -> String {
    if names.len() <= LOGGED {
        format!("{names:?}")
    } else {
        format!("{:?} and {} more", &names[..LOGGED], names.len() - LOGGED)
    }
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
            for d in diags.iter().take(LOGGED) {
                tracing::error!("{d}");
            }
            if diags.len() > LOGGED {
                tracing::error!(
                    "… and {} more errors (`sitewatch validate` lists them all)",
                    diags.len() - LOGGED
                );
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
                restarted = %some(&d.restarted),
                kept = %some(&d.kept),
                added = %some(&d.added),
                removed = %some(&d.removed),
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

#[cfg(test)]
mod tests {
    #[test]
    fn a_long_list_of_names_is_cut_in_the_log_line() {
        let names = |n: usize| (0..n).map(|i| format!("s{i}")).collect::<Vec<_>>();
        assert_eq!(super::some(&names(2)), r#"["s0", "s1"]"#);
        let many = super::some(&names(100_000));
        assert!(many.ends_with("\"s19\"] and 99980 more"), "{many}");
        assert!(many.len() < 200);
    }
}
