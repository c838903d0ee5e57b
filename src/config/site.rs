//! `[[site]]` and `[defaults]` tables: raw form, validation, and the
//! inheritance of `[defaults]` into each [`SiteSpec`].

use super::context::{Cx, Dur, check_name, pick};
use super::defaults;
use super::diagnostic::quote;
use super::model::*;
use super::target::{StatusItem, parse_address_mode, parse_resolver, parse_target};
use std::net::IpAddr;
use std::ops::Range;
use std::time::Duration;
use toml::Spanned;

/// A `[[site]]` or the `[defaults]` table, before validation.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSite {
    pub(super) name: Option<Spanned<String>>,
    pub(super) url: Option<Spanned<String>>,
    interval: Option<Spanned<Dur>>,
    timeout: Option<Spanned<Dur>>,
    confirm_down: Option<Spanned<i64>>,
    confirm_up: Option<Spanned<i64>>,
    expect_status: Option<Spanned<Vec<Spanned<StatusItem>>>>,
    expect_body: Option<Spanned<String>>,
    expect_ips: Option<Spanned<Vec<Spanned<String>>>>,
    slow: Option<Spanned<Dur>>,
    cert_warn_days: Option<Spanned<i64>>,
    resolvers: Option<Spanned<Vec<Spanned<String>>>>,
    ca_file: Option<Spanned<String>>,
    addresses: Option<Spanned<String>>,
    expect_banner: Option<Spanned<String>>,
    forbid_body: Option<Spanned<String>>,
    method: Option<Spanned<String>>,
    headers: Option<Spanned<std::collections::BTreeMap<String, Spanned<String>>>>,
    max_redirects: Option<Spanned<i64>>,
    app_errors: Option<Spanned<bool>>,
    notify: Option<Spanned<Vec<Spanned<String>>>>,
    remind_every: Option<Spanned<Dur>>,
}

