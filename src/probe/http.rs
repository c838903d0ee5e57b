//! The HTTP layer: one HTTP/1.1 request over the stream the lower layers
//! opened (plain TCP or TLS), and the tables from hyper's errors and from
//! status codes to cause codes.
//!
//! Generic over the stream, so the same code runs over TCP, TLS or an
//! in-memory duplex in unit tests.

use super::text::{MAX_SHOWN, cap};
use crate::config::{Host, HttpOptions, Method, StatusSet, Target};
use crate::diagnosis::Cause;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::header::{ACCEPT, CONNECTION, CONTENT_TYPE, HOST, LOCATION, USER_AGENT};
use hyper_util::rt::TokioIo;
use std::net::IpAddr;
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

/// A response head (and body, when a check needs it).
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Time from sending the request to the end of the response head.
    pub ttfb: Duration,
    /// The body, read up to [`MAX_BODY`], when a check asked for it.
    pub body: Option<Bytes>,
    /// Whether the body was longer than [`MAX_BODY`] (only the start was read).
    pub truncated: bool,
    /// The `Location` header, for redirects (whole: it is followed).
    pub location: Option<String>,
    /// The `Content-Type` header, capped at [`MAX_SHOWN`] bytes.
    pub content_type: Option<String>,
}

/// Why no usable response came back.
#[derive(Debug, PartialEq)]
pub struct Failure {
    /// The cause code.
    pub cause: Cause,
    /// What happened, for `detail`.
    pub what: String,
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

/// Sends one request for `target` over `io` and reads the response head,
/// then the body if `wants_body(status)`; gives up at `deadline` with
/// `http.timeout`.
pub async fn request<S>(
    io: S,
    target: &Target,
    opts: &HttpOptions,
    wants_body: impl FnOnce(u16) -> bool,
    deadline: Instant,
) -> Result<Response, Failure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let started = Instant::now();
    let exchange = async {
        let mut builder = hyper::client::conn::http1::Builder::new();
        builder.max_headers(MAX_HEADERS).max_header_size(MAX_HEAD);
        let (mut sender, conn) = builder
            .handshake::<_, Empty<Bytes>>(TokioIo::new(io))
            .await
            .map_err(|e| classify(&e))?;
        let method = match opts.method {
            Method::Get => http::Method::GET,
            Method::Head => http::Method::HEAD,
        };
        let mut builder = Request::builder()
            .method(method)
            .uri(target.path.as_str())
            .header(HOST, host_header(target))
            .header(USER_AGENT, USER_AGENT_VALUE)
            .header(ACCEPT, "*/*")
            .header(CONNECTION, "close");
        for (name, value) in &opts.headers {
            builder = builder.header(name, value);
        }
        let req = builder.body(Empty::new()).map_err(|e| Failure {
            cause: Cause::HttpProtocol,
            what: format!(
                "cannot build the request for a path of {} bytes: {e}",
                target.path.len()
            ),
        })?;
        let work = async move {
            let resp = sender.send_request(req).await.map_err(|e| classify(&e))?;
            let ttfb = started.elapsed();
            let status = resp.status().as_u16();
            let header = |name| {
                resp.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let location = header(LOCATION);
            let content_type = header(CONTENT_TYPE).map(|c| cap(&c, MAX_SHOWN));
            let (body, truncated) = if wants_body(status) {
                let (b, t) = read_body(resp.into_body()).await?;
                (Some(b), t)
            } else {
                (None, false)
            };
            Ok(Response {
                status,
                ttfb,
                body,
                truncated,
                location,
                content_type,
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
        Err(_) => Err(Failure {
            cause: Cause::HttpTimeout,
            what: format!(
                "no complete response within {} ms",
                started.elapsed().as_millis()
            ),
        }),
    }
}

/// Reads at most [`MAX_BODY`] bytes; says whether there was more.
async fn read_body(mut body: hyper::body::Incoming) -> Result<(Bytes, bool), Failure> {
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| classify(&e))?;
        if let Ok(data) = frame.into_data() {
            let room = MAX_BODY - buf.len();
            if data.len() >= room {
                buf.extend_from_slice(&data[..room]);
                return Ok((buf.freeze(), true));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok((buf.freeze(), false))
}

/// What a success page that is really an application error looks like.
/// Returns the name of the error found.
pub fn app_error(body: &[u8], content_type: Option<&str>) -> Option<&'static str> {
    let text = String::from_utf8_lossy(body);
    const SIGNATURES: &[(&str, &str)] = &[
        (
            "Error establishing a database connection",
            "WordPress cannot reach its database (\"Error establishing a database connection\")",
        ),
        (
            "There has been a critical error on this website",
            "WordPress critical error (\"There has been a critical error on this website\")",
        ),
        ("<b>Fatal error</b>:", "PHP fatal error"),
        ("<b>Parse error</b>:", "PHP parse error"),
    ];
    for (needle, name) in SIGNATURES {
        if text.contains(needle) {
            return Some(name);
        }
    }
    // PHP without HTML error formatting prints the error at the start of a line.
    for line in text.lines() {
        let line = line.trim_start_matches("<br />").trim_start();
        if line.starts_with("Fatal error: ") || line.starts_with("PHP Fatal error:") {
            return Some("PHP fatal error");
        }
        if line.starts_with("Parse error: ") || line.starts_with("PHP Parse error:") {
            return Some("PHP parse error");
        }
    }
    let html = content_type.is_some_and(|c| c.to_ascii_lowercase().starts_with("text/html"));
    if html && blank_html(&text) {
        return Some("blank page (an HTML response with nothing in its body)");
    }
    None
}

/// An HTML document that is empty, or whose `<body>` holds nothing but
/// whitespace: the "white screen" of a crashed PHP application.
fn blank_html(text: &str) -> bool {
    if text.trim().is_empty() {
        return true;
    }
    let lower = text.to_ascii_lowercase();
    let Some(open) = lower.find("<body") else {
        return false;
    };
    let Some(open_end) = lower[open..].find('>') else {
        return false;
    };
    let inner_start = open + open_end + 1;
    let inner_end = lower[inner_start..]
        .find("</body")
        .map_or(lower.len(), |i| inner_start + i);
    lower[inner_start..inner_end].trim().is_empty()
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
    Failure { cause, what }
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

    async fn against(reply: &'static [u8]) -> Result<Response, Failure> {
        let (client, mut server) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let _ = server.read(&mut buf).await;
            let _ = server.write_all(reply).await;
            let _ = server.shutdown().await;
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        let site = site();
        request(client, &site.target, &site.http, |_| true, deadline).await
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
        let err = request(client, &site.target, &site.http, |_| false, deadline)
            .await
            .unwrap_err();
        assert_eq!(err.cause, Cause::HttpProtocol, "{}", err.what);
    }

    #[test]
    fn application_error_pages_are_recognised() {
        let html = Some("text/html; charset=UTF-8");
        let table: &[(&str, Option<&str>, bool)] = &[
            (
                "<h1>Error establishing a database connection</h1>",
                html,
                true,
            ),
            (
                "<p>There has been a critical error on this website.</p>",
                html,
                true,
            ),
            (
                "<br />\n<b>Fatal error</b>:  Uncaught Error: x in /a.php:3",
                html,
                true,
            ),
            ("<b>Parse error</b>: syntax error", html, true),
            (
                "PHP Fatal error:  Allowed memory size exhausted",
                None,
                true,
            ),
            (
                "Parse error: syntax error, unexpected '}'",
                Some("text/plain"),
                true,
            ),
            ("", html, true),
            ("<html><body>  \n </body></html>", html, true),
            (
                "<html><body><div id=\"root\"></div></body></html>",
                html,
                false,
            ),
            ("", None, false),
            ("", Some("application/json"), false),
            (
                "<p>How to fix a PHP Fatal error: a tutorial</p>",
                html,
                false,
            ),
            ("<html><body>Welcome</body></html>", html, false),
        ];
        for &(body, ct, want) in table {
            assert_eq!(
                app_error(body.as_bytes(), ct).is_some(),
                want,
                "{body:?} {ct:?}"
            );
        }
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
        assert_eq!(ok.body.as_deref(), Some(&b"hello"[..]));
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
}
