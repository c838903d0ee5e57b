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

use crate::history::Resolution;
use crate::store::{SiteView, StatusStore};
use axum::Json;
use axum::Router;
use axum::extract::{FromRef, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use std::time::SystemTime;
use tokio::net::TcpListener;

/// The body of `GET /status`.
#[derive(Serialize)]
struct StatusBody {
    #[serde(with = "crate::timefmt")]
    generated_at: SystemTime,
    sites: Vec<SiteView>,
    alerts: Option<crate::alert::AlertStats>,
    config: crate::store::ConfigStatus,
}

/// The body of every error response.
#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(ErrorBody { error: message })).into_response()
}

/// A bearer token for the API, compared in constant time and never
/// printed (its `Debug` shows `***`).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl ApiToken {
    /// A token; surrounding whitespace (a trailing newline from a file) is
    /// dropped, and an empty token is none.
    pub fn new(token: &str) -> Option<ApiToken> {
        let t = token.trim();
        (!t.is_empty()).then(|| ApiToken(t.to_string()))
    }

    /// Whether `presented` is this token. Compares SHA-256 digests byte by
    /// byte without stopping early, so the time taken tells nothing about
    /// the token's content or length.
    fn matches(&self, presented: &str) -> bool {
        use ring::digest::{SHA256, digest};
        let (a, b) = (
            digest(&SHA256, self.0.as_bytes()),
            digest(&SHA256, presented.as_bytes()),
        );
        a.as_ref()
            .iter()
            .zip(b.as_ref())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(***)")
    }
}

/// Who may see what.
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// When set, the JSON API and `/metrics` answer `401` unless the request
    /// carries `Authorization: Bearer <token>`. The page and badges stay open.
    pub token: Option<ApiToken>,
    /// Public mode: the page and badges show no targets (URLs), addresses
    /// or details (hints, probe facts, error texts), only names, statuses,
    /// causes in words, graphs and times.
    pub public_page: bool,
}

/// The environment variable holding the API token.
pub const TOKEN_ENV: &str = "SITEWATCH_API_TOKEN";
/// The environment variable that turns public mode on (`1`, `true` or `yes`).
pub const PUBLIC_ENV: &str = "SITEWATCH_PUBLIC_PAGE";

impl Access {
    /// Access as the environment sets it: [`TOKEN_ENV`] and [`PUBLIC_ENV`].
    pub fn from_env() -> Access {
        let token = std::env::var(TOKEN_ENV)
            .ok()
            .and_then(|t| ApiToken::new(&t));
        let public_page = std::env::var(PUBLIC_ENV)
            .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
            .unwrap_or(false);
        Access { token, public_page }
    }
}

/// What every handler can reach.
#[derive(Clone)]
struct AppState {
    store: StatusStore,
    access: Arc<Access>,
    metrics: Arc<crate::web::metrics::Metrics>,
    graphs: Arc<crate::web::graphs::GraphCache>,
}

impl FromRef<AppState> for StatusStore {
    fn from_ref(state: &AppState) -> StatusStore {
        state.store.clone()
    }
}

/// The API's routes over `store`, with default access (no token, full page).
pub fn router(store: StatusStore) -> Router {
    router_with(store, Access::default())
}

/// The routes over `store` with `access` (the seam tests and, later, the
/// configuration use; [`serve`] reads it from the environment).
pub fn router_with(store: StatusStore, access: Access) -> Router {
    let state = AppState {
        metrics: Arc::new(crate::web::metrics::Metrics::new(store.clone())),
        graphs: Arc::new(crate::web::graphs::GraphCache::new()),
        access: Arc::new(access),
        store,
    };
    let guarded = Router::new()
        .route("/status", get(status))
        .route("/status/{name}", get(site))
        .route("/status/{name}/history", get(history))
        .route("/incidents", get(incidents))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    let open = Router::new()
        .route("/", get(page))
        .route("/badge/{name}/status.svg", get(status_badge))
        .route("/badge/{name}/uptime.svg", get(uptime_badge));
    guarded
        .merge(open)
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "no such endpoint: see docs/http-api.md".to_string(),
            )
        })
        .with_state(state)
}

/// Answers `401` unless the request carries the bearer token (when one is set).
async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(token) = &state.access.token else {
        return next.run(request).await;
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
    if presented.is_some_and(|p| token.matches(p)) {
        return next.run(request).await;
    }
    let mut response = error(
        StatusCode::UNAUTHORIZED,
        "this endpoint needs `Authorization: Bearer <token>` (see docs/http-api.md, \"Access\")"
            .to_string(),
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"sitewatch\""),
    );
    response
}

async fn metrics(State(state): State<AppState>) -> Response {
    match state.metrics.render() {
        Ok(text) => (
            [(header::CONTENT_TYPE, crate::web::metrics::CONTENT_TYPE)],
            text,
        )
            .into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the metrics: {e}"),
        ),
    }
}

