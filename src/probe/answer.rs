//! The top layer of a hop: what the server answers on the connected (and
//! handshaken) stream, judged against the site's expectations. For
//! http(s), the response's status, redirect and body (searched while it
//! streams, see [`super::body`]); for tcp/tls, the banner if one is
//! expected.

use super::body::{self, Checks, Scan};
use super::edge;
use super::http::{self, Ask, MAX_BODY, Read};
use super::ms;
use super::text::{MAX_SHOWN, MAX_URL, cap};
use super::walk::{Hop, Walk};
use crate::config::{Method, Target};
use crate::diagnosis::{Cause, Layer, Sign};
use std::net::SocketAddr;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader};
use tokio::time::Instant;

/// The most of a banner read.
const MAX_BANNER: u64 = 1024;

/// The top layer: HTTP for http(s), a banner check or nothing for tcp/tls.
pub(super) async fn after_connect<S>(
    walk: &mut Walk<'_>,
    target: &Target,
    io: S,
    addr: SocketAddr,
    deadline: Instant,
) -> Hop
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let site = walk.site;
    if !target.scheme.uses_http() {
        let Some(expected) = &site.expect.banner else {
            let total = walk.started.elapsed();
            return Hop::Done(None, format!("connected to {addr} in {} ms", ms(total)));
        };
        return banner(walk, io, addr, expected, deadline).await;
    }
    let opts = &site.http;
    let url = cap(&target.url, MAX_URL);
    let follows = opts.max_redirects > 0;
    let method = walk.method;
    // The body is searched only when a check will read the verdict: a GET
    // answered with an accepted status that is not a redirect to follow.
    // A server error's page is read a little, to explain its status.
    let read = |status: u16, content_type: Option<&str>| {
        let redirect = follows && (300..400).contains(&status);
        if method != Method::Get || redirect {
            return None;
        }
        if http::classify_status(status, &site.expect.status).is_some() {
            return (status >= 500).then_some(Read::Peek);
        }
        let checks = Checks {
            expect: site.expect.body.as_deref(),
            forbid: site.expect.forbid_body.as_deref(),
            app_errors: opts.app_errors && (200..300).contains(&status),
            html: body::is_html(content_type),
        };
        let wanted = checks.expect.is_some() || checks.forbid.is_some() || checks.app_errors;
        wanted.then(|| Read::Scan(Scan::new(checks, MAX_BODY)))
    };
    let ask = Ask {
        target,
        method,
        headers: if walk.on_origin {
            &opts.headers[..]
        } else {
            &[]
        },
    };
    // Said in the layer, so a 401 after a redirect elsewhere explains itself.
    let withheld = if walk.on_origin || opts.headers.is_empty() {
        ""
    } else {
        ", without the configured headers (another origin than the site's)"
    };
    let t = Instant::now();
    let resp = match http::request(io, ask, read, deadline).await {
        Err(f) => {
            walk.layer(Layer::Http, false, t.elapsed(), f.what.clone());
            walk.sign = f.sign;
            return Hop::Done(Some(f.cause), format!("{url} from {addr}: {}", f.what));
        }
        Ok(resp) => resp,
    };
    let took = t.elapsed();
    walk.http_status = Some(resp.status);
    let via = resp
        .edge
        .as_deref()
        .map_or_else(String::new, |e| format!(" via {e}"));
    let head = format!(
        "HTTP {} in {} ms (first byte after {} ms){via}{withheld}",
        resp.status,
        ms(took),
        ms(resp.ttfb)
    );
    if method == Method::Head
        && matches!(resp.status, 405 | 501)
        && !site.expect.status.contains(resp.status)
        && walk.head_refused.is_none()
    {
        walk.layer(Layer::Http, false, took, format!("{head}: HEAD refused"));
        walk.head_refused = Some(resp.status);
        return Hop::AgainWithGet;
    }
    if (300..400).contains(&resp.status)
        && let Some(location) = &resp.location
        && wordpress_installer(location)
    {
        walk.layer(Layer::Http, false, took, head);
        walk.sign = Some(Sign::WpInstall);
        return Hop::Done(
            Some(Cause::HttpAppError),
            format!(
                "{url} redirects ({}) to {}: WordPress's installer (it cannot find its tables)",
                resp.status,
                cap(location, MAX_URL)
            ),
        );
    }
    if follows
        && (300..400).contains(&resp.status)
        && let Some(location) = &resp.location
    {
        let next = url::Url::parse(&target.url).and_then(|base| base.join(location));
        let shown = cap(location, MAX_URL);
        walk.layer(
            Layer::Http,
            true,
            took,
            format!("{head}, redirect to {shown}"),
        );
        return match next {
            Ok(next) => Hop::Redirect(next.to_string(), resp.status),
            Err(e) => Hop::Done(
                Some(Cause::HttpRedirects),
                format!(
                    "{url} redirects ({}) to an invalid location \"{shown}\": {e}",
                    resp.status
                ),
            ),
        };
    }
    if let Some(cause) = http::classify_status(resp.status, &site.expect.status) {
        walk.layer(Layer::Http, false, took, head);
        let mut detail = format!(
            "{url} answered {} from {addr}{via}; accepted: {}",
            resp.status, site.expect.status
        );
        let finding = edge::explain(
            resp.status,
            cause,
            resp.edge.as_deref(),
            resp.retry_after.as_deref(),
            resp.page.as_deref().unwrap_or_default(),
        );
        let cause = match finding {
            Some(f) => {
                detail = format!("{detail}; {}", f.what);
                walk.sign = f.sign;
                f.cause
            }
            None => cause,
        };
        return Hop::Done(Some(cause), detail);
    }
    if let Some(verdict) = &resp.body {
        let size = verdict.size();
        let status = resp.status;
        let failed = if verdict.lacks_expected {
            let text = cap(site.expect.body.as_deref().unwrap_or_default(), MAX_SHOWN);
            Some((
                Cause::HttpContent,
                format!("{url} answered {status} but the body ({size}) lacks \"{text}\""),
            ))
        } else if verdict.holds_forbidden {
            let text = cap(
                site.expect.forbid_body.as_deref().unwrap_or_default(),
                MAX_SHOWN,
            );
            Some((
                Cause::HttpContent,
                format!(
                    "{url} answered {status} but the body ({size}) holds the forbidden \"{text}\""
                ),
            ))
        } else {
            verdict.app_error.map(|error| {
                walk.sign = error.sign;
                let what = if error.cause == Cause::HttpAppError {
                    "the page is an application error"
                } else {
                    "the body is"
                };
                (
                    error.cause,
                    format!("{url} answered {status} but {what}: {}", error.name),
                )
            })
        };
        if let Some((cause, what)) = failed {
            walk.layer(Layer::Http, false, took, head);
            return Hop::Done(Some(cause), what);
        }
    }
    walk.layer(Layer::Http, true, took, head);
    let total = walk.started.elapsed();
    if let Some(slow) = site.expect.slow
        && total > slow
    {
        return Hop::Done(
            Some(Cause::HttpSlow),
            format!(
                "{url} answered {} in {} ms, slower than {} ms",
                resp.status,
                ms(total),
                slow.as_millis()
            ),
        );
    }
    Hop::Done(
        None,
        format!("HTTP {} from {addr} in {} ms", resp.status, ms(total)),
    )
}