/// Checks one site against `d` (the `[defaults]`) and the defined channels.
pub(super) fn validate(
    cx: &mut Cx<'_>,
    span: Range<usize>,
    raw: &RawSite,
    d: &RawSite,
    channels: &[String],
) -> Option<SiteSpec> {
    let before = cx.count();
    let name = match &raw.name {
        None => {
            cx.error(span.clone(), "this [[site]] has no `name`");
            None
        }
        Some(n) => {
            let ok = check_name(n.get_ref());
            if let Err(msg) = &ok {
                cx.error(n.span(), msg.clone());
            }
            ok.ok().map(|()| n.get_ref().clone())
        }
    };
    let target = match &raw.url {
        None => {
            cx.error(span.clone(), "this [[site]] has no `url`");
            None
        }
        Some(u) => match parse_target(u.get_ref()) {
            Ok(t) => Some(t),
            Err(msg) => {
                cx.error(u.span(), msg);
                None
            }
        },
    };

    let interval = pick(&raw.interval, &d.interval).map_or(defaults::INTERVAL, |v| v.get_ref().0);
    if let Some(v) = pick(&raw.interval, &d.interval)
        && interval < defaults::MIN_INTERVAL
    {
        cx.error(
            v.span(),
            format!(
                "`interval` is {}, below the minimum of 1s",
                humantime::format_duration(interval)
            ),
        );
    }
    let timeout =
        pick(&raw.timeout, &d.timeout).map_or(defaults::TIMEOUT.min(interval), |v| v.get_ref().0);
    if let Some(v) = pick(&raw.timeout, &d.timeout)
        && timeout.is_zero()
    {
        cx.error(v.span(), "`timeout` must be longer than 0s");
    }
    if timeout > interval {
        // Point at whichever of the two this site sets itself.
        let at = raw
            .timeout
            .as_ref()
            .or(raw.interval.as_ref())
            .or(d.timeout.as_ref())
            .map_or(span.clone(), |v| v.span());
        cx.error(
            at,
            format!(
                "`timeout` ({}) is longer than `interval` ({}): a probe must end before the next one starts",
                humantime::format_duration(timeout),
                humantime::format_duration(interval)
            ),
        );
    }
    let confirm_down = confirm(
        cx,
        pick(&raw.confirm_down, &d.confirm_down),
        "confirm_down",
        defaults::CONFIRM_DOWN,
    );
    let confirm_up = confirm(
        cx,
        pick(&raw.confirm_up, &d.confirm_up),
        "confirm_up",
        defaults::CONFIRM_UP,
    );

    let status = match pick(&raw.expect_status, &d.expect_status) {
        None => StatusSet(vec![defaults::EXPECT_STATUS]),
        Some(list) => {
            if list.get_ref().is_empty() {
                cx.error(list.span(), "`expect_status` must list at least one status");
            }
            StatusSet(
                list.get_ref()
                    .iter()
                    .map(|s| (s.get_ref().0, s.get_ref().1))
                    .collect(),
            )
        }
    };
    let body = pick(&raw.expect_body, &d.expect_body).map(|b| b.get_ref().clone());
    if let Some(b) = pick(&raw.expect_body, &d.expect_body)
        && b.get_ref().is_empty()
    {
        cx.error(b.span(), "`expect_body` must not be empty");
    }
    let mut ips = Vec::new();
    if let Some(list) = pick(&raw.expect_ips, &d.expect_ips) {
        for ip in list.get_ref() {
            match ip.get_ref().parse::<IpAddr>() {
                Ok(a) => ips.push(a),
                Err(_) => cx.error(
                    ip.span(),
                    format!(
                        "\"{}\" in `expect_ips` is not an IP address",
                        quote(ip.get_ref())
                    ),
                ),
            }
        }
    }
    let slow = pick(&raw.slow, &d.slow).map(|v| v.get_ref().0);
    if let (Some(v), Some(s)) = (pick(&raw.slow, &d.slow), slow)
        && (s.is_zero() || s >= timeout)
    {
        cx.error(
            v.span(),
            format!(
                "`slow` ({}) must be above 0s and below `timeout` ({})",
                humantime::format_duration(s),
                humantime::format_duration(timeout)
            ),
        );
    }
    let cert_warn_days = match pick(&raw.cert_warn_days, &d.cert_warn_days) {
        None => defaults::CERT_WARN_DAYS,
        Some(v) => match u32::try_from(*v.get_ref()) {
            Ok(n) if n <= 365 => n,
            _ => {
                cx.error(v.span(), "`cert_warn_days` must be between 0 and 365");
                defaults::CERT_WARN_DAYS
            }
        },
    };
    let mut resolvers = Vec::new();
    if let Some(list) = pick(&raw.resolvers, &d.resolvers) {
        for r in list.get_ref() {
            match parse_resolver(r.get_ref()) {
                Ok(a) => resolvers.push(a),
                Err(msg) => cx.error(r.span(), msg),
            }
        }
    }
    let ca_file = pick(&raw.ca_file, &d.ca_file).map(|p| cx.relative(p.get_ref()));
    let addresses = match pick(&raw.addresses, &d.addresses) {
        None => AddressMode::All,
        Some(v) => match parse_address_mode(v.get_ref()) {
            Ok(m) => m,
            Err(msg) => {
                cx.error(v.span(), msg);
                AddressMode::All
            }
        },
    };
    let banner = pick(&raw.expect_banner, &d.expect_banner).map(|b| b.get_ref().clone());
    let forbid_body = pick(&raw.forbid_body, &d.forbid_body).map(|b| b.get_ref().clone());
    if let Some(b) = pick(&raw.forbid_body, &d.forbid_body)
        && b.get_ref().is_empty()
    {
        cx.error(b.span(), "`forbid_body` must not be empty");
    }
    let method = match pick(&raw.method, &d.method) {
        None => Method::Get,
        Some(m) => match m.get_ref().to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            other => {
                cx.error(
                    m.span(),
                    format!(
                        "`method` must be \"GET\" or \"HEAD\", not \"{}\"",
                        quote(other)
                    ),
                );
                Method::Get
            }
        },
    };
    if method == Method::Head
        && let Some(b) = raw.expect_body.as_ref().or(raw.forbid_body.as_ref())
    {
        cx.error(
            b.span(),
            "body checks need the body: use method = \"GET\" with `expect_body` or `forbid_body`",
        );
    }
    let mut headers = Vec::new();
    if let Some(table) = pick(&raw.headers, &d.headers) {
        for (name, value) in table.get_ref() {
            let parsed_name = http::HeaderName::from_bytes(name.as_bytes());
            let parsed_value = http::HeaderValue::from_str(value.get_ref());
            match (parsed_name, parsed_value) {
                (Ok(n), Ok(v)) if n != http::header::HOST => headers.push((n, v)),
                (Ok(_), Ok(_)) => cx.error(
                    value.span(),
                    "`headers` cannot set Host: it comes from the url",
                ),
                (Err(_), _) => cx.error(
                    table.span(),
                    format!(
                        "\"{}\" in `headers` is not a valid header name",
                        quote(name)
                    ),
                ),
                (_, Err(_)) => cx.error(
                    value.span(),
                    format!(
                        "the value of header \"{}\" holds characters a header cannot carry",
                        quote(name)
                    ),
                ),
            }
        }
    }
    let max_redirects = match pick(&raw.max_redirects, &d.max_redirects) {
        None => defaults::MAX_REDIRECTS,
        Some(v) => match u32::try_from(*v.get_ref()) {
            Ok(n) if n <= defaults::MAX_REDIRECTS_LIMIT => n,
            _ => {
                cx.error(
                    v.span(),
                    format!(
                        "`max_redirects` must be between 0 and {}",
                        defaults::MAX_REDIRECTS_LIMIT
                    ),
                );
                defaults::MAX_REDIRECTS
            }
        },
    };
    let app_errors = pick(&raw.app_errors, &d.app_errors).is_none_or(|v| *v.get_ref());
    // Alerts go to every channel unless the site (or [defaults]) picks some.
    let notify = match pick(&raw.notify, &d.notify) {
        None => channels.to_vec(),
        Some(list) => {
            for n in list.get_ref() {
                if !channels.contains(n.get_ref()) {
                    let known = if channels.is_empty() {
                        "no [alert.NAME] channel is defined".to_string()
                    } else {
                        format!("defined: {}", channels.join(", "))
                    };
                    cx.error(
                        n.span(),
                        format!(
                            "`notify` names \"{}\", which is not an alert channel ({known})",
                            quote(n.get_ref())
                        ),
                    );
                }
            }
            list.get_ref().iter().map(|n| n.get_ref().clone()).collect()
        }
    };
    let remind_every = pick(&raw.remind_every, &d.remind_every).map(|v| v.get_ref().0);
    if let (Some(v), Some(r)) = (pick(&raw.remind_every, &d.remind_every), remind_every)
        && r < Duration::from_secs(60)
    {
        cx.error(v.span(), "`remind_every` must be at least 1m");
    }

    // Keys that make no sense for this kind of target, when the site sets them itself.
    if let Some(t) = &target {
        let http_only = [
            (
                "expect_status",
                raw.expect_status.as_ref().map(|v| v.span()),
            ),
            ("expect_body", raw.expect_body.as_ref().map(|v| v.span())),
            ("forbid_body", raw.forbid_body.as_ref().map(|v| v.span())),
            ("method", raw.method.as_ref().map(|v| v.span())),
            ("headers", raw.headers.as_ref().map(|v| v.span())),
            (
                "max_redirects",
                raw.max_redirects.as_ref().map(|v| v.span()),
            ),
            ("app_errors", raw.app_errors.as_ref().map(|v| v.span())),
        ];
        if !t.scheme.uses_http() {
            for (key, span) in http_only {
                if let Some(span) = span {
                    cx.error(
                        span,
                        format!("`{key}` applies to http:// and https:// sites only"),
                    );
                }
            }
        }
        if t.scheme.uses_http()
            && let Some(v) = &raw.expect_banner
        {
            cx.error(
                v.span(),
                "`expect_banner` applies to tcp:// and tls:// sites only",
            );
        }
        if !t.scheme.uses_tls()
            && let Some(v) = &raw.ca_file
        {
            cx.error(
                v.span(),
                "`ca_file` applies to https:// and tls:// sites only",
            );
        }
    }

    if cx.count() > before {
        return None;
    }
    let target = target?;
    let (uses_http, uses_tls) = (target.scheme.uses_http(), target.scheme.uses_tls());
    Some(SiteSpec {
        name: name?,
        target,
        interval,
        timeout,
        confirm_down,
        confirm_up,
        expect: Expect {
            status,
            body: if uses_http { body } else { None },
            forbid_body: if uses_http { forbid_body } else { None },
            ips,
            slow,
            cert_warn_days,
            resolvers,
            ca_file: if uses_tls { ca_file } else { None },
            addresses,
            banner: if uses_http { None } else { banner },
        },
        http: HttpOptions {
            method,
            headers,
            max_redirects,
            app_errors,
        },
        notify,
        remind_every,
    })
}

fn confirm(cx: &mut Cx<'_>, v: Option<&Spanned<i64>>, key: &str, default: u32) -> u32 {
    match v {
        None => default,
        Some(v) => match u32::try_from(*v.get_ref()) {
            Ok(n) if (1..=defaults::MAX_CONFIRM).contains(&n) => n,
            _ => {
                cx.error(
                    v.span(),
                    format!("`{key}` must be between 1 and {}", defaults::MAX_CONFIRM),
                );
                default
            }
        },
    }
}
