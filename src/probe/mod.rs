//! One probe of one site: walk DNS → TCP → TLS → HTTP the way a browser
//! does, time each layer, and stop at the first that fails; follow
//! redirects, walking every hop the same way.
//!
//! The parts: `redirect` walks the chain of hops and composes the report,
//! `walk` runs one hop (DNS, TCP, TLS) and records layers, `answer` judges
//! the top layer (HTTP or a banner), [`body`] searches bodies as they
//! stream, and [`text`] caps everything a target can make large. The
//! per-protocol tables live in [`dns`], [`tcp`], [`tls`] and [`http`].
//!
//! Sees only a [`SiteSpec`] and the shared [`ProbeDeps`] (resolvers, TLS
//! configurations); knows nothing of state, alerts or the store. A site that
//! is down is a [`ProbeReport`] like any other; `Err` means sitewatch itself
//! could not probe (no sockets, no resolver configuration).

mod answer;
pub mod body;
pub mod dns;
pub mod edge;
pub mod http;
mod redirect;
pub mod tcp;
pub mod text;
pub mod tls;
mod walk;

use crate::config::{Host, SiteSpec};
use crate::diagnosis::{Cause, Layer, Status};
use serde::Serialize;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// What one layer did.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct LayerReport {
    /// Which layer.
    pub layer: Layer,
    /// Whether it succeeded.
    pub ok: bool,
    /// Elapsed milliseconds, from the moment the layer really began.
    pub ms: f64,
    /// The facts of this layer (addresses, protocol, status).
    pub detail: String,
}

/// The result of one probe, in the shape of the diagnosis contract.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProbeReport {
    /// up, degraded or down.
    pub status: Status,
    /// Why, when not up.
    pub cause: Option<Cause>,
    /// One sentence with the facts.
    pub detail: String,
    /// One sentence: what to check first (absent when up).
    pub hint: Option<String>,
    /// Every layer attempted, in order (several hops when redirected).
    pub layers: Vec<LayerReport>,
    /// Wall-clock start of the probe.
    #[serde(with = "crate::timefmt")]
    pub started_at: SystemTime,
    /// Whole probe duration in milliseconds.
    pub ms: f64,
    /// The address the result is about (the one used, or the one that failed worst).
    pub addr: Option<SocketAddr>,
    /// The HTTP status received last, if any.
    pub http_status: Option<u16>,
    /// The leaf certificate presented last, if any.
    pub cert: Option<tls::CertFacts>,
    /// What the registry says of the site's domain, when the daemon asked
    /// (see [`crate::domain::watch`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<crate::domain::watch::DomainFacts>,
}

/// sitewatch could not probe at all: its own failure, not the site's.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// No socket or local port could be had.
    #[error(transparent)]
    Local(#[from] tcp::LocalError),
    /// The resolvers or TLS configuration for this site are missing.
    #[error("{0}")]
    Setup(String),
}

/// Shared, read-only things probes need: built once per configuration.
pub struct ProbeDeps {
    /// DNS resolvers.
    pub resolvers: dns::Resolvers,
    /// TLS client configurations.
    pub tls: tls::TlsClients,
}

/// The dependencies could not be built from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum DepsError {
    /// A resolver could not be built.
    #[error(transparent)]
    Dns(#[from] dns::BuildError),
    /// A TLS configuration could not be built.
    #[error(transparent)]
    Tls(#[from] tls::BuildError),
}

impl ProbeDeps {
    /// Builds the resolvers and TLS configurations `sites` need. Redirects
    /// may lead anywhere, so HTTP sites always get the system resolver and
    /// an HTTPS configuration.
    pub fn new<'a>(
        sites: impl IntoIterator<Item = &'a SiteSpec> + Clone,
    ) -> Result<ProbeDeps, DepsError> {
        // Heartbeats are judged from their pings: nothing to resolve or dial.
        let sites: Vec<&SiteSpec> = sites
            .into_iter()
            .filter(|s| s.heartbeat.is_none())
            .collect();
        let need_system = sites.iter().any(|s| {
            (matches!(s.target.host, Host::Name(_)) && s.expect.resolvers.is_empty())
                || (s.target.scheme.uses_http() && s.http.max_redirects > 0)
        });
        let resolvers = dns::Resolvers::new(
            need_system,
            sites.iter().map(|s| s.expect.resolvers.as_slice()),
        )?;
        let mut tls = tls::TlsClients::new();
        for site in sites {
            if site.target.scheme.uses_tls()
                || (site.target.scheme.uses_http() && site.http.max_redirects > 0)
            {
                tls.prepare(
                    site.expect.ca_file.as_deref(),
                    site.target.scheme.uses_http(),
                )?;
            }
        }
        Ok(ProbeDeps { resolvers, tls })
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// Probes `site` once, within its timeout.
pub async fn run(site: &SiteSpec, deps: &ProbeDeps) -> Result<ProbeReport, ProbeError> {
    run_until(site, deps, Instant::now() + site.timeout).await
}

/// Probes `site` once, giving up at `deadline` (the scheduler ends a probe
/// before the site's next slot even when it started late).
pub async fn run_until(
    site: &SiteSpec,
    deps: &ProbeDeps,
    deadline: Instant,
) -> Result<ProbeReport, ProbeError> {
    redirect::walk(site, deps, deadline).await
}
