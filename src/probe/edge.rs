//! Reading an error answer for what it says beyond its status: who sent
//! it (a CDN edge or a proxy, from its headers), whether that edge says it
//! cannot reach the origin behind it, whether the page declares
//! maintenance, and what a 503's `Retry-After` asks.
//!
//! Pure: it sees a status, headers and the first bytes of the page.

use super::text::{MAX_SHOWN, cap};
use crate::diagnosis::{Cause, Sign};
use http::HeaderMap;
use std::time::Duration;

/// The most of an error page read to explain it.
pub const PAGE_PEEK: usize = 16 * 1024;
/// How long an error page may take to arrive before it is judged on what
/// came: its status is already known, so a stalled page changes nothing.
pub const PEEK_WAIT: Duration = Duration::from_secs(2);

/// What an error answer says, beyond its status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The cause it points at.
    pub cause: Cause,
    /// Which face of the cause, when it has several.
    pub sign: Option<Sign>,
    /// What it said, for the detail.
    pub what: String,
}

/// Who answered, from the headers CDNs and proxies set: "Cloudflare
/// (CF-Ray 8c1f…-AMS)", "CloudFront", "Fastly (cache-ams21)", a `Via`
/// chain, or `None` when nothing says. Capped at [`MAX_SHOWN`].
pub fn edge(headers: &HeaderMap) -> Option<String> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let server = get("server").unwrap_or("");
    let via = get("via").unwrap_or("");
    let lower_server = server.to_ascii_lowercase();
    let lower_via = via.to_ascii_lowercase();
    let named = if let Some(ray) = get("cf-ray") {
        format!("Cloudflare (CF-Ray {ray})")
    } else if lower_server == "cloudflare" {
        "Cloudflare".to_string()
    } else if get("x-amz-cf-id").is_some() || lower_via.contains("cloudfront") {
        match get("x-amz-cf-pop") {
            Some(pop) => format!("CloudFront ({pop})"),
            None => "CloudFront".to_string(),
        }
    } else if let Some(node) = get("x-served-by").filter(|v| v.starts_with("cache-")) {
        format!("Fastly ({node})")
    } else if lower_server.starts_with("akamaighost") || get("akamai-grn").is_some() {
        "Akamai".to_string()
    } else if get("x-sucuri-id").is_some() || lower_server.starts_with("sucuri") {
        "Sucuri".to_string()
    } else if lower_server.starts_with("bunnycdn") {
        format!("Bunny CDN ({server})")
    } else if !via.is_empty() {
        format!("a proxy (Via: {via})")
    } else if get("x-varnish").is_some() {
        "Varnish".to_string()
    } else {
        return None;
    };
    Some(cap(&named, MAX_SHOWN))
}

/// The `Retry-After` header as an operator reads it: "600 s (10 min)" or
/// the date it gives; capped.
pub fn retry_after(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get("retry-after")?.to_str().ok()?.trim();
    if raw.is_empty() {
        return None;
    }
    Some(match raw.parse::<u64>() {
        Ok(secs) if secs >= 120 => format!("{secs} s ({} min)", secs / 60),
        Ok(secs) => format!("{secs} s"),
        Err(_) => cap(raw, MAX_SHOWN),
    })
}

/// What Cloudflare's own status codes mean: the edge answered for an
/// origin it could not use.
fn edge_code(status: u16) -> Option<(Cause, &'static str)> {
    Some(match status {
        521 => (
            Cause::HttpOriginDown,
            "the origin refused the connection (its web server is down)",
        ),
        522 => (
            Cause::HttpOriginDown,
            "the connection to the origin timed out",
        ),
        523 => (Cause::HttpOriginDown, "the origin is unreachable"),
        530 => (
            Cause::HttpOriginDown,
            "the origin could not be resolved or reached",
        ),
        525 => (
            Cause::HttpOriginTls,
            "the TLS handshake with the origin failed",
        ),
        526 => (
            Cause::HttpOriginTls,
            "the origin's certificate is not valid",
        ),
        _ => return None,
    })
}

