//! The HTTP layer: one HTTP/1.1 request over the stream the lower layers
//! opened (plain TCP or TLS), and the tables from hyper's errors and from
//! status codes to cause codes.
//!
//! Generic over the stream, so the same code runs over TCP, TLS or an
//! in-memory duplex in unit tests.

use super::body::{End, Scan, Verdict};
use super::edge;
use super::text::{MAX_SHOWN, cap};
use crate::config::{Host, Method, StatusSet, Target};
use crate::diagnosis::{Cause, Sign};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::body::Body;
use hyper::header::{ACCEPT, CONNECTION, CONTENT_TYPE, HOST, LOCATION, USER_AGENT};
use hyper_util::rt::TokioIo;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

/// The most of a body that is ever read.
pub const MAX_BODY: usize = 1024 * 1024;
/// The largest response head accepted (status line and headers), in bytes;
/// a larger one is `http.protocol`. As large as hyper's own default, so a
/// long `Location` is still followed; what a report keeps of it is capped
/// (see [`super::text`]).
pub const MAX_HEAD: usize = 400 * 1024;
/// The most response headers accepted (hyper's default).
pub const MAX_HEADERS: usize = 100;
/// What sitewatch calls itself in requests.
pub const USER_AGENT_VALUE: &str = concat!("sitewatch/", env!("CARGO_PKG_VERSION"));

/// A response head, and what its body showed when a check searched it.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Time from sending the request to the end of the response head.
    pub ttfb: Duration,
    /// What the search of the body found (at most [`MAX_BODY`] read), when
    /// a check asked for one.
    pub body: Option<Verdict>,
    /// The `Location` header, for redirects (whole: it is followed).
    pub location: Option<String>,
    /// The `Content-Type` header, capped at [`MAX_SHOWN`] bytes.
    pub content_type: Option<String>,
    /// The `Retry-After` header, as read by [`edge::retry_after`].
    pub retry_after: Option<String>,
    /// The CDN or proxy that sent the response, when its headers say.
    pub edge: Option<String>,
    /// The first bytes of an error page, when [`Read::Peek`] asked for them.
    pub page: Option<Vec<u8>>,
}

/// What to read of a body once the head is known.
pub enum Read<'a> {
    /// Search it for the site's checks.
    Scan(Scan<'a>),
    /// Keep its first [`edge::PAGE_PEEK`] bytes (an error page, to explain
    /// its status), waiting at most [`edge::PEEK_WAIT`] for them.
    Peek,
}

/// Why no usable response came back.
#[derive(Debug, PartialEq)]
pub struct Failure {
    /// The cause code.
    pub cause: Cause,
    /// Which face of the cause, when it has several.
    pub sign: Option<Sign>,
    /// What happened, for `detail`.
    pub what: String,
}

/// The request to make.
#[derive(Clone, Copy, Debug)]
pub struct Ask<'a> {
    /// What to ask for.
    pub target: &'a Target,
    /// GET or HEAD.
    pub method: Method,
    /// Headers configured for the site, each replacing the default header
    /// of the same name (see [`request_headers`]). Empty when they must not
    /// be sent (another origin than the site's).
    pub headers: &'a [(HeaderName, HeaderValue)],
}

/// The `Host` header for a target (no port when it is the scheme's default).
pub fn host_header(target: &Target) -> String {
    let default_port = if target.scheme.uses_tls() { 443 } else { 80 };
    let host = match &target.host {
        Host::Ip(IpAddr::V6(ip)) => format!("[{ip}]"),
        _ => target.host_str.clone(),
    };
    if target.port == default_port {
        host
    } else {
        format!("{host}:{}", target.port)
    }
}

