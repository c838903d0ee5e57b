//! Liveness: when the scheduler's loop last turned, systemd's status line
//! and watchdog feed, and the outside dead man's switch (`heartbeat_url`).

use super::STALLED_AFTER;
use crate::alert;
use crate::store::{SchedulerStats, StatusStore};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// When a loop last turned, on the monotonic clock.
#[derive(Clone)]
pub struct Beat {
    base: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Beat {
    pub(super) fn new() -> Beat {
        Beat {
            base: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    pub(super) fn mark(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// How long ago it last turned.
    pub(super) fn age(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.base.elapsed().saturating_sub(last)
    }
}

/// Tells systemd (`NOTIFY_SOCKET`) how things are.
pub(super) fn notify(states: &[crate::notify::State<'_>]) {
    if let Err(e) = crate::notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// Called by the scheduler about once a second: marks it alive and updates
/// the status line.
pub(super) fn scheduler_heartbeat(
    store: StatusStore,
    beat: Beat,
) -> Box<dyn FnMut(&SchedulerStats) + Send> {
    let mut last_status = String::new();
    Box::new(move |_stats| {
        beat.mark();
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
pub(super) async fn heartbeat(url: String, every: Duration, beat: Beat, stop: CancellationToken) {
    let client = match alert::channel::http_client(None) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the heartbeat client; no heartbeat is sent");
            // Stays alive (and idle): a missing heartbeat is the signal.
            stop.cancelled().await;
            return;
        }
    };
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let age = beat.age();
        if age > STALLED_AFTER {
            tracing::error!(
                seconds = age.as_secs(),
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
