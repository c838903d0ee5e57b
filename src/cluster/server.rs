//! The peer API: what other vantages ask this one. `POST /peer/v1/probe`
//! with `{"site": NAME, "from": VANTAGE}` probes a site of this instance's
//! own configuration now and answers with its [`View`]; `GET
//! /peer/v1/status` says this vantage is alive and how its network is.
//! Every request carries the cluster's token (compared in constant time);
//! a missing or wrong one is `401`, a site this instance does not have is
//! `404`. Served over TLS (rustls), or plain only on a loopback address.

use super::{Ask, PROBE_PATH, PeerStatus, STATUS_PATH, View};
use crate::api::ApiToken;
use crate::config::SiteSpec;
use crate::probe::{self, ProbeDeps};
use crate::selfcheck;
use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Connections served at once at most.
const MAX_CONNECTIONS: usize = 64;
/// A request head must arrive within this long.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A TLS handshake must end within this long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A request body (a site's name) is small.
const MAX_BODY: usize = 4096;
/// The whole request, probe included, ends within this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(660);

/// The sites this vantage probes for its peers, and how.
pub struct Catalog {
    /// The sites by name.
    pub sites: HashMap<String, Arc<SiteSpec>>,
    /// Their resolvers and TLS configurations.
    pub deps: Arc<ProbeDeps>,
}

/// What the peer API needs; cheap to clone.
#[derive(Clone)]
pub struct PeerService {
    vantage: String,
    token: ApiToken,
    catalog: Arc<Mutex<Arc<Catalog>>>,
    network: selfcheck::Handle,
    store: Option<crate::store::StatusStore>,
    told: Option<super::sender::ToldLog>,
}

impl PeerService {
    /// The service of vantage `vantage`, guarded by `token`.
    pub fn new(
        vantage: String,
        token: ApiToken,
        catalog: Catalog,
        network: selfcheck::Handle,
    ) -> PeerService {
        PeerService {
            vantage,
            token,
            catalog: Arc::new(Mutex::new(Arc::new(catalog))),
            network,
            store: None,
            told: None,
        }
    }

    /// Answers with what this vantage told its chat and email channels
    /// about a site (`told`), so that the others know who announced what.
    pub fn with_told(mut self, told: super::sender::ToldLog) -> PeerService {
        self.told = Some(told);
        self
    }

    /// Answers `GET /peer/v1/status?site=NAME` with the site's confirmed
    /// state from `store`.
    pub fn with_store(mut self, store: crate::store::StatusStore) -> PeerService {
        self.store = Some(store);
        self
    }

    /// `site`'s confirmed state here, if this vantage has it.
    fn brief(&self, site: &str) -> Option<super::SiteBrief> {
        let view = self.store.as_ref()?.site(site)?;
        Some(super::SiteBrief {
            name: view.name,
            status: view.status,
            cause: view.cause,
            since: view.since,
            told: self.told.as_ref().and_then(|t| t.get(site)),
        })
    }

    /// Switches to the sites of a new configuration.
    pub fn set_catalog(&self, catalog: Catalog) {
        *self.catalog.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(catalog);
    }

    fn catalog(&self) -> Arc<Catalog> {
        Arc::clone(&self.catalog.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Probes `site` now, as this vantage sees it.
    pub async fn view(&self, site: &str) -> Option<Result<View, String>> {
        let catalog = self.catalog();
        let spec = catalog.sites.get(site)?;
        let network = self.network.view().state;
        Some(
            probe::run(spec, &catalog.deps)
                .await
                .map(|r| View {
                    vantage: self.vantage.clone(),
                    site: site.to_string(),
                    probe_key: crate::config::probe_key(spec),
                    network,
                    status: r.status,
                    cause: r.cause,
                    detail: r.detail,
                    hint: r.hint,
                    layers: r.layers,
                    at: r.started_at,
                    ms: r.ms,
                    judged: self.brief(site).map(|b| b.status),
                })
                .map_err(|e| e.to_string()),
        )
    }
}

/// The routes, behind the token.
pub fn router(svc: PeerService) -> Router {
    Router::new()
        .route(PROBE_PATH, post(probe_now))
        .route(STATUS_PATH, get(status))
        .layer(middleware::from_fn_with_state(svc.clone(), require_token))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(svc)
}

async fn require_token(State(svc): State<PeerService>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(t) if svc.token.matches(t) => next.run(request).await,
        _ => (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"error": "this peer API needs the cluster's token"})),
        )
            .into_response(),
    }
}

async fn probe_now(State(svc): State<PeerService>, Json(ask): Json<Ask>) -> Response {
    tracing::debug!(site = %ask.site, from = %ask.from, "a peer asks for a probe");
    match svc.view(&ask.site).await {
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": format!("no site named \"{}\" here", crate::probe::text::cap(&ask.site, 128))})),
        )
            .into_response(),
        Some(Ok(view)) => Json(view).into_response(),
        Some(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"error": format!("this vantage could not probe: {e}")})),
        )
            .into_response(),
    }
}

/// `?site=NAME` on the status request.
#[derive(serde::Deserialize)]
struct StatusQuery {
    site: Option<String>,
}

async fn status(State(svc): State<PeerService>, Query(q): Query<StatusQuery>) -> Json<PeerStatus> {
    Json(PeerStatus {
        vantage: svc.vantage.clone(),
        network: svc.network.view().state,
        version: env!("CARGO_PKG_VERSION").to_string(),
        site: q.site.as_deref().and_then(|s| svc.brief(s)),
    })
}

/// Serves the peer API on `listener` (over TLS when `tls` is given) until
/// `stop`, at most [`MAX_CONNECTIONS`] connections at once, each with a
/// header, handshake and request timeout.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    svc: PeerService,
    stop: CancellationToken,
) {
    let router = router(svc);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            () = stop.cancelled() => return,
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let stream = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "the peer API cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let router = router.clone();
        let acceptor = acceptor.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = TowerToHyperService::new(router);
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(16 * 1024)
                .keep_alive(true);
            let served = async {
                match acceptor {
                    Some(acceptor) => {
                        let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                            .await
                            .map_err(|_| "the TLS handshake timed out".to_string())?
                            .map_err(|e| format!("TLS: {e}"))?;
                        builder
                            .serve_connection(TokioIo::new(tls), service)
                            .await
                            .map_err(|e| e.to_string())
                    }
                    None => builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                        .map_err(|e| e.to_string()),
                }
            };
            tokio::select! {
                () = stop.cancelled() => {}
                r = tokio::time::timeout(REQUEST_TIMEOUT, served) => {
                    if let Ok(Err(e)) = r {
                        tracing::debug!(error = %e, "a peer connection ended");
                    }
                }
            }
        });
    }
}

/// A TLS server configuration from PEM certificate and key files.
pub fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
