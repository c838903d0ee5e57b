//! The HTTP API (axum): `/status`, `/status/{name}`, its history,
//! `/incidents`, `/healthz` and `/metrics`, plus the status page (`/`) and
//! badges (`/badge/{name}/…`) of [`crate::web`], served from a read-only
//! [`StatusStore`] handle.
//!
//! Access: the listener is loopback by default. An optional bearer token
//! ([`Access::token`]) guards the JSON API and `/metrics`; the page and
//! badges, which a browser or a README loads without headers, stay open, and
//! public mode ([`Access::public_page`]) hides targets, addresses and
//! details on them.
//!
//! Robustness: the API must never hurt the daemon it reports on. Its server
//! (`server.rs`, `conn.rs`) caps connections, the size of a request head and
//! body, and the time a connection may sit idle, take to send its head or
//! take to read its answer ([`Limits`]); and [`spawn`] runs it on a thread
//! of its own, so rendering a big answer never delays a probe.
//!
//! | file | owns |
//! |---|---|
//! | `routes.rs` | the routes and their handlers |
//! | `access.rs` | the bearer token and public mode |
//! | `limits.rs` | [`Limits`] and their defaults |
//! | `server.rs` | the accept loop: connection cap, shedding, graceful stop |
//! | `conn.rs` | one connection: hyper, its timeouts and body cap |
//! | `stats.rs` | the server's counters and their `/metrics` series |
//! | `thread.rs` | [`spawn`]: the API on its own thread and runtime |

mod access;
mod conn;
mod limits;
mod ping;
mod routes;
mod server;
mod silences;
mod stats;
mod thread;

pub use access::{Access, ApiToken, PUBLIC_ENV, TOKEN_ENV};
pub use limits::{LONGEST, Limits, MIN_HEAD_BYTES};
pub use thread::{ApiThread, spawn, spawn_serving};

/// What the whole API serves beyond the store.
#[derive(Clone, Default)]
pub struct Extras {
    /// Where heartbeat pings go (`/ping/…`).
    pub pings: Option<Arc<crate::heartbeat::hub::Hub>>,
    /// The silences, and where they are saved (`/api/v1/silences`).
    pub silences: Option<(crate::silence::Silences, crate::history::History)>,
}

/// What a listener serves.
#[derive(Clone)]
pub enum Serving {
    /// The whole API.
    Api(Extras),
    /// Heartbeat pings only (`[daemon] ping_listen`).
    PingsOnly(Arc<crate::heartbeat::hub::Hub>),
}

use crate::store::StatusStore;
use axum::Router;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The API's routes over `store`, with default access (no token, full page).
pub fn router(store: StatusStore) -> Router {
    router_with(store, Access::default())
}

/// The routes over `store` with `access` (the seam tests and, later, the
/// configuration use; [`serve`] reads it from the environment). Served by
/// anything but [`serve_with`], they carry no [`Limits`].
pub fn router_with(store: StatusStore, access: Access) -> Router {
    routes::routes(store, access, None, Serving::Api(Extras::default()))
}

/// Serves the API on `listener` until `shutdown` resolves, with the access
/// the environment sets ([`Access::from_env`]) and the default [`Limits`].
pub async fn serve(
    listener: TcpListener,
    store: StatusStore,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(
        listener,
        store,
        Access::from_env(),
        Limits::default(),
        shutdown,
    )
    .await
}

/// Serves the API on `listener` with `access` and `limits` until `shutdown`
/// resolves, then lets requests in progress finish for at most
/// [`Limits::shutdown_grace`]. Runs on the caller's runtime: [`spawn`] gives
/// it a thread of its own.
pub async fn serve_with(
    listener: TcpListener,
    store: StatusStore,
    access: Access,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_routes(
        listener,
        store,
        access,
        limits,
        Serving::Api(Extras::default()),
        shutdown,
    )
    .await
}

/// [`serve_with`] serving `what`.
pub async fn serve_routes(
    listener: TcpListener,
    store: StatusStore,
    access: Access,
    limits: Limits,
    what: Serving,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if access.token.is_some() && !access.public_page && matches!(what, Serving::Api(_)) {
        tracing::warn!(
            "the API token guards the JSON API and /metrics, but not the status page and badges; turn public mode on ({PUBLIC_ENV}=1) to hide targets and details there"
        );
    }
    let limits = limits.checked();
    let stats = Arc::new(stats::ServerStats::new(&limits));
    let router = routes::routes(store, access, Some(Arc::clone(&stats)), what);
    server::run(listener, router, limits, stats, shutdown).await
}
