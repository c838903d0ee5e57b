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
//! | file | owns |
//! |---|---|
//! | `routes.rs` | the routes and their handlers |
//! | `access.rs` | the bearer token and public mode |

mod access;
mod routes;

pub use access::{Access, ApiToken, PUBLIC_ENV, TOKEN_ENV};

use crate::store::StatusStore;
use axum::Router;
use std::future::Future;
use tokio::net::TcpListener;

/// The API's routes over `store`, with default access (no token, full page).
pub fn router(store: StatusStore) -> Router {
    router_with(store, Access::default())
}

/// The routes over `store` with `access` (the seam tests and, later, the
/// configuration use; [`serve`] reads it from the environment).
pub fn router_with(store: StatusStore, access: Access) -> Router {
    routes::routes(store, access)
}

/// Serves the API on `listener` until `shutdown` resolves, with the access
/// the environment sets ([`Access::from_env`]).
pub async fn serve(
    listener: TcpListener,
    store: StatusStore,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, store, Access::from_env(), shutdown).await
}

/// Serves the API on `listener` with `access` until `shutdown` resolves
/// (for a caller that reads access from the configuration).
pub async fn serve_with(
    listener: TcpListener,
    store: StatusStore,
    access: Access,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if access.token.is_some() && !access.public_page {
        tracing::warn!(
            "the API token guards the JSON API and /metrics, but not the status page and badges; turn public mode on ({PUBLIC_ENV}=1) to hide targets and details there"
        );
    }
    axum::serve(listener, router_with(store, access))
        .with_graceful_shutdown(shutdown)
        .await
}
