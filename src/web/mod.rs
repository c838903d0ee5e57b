//! What a person or a monitoring system sees at a glance: the HTML status
//! page ([`page`]) with its uptime bars and latency sparklines
//! ([`graphs`]), shields-style SVG badges ([`badge`]) and the Prometheus
//! exposition ([`metrics`]).
//!
//! Everything here renders from a read-only [`StatusStore`] handle and the
//! history reader it carries, at request time; nothing here writes state or
//! knows the scheduler, the prober or the alert dispatcher. Routing and
//! access control stay in [`crate::api`].
//!
//! [`StatusStore`]: crate::store::StatusStore

pub mod badge;
pub mod graphs;
pub mod metrics;
pub mod page;

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (negative before it), as a float.
pub(crate) fn unix_secs(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}