/// The request headers: `Host`, `User-Agent`, `Accept` and `Connection`,
/// then the configured ones. A configured header replaces the default of
/// the same name (a configured `Host` too, as curl does), so none is sent
/// twice; a name configured more than once is sent with every value.
pub fn request_headers(
    target: &Target,
    configured: &[(HeaderName, HeaderValue)],
) -> Result<HeaderMap, Failure> {
    let host = HeaderValue::from_str(&host_header(target)).map_err(|e| Failure {
        cause: Cause::HttpProtocol,
        sign: None,
        what: format!("cannot build the request: {e}"),
    })?;
    let mut headers = HeaderMap::with_capacity(4 + configured.len());
    headers.insert(HOST, host);
    headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    let mut replaced: Vec<&HeaderName> = Vec::with_capacity(configured.len());
    for (name, value) in configured {
        if replaced.contains(&name) {
            headers.append(name.clone(), value.clone());
        } else {
            headers.insert(name.clone(), value.clone());
            replaced.push(name);
        }
    }
    Ok(headers)
}

/// How far a response had come, for the words of a timeout.
#[derive(Default)]
struct Progress {
    /// Microseconds from the request to the end of the head (0: no head).
    head_us: AtomicU64,
    status: AtomicU32,
    body: AtomicUsize,
}

/// Sends one request over `io` and reads the response head; then, if
/// `read(status, content_type)` asks, streams the body through a search
/// until every check is decided or [`MAX_BODY`] is read, or keeps the
/// first bytes of an error page. Gives up at `deadline` with
/// `http.timeout`, saying how far the response had come.
pub async fn request<'a, S>(
    io: S,
    ask: Ask<'_>,
    read: impl FnOnce(u16, Option<&str>) -> Option<Read<'a>>,
    deadline: Instant,
) -> Result<Response, Failure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let started = Instant::now();
    let progress = &Progress::default();
    let exchange = async {
        let mut builder = hyper::client::conn::http1::Builder::new();
        builder.max_headers(MAX_HEADERS).max_header_size(MAX_HEAD);
        let (mut sender, conn) = builder
            .handshake::<_, Empty<Bytes>>(TokioIo::new(io))
            .await
            .map_err(|e| classify(&e))?;
        let method = match ask.method {
            Method::Get => http::Method::GET,
            Method::Head => http::Method::HEAD,
        };
        let mut req = Request::builder()
            .method(method)
            .uri(ask.target.path.as_str())
            .body(Empty::new())
            .map_err(|e| Failure {
                cause: Cause::HttpProtocol,
                sign: None,
                what: format!(
                    "cannot build the request for a path of {} bytes: {e}",
                    ask.target.path.len()
                ),
            })?;
        *req.headers_mut() = request_headers(ask.target, ask.headers)?;
        let work = async move {
            let resp = sender.send_request(req).await.map_err(|e| classify(&e))?;
            let ttfb = started.elapsed();
            let status = resp.status().as_u16();
            let head_us = u64::try_from(ttfb.as_micros()).unwrap_or(u64::MAX).max(1);
            progress.head_us.store(head_us, Ordering::Relaxed);
            progress.status.store(status.into(), Ordering::Relaxed);
            let header = |name| {
                resp.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let location = header(LOCATION);
            let content_type = header(CONTENT_TYPE).map(|c| cap(&c, MAX_SHOWN));
            let retry_after = edge::retry_after(resp.headers());
            let edge = edge::edge(resp.headers());
            let (body, page) = match read(status, content_type.as_deref()) {
                Some(Read::Scan(scan)) => {
                    let verdict = read_body(resp.into_body(), scan, progress)
                        .await
                        .map_err(|f| cut(f, progress))?;
                    (Some(verdict), None)
                }
                Some(Read::Peek) => (None, Some(peek(resp.into_body()).await)),
                None => (None, None),
            };
            Ok(Response {
                status,
                ttfb,
                body,
                location,
                content_type,
                retry_after,
                edge,
                page,
            })
        };
        let mut conn = std::pin::pin!(conn);
        let mut work = std::pin::pin!(work);
        tokio::select! {
            biased;
            r = &mut work => r,
            _ = &mut conn => work.await,
        }
    };
    match tokio::time::timeout_at(deadline, exchange).await {
        Ok(r) => r,
        Err(_) => Err(timed_out(progress, started.elapsed())),
    }
}

