//! The `[self_check]` table: raw form and validation into [`SelfCheckSpec`].
//! Builds on [`super::context`] and [`super::target`] only.

use super::context::{Cx, Dur, duration_in, list_len, text_len};
use super::defaults;
use super::diagnostic::quote;
use super::model::{Scheme, SelfCheckSpec};
use super::target::{parse_resolver, parse_target, shown_url};
use std::net::SocketAddr;
use toml::Spanned;

/// The `[self_check]` table before validation.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSelfCheck {
    interval: Option<Spanned<Dur>>,
    timeout: Option<Spanned<Dur>>,
    tcp: Option<Spanned<Vec<Spanned<String>>>>,
    dns: Option<Spanned<Vec<Spanned<String>>>>,
    resolvers: Option<Spanned<Vec<Spanned<String>>>>,
    https: Option<Spanned<Vec<Spanned<String>>>>,
    trigger: Option<Spanned<f64>>,
}

/// Checks `[self_check]` (absent: no self-check).
pub(super) fn validate(
    cx: &mut Cx<'_>,
    raw: Option<(std::ops::Range<usize>, RawSelfCheck)>,
) -> Option<SelfCheckSpec> {
    let (at, raw) = raw?;
    let before = cx.count();
    let interval = raw
        .interval
        .as_ref()
        .map_or(defaults::SELF_CHECK_INTERVAL, |v| {
            duration_in(
                cx,
                "interval",
                v,
                defaults::MIN_SELF_CHECK_INTERVAL,
                defaults::MAX_SELF_CHECK_INTERVAL,
            )
            .unwrap_or(defaults::SELF_CHECK_INTERVAL)
        });
    let timeout = raw
        .timeout
        .as_ref()
        .map_or(defaults::SELF_CHECK_TIMEOUT, |v| {
            duration_in(
                cx,
                "timeout",
                v,
                defaults::MIN_TIMEOUT,
                defaults::MAX_SELF_CHECK_TIMEOUT,
            )
            .unwrap_or(defaults::SELF_CHECK_TIMEOUT)
        });
    let mut tcp: Vec<SocketAddr> = Vec::new();
    if let Some(list) = &raw.tcp
        && list_len(cx, "tcp", "canaries", list, defaults::MAX_CANARIES)
    {
        for item in list.get_ref() {
            match item.get_ref().parse::<SocketAddr>() {
                Ok(a) => tcp.push(a),
                Err(_) => cx.error(
                    item.span(),
                    format!(
                        "a `tcp` canary is an address and port like \"192.0.2.1:443\" or \"[2001:db8::1]:443\" (an address, so that it works without DNS), not \"{}\"",
                        quote(item.get_ref())
                    ),
                ),
            }
        }
    }
    if tcp.is_empty() && raw.tcp.as_ref().is_none_or(|l| l.get_ref().is_empty()) {
        cx.error(
            raw.tcp.as_ref().map_or(at.clone(), |l| l.span()),
            "[self_check] needs at least one `tcp` canary (an address and port that should always answer): without one, a broken network cannot be told from broken DNS",
        );
    }
    let mut dns = Vec::new();
    if let Some(list) = &raw.dns
        && list_len(cx, "dns", "names", list, defaults::MAX_CANARIES)
    {
        for item in list.get_ref() {
            if !text_len(cx, "dns", item, 253) {
                continue;
            }
            let name = item.get_ref().trim_end_matches('.').to_ascii_lowercase();
            let valid = !name.is_empty()
                && name.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                });
            if valid && name.parse::<std::net::IpAddr>().is_err() {
                dns.push(name);
            } else {
                cx.error(
                    item.span(),
                    format!(
                        "a `dns` canary is a host name to resolve, like \"example.com\", not \"{}\"",
                        quote(item.get_ref())
                    ),
                );
            }
        }
    }
    let mut resolvers = Vec::new();
    if let Some(list) = &raw.resolvers
        && list_len(cx, "resolvers", "servers", list, defaults::MAX_RESOLVERS)
    {
        for item in list.get_ref() {
            match parse_resolver(item.get_ref()) {
                Ok(r) => resolvers.push(r),
                Err(e) => cx.error(item.span(), e),
            }
        }
    }
    let mut https = Vec::new();
    if let Some(list) = &raw.https
        && list_len(cx, "https", "URLs", list, defaults::MAX_CANARIES)
    {
        for item in list.get_ref() {
            if !text_len(cx, "https", item, defaults::MAX_URL_BYTES) {
                continue;
            }
            match parse_target(item.get_ref()) {
                Ok(t) if t.scheme == Scheme::Https => https.push(t),
                _ => cx.error(
                    item.span(),
                    format!(
                        "an `https` canary is an https:// URL, not \"{}\"",
                        shown_url(item.get_ref())
                    ),
                ),
            }
        }
    }
    let trigger = match &raw.trigger {
        None => defaults::SELF_CHECK_TRIGGER,
        Some(v) => {
            let t = *v.get_ref();
            if (0.05..=1.0).contains(&t) {
                t
            } else {
                cx.error(
                    v.span(),
                    format!("`trigger` is {t}, a share of the sites: allowed 0.05 to 1.0"),
                );
                defaults::SELF_CHECK_TRIGGER
            }
        }
    };
    (cx.count() == before).then_some(SelfCheckSpec {
        interval,
        timeout,
        tcp,
        dns,
        resolvers,
        https,
        trigger,
    })
}
