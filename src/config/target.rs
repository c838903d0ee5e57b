//! Parsers of single values that the command line shares with sites.toml:
//! a site's target URL, HTTP status ranges, resolver addresses and the
//! address mode. Pure functions from text to a value or a message.

use super::defaults;
use super::diagnostic::quote;
use super::model::*;
use serde::de::{Deserialize, Deserializer};
use std::net::{IpAddr, SocketAddr};

/// One element of `expect_status`: `200` or `"200-299"`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct StatusItem(pub(super) u16, pub(super) u16);

impl<'de> Deserialize<'de> for StatusItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = StatusItem;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an HTTP status like 200 or a range like \"200-299\"")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<StatusItem, E> {
                let s = status_code(v).map_err(E::custom)?;
                Ok(StatusItem(s, s))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<StatusItem, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<StatusItem, E> {
                parse_status_range(v)
                    .map(|(a, b)| StatusItem(a, b))
                    .map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

fn status_code(v: i64) -> Result<u16, String> {
    match u16::try_from(v) {
        Ok(s) if (100..=599).contains(&s) => Ok(s),
        _ => Err(format!(
            "{v} is not an HTTP status: statuses run from 100 to 599"
        )),
    }
}

/// Parses `"200"` or `"200-299"` (as in `--expect-status`).
pub fn parse_status_range(text: &str) -> Result<(u16, u16), String> {
    let parse = |s: &str| -> Result<u16, String> {
        let n: i64 = s.trim().parse().map_err(|_| {
            format!(
                "\"{}\" is not an HTTP status or a range like \"200-299\"",
                quote(text)
            )
        })?;
        status_code(n)
    };
    match text.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (parse(a)?, parse(b)?);
            if a > b {
                return Err(format!("the range \"{}\" runs backwards", quote(text)));
            }
            Ok((a, b))
        }
        None => parse(text).map(|s| (s, s)),
    }
}

/// Parses a resolver address: `IP`, `IP:PORT` or `[IPv6]:PORT`.
pub fn parse_resolver(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, defaults::DNS_PORT));
    }
    Err(format!(
        "\"{}\" is not a resolver address: write it like \"9.9.9.9\", \"127.0.0.1:5353\" or \"[2620:fe::fe]:53\"",
        quote(text)
    ))
}

/// Parses `"all"` or `"any"`.
pub fn parse_address_mode(text: &str) -> Result<AddressMode, String> {
    match text {
        "all" => Ok(AddressMode::All),
        "any" => Ok(AddressMode::Any),
        other => Err(format!(
            "`addresses` must be \"all\" or \"any\", not \"{}\"",
            quote(other)
        )),
    }
}

/// Parses a site's `url` (`http://`, `https://`, `tcp://host:port`, `tls://host:port`).
pub fn parse_target(text: &str) -> Result<Target, String> {
    // Only a message shows it: not made for every valid URL.
    let text_shown = || shown_url(text);
    let url = url::Url::parse(text)
        .map_err(|e| format!("\"{shown}\" is not a valid URL: {e}", shown = text_shown()))?;
    let scheme = match url.scheme() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        "tcp" => Scheme::Tcp,
        "tls" => Scheme::Tls,
        other => {
            return Err(format!(
                "unsupported scheme \"{}\" in \"{shown}\": use http://, https://, tcp://host:port or tls://host:port",
                quote(other),
                shown = text_shown()
            ));
        }
    };
    let (host, host_str) = match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if d.is_empty() {
                return Err(format!("\"{shown}\" has no host", shown = text_shown()));
            }
            // Non-special schemes (tcp://, tls://) leave address literals as names.
            match d.parse::<IpAddr>() {
                Ok(ip) => (Host::Ip(ip), d),
                Err(_) => (Host::Name(d.clone()), d),
            }
        }
        Some(url::Host::Ipv4(ip)) => (Host::Ip(IpAddr::V4(ip)), ip.to_string()),
        Some(url::Host::Ipv6(ip)) => (Host::Ip(IpAddr::V6(ip)), ip.to_string()),
        None => return Err(format!("\"{shown}\" has no host", shown = text_shown())),
    };
    let port = match (url.port_or_known_default(), scheme) {
        (Some(p), _) => p,
        (None, _) => {
            return Err(format!(
                "\"{shown}\" needs a port: write it like {}://{}:25",
                url.scheme(),
                quote(&host_str),
                shown = text_shown()
            ));
        }
    };
    if port == 0 {
        return Err(format!(
            "\"{shown}\" has port 0, which cannot be connected to",
            shown = text_shown()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "\"{shown}\" carries credentials: sitewatch does not send them in URLs",
            shown = text_shown()
        ));
    }
    let mut path = url.path().to_string();
    if path.is_empty() {
        path.push('/');
    }
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    if !scheme.uses_http() && path != "/" {
        return Err(format!(
            "\"{shown}\" has a path, but {}:// targets are host:port only",
            url.scheme(),
            shown = text_shown()
        ));
    }
    Ok(Target {
        url: text.to_string(),
        scheme,
        host,
        host_str,
        port,
        path,
    })
}

/// A URL for a message: any `user:password@` replaced by `***@`, and cut
/// to a readable length.
pub(super) fn shown_url(text: &str) -> String {
    let hidden = match text.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://***{}", &rest[at..]),
                None => text.to_string(),
            }
        }
        None => text.to_string(),
    };
    quote(&hidden)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_for_every_scheme() {
        let t = parse_target("tls://[::1]:993").unwrap();
        assert_eq!((t.scheme, t.port), (Scheme::Tls, 993));
        assert_eq!(t.host, Host::Ip("::1".parse().unwrap()));
        let t = parse_target("tcp://127.0.0.1:25").unwrap();
        assert_eq!(t.host, Host::Ip("127.0.0.1".parse().unwrap()));
        let t = parse_target("http://Example.COM.").unwrap();
        assert_eq!(
            (t.host_str.as_str(), t.port, t.path.as_str()),
            ("example.com", 80, "/")
        );
        assert!(parse_target("tcp://x:25/path").is_err());
        assert!(parse_target("http://user:pw@x").is_err());
    }

    #[test]
    fn messages_hide_credentials_and_cut_long_urls() {
        let e = parse_target("http://user:hunter2@x/a@b").unwrap_err();
        assert!(
            e.starts_with("\"http://***@x/a@b\" carries credentials"),
            "{e}"
        );
        let e = parse_target("ftp://tok3n@files.test").unwrap_err();
        assert!(!e.contains("tok3n"), "{e}");
        let e = parse_target(&format!("http://x.test:99999/{}", "a".repeat(10_000))).unwrap_err();
        assert!(e.len() < 300 && e.contains("is not a valid URL"), "{e}");
    }

    #[test]
    fn status_ranges_and_resolvers_parse() {
        assert_eq!(parse_status_range("200-299"), Ok((200, 299)));
        assert!(parse_status_range("299-200").is_err());
        assert!(parse_status_range("700").is_err());
        assert_eq!(parse_resolver("9.9.9.9").unwrap().port(), 53);
        assert_eq!(parse_resolver("[::1]:5353").unwrap().port(), 5353);
        assert!(parse_resolver("dns.google").is_err());
    }
}