/// The words of a timeout: no response at all, or a head whose body
/// stalled (a different thing to look for).
fn timed_out(progress: &Progress, elapsed: Duration) -> Failure {
    let head_us = progress.head_us.load(Ordering::Relaxed);
    if head_us == 0 {
        return Failure {
            cause: Cause::HttpTimeout,
            sign: None,
            what: format!("no complete response within {} ms", elapsed.as_millis()),
        };
    }
    Failure {
        cause: Cause::HttpTimeout,
        sign: Some(Sign::BodyStalled),
        what: format!(
            "HTTP {} head in {} ms, then the body stalled after {} bytes (nothing more within {} ms)",
            progress.status.load(Ordering::Relaxed),
            head_us.div_ceil(1000),
            progress.body.load(Ordering::Relaxed),
            elapsed.as_millis()
        ),
    }
}

/// A body cut short after its head came: says so, keeping the cause.
fn cut(mut f: Failure, progress: &Progress) -> Failure {
    f.what = format!(
        "HTTP {} head in {} ms, then the body was cut after {} bytes: {}",
        progress.status.load(Ordering::Relaxed),
        progress.head_us.load(Ordering::Relaxed).div_ceil(1000),
        progress.body.load(Ordering::Relaxed),
        f.what
    );
    f
}

/// The first [`edge::PAGE_PEEK`] bytes of an error page, whatever came
/// within [`edge::PEEK_WAIT`]: its status is known already, so a page
/// that fails or stalls is judged on what arrived.
async fn peek(mut body: hyper::body::Incoming) -> Vec<u8> {
    let mut page = Vec::new();
    let _ = tokio::time::timeout(edge::PEEK_WAIT, async {
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                let room = edge::PAGE_PEEK - page.len();
                page.extend_from_slice(&data[..data.len().min(room)]);
                if page.len() >= edge::PAGE_PEEK {
                    break;
                }
            }
        }
    })
    .await;
    page
}

/// Streams at most [`MAX_BODY`] bytes through `scan`, stopping as soon as
/// every check is decided.
async fn read_body(
    mut body: hyper::body::Incoming,
    mut scan: Scan<'_>,
    progress: &Progress,
) -> Result<Verdict, Failure> {
    let mut room = MAX_BODY;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| classify(&e))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        progress.body.fetch_add(data.len(), Ordering::Relaxed);
        if data.len() >= room {
            scan.feed(&data[..room]);
            return Ok(scan.finish(End::Budget));
        }
        room -= data.len();
        if scan.feed(&data) {
            let end = if body.is_end_stream() {
                End::Complete
            } else {
                End::Decided
            };
            return Ok(scan.finish(end));
        }
    }
    Ok(scan.finish(End::Complete))
}

/// hyper's words when the server sends bytes before any request was
/// answered (an SSH or SMTP greeting): it is not speaking HTTP.
const UNEXPECTED_MESSAGE: &str = "received unexpected message from connection";

/// Maps a hyper error to a cause.
pub fn classify(err: &hyper::Error) -> Failure {
    let mut what = err.to_string();
    let mut unexpected = what == UNEXPECTED_MESSAGE;
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        let text = s.to_string();
        unexpected |= text == UNEXPECTED_MESSAGE;
        what.push_str(": ");
        what.push_str(&text);
        source = s.source();
    }
    let cause = if err.is_parse()
        || err.is_parse_status()
        || err.is_parse_too_large()
        || err.is_parse_version_h2()
        || unexpected
    {
        Cause::HttpProtocol
    } else {
        // Closed, reset or cut short before a complete response.
        Cause::HttpEmpty
    };
    Failure {
        cause,
        sign: None,
        what,
    }
}

/// Maps a status outside the accepted set to a cause; `None` if accepted.
pub fn classify_status(status: u16, expect: &StatusSet) -> Option<Cause> {
    if expect.contains(status) {
        return None;
    }
    Some(match status {
        403 | 429 => Cause::HttpBlocked,
        502 => Cause::HttpBadGateway,
        503 => Cause::HttpUnavailable,
        504 => Cause::HttpGatewayTimeout,
        _ => Cause::HttpStatus,
    })
}

#[cfg(test)]
mod tests;
