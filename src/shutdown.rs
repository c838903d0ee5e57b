//! Process signals: SIGTERM and SIGINT stop the daemon (systemd sends
//! SIGTERM, a terminal sends SIGINT); SIGHUP reloads the configuration.

use tokio::signal::unix::{SignalKind, signal};

/// Installs the handlers now and returns a future that resolves with the
/// name of the first stop signal received.
pub fn stop_signal() -> std::io::Result<impl Future<Output = &'static str>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}

/// The SIGHUP stream: each signal asks for a configuration reload.
pub fn reload_signal() -> std::io::Result<tokio::signal::unix::Signal> {
    signal(SignalKind::hangup())
}