async fn page(State(state): State<AppState>) -> Response {
    match crate::web::page::render(&state.store, &state.graphs, state.access.public_page).await {
        Ok(html) => ([(header::CACHE_CONTROL, "no-cache")], Html(html)).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

fn svg(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, crate::web::badge::CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn status_badge(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    match state.store.site(&name) {
        Some(view) => svg(crate::web::badge::status(&view, state.access.public_page)),
        None => error(StatusCode::NOT_FOUND, format!("no site named \"{name}\"")),
    }
}

/// Query of `GET /badge/{name}/uptime.svg`.
#[derive(serde::Deserialize)]
struct BadgeQuery {
    window: Option<String>,
}

async fn uptime_badge(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<BadgeQuery>,
) -> Response {
    let window = match q.window.as_deref() {
        None => crate::web::badge::Window::Month,
        Some(w) => match crate::web::badge::Window::parse(w) {
            Some(w) => w,
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("`window` must be 24h, 7d, 30d or 90d, not \"{w}\""),
                );
            }
        },
    };
    match state.store.site(&name) {
        Some(view) => svg(crate::web::badge::uptime(&view, window)),
        None => error(StatusCode::NOT_FOUND, format!("no site named \"{name}\"")),
    }
}

async fn status(State(store): State<StatusStore>) -> Json<StatusBody> {
    Json(StatusBody {
        generated_at: SystemTime::now(),
        sites: store.sites(),
        alerts: store.alerts(),
        config: store.health().config,
    })
}

async fn site(State(store): State<StatusStore>, Path(name): Path<String>) -> Response {
    match store.site(&name) {
        Some(view) => Json(view).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no site named \"{name}\"")),
    }
}

async fn healthz(State(store): State<StatusStore>) -> Response {
    let health = store.health();
    let code = if health.storage_error.is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(health)).into_response()
}

/// Query of `GET /status/{name}/history`.
#[derive(serde::Deserialize)]
struct HistoryQuery {
    from: Option<String>,
    to: Option<String>,
    resolution: Option<String>,
}

fn parse_time(text: &str, name: &str) -> Result<SystemTime, String> {
    humantime::parse_rfc3339_weak(text).map_err(|_| {
        format!("`{name}` must be an RFC 3339 time like 2026-11-25T18:00:00Z, not \"{text}\"")
    })
}

async fn history(
    State(store): State<StatusStore>,
    Path(name): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Response {
    if store.site(&name).is_none() {
        return error(StatusCode::NOT_FOUND, format!("no site named \"{name}\""));
    }
    let now = SystemTime::now();
    let to = match q.to.as_deref().map(|t| parse_time(t, "to")).transpose() {
        Ok(t) => t.unwrap_or(now),
        Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
    };
    let from = match q.from.as_deref().map(|t| parse_time(t, "from")).transpose() {
        Ok(t) => t.unwrap_or(to - Duration::from_secs(24 * 3600)),
        Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
    };
    if from >= to {
        return error(
            StatusCode::BAD_REQUEST,
            "`from` must be before `to`".to_string(),
        );
    }
    let resolution = match q.resolution.as_deref() {
        None => {
            let span = to.duration_since(from).unwrap_or_default();
            if span <= crate::history::RAW_RETENTION {
                Resolution::Raw
            } else {
                Resolution::Hour
            }
        }
        Some(r) => match Resolution::parse(r) {
            Some(r) => r,
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("`resolution` must be \"raw\" or \"hour\", not \"{r}\""),
                );
            }
        },
    };
    let Some(reader) = store.history() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "history is not kept".to_string(),
        );
    };
    let site = name.clone();
    let result =
        tokio::task::spawn_blocking(move || reader.history(&site, from, to, resolution)).await;
    match result {
        Ok(Ok(points)) => Json(serde_json::json!({
            "site": name,
            "from": crate::timefmt::rfc3339(from),
            "to": crate::timefmt::rfc3339(to),
            "resolution": match resolution { Resolution::Raw => "raw", Resolution::Hour => "hour" },
            "points": points,
        }))
        .into_response(),
        Ok(Err(e)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot read the history: {e}"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Query of `GET /incidents`.
#[derive(serde::Deserialize)]
struct IncidentQuery {
    site: Option<String>,
    limit: Option<usize>,
}

async fn incidents(State(store): State<StatusStore>, Query(q): Query<IncidentQuery>) -> Response {
    if let Some(site) = &q.site
        && store.site(site).is_none()
    {
        return error(StatusCode::NOT_FOUND, format!("no site named \"{site}\""));
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return error(
            StatusCode::BAD_REQUEST,
            "`limit` must be between 1 and 1000".to_string(),
        );
    }
    let Some(reader) = store.history() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "history is not kept".to_string(),
        );
    };
    let site = q.site.clone();
    match tokio::task::spawn_blocking(move || reader.incidents(site.as_deref(), limit)).await {
        Ok(Ok(list)) => Json(serde_json::json!({ "incidents": list })).into_response(),
        Ok(Err(e)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot read the incidents: {e}"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_exactly_and_never_print() {
        let token = ApiToken::new(" s3cret\n").unwrap();
        assert!(token.matches("s3cret"));
        for wrong in ["s3cre", "s3cret2", "S3CRET", ""] {
            assert!(!token.matches(wrong), "{wrong}");
        }
        assert!(ApiToken::new(" \n").is_none());
        let access = Access {
            token: Some(token),
            public_page: false,
        };
        assert!(!format!("{access:?}").contains("s3cret"), "{access:?}");
    }
}
