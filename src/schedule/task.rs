//! A probe as a task: its spawn, its outcome sent back to the loop even if
//! it panics, and the lag figures.

use super::later;
use crate::config::SiteSpec;
use crate::probe::{self, ProbeDeps, ProbeReport};
use crate::store::LagStats;
use std::sync::Arc;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How a probe task ended.
pub(super) enum Outcome {
    /// The probe ran: the site's report.
    Report(Box<ProbeReport>),
    /// sitewatch could not probe (its own failure, not the site's).
    Error(String),
    /// Nothing can be said yet (a heartbeat before its first ping, or due
    /// while sitewatch was stopped): unknown, the state is kept.
    Pending(String),
    /// The daemon stopped before the probe got a slot.
    Cancelled,
}

/// A finished probe, sent back to the loop.
pub(super) struct Done {
    pub(super) idx: usize,
    pub(super) generation: u64,
    pub(super) planned: Instant,
    pub(super) began: Instant,
    pub(super) outcome: Outcome,
}

/// Sends the result back even if the probe task panics, so its site is
/// never left marked as running.
pub(super) struct Reporter {
    pub(super) tx: mpsc::UnboundedSender<Done>,
    pub(super) idx: usize,
    pub(super) generation: u64,
    pub(super) planned: Instant,
    pub(super) began: Instant,
    pub(super) sent: bool,
}

impl Reporter {
    pub(super) fn send(mut self, outcome: Outcome) {
        self.sent = true;
        let _ = self.tx.send(Done {
            idx: self.idx,
            generation: self.generation,
            planned: self.planned,
            began: self.began,
            outcome,
        });
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        if !self.sent {
            let _ = self.tx.send(Done {
                idx: self.idx,
                generation: self.generation,
                planned: self.planned,
                began: self.began,
                outcome: Outcome::Error("the probe task ended unexpectedly".to_string()),
            });
        }
    }
}

/// Lag percentiles from a histogram of microseconds.
pub(super) fn lag_stats(h: &hdrhistogram::Histogram<u64>) -> LagStats {
    let ms = |us: u64| us as f64 / 1000.0;
    LagStats {
        p50: ms(h.value_at_quantile(0.5)),
        p99: ms(h.value_at_quantile(0.99)),
        max: ms(h.max()),
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn spawn_probe(
    idx: usize,
    generation: u64,
    spec: Arc<SiteSpec>,
    deps: &Arc<ProbeDeps>,
    semaphore: &Arc<Semaphore>,
    tx: &mpsc::UnboundedSender<Done>,
    planned: Instant,
    stop: &CancellationToken,
) {
    let deps = Arc::clone(deps);
    let semaphore = Arc::clone(semaphore);
    let tx = tx.clone();
    let stop = stop.clone();
    tokio::spawn(async move {
        // Waiting for a slot ends when the daemon stops: nothing new starts.
        let permit = tokio::select! {
            biased;
            () = stop.cancelled() => None,
            p = semaphore.acquire_owned() => p.ok(),
        };
        let reporter = Reporter {
            tx,
            idx,
            generation,
            planned,
            began: Instant::now(),
            sent: false,
        };
        let Some(_permit) = permit else {
            reporter.send(Outcome::Cancelled);
            return;
        };
        // The whole timeout from when the probe really starts: one that
        // waited for a slot is not cut short (its next slot is skipped
        // instead, and counted).
        let deadline = later(reporter.began, spec.timeout);
        let outcome = match probe::run_until(&spec, &deps, deadline).await {
            Ok(report) => Outcome::Report(Box::new(report)),
            Err(e) => Outcome::Error(e.to_string()),
        };
        reporter.send(outcome);
    });
}
