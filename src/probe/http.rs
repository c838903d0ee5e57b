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
mod tests {
    use super::*;
    use crate::probe::body::Checks;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn statuses_map_to_causes() {
        let default = StatusSet(vec![(200, 399)]);
        let table: &[(u16, Option<Cause>)] = &[
            (200, None),
            (204, None),
            (301, None),
            (399, None),
            (400, Some(Cause::HttpStatus)),
            (401, Some(Cause::HttpStatus)),
            (403, Some(Cause::HttpBlocked)),
            (404, Some(Cause::HttpStatus)),
            (429, Some(Cause::HttpBlocked)),
            (500, Some(Cause::HttpStatus)),
            (502, Some(Cause::HttpBadGateway)),
            (503, Some(Cause::HttpUnavailable)),
            (504, Some(Cause::HttpGatewayTimeout)),
        ];
        for &(status, want) in table {
            assert_eq!(classify_status(status, &default), want, "{status}");
        }
        // An expected status is never a failure, whatever it is.
        let odd = StatusSet(vec![(403, 403), (503, 503)]);
        assert_eq!(classify_status(403, &odd), None);
        assert_eq!(classify_status(503, &odd), None);
        assert_eq!(classify_status(200, &odd), Some(Cause::HttpStatus));
    }

    fn site() -> crate::config::SiteSpec {
        crate::config::parse(
            std::path::Path::new("t.toml"),
            "[[site]]\nname = \"t\"\nurl = \"http://t.test/x\"\n",
        )
        .unwrap()
        .sites[0]
            .as_ref()
            .clone()
    }

