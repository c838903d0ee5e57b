//! The routes and their handlers: JSON over the store, the page, badges
//! and metrics of [`crate::web`]. Nothing here knows sockets or limits
//! (that is [`super::server`]).

use super::access::{Access, require_token};
use crate::history::Resolution;
use crate::store::{SiteView, StatusStore};
use axum::Json;
use axum::Router;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use std::time::SystemTime;

/// The body of `GET /status`.
#[derive(Serialize)]
struct StatusBody {
    #[serde(with = "crate::timefmt")]
    generated_at: SystemTime,
    sites: Vec<SiteView>,
    /// Sites matching the filter, in all pages.
    total: usize,
    /// Where the next page starts, `null` on the last.
    next_cursor: Option<String>,
    alerts: Option<crate::alert::AlertStats>,
    config: crate::store::ConfigStatus,
    network: Option<crate::selfcheck::NetView>,
    peers: Option<Vec<crate::cluster::health::PeerView>>,
}

/// The body of every error response.
#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

pub(super) fn error(status: StatusCode, message: String) -> Response {
    (status, Json(ErrorBody { error: message })).into_response()
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

/// The routes over `store` with `access`; `/metrics` also encodes the
/// server's own figures, `server`, when there are any.
pub(super) fn routes(
    store: StatusStore,
    access: Access,
    server: Option<Arc<super::stats::ServerStats>>,
    what: super::Serving,
) -> Router {
    let not_found = || async {
        error(
            StatusCode::NOT_FOUND,
            "no such endpoint: see docs/http-api.md".to_string(),
        )
    };
    let extras = match what {
        super::Serving::PingsOnly(hub) => {
            return super::ping::routes(hub).fallback(not_found);
        }
        super::Serving::Api(extras) => extras,
    };
    let pings = extras.pings.map(super::ping::routes);
    let mut exposition = crate::web::metrics::Metrics::new(store.clone());
    if let Some(server) = server {
        exposition.register(Box::new(super::stats::Collector::new(server)));
    }
    let access = Arc::new(access);
    let state = AppState {
        metrics: Arc::new(exposition),
        graphs: Arc::new(crate::web::graphs::GraphCache::new()),
        access: Arc::clone(&access),
        store,
    };
    let guarded = Router::new()
        .route("/status", get(status))
        .route("/status/{name}", get(site))
        .route("/status/{name}/history", get(history))
        .route("/incidents", get(incidents))
        .route("/api/v1/outbox", get(outbox))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics));
    let guarded = match extras.silences {
        Some((set, history)) => guarded.merge(super::silences::routes(set, history)),
        None => guarded,
    };
    let guarded = guarded.route_layer(middleware::from_fn_with_state(access, require_token));
    let open = Router::new()
        .route("/", get(page))
        .route("/badge/{name}/status.svg", get(status_badge))
        .route("/badge/{name}/uptime.svg", get(uptime_badge));
    let api = guarded.merge(open).fallback(not_found).with_state(state);
    match pings {
        Some(p) => api.merge(p),
        None => api,
    }
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

/// Query of the page: the same filters as `GET /status`, from its search
/// box and tag links. Other keys are ignored (a browser may add some).
#[derive(serde::Deserialize, Default)]
struct PageQuery {
    status: Option<String>,
    tag: Option<String>,
    q: Option<String>,
}

async fn page(
    State(state): State<AppState>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let as_status = StatusQuery {
        status: q.status,
        tag: q.tag,
        q: q.q.clone(),
        limit: None,
        cursor: None,
    };
    let filter = match filter(&as_status) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let typed = q.q.unwrap_or_default();
    match crate::web::page::render(
        &state.store,
        &state.graphs,
        state.access.public_page,
        &filter,
        &typed,
    )
    .await
    {
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

/// Query of `GET /status`: which sites, and which page.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusQuery {
    /// Comma-separated statuses: unknown, up, degraded, down.
    status: Option<String>,
    /// Comma-separated tags (any of them).
    tag: Option<String>,
    /// Text the name or URL contains (any case).
    q: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// Reads a `GET /status` query into a filter, or says what is wrong.
fn filter(query: &StatusQuery) -> Result<crate::store::Filter, String> {
    use crate::state::Level;
    let list = |v: &Option<String>| -> Vec<String> {
        v.as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut statuses = Vec::new();
    for word in list(&query.status) {
        statuses.push(match word.as_str() {
            "unknown" => Level::Unknown,
            "up" => Level::Up,
            "degraded" => Level::Degraded,
            "down" => Level::Down,
            other => {
                return Err(format!(
                    "`status` lists \"{other}\": use unknown, up, degraded or down, comma-separated"
                ));
            }
        });
    }
    Ok(crate::store::Filter {
        statuses,
        tags: list(&query.tag),
        text: query.q.as_deref().unwrap_or_default().trim().to_lowercase(),
    })
}

async fn status(
    State(store): State<StatusStore>,
    query: Result<Query<StatusQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return error(
            StatusCode::BAD_REQUEST,
            "the query takes status, tag, q, limit and cursor".to_string(),
        );
    };
    let limit = query.limit.unwrap_or(crate::store::page::DEFAULT_LIMIT);
    if !(1..=crate::store::page::MAX_LIMIT).contains(&limit) {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "`limit` must be between 1 and {}",
                crate::store::page::MAX_LIMIT
            ),
        );
    }
    let filter = match filter(&query) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let page = store.page(&filter, query.cursor.as_deref(), limit);
    Json(StatusBody {
        generated_at: SystemTime::now(),
        sites: page.sites,
        total: page.total,
        next_cursor: page.next_cursor,
        alerts: store.alerts(),
        config: store.health().config,
        network: store.network(),
        peers: store.peers(),
    })
    .into_response()
}

