//! The composition of vantage peers: the client that asks the other
//! vantages (when there are peers) and the peer API that answers them
//! (when `[cluster] listen` is set).

use crate::alert::channel::{Secret, resolve};
use crate::api::ApiToken;
use crate::cluster::Voting;
use crate::cluster::client::{Peer, Peers};
use crate::cluster::server::{self, Catalog, PeerService};
use crate::config::Config;
use crate::probe::ProbeDeps;
use anyhow::Context;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The shortest cluster token accepted.
const MIN_TOKEN_CHARS: usize = 16;

fn token(config: &Config) -> anyhow::Result<Option<Secret>> {
    let Some(source) = &config.cluster.token else {
        return Ok(None);
    };
    let secret = resolve(source)
        .map_err(anyhow::Error::msg)
        .context("cannot read the cluster's token")?;
    if secret.expose().chars().count() < MIN_TOKEN_CHARS {
        anyhow::bail!(
            "the cluster's token is shorter than {MIN_TOKEN_CHARS} characters: use a long random one (e.g. `openssl rand -hex 32`)"
        );
    }
    Ok(Some(secret))
}

/// The client side: `None` without peers.
pub(crate) fn voting(config: &Config) -> anyhow::Result<Option<Arc<Voting>>> {
    if config.cluster.peers.is_empty() {
        return Ok(None);
    }
    let token = token(config)?.context("[cluster] has peers but no token")?;
    let peers = config
        .cluster
        .peers
        .iter()
        .map(|p| Peer {
            name: p.name.clone(),
            url: p.url.clone(),
        })
        .collect();
    let peers = Peers::new(
        config.cluster.vantage.clone(),
        peers,
        token,
        config.cluster.ca_file.as_deref(),
        config.cluster.peer_timeout,
    )
    .map_err(anyhow::Error::msg)
    .context("cannot prepare the peers' client")?;
    Ok(Some(Arc::new(Voting { peers })))
}

/// The sites this vantage probes for its peers.
pub(super) fn catalog(config: &Config, deps: &Arc<ProbeDeps>) -> Catalog {
    Catalog {
        sites: config
            .sites
            .iter()
            // Heartbeats are not probed: a peer has nothing to say of one.
            .filter(|s| s.heartbeat.is_none())
            .map(|s| (s.name.clone(), Arc::clone(s)))
            .collect(),
        deps: Arc::clone(deps),
    }
}

/// The server side: `None` without `[cluster] listen`.
pub(super) fn peer_api(
    config: &Config,
    deps: &Arc<ProbeDeps>,
    network: crate::selfcheck::Handle,
    store: crate::store::StatusStore,
    told: Option<crate::cluster::sender::ToldLog>,
    stop: &CancellationToken,
) -> anyhow::Result<Option<(PeerService, JoinHandle<()>)>> {
    let Some(addr) = config.cluster.listen else {
        return Ok(None);
    };
    let token = token(config)?.context("[cluster] listens but has no token")?;
    let token = ApiToken::new(token.expose()).context("the cluster's token is empty")?;
    let tls = match (&config.cluster.tls_cert, &config.cluster.tls_key) {
        (Some(cert), Some(key)) => Some(
            server::tls_config(cert, key)
                .map_err(anyhow::Error::msg)
                .context("cannot prepare the peer API's TLS")?,
        ),
        _ => None,
    };
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("cannot listen for peers on {addr}"))?;
    listener
        .set_nonblocking(true)
        .context("cannot prepare the peer listener")?;
    let listener =
        tokio::net::TcpListener::from_std(listener).context("cannot prepare the peer listener")?;
    let bound = listener.local_addr().ok();
    let svc = PeerService::new(
        config.cluster.vantage.clone(),
        token,
        catalog(config, deps),
        network,
    )
    .with_store(store);
    let svc = match told {
        Some(t) => svc.with_told(t),
        None => svc,
    };
    let task = tokio::spawn(server::serve(listener, tls, svc.clone(), stop.clone()));
    if let Some(a) = bound {
        tracing::info!(addr = %a, vantage = %config.cluster.vantage, "peers listening");
    }
    Ok(Some((svc, task)))
}