/// Whether a redirect leads to WordPress's installer (`/wp-admin/install.php`,
/// relative or absolute, with any query).
fn wordpress_installer(location: &str) -> bool {
    let path = location.split(['?', '#']).next().unwrap_or_default();
    path.to_ascii_lowercase().ends_with("/wp-admin/install.php")
}

/// Reads the server's first line and checks it holds `expected`.
async fn banner<S>(
    walk: &mut Walk<'_>,
    io: S,
    addr: SocketAddr,
    expected: &str,
    deadline: Instant,
) -> Hop
where
    S: AsyncRead + Unpin,
{
    let t = Instant::now();
    let mut line = Vec::new();
    let mut reader = tokio::io::AsyncReadExt::take(BufReader::new(io), MAX_BANNER);
    let read = tokio::time::timeout_at(deadline, reader.read_until(b'\n', &mut line)).await;
    let took = t.elapsed();
    let text = String::from_utf8_lossy(&line);
    let text = text.trim_end();
    // Judged on the whole line; shown capped.
    let shown = cap(text, MAX_SHOWN);
    let what = match read {
        Err(_) => format!("no banner from {addr} within {} ms", took.as_millis()),
        Ok(Err(e)) => format!("reading the banner from {addr} failed: {e}"),
        Ok(Ok(0)) => format!("{addr} closed the connection without a banner"),
        Ok(Ok(_)) if text.contains(expected) => {
            walk.layer(Layer::Tcp, true, took, format!("banner: {shown}"));
            return Hop::Done(None, format!("{addr} greeted with \"{shown}\""));
        }
        Ok(Ok(_)) => format!(
            "{addr} greeted with \"{shown}\", expected \"{}\"",
            cap(expected, MAX_SHOWN)
        ),
    };
    walk.layer(Layer::Tcp, false, took, what.clone());
    Hop::Done(Some(Cause::TcpBanner), what)
}
