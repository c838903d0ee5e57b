//! One daemon per state directory: the directory itself is locked with
//! `flock` for as long as the daemon runs. Two daemons on one directory
//! would send every alert twice and close each other's incidents. Also
//! where the state directory is, and the checks made of it at start.

use crate::config::{self, Config};
use anyhow::Context;
use std::fs::File;
use std::path::{Path, PathBuf};

/// The state directory's lock: one daemon per directory, held until exit.
/// The directory itself is locked (`flock`), so a read-only or full state
/// directory can still be locked; who holds it is written beside it when
/// the directory is writable.
pub struct StateLock {
    _dir: File,
}

/// The file that names the daemon holding the lock.
const PID_FILE: &str = "sitewatch.pid";

impl StateLock {
    /// Takes the lock on `dir` (created if missing), or says who holds it.
    pub fn acquire(dir: &Path) -> anyhow::Result<StateLock> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the state directory {}", dir.display()))?;
        let real = std::fs::canonicalize(dir)
            .with_context(|| format!("cannot resolve the state directory {}", dir.display()))?;
        if real.parent().is_none() {
            anyhow::bail!(
                "the state directory {} is {}: refusing to keep state in the root directory",
                dir.display(),
                real.display()
            );
        }
        let handle = File::open(&real)
            .with_context(|| format!("cannot open the state directory {}", real.display()))?;
        match handle.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let who = match std::fs::read_to_string(real.join(PID_FILE)) {
                    Ok(pid) if !pid.trim().is_empty() => {
                        format!("another sitewatch (pid {})", pid.trim())
                    }
                    _ => "another sitewatch".to_string(),
                };
                anyhow::bail!(
                    "{who} is already using the state directory {}: two daemons would send every alert twice; stop it first, or give this one its own state_dir",
                    real.display()
                );
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", real.display()));
            }
        }
        if let Err(e) = std::fs::write(real.join(PID_FILE), format!("{}\n", std::process::id())) {
            tracing::debug!(error = %e, "cannot record the pid beside the state");
        }
        Ok(StateLock { _dir: handle })
    }
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

pub(super) fn check_state_dir(dir: &Path) {
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

pub(super) fn raise_nofile_limit(wanted: usize) {
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
