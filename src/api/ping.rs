//! Heartbeat pings, compatible with healthchecks.io's URLs (existing
//! `curl …/ping/KEY/$?` lines, runitor and hc client libraries only change
//! the base URL) and with Uptime Kuma's push URL:
//!
//! | URL | means |
//! |---|---|
//! | `/ping/KEY` | success |
//! | `/ping/KEY/start` | the job started |
//! | `/ping/KEY/fail` | the job failed |
//! | `/ping/KEY/log` | a message only |
//! | `/ping/KEY/N` (0–255) | the job's exit code: 0 success, else failure |
//! | `/api/push/KEY?status=up\|down&msg=…` | Uptime Kuma's push |
//!
//! `GET`, `POST` and `HEAD` are accepted; `?rid=` pairs a start with its
//! end. The last [`BODY_LIMIT`] bytes of a POST body are kept as evidence
//! (a job's error is at the end of its output). An unknown key is `404` whatever
//! the rest of the URL says; too many pings with one key are `429`.

use crate::heartbeat::hub::{BODY_LIMIT, Hub, Refused};
use crate::heartbeat::ledger::{MAX_RID_BYTES, Ping, Signal};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::SystemTime;

/// Bytes of a body read and dropped past [`BODY_LIMIT`] before the
/// connection is closed instead.
const DRAIN_LIMIT: usize = 16 << 20;

/// Whether a request path is a ping's (its body may exceed the API's cap:
/// the handler reads what it keeps and drops the rest).
pub(super) fn is_ping_path(path: &str) -> bool {
    path.starts_with("/ping/") || path.starts_with("/api/push/")
}

/// The ping routes over `hub`.
pub(super) fn routes(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/ping/{key}", any(success))
        .route("/ping/{key}/{action}", any(action))
        .route("/api/push/{key}", any(push))
        .with_state(hub)
}

#[derive(serde::Deserialize, Default)]
struct PingQuery {
    rid: Option<String>,
}

#[derive(serde::Deserialize, Default)]
struct PushQuery {
    status: Option<String>,
    msg: Option<String>,
}

fn text(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "not found\n")
}

/// Reads `body` (up to [`DRAIN_LIMIT`] bytes) and keeps its last
/// [`BODY_LIMIT`] bytes as text: a job's error is at the end of its output.
async fn read_body(body: Body) -> (String, bool) {
    let mut body = body;
    let mut kept: std::collections::VecDeque<u8> = std::collections::VecDeque::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        kept.extend(&data[data.len().saturating_sub(BODY_LIMIT)..]);
        let over = kept.len().saturating_sub(BODY_LIMIT);
        kept.drain(..over);
        if seen > DRAIN_LIMIT {
            break;
        }
    }
    let truncated = seen > kept.len();
    let bytes: Vec<u8> = kept.into();
    (String::from_utf8_lossy(&bytes).into_owned(), truncated)
}

fn valid_rid(rid: &str) -> bool {
    !rid.is_empty()
        && rid.len() <= MAX_RID_BYTES
        && rid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Takes in a ping; `Some` is the refusal to answer instead of "OK".
fn take(hub: &Hub, method: &Method, key: &str, ping: Ping) -> Option<Response> {
    if !matches!(*method, Method::GET | Method::POST | Method::HEAD) {
        return Some(text(
            StatusCode::METHOD_NOT_ALLOWED,
            "pings are GET, POST or HEAD\n",
        ));
    }
    if let Some(r) = &ping.rid
        && !valid_rid(r)
    {
        return Some(text(
            StatusCode::BAD_REQUEST,
            "`rid` is at most 64 letters, digits, '-', '_', '.' or ':'\n",
        ));
    }
    match hub.ping(key, &ping, SystemTime::now(), tokio::time::Instant::now()) {
        Ok(name) => {
            tracing::debug!(heartbeat = %name, signal = ?ping.signal, exit = ping.exit, "ping");
            None
        }
        Err(Refused::Unknown) => Some(not_found()),
        Err(Refused::TooMany(after)) => {
            let mut r = text(
                StatusCode::TOO_MANY_REQUESTS,
                "too many pings with this key; slow down\n",
            );
            if let Ok(v) = HeaderValue::from_str(&after.as_secs().max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            Some(r)
        }
    }
}

fn ok(method: &Method) -> Response {
    let mut r = if *method == Method::HEAD {
        StatusCode::OK.into_response()
    } else {
        text(StatusCode::OK, "OK")
    };
    r.headers_mut().insert(
        "ping-body-limit",
        HeaderValue::from_str(&BODY_LIMIT.to_string()).unwrap_or(HeaderValue::from_static("0")),
    );
    r
}

async fn success(
    State(hub): State<Arc<Hub>>,
    method: Method,
    Path(key): Path<String>,
    Query(q): Query<PingQuery>,
    body: Body,
) -> Response {
    answer(&hub, &method, &key, Signal::Success, None, q.rid, body).await
}

/// Reads the body, takes the ping and answers "OK" or why not.
async fn answer(
    hub: &Hub,
    method: &Method,
    key: &str,
    signal: Signal,
    exit: Option<u8>,
    rid: Option<String>,
    body: Body,
) -> Response {
    let (body, truncated) = read_body(body).await;
    let ping = Ping {
        signal,
        exit,
        rid,
        body,
        truncated,
    };
    match take(hub, method, key, ping) {
        None => ok(method),
        Some(r) => r,
    }
}

async fn action(
    State(hub): State<Arc<Hub>>,
    method: Method,
    Path((key, action)): Path<(String, String)>,
    Query(q): Query<PingQuery>,
    body: Body,
) -> Response {
    let (signal, exit) = match action.as_str() {
        "start" => (Signal::Start, None),
        "fail" => (Signal::Fail, None),
        "log" => (Signal::Log, None),
        n => match n.parse::<u8>() {
            // Only plain decimal numbers: "+1" or "01" are not exit codes.
            Ok(code) if code.to_string() == n => (
                if code == 0 {
                    Signal::Success
                } else {
                    Signal::Fail
                },
                Some(code),
            ),
            _ => return not_found(),
        },
    };
    answer(&hub, &method, &key, signal, exit, q.rid, body).await
}

async fn push(
    State(hub): State<Arc<Hub>>,
    method: Method,
    Path(key): Path<String>,
    Query(q): Query<PushQuery>,
    body: Body,
) -> Response {
    let signal = match q.status.as_deref() {
        None | Some("up") => Signal::Success,
        Some("down") => Signal::Fail,
        Some(_) => {
            return text(StatusCode::BAD_REQUEST, "`status` is \"up\" or \"down\"\n");
        }
    };
    let (mut body, truncated) = read_body(body).await;
    if let Some(msg) = q.msg {
        body = crate::heartbeat::ledger::keep_tail(&msg, BODY_LIMIT);
    }
    let ping = Ping {
        signal,
        exit: None,
        rid: None,
        body,
        truncated,
    };
    match take(&hub, &method, &key, ping) {
        None => (
            [(header::CONTENT_TYPE, "application/json")],
            "{\"ok\":true}",
        )
            .into_response(),
        Some(r) => r,
    }
}
