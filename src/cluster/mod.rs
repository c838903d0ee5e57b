//! Vantage peers: several sitewatch instances, in different networks, that
//! watch the same sites and give each other a second opinion before an
//! outage is believed. Plain HTTPS between them, a shared token, and no
//! consensus protocol: when a site's failure is about to be confirmed here,
//! the site's other vantages are asked to probe it *now* ([`client`]),
//! each answers with its own diagnosis ([`server`]), and the votes are
//! counted ([`vote`]). A peer only ever probes sites of its own
//! configuration: no URL is accepted from the network.

pub mod client;
pub mod health;
pub mod sender;
pub mod server;
pub mod vote;

use crate::config::SiteSpec;
use crate::diagnosis::{Cause, Status};
use crate::probe::LayerReport;
use crate::selfcheck::NetState;
use serde::{Deserialize, Serialize};
use std::time::SystemTime;

/// What one vantage saw of one site when it was asked: its own diagnosis,
/// its own network's state and the fingerprint of its probe settings (a
/// vantage that probes with other settings abstains).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct View {
    /// The vantage that probed.
    pub vantage: String,
    /// The site.
    pub site: String,
    /// `config::probe_key` of the site as that vantage has it.
    pub probe_key: String,
    /// That vantage's own network, as its self-check sees it.
    pub network: NetState,
    /// What the probe found.
    pub status: Status,
    /// Why, when not up.
    pub cause: Option<Cause>,
    /// The probe's facts.
    pub detail: String,
    /// What to check first.
    pub hint: Option<String>,
    /// The probe's layers.
    pub layers: Vec<LayerReport>,
    /// When the probe started.
    #[serde(with = "crate::timefmt")]
    pub at: SystemTime,
    /// How long it took, milliseconds.
    pub ms: f64,
    /// The site's confirmed status at that vantage when it answered.
    #[serde(default)]
    pub judged: Option<crate::state::Level>,
}

/// A peer's question: probe this site now.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ask {
    /// The site, by name (the peer's own configuration says how to probe it).
    pub site: String,
    /// Who asks.
    pub from: String,
}

/// How a vantage is, as `GET /peer/v1/status` says.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PeerStatus {
    /// Its name.
    pub vantage: String,
    /// Its own network.
    pub network: NetState,
    /// Its version.
    pub version: String,
    /// The site asked about (`?site=NAME`), as this vantage judges it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<SiteBrief>,
}

/// A site's confirmed state at one vantage: enough for another vantage to
/// know whether this one has (or will have) sent an alert about it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SiteBrief {
    /// The site.
    pub name: String,
    /// `unknown`, `up`, `degraded` or `down`.
    pub status: crate::state::Level,
    /// Why, when not up.
    pub cause: Option<Cause>,
    /// Since when.
    #[serde(with = "crate::timefmt")]
    pub since: SystemTime,
    /// The last alert about it that vantage sent (or queued) to its chat
    /// and email channels, and when.
    #[serde(default)]
    pub told: Option<Told>,
}

/// An alert a vantage decided to send itself.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Told {
    /// What it said.
    pub kind: crate::alert::AlertKind,
    /// When.
    #[serde(with = "crate::timefmt")]
    pub at: SystemTime,
}

/// This vantage's side of the votes: its name and its peers.
pub struct Voting {
    /// The other vantages and how to ask them.
    pub peers: client::Peers,
}

impl Voting {
    /// This vantage's name.
    pub fn vantage(&self) -> &str {
        self.peers.vantage()
    }

    /// The other vantages that watch `spec` (its `vantages`, or every peer).
    pub fn others(&self, spec: &SiteSpec) -> Vec<String> {
        self.peers
            .all()
            .iter()
            .map(|p| p.name.clone())
            .filter(|n| spec.vantages.is_empty() || spec.vantages.contains(n))
            .collect()
    }
}

/// The peer API's paths.
pub const PROBE_PATH: &str = "/peer/v1/probe";
/// See [`PROBE_PATH`].
pub const STATUS_PATH: &str = "/peer/v1/status";
