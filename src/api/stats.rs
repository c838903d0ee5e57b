//! The API server's own figures (connections open, shed, timed out,
//! refused) and the `sitewatch_api_*` series `/metrics` shows them as, so
//! an operator can see the limits at work. Plain atomics: written by the
//! server, read at scrape time.

use super::Limits;
use crate::web::metrics::{family, single};
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why the server closed a connection before its client did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Closed {
    /// Shed to make room for a new connection at the cap.
    Shed,
    /// No byte of a request within [`Limits::idle_timeout`].
    Idle,
    /// The head did not arrive within [`Limits::header_read_timeout`].
    Header,
    /// The request was not done within [`Limits::request_timeout`].
    Request,
    /// The head was longer than [`Limits::max_head_bytes`] (`431`).
    HeadTooLarge,
    /// The body was longer than [`Limits::max_body_bytes`] (`413`).
    BodyTooLarge,
}

impl Closed {
    const ALL: [Closed; 6] = [
        Closed::Shed,
        Closed::Idle,
        Closed::Header,
        Closed::Request,
        Closed::HeadTooLarge,
        Closed::BodyTooLarge,
    ];

    /// The `reason` label.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Closed::Shed => "shed",
            Closed::Idle => "idle_timeout",
            Closed::Header => "header_timeout",
            Closed::Request => "request_timeout",
            Closed::HeadTooLarge => "head_too_large",
            Closed::BodyTooLarge => "body_too_large",
        }
    }
}

/// Counters of one server.
#[derive(Debug)]
pub(super) struct ServerStats {
    max_connections: u64,
    open: AtomicU64,
    accepted: AtomicU64,
    closed: [AtomicU64; Closed::ALL.len()],
}

impl ServerStats {
    pub(super) fn new(limits: &Limits) -> ServerStats {
        ServerStats {
            max_connections: limits.max_connections as u64,
            open: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            closed: Default::default(),
        }
    }

    /// A connection was accepted; it counts as open until [`Self::ended`].
    pub(super) fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection ended, closed by the server for `why` if given.
    pub(super) fn ended(&self, why: Option<Closed>) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        if let Some(why) = why {
            self.count(why);
        }
    }

    /// Counts one closing for `why` on a connection still open.
    pub(super) fn count(&self, why: Closed) {
        self.closed[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn closed(&self, why: Closed) -> u64 {
        self.closed[why as usize].load(Ordering::Relaxed)
    }
}

/// Encodes [`ServerStats`] at each scrape.
pub(super) struct Collector(Arc<ServerStats>);

impl Collector {
    pub(super) fn new(stats: Arc<ServerStats>) -> Collector {
        Collector(stats)
    }
}

impl fmt::Debug for Collector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("api::Collector").finish()
    }
}

impl prometheus_client::collector::Collector for Collector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
        let s = &self.0;
        single(
            &mut enc,
            "sitewatch_api_connections",
            "Connections open to the API now",
            ConstGauge::new(s.open.load(Ordering::Relaxed) as i64),
        )?;
        single(
            &mut enc,
            "sitewatch_api_connections_max",
            "The cap on connections open to the API at once",
            ConstGauge::new(s.max_connections as i64),
        )?;
        single(
            &mut enc,
            "sitewatch_api_connections_accepted",
            "Connections the API accepted since start",
            ConstCounter::new(s.accepted.load(Ordering::Relaxed)),
        )?;
        family(
            &mut enc,
            "sitewatch_api_connections_closed",
            "Connections the API closed before their client did, by reason: shed at the cap, a timeout, or a head or body over its cap",
            MetricType::Counter,
            Closed::ALL
                .iter()
                .map(|&why| ([("reason", why.as_str())], ConstCounter::new(s.closed(why)))),
        )
    }
}