async fn site(State(store): State<StatusStore>, Path(name): Path<String>) -> Response {
    match store.site(&name) {
        Some(view) => Json(view).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no site named \"{name}\"")),
    }
}

async fn healthz(State(store): State<StatusStore>) -> Response {
    let health = store.health();
    let code = if health.status != "ok" {
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
            let raw = store
                .history()
                .map_or(crate::history::RAW_RETENTION, |h| h.retention().raw);
            if span <= raw {
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
    let reader = match history_of(&store) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let site = name.clone();
    let result = tokio::task::spawn_blocking(move || {
        let points = reader.history(&site, from, to, resolution)?;
        let hourly_from = match resolution {
            Resolution::Raw => None,
            Resolution::Hour => reader.hourly_from()?,
        };
        Ok::<_, crate::history::Error>((points, hourly_from))
    })
    .await;
    match result {
        Ok(Ok((points, hourly_from))) => {
            let mut body = serde_json::json!({
                "site": name,
                "from": crate::timefmt::rfc3339(from),
                "to": crate::timefmt::rfc3339(to),
                "resolution": match resolution { Resolution::Raw => "raw", Resolution::Hour => "hour" },
                "points": points,
            });
            if let Some(t) = hourly_from {
                // Hour points before it stand for whole UTC days.
                body["hourly_from"] = crate::timefmt::rfc3339(t).into();
            }
            Json(body).into_response()
        }
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

/// The history's reader, or the answer that it is not kept.
fn history_of(store: &StatusStore) -> Result<crate::history::HistoryReader, Box<Response>> {
    store.history().ok_or_else(|| {
        Box::new(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "history is not kept".to_string(),
        ))
    })
}

/// A list's `limit` (1 to 1000, else `default`), or the answer that it is
/// out of range.
fn limit_of(limit: Option<usize>, default: usize) -> Result<usize, Box<Response>> {
    let limit = limit.unwrap_or(default);
    if (1..=1000).contains(&limit) {
        Ok(limit)
    } else {
        Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "`limit` must be between 1 and 1000".to_string(),
        )))
    }
}

/// Query of `GET /api/v1/outbox`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OutboxQuery {
    /// `pending` or `failed`; both when absent.
    state: Option<String>,
    limit: Option<usize>,
}

/// The deliveries not delivered: pending ones (being retried) and dead
/// letters, each with its last error.
async fn outbox(
    State(store): State<StatusStore>,
    query: Result<Query<OutboxQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return error(
            StatusCode::BAD_REQUEST,
            "the query takes state (pending or failed) and limit".to_string(),
        );
    };
    if q.state
        .as_deref()
        .is_some_and(|s| s != "pending" && s != "failed")
    {
        return error(
            StatusCode::BAD_REQUEST,
            "`state` is \"pending\" or \"failed\"".to_string(),
        );
    }
    let limit = match limit_of(q.limit, 100) {
        Ok(n) => n,
        Err(resp) => return *resp,
    };
    let reader = match history_of(&store) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    match tokio::task::spawn_blocking(move || reader.undelivered(q.state.as_deref(), limit)).await {
        Ok(Ok(list)) => Json(serde_json::json!({ "deliveries": list })).into_response(),
        Ok(Err(e)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot read the outbox: {e}"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn incidents(State(store): State<StatusStore>, Query(q): Query<IncidentQuery>) -> Response {
    if let Some(site) = &q.site
        && store.site(site).is_none()
    {
        return error(StatusCode::NOT_FOUND, format!("no site named \"{site}\""));
    }
    let limit = match limit_of(q.limit, 50) {
        Ok(n) => n,
        Err(resp) => return *resp,
    };
    let reader = match history_of(&store) {
        Ok(r) => r,
        Err(resp) => return *resp,
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
