//! The HTTP API (axum): `/status`, `/status/{name}` and `/healthz`, served
//! from a read-only [`StatusStore`] handle.

use crate::store::{SiteView, StatusStore};
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use std::future::Future;
use std::time::SystemTime;
use tokio::net::TcpListener;

/// The body of `GET /status`.
#[derive(Serialize)]
struct StatusBody {
    #[serde(with = "crate::timefmt")]
    generated_at: SystemTime,
    sites: Vec<SiteView>,
}

/// The body of every error response.
#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(ErrorBody { error: message })).into_response()
}

/// The API's routes over `store`.
pub fn router(store: StatusStore) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/status/{name}", get(site))
        .route("/healthz", get(healthz))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "no such endpoint: see docs/http-api.md".to_string(),
            )
        })
        .with_state(store)
}

async fn status(State(store): State<StatusStore>) -> Json<StatusBody> {
    Json(StatusBody {
        generated_at: SystemTime::now(),
        sites: store.sites(),
    })
}

async fn site(State(store): State<StatusStore>, Path(name): Path<String>) -> Response {
    match store.site(&name) {
        Some(view) => Json(view).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no site named \"{name}\"")),
    }
}

async fn healthz(State(store): State<StatusStore>) -> Response {
    Json(store.health()).into_response()
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    store: StatusStore,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(store))
        .with_graceful_shutdown(shutdown)
        .await
}