/// What a proxy's or CDN's error page says when it cannot reach the
/// origin behind it (lowercase).
const ORIGIN_PHRASES: &[&str] = &[
    "origin is unreachable",
    "unable to connect to the origin",
    "wasn't able to connect to the origin",
    "could not connect to the origin",
    "failed to connect to the origin",
    "origin server is unreachable",
    "origin server did not respond",
    "origin closed the connection",
    "backend is unhealthy",
    "backend fetch failed",
    "no healthy upstream",
    "upstream connect error",
];

/// WordPress's maintenance page (lowercase).
const WP_MAINTENANCE: &str = "briefly unavailable for scheduled maintenance";

/// What a 503 page says when it declares maintenance (lowercase). Not the
/// bare word: Apache's stock 503 speaks of "maintenance downtime or
/// capacity problems" whatever the reason.
const MAINTENANCE_PHRASES: &[&str] = &[
    "under maintenance",
    "maintenance mode",
    "down for maintenance",
    "scheduled maintenance",
    "undergoing maintenance",
    "<title>maintenance",
];

/// Explains an error answer: `status` (outside the accepted set, first
/// read as `cause`), who sent it, its `Retry-After` and the first bytes of
/// its page. `None` when it says nothing more than its status.
pub fn explain(
    status: u16,
    cause: Cause,
    edge: Option<&str>,
    retry_after: Option<&str>,
    page: &[u8],
) -> Option<Finding> {
    let from = edge.unwrap_or("the proxy");
    if let Some((cause, said)) = edge_code(status) {
        return Some(Finding {
            cause,
            sign: None,
            what: format!("{from} says {said} ({status})"),
        });
    }
    let page = String::from_utf8_lossy(page).to_ascii_lowercase();
    if matches!(status, 502..=504)
        && let Some(phrase) = ORIGIN_PHRASES.iter().find(|p| page.contains(*p))
    {
        return Some(Finding {
            cause: Cause::HttpOriginDown,
            sign: None,
            what: format!("{from} cannot reach the origin: its page says \"{phrase}\""),
        });
    }
    if status == 503 {
        let wait = retry_after.map_or_else(String::new, |r| format!(", Retry-After: {r}"));
        if page.contains(WP_MAINTENANCE) {
            return Some(Finding {
                cause: Cause::HttpMaintenance,
                sign: Some(Sign::WpMaintenance),
                what: format!(
                    "WordPress says \"Briefly unavailable for scheduled maintenance\" (a `.maintenance` file{wait})"
                ),
            });
        }
        let declared = MAINTENANCE_PHRASES.iter().find(|p| page.contains(*p));
        if let Some(phrase) = declared.or_else(|| {
            (retry_after.is_some() && page.contains("maintenance")).then_some(&"maintenance")
        }) {
            return Some(Finding {
                cause: Cause::HttpMaintenance,
                sign: None,
                what: format!("the page declares maintenance (\"{phrase}\"{wait})"),
            });
        }
        if let Some(r) = retry_after {
            return Some(Finding {
                cause,
                sign: None,
                what: format!("Retry-After: {r}"),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn edges_are_named_from_their_headers() {
        type Case = (
            &'static [(&'static str, &'static str)],
            Option<&'static str>,
        );
        let table: &[Case] = &[
            (
                &[("server", "cloudflare"), ("cf-ray", "8c1f2a-AMS")],
                Some("Cloudflare (CF-Ray 8c1f2a-AMS)"),
            ),
            (&[("server", "cloudflare")], Some("Cloudflare")),
            (
                &[("x-amz-cf-id", "abc"), ("x-amz-cf-pop", "FRA56-P1")],
                Some("CloudFront (FRA56-P1)"),
            ),
            (
                &[("via", "1.1 abc.cloudfront.net (CloudFront)")],
                Some("CloudFront"),
            ),
            (
                &[("x-served-by", "cache-ams21"), ("via", "1.1 varnish")],
                Some("Fastly (cache-ams21)"),
            ),
            (&[("server", "AkamaiGHost")], Some("Akamai")),
            (&[("x-sucuri-id", "1")], Some("Sucuri")),
            (&[("via", "1.1 edge")], Some("a proxy (Via: 1.1 edge)")),
            (&[("server", "nginx")], None),
            (&[], None),
        ];
        for (pairs, want) in table {
            assert_eq!(edge(&headers(pairs)).as_deref(), *want, "{pairs:?}");
        }
    }

    #[test]
    fn cloudflare_codes_name_the_origin() {
        for (status, cause) in [
            (521, Cause::HttpOriginDown),
            (522, Cause::HttpOriginDown),
            (523, Cause::HttpOriginDown),
            (530, Cause::HttpOriginDown),
            (525, Cause::HttpOriginTls),
            (526, Cause::HttpOriginTls),
        ] {
            let f = explain(status, Cause::HttpStatus, Some("Cloudflare"), None, b"").unwrap();
            assert_eq!(f.cause, cause, "{status}");
            assert!(f.what.starts_with("Cloudflare says "), "{}", f.what);
            assert!(f.what.ends_with(&format!("({status})")), "{}", f.what);
        }
        assert_eq!(explain(520, Cause::HttpStatus, None, None, b""), None);
    }

    #[test]
    fn pages_that_say_the_origin_is_gone() {
        let cloudfront = b"<H1>502 ERROR</H1><H2>The request could not be satisfied.</H2>CloudFront wasn't able to connect to the origin.";
        let f = explain(
            502,
            Cause::HttpBadGateway,
            Some("CloudFront"),
            None,
            cloudfront,
        )
        .unwrap();
        assert_eq!(f.cause, Cause::HttpOriginDown);
        assert!(
            f.what.contains("CloudFront cannot reach the origin"),
            "{}",
            f.what
        );
        // nginx's own 502 is the classic bad gateway: nothing more to say.
        let nginx = b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>";
        assert_eq!(explain(502, Cause::HttpBadGateway, None, None, nginx), None);
        // The phrase on a 500 is the application's business.
        assert_eq!(
            explain(500, Cause::HttpStatus, None, None, b"origin is unreachable"),
            None
        );
    }

    #[test]
    fn maintenance_is_told_from_a_plain_503() {
        let wp = b"<!DOCTYPE html><html><head><title>Maintenance</title></head><body><h1>Briefly unavailable for scheduled maintenance. Check back in a minute.</h1></body></html>";
        let f = explain(
            503,
            Cause::HttpUnavailable,
            None,
            Some("600 s (10 min)"),
            wp,
        )
        .unwrap();
        assert_eq!(
            (f.cause, f.sign),
            (Cause::HttpMaintenance, Some(Sign::WpMaintenance))
        );
        assert!(f.what.contains("Retry-After: 600 s"), "{}", f.what);
        let plugin = b"<html><body><h1>We are under maintenance</h1></body></html>";
        let f = explain(503, Cause::HttpUnavailable, None, None, plugin).unwrap();
        assert_eq!((f.cause, f.sign), (Cause::HttpMaintenance, None));
        // Apache's stock 503 mentions maintenance whatever the reason.
        let apache = b"<p>The server is temporarily unable to service your request due to maintenance downtime or capacity problems.</p>";
        assert_eq!(
            explain(503, Cause::HttpUnavailable, None, None, apache),
            None
        );
        // ... unless the server also asks to come back later.
        let f = explain(
            503,
            Cause::HttpUnavailable,
            None,
            Some("120 s (2 min)"),
            apache,
        )
        .unwrap();
        assert_eq!(f.cause, Cause::HttpMaintenance);
        // A 503 that only asks to come back later stays unavailable, and says when.
        let f = explain(503, Cause::HttpUnavailable, None, Some("30 s"), b"busy").unwrap();
        assert_eq!(
            (f.cause, f.what.as_str()),
            (Cause::HttpUnavailable, "Retry-After: 30 s")
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let r = |v: &'static str| retry_after(&headers(&[("retry-after", v)]));
        assert_eq!(r("600").as_deref(), Some("600 s (10 min)"));
        assert_eq!(r("30").as_deref(), Some("30 s"));
        assert_eq!(
            r("Wed, 21 Oct 2026 07:28:00 GMT").as_deref(),
            Some("Wed, 21 Oct 2026 07:28:00 GMT")
        );
        assert_eq!(r(" ").as_deref(), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }
}