    fn ask(site: &crate::config::SiteSpec) -> Ask<'_> {
        Ask {
            target: &site.target,
            method: site.http.method,
            headers: &site.http.headers,
        }
    }

    /// Every check that reads the body to its end.
    fn whole() -> Checks<'static> {
        Checks {
            app_errors: true,
            ..Checks::default()
        }
    }

    /// Asks a server that answers `reply` in pieces of `piece` bytes,
    /// searching the body for `checks`.
    async fn against_in_pieces(
        reply: &'static [u8],
        piece: usize,
        checks: Checks<'static>,
    ) -> Result<Response, Failure> {
        let (client, mut server) = tokio::io::duplex(64);
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let _ = server.read(&mut buf).await;
            for chunk in reply.chunks(piece) {
                if server.write_all(chunk).await.is_err() {
                    return;
                }
                let _ = server.flush().await;
                // Let the client read each piece on its own.
                tokio::task::yield_now().await;
            }
            let _ = server.shutdown().await;
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        let site = site();
        request(
            client,
            ask(&site),
            move |_, _| Some(Read::Scan(Scan::new(checks, MAX_BODY))),
            deadline,
        )
        .await
    }

    async fn against(reply: &'static [u8]) -> Result<Response, Failure> {
        against_in_pieces(reply, 4096, whole()).await
    }

    #[tokio::test]
    async fn a_server_that_speaks_first_is_not_http() {
        let (client, mut server) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            let _ = server.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").await;
            let mut buf = [0u8; 1024];
            let _ = server.read(&mut buf).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        });
        let site = site();
        let deadline = Instant::now() + Duration::from_secs(5);
        let err = request(client, ask(&site), |_, _| None, deadline)
            .await
            .unwrap_err();
        assert_eq!(err.cause, Cause::HttpProtocol, "{}", err.what);
    }

    #[test]
    fn host_header_omits_default_ports() {
        let t = |u: &str| crate::config::parse_target(u).unwrap();
        assert_eq!(host_header(&t("https://a.test/")), "a.test");
        assert_eq!(host_header(&t("http://a.test:8080/")), "a.test:8080");
        assert_eq!(host_header(&t("http://[::1]/")), "[::1]");
        assert_eq!(host_header(&t("https://[::1]:8443/")), "[::1]:8443");
    }

    #[tokio::test]
    async fn parser_outcomes_map_to_causes() {
        let ok = against(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello")
            .await
            .unwrap();
        assert_eq!(ok.status, 200);
        let body = ok.body.unwrap();
        assert_eq!((body.read, body.end), (5, End::Complete));
        assert_eq!(
            against(b"SSH-2.0-OpenSSH_9.2\r\n").await.unwrap_err().cause,
            Cause::HttpProtocol
        );
        assert_eq!(against(b"").await.unwrap_err().cause, Cause::HttpEmpty);
        assert_eq!(
            against(b"HTTP/1.1 200 OK\r\ncontent-le")
                .await
                .unwrap_err()
                .cause,
            Cause::HttpEmpty
        );
        assert_eq!(
            against(b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\nshort")
                .await
                .unwrap_err()
                .cause,
            Cause::HttpEmpty
        );
    }

    #[tokio::test]
    async fn a_needle_cut_across_the_pieces_of_a_body_is_found() {
        const PAGE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 43\r\n\r\n<html><body>status: all green</body></html>";
        let checks = |expect, forbid| Checks {
            expect,
            forbid,
            ..Checks::default()
        };
        for piece in [1, 2, 3, 5, 7] {
            let found = against_in_pieces(PAGE, piece, checks(Some("status: all green"), None))
                .await
                .unwrap()
                .body
                .unwrap();
            assert!(!found.lacks_expected, "pieces of {piece}: {found:?}");
            let missing = against_in_pieces(PAGE, piece, checks(Some("status: red"), None))
                .await
                .unwrap()
                .body
                .unwrap();
            assert!(missing.lacks_expected, "pieces of {piece}");
            assert_eq!(missing.size(), "43 bytes");
            let forbidden = against_in_pieces(PAGE, piece, checks(None, Some("all green")))
                .await
                .unwrap()
                .body
                .unwrap();
            assert!(forbidden.holds_forbidden, "pieces of {piece}");
        }
        // Chunked transfer encoding, cut inside the needle and the chunk sizes.
        const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n9\r\nstatus: a\r\n8\r\nll green\r\n0\r\n\r\n";
        let v = against_in_pieces(CHUNKED, 3, checks(Some("status: all green"), None))
            .await
            .unwrap()
            .body
            .unwrap();
        assert!(!v.lacks_expected, "{v:?}");
        assert_eq!(v.read, 17);
    }

    #[tokio::test]
    async fn reading_stops_at_the_forbidden_text_even_if_the_rest_is_broken() {
        // The body claims more than is sent: once the forbidden text is
        // found nothing after it matters.
        const REPLY: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n<h1>Maintenance</h1><p>back soon, we promise</p>";
        let checks = Checks {
            forbid: Some("Maintenance"),
            ..Checks::default()
        };
        let v = against_in_pieces(REPLY, 4096, checks)
            .await
            .unwrap()
            .body
            .unwrap();
        assert!(v.holds_forbidden);
        assert_eq!(v.end, End::Decided);
    }

    #[test]
    fn configured_headers_replace_the_defaults() {
        let t = crate::config::parse_target("http://a.test:8080/").unwrap();
        let h = |n: &str, v: &str| {
            (
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            )
        };
        let headers = request_headers(
            &t,
            &[
                h("User-Agent", "probe/2"),
                h("Host", "b.test"),
                h("X-Probe", "1"),
                h("x-probe", "2"),
            ],
        )
        .unwrap();
        let all = |name| {
            headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(all(USER_AGENT), ["probe/2"]);
        assert_eq!(all(HOST), ["b.test"]);
        assert_eq!(all(ACCEPT), ["*/*"]);
        assert_eq!(all(CONNECTION), ["close"]);
        assert_eq!(all(HeaderName::from_static("x-probe")), ["1", "2"]);
        let plain = request_headers(&t, &[]).unwrap();
        assert_eq!(plain.get(HOST).unwrap(), "a.test:8080");
        assert_eq!(plain.get(USER_AGENT).unwrap(), USER_AGENT_VALUE);
        assert_eq!(plain.len(), 4);
    }
}
