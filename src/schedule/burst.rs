//! The correlated-failure trigger: when a large share of sites fails at
//! the network layers in one round, this monitor's own network is checked
//! at once.

use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// After a check triggered by failures, the next waits at least this long.
pub(super) const BURST_QUIET: Duration = Duration::from_secs(30);

/// Causes that say the path to a site failed rather than the site itself
/// answering badly: what this monitor's own broken network looks like.
pub(super) fn network_class(c: crate::diagnosis::Cause) -> bool {
    use crate::diagnosis::Cause;
    matches!(
        c,
        Cause::DnsTimeout
            | Cause::DnsServfail
            | Cause::TcpTimeout
            | Cause::TcpUnreachable
            | Cause::TlsTimeout
    )
}

/// Each internet site's latest result: when a large share of them fails at
/// the network layers at once (one round of probes), the self-check runs
/// at once.
#[derive(Default)]
pub(super) struct Burst {
    /// Per slot, whether its latest result failed at the network layers.
    latest: HashMap<usize, bool>,
    failing: usize,
    last_trigger: Option<Instant>,
}

impl Burst {
    /// Records a site's result; says whether the failures now warrant a check.
    pub(super) fn record(
        &mut self,
        idx: usize,
        now: Instant,
        network_failure: bool,
        share: f64,
    ) -> bool {
        if let Some(was) = self.latest.insert(idx, network_failure) {
            self.failing -= usize::from(was);
        }
        self.failing += usize::from(network_failure);
        let due = network_failure
            && self.failing as f64 >= share * self.latest.len() as f64
            && self
                .last_trigger
                .is_none_or(|t| now.saturating_duration_since(t) > BURST_QUIET);
        if due {
            self.last_trigger = Some(now);
        }
        due
    }
}
