//! The HTTP layer: one HTTP/1.1 request over the stream the lower layers
//! opened (plain TCP or TLS), and the tables from hyper's errors and from
//! status codes to cause codes.
//!
//! Generic over the stream, so the same code runs over TCP, TLS or an
//! in-memory duplex in unit tests.

use crate::config::{SiteSpec, StatusSet};
use crate::diagnosis::Cause;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::header::{ACCEPT, CONNECTION, HOST, USER_AGENT};
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

/// The most of a body that is ever read.
pub const MAX_BODY: usize = 1024 * 1024;
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
}

/// Why no usable response came back.
#[derive(Debug, PartialEq)]
pub struct Failure {
    /// The cause code.
    pub cause: Cause,
    /// What happened, for `detail`.
    pub what: String,
}

/// Sends one request for `site` over `io` and reads the response head, then
/// the body if `read_body`; gives up at `deadline` with `http.timeout`.
pub async fn request<S>(
    io: S,
    site: &SiteSpec,
    read_body: bool,
    deadline: Instant,
) -> Result<Response, Failure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let started = Instant::now();
    let exchange = async {
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(io))
                .await
                .map_err(|e| classify(&e))?;
        let target = &site.target;
        let default_port = if target.scheme.uses_tls() { 443 } else { 80 };
        let host_header = match (&target.host, target.port == default_port) {
            (crate::config::Host::Ip(std::net::IpAddr::V6(ip)), true) => format!("[{ip}]"),
            (crate::config::Host::Ip(std::net::IpAddr::V6(ip)), false) => {
                format!("[{ip}]:{}", target.port)
            }
            (_, true) => target.host_str.clone(),
            (_, false) => format!("{}:{}", target.host_str, target.port),
        };
        let req = Request::get(target.path.as_str())
            .header(HOST, host_header)
            .header(USER_AGENT, USER_AGENT_VALUE)
            .header(ACCEPT, "*/*")
            .header(CONNECTION, "close")
            .body(Empty::new())
            .map_err(|e| Failure {
                cause: Cause::HttpProtocol,
                what: format!("cannot build the request: {e}"),
            })?;
        let work = async move {
            let resp = sender.send_request(req).await.map_err(|e| classify(&e))?;
            let ttfb = started.elapsed();
            let status = resp.status().as_u16();
            let body = if read_body {
                let limited = http_body_util::Limited::new(resp.into_body(), MAX_BODY);
                match limited.collect().await {
                    Ok(collected) => Some(collected.to_bytes()),
                    Err(e) => {
                        // A body over the limit is still checked on what was read:
                        // Limited discards it, so report the size problem plainly.
                        if e.downcast_ref::<http_body_util::LengthLimitError>()
                            .is_some()
                        {
                            return Err(Failure {
                                cause: Cause::HttpContent,
                                what: format!(
                                    "the body is larger than {} KiB and was not checked",
                                    MAX_BODY / 1024
                                ),
                            });
                        }
                        match e.downcast::<hyper::Error>() {
                            Ok(h) => return Err(classify(&h)),
                            Err(e) => {
                                return Err(Failure {
                                    cause: Cause::HttpEmpty,
                                    what: e.to_string(),
                                });
                            }
                        }
                    }
                }
            } else {
                None
            };
            Ok(Response { status, ttfb, body })
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

/// Maps a hyper error to a cause.
pub fn classify(err: &hyper::Error) -> Failure {
    let cause = if err.is_parse()
        || err.is_parse_status()
        || err.is_parse_too_large()
        || err.is_parse_version_h2()
    {
        Cause::HttpProtocol
    } else {
        // Closed, reset or cut short before a complete response.
        Cause::HttpEmpty
    };
    let mut what = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        what.push_str(": ");
        what.push_str(&s.to_string());
        source = s.source();
    }
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

    fn site() -> SiteSpec {
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
        request(client, &site(), true, deadline).await
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
