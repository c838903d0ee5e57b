//! `[[site]]` and `[defaults]` tables: raw form, validation, and the
//! inheritance of `[defaults]` into each [`SiteSpec`].

use super::context::{Cx, Dur, check_name, duration_in, int_in, list_len, pick, text_len};
use super::defaults;
use super::diagnostic::quote;
use super::judgement;
use super::model::*;
use super::request;
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
    headers: Option<Spanned<request::Headers>>,
    max_redirects: Option<Spanned<i64>>,
    app_errors: Option<Spanned<bool>>,
    allow_redirects_to: Option<Spanned<Vec<Spanned<String>>>>,
    intermittent_failures: Option<Spanned<i64>>,
    intermittent_window: Option<Spanned<i64>>,
    domain_warn_days: Option<Spanned<i64>>,
    pub(super) notify: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) remind_every: Option<Spanned<Dur>>,
    network: Option<Spanned<String>>,
    vantages: Option<Spanned<Vec<Spanned<String>>>>,
    quorum: Option<Spanned<QuorumItem>>,
    pub(super) tags: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `quorum = "majority"` or a number.
#[derive(serde::Deserialize)]
#[serde(untagged)]
pub(super) enum QuorumItem {
    Count(i64),
    Word(String),
}

/// Checks one site against `d` (the `[defaults]`) and the defined channels.
pub(super) fn validate(
    cx: &mut Cx<'_>,
    span: Range<usize>,
    raw: &RawSite,
    d: &RawSite,
    channels: &[String],
    known_vantages: &[String],
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
        Some(u) if !text_len(cx, "url", u, defaults::MAX_URL_BYTES) => None,
        Some(u) => match parse_target(u.get_ref()) {
            Ok(t) => Some(t),
            Err(msg) => {
                cx.error(u.span(), msg);
                None
            }
        },
    };
    let timing = timing(cx, &span, raw, d);
    let expect = expect(cx, raw, d, timing.timeout);
    let judged = judgement::Keys {
        allow_redirects_to: pick(&raw.allow_redirects_to, &d.allow_redirects_to),
        intermittent_failures: pick(&raw.intermittent_failures, &d.intermittent_failures),
        intermittent_window: pick(&raw.intermittent_window, &d.intermittent_window),
        domain_warn_days: pick(&raw.domain_warn_days, &d.domain_warn_days),
    };
    let mut http = request::options(
        cx,
        &request::Keys {
            method: pick(&raw.method, &d.method),
            headers: pick(&raw.headers, &d.headers),
            max_redirects: pick(&raw.max_redirects, &d.max_redirects),
            app_errors: pick(&raw.app_errors, &d.app_errors),
            body_check: raw.expect_body.as_ref().or(raw.forbid_body.as_ref()),
        },
    );
    http.allow_redirects_to = judgement::allow_redirects_to(cx, judged.allow_redirects_to);
    let intermittent =
        judgement::intermittent(cx, judged.intermittent_failures, judged.intermittent_window);
    let domain_warn_days = judgement::domain_warn_days(cx, judged.domain_warn_days);
    let notify = notify(cx, pick(&raw.notify, &d.notify), channels);
    let tags = tags(cx, pick(&raw.tags, &d.tags));
    let (vantages, quorum) = votes(cx, raw, d, known_vantages);
    if let Some(t) = &target {
        applicable(cx, raw, t.scheme);
    }

    if cx.count() > before {
        return None;
    }
    let target = target?;
    let local = match pick(&raw.network, &d.network) {
        None => Some(false),
        Some(v) => match v.get_ref().as_str() {
            "internet" => Some(false),
            "local" => Some(true),
            other => {
                cx.error(
                    v.span(),
                    format!(
                        "`network` is \"internet\" (the default: judged only while this monitor's own network works) or \"local\" (a LAN target, judged even then), not \"{}\"",
                        super::diagnostic::quote(other)
                    ),
                );
                None
            }
        },
    };
    if cx.count() > before {
        return None;
    }
    let (uses_http, uses_tls) = (target.scheme.uses_http(), target.scheme.uses_tls());
    Some(SiteSpec {
        name: name?,
        target,
        interval: timing.interval,
        timeout: timing.timeout,
        confirm_down: timing.confirm_down,
        confirm_up: timing.confirm_up,
        expect: Expect {
            body: expect.body.filter(|_| uses_http),
            forbid_body: expect.forbid_body.filter(|_| uses_http),
            ca_file: expect.ca_file.filter(|_| uses_tls),
            banner: expect.banner.filter(|_| !uses_http),
            domain_warn_days,
            ..expect
        },
        http,
        notify,
        remind_every: timing.remind_every,
        local: local?,
        vantages,
        quorum,
        tags,
        intermittent,
        heartbeat: None,
    })
}

/// The most tags one site may carry.
const MAX_TAGS: usize = 32;

/// Checks a `tags` list: names like site names, each once.
pub(super) fn tags(cx: &mut Cx<'_>, list: Option<&Spanned<Vec<Spanned<String>>>>) -> Vec<String> {
    let Some(list) = list else {
        return Vec::new();
    };
    if !list_len(cx, "tags", "tags", list, MAX_TAGS) {
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    for t in list.get_ref() {
        if let Err(msg) = check_name(t.get_ref()) {
            cx.error(t.span(), msg.replacen("site name", "tag", 1));
        } else if out.contains(t.get_ref()) {
            cx.error(
                t.span(),
                format!("`tags` names \"{}\" twice", quote(t.get_ref())),
            );
        } else {
            out.push(t.get_ref().clone());
        }
    }
    out
}

/// Which vantages watch the site (empty: all) and how many must agree.
fn votes(cx: &mut Cx<'_>, raw: &RawSite, d: &RawSite, known: &[String]) -> (Vec<String>, Quorum) {
    let mut vantages = Vec::new();
    if let Some(list) = pick(&raw.vantages, &d.vantages) {
        for v in list.get_ref() {
            if !known.contains(v.get_ref()) {
                cx.error(
                    v.span(),
                    format!(
                        "`vantages` names \"{}\", which is neither this instance nor one of its [[cluster.peer]] ({})",
                        super::diagnostic::quote(v.get_ref()),
                        known.join(", ")
                    ),
                );
            } else if vantages.contains(v.get_ref()) {
                cx.error(v.span(), "`vantages` names this vantage twice");
            } else {
                vantages.push(v.get_ref().clone());
            }
        }
        if list.get_ref().is_empty() {
            cx.error(list.span(), "`vantages` must name at least one vantage");
        }
    }
    let quorum = match pick(&raw.quorum, &d.quorum) {
        None => Quorum::Majority,
        Some(q) => match q.get_ref() {
            QuorumItem::Word(w) if w == "majority" => Quorum::Majority,
            QuorumItem::Count(n) if (1..=i64::from(defaults::MAX_CONFIRM)).contains(n) => {
                Quorum::Count(u32::try_from(*n).unwrap_or(1))
            }
            _ => {
                cx.error(
                    q.span(),
                    "`quorum` is \"majority\" (of the vantages that can vote) or a number of vantages (1 or more)",
                );
                Quorum::Majority
            }
        },
    };
    let watching = if vantages.is_empty() {
        known.len()
    } else {
        vantages.len()
    };
    if let (Quorum::Count(n), Some(q)) = (quorum, pick(&raw.quorum, &d.quorum))
        && usize::try_from(n).unwrap_or(usize::MAX) > watching
    {
        cx.error(
            q.span(),
            format!(
                "`quorum` {n} can never be met: only {watching} vantage{} watch{} this site",
                if watching == 1 { "" } else { "s" },
                if watching == 1 { "es" } else { "" },
            ),
        );
    }
    (vantages, quorum)
}

/// When a site probes and how many results it takes to change its state.
struct Timing {
    interval: Duration,
    timeout: Duration,
    confirm_down: u32,
    confirm_up: u32,
    remind_every: Option<Duration>,
}

fn timing(cx: &mut Cx<'_>, span: &Range<usize>, raw: &RawSite, d: &RawSite) -> Timing {
    let interval = match pick(&raw.interval, &d.interval) {
        None => defaults::INTERVAL,
        Some(v) => duration_in(
            cx,
            "interval",
            v,
            defaults::MIN_INTERVAL,
            defaults::MAX_INTERVAL,
        )
        .unwrap_or(defaults::INTERVAL),
    };
    let default_timeout = defaults::TIMEOUT.min(interval);
    let timeout = match pick(&raw.timeout, &d.timeout) {
        None => Some(default_timeout),
        Some(v) => duration_in(
            cx,
            "timeout",
            v,
            defaults::MIN_TIMEOUT,
            defaults::MAX_TIMEOUT,
        ),
    };
    if let Some(timeout) = timeout
        && timeout > interval
    {
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
    let confirm = |cx: &mut Cx<'_>, v: Option<&Spanned<i64>>, key: &str, default: u32| {
        v.and_then(|v| int_in(cx, key, v, 1, defaults::MAX_CONFIRM.into()))
            .unwrap_or(default)
    };
    Timing {
        interval,
        timeout: timeout.unwrap_or(default_timeout),
        confirm_down: confirm(
            cx,
            pick(&raw.confirm_down, &d.confirm_down),
            "confirm_down",
            defaults::CONFIRM_DOWN,
        ),
        confirm_up: confirm(
            cx,
            pick(&raw.confirm_up, &d.confirm_up),
            "confirm_up",
            defaults::CONFIRM_UP,
        ),
        remind_every: pick(&raw.remind_every, &d.remind_every).and_then(|v| {
            duration_in(
                cx,
                "remind_every",
                v,
                defaults::MIN_REMIND_EVERY,
                defaults::MAX_REMIND_EVERY,
            )
        }),
    }
}

/// What the probe expects, layer by layer (kept for every scheme here;
/// [`validate`] drops what the site's scheme does not use).
fn expect(cx: &mut Cx<'_>, raw: &RawSite, d: &RawSite, timeout: Duration) -> Expect {
    let status = match pick(&raw.expect_status, &d.expect_status) {
        None => StatusSet(vec![defaults::EXPECT_STATUS]),
        Some(list) => {
            if list.get_ref().is_empty() {
                cx.error(list.span(), "`expect_status` must list at least one status");
            }
            list_len(
                cx,
                "expect_status",
                "entries",
                list,
                defaults::MAX_STATUS_RANGES,
            );
            StatusSet(
                list.get_ref()
                    .iter()
                    .map(|s| (s.get_ref().0, s.get_ref().1))
                    .collect(),
            )
        }
    };
    let text = |cx: &mut Cx<'_>, key: &str, v: Option<&Spanned<String>>, max: usize| {
        v.filter(|v| text_len(cx, key, v, max))
            .map(|v| v.get_ref().clone())
    };
    let body = text(
        cx,
        "expect_body",
        pick(&raw.expect_body, &d.expect_body),
        defaults::MAX_BODY_TEXT_BYTES,
    );
    let forbid_body = text(
        cx,
        "forbid_body",
        pick(&raw.forbid_body, &d.forbid_body),
        defaults::MAX_BODY_TEXT_BYTES,
    );
    let banner = text(
        cx,
        "expect_banner",
        pick(&raw.expect_banner, &d.expect_banner),
        defaults::MAX_BANNER_BYTES,
    );
    let mut ips = Vec::new();
    if let Some(list) = pick(&raw.expect_ips, &d.expect_ips)
        && list_len(
            cx,
            "expect_ips",
            "addresses",
            list,
            defaults::MAX_EXPECT_IPS,
        )
    {
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
    let cert_warn_days = pick(&raw.cert_warn_days, &d.cert_warn_days)
        .and_then(|v| {
            int_in(
                cx,
                "cert_warn_days",
                v,
                0,
                defaults::MAX_CERT_WARN_DAYS.into(),
            )
        })
        .unwrap_or(defaults::CERT_WARN_DAYS);
    let mut resolvers = Vec::new();
    if let Some(list) = pick(&raw.resolvers, &d.resolvers)
        && list_len(cx, "resolvers", "servers", list, defaults::MAX_RESOLVERS)
    {
        for r in list.get_ref() {
            match parse_resolver(r.get_ref()) {
                Ok(a) => resolvers.push(a),
                Err(msg) => cx.error(r.span(), msg),
            }
        }
    }
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
    Expect {
        status,
        body,
        forbid_body,
        ips,
        slow,
        cert_warn_days,
        domain_warn_days: 0,
        resolvers,
        ca_file: pick(&raw.ca_file, &d.ca_file).map(|p| cx.relative(p.get_ref())),
        addresses,
        banner,
    }
}

/// The channels a site's alerts go to: every channel unless the site (or
/// `[defaults]`) picks some, each at most once.
/// The channels a `notify` list names (all channels when it is not set).
pub(super) fn notify(
    cx: &mut Cx<'_>,
    list: Option<&Spanned<Vec<Spanned<String>>>>,
    channels: &[String],
) -> Vec<String> {
    let Some(list) = list else {
        return channels.to_vec();
    };
    let mut out: Vec<String> = Vec::new();
    for n in list.get_ref() {
        let name = n.get_ref();
        if !channels.contains(name) {
            let known = if channels.is_empty() {
                "no [alert.NAME] channel is defined".to_string()
            } else {
                format!("defined: {}", channels.join(", "))
            };
            cx.error(
                n.span(),
                format!(
                    "`notify` names \"{}\", which is not an alert channel ({known})",
                    quote(name)
                ),
            );
        } else if out.contains(name) {
            cx.error(
                n.span(),
                format!("`notify` names \"{}\" twice", quote(name)),
            );
        } else {
            out.push(name.clone());
        }
    }
    out
}

/// Keys that make no sense for the site's kind of target, when the site
/// sets them itself (a value inherited from `[defaults]` is just not used).
fn applicable(cx: &mut Cx<'_>, raw: &RawSite, scheme: Scheme) {
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
        (
            "allow_redirects_to",
            raw.allow_redirects_to.as_ref().map(|v| v.span()),
        ),
    ];
    if !scheme.uses_http() {
        for (key, span) in http_only {
            if let Some(span) = span {
                cx.error(
                    span,
                    format!("`{key}` applies to http:// and https:// sites only"),
                );
            }
        }
    }
    if scheme.uses_http()
        && let Some(v) = &raw.expect_banner
    {
        cx.error(
            v.span(),
            "`expect_banner` applies to tcp:// and tls:// sites only",
        );
    }
    if !scheme.uses_tls()
        && let Some(v) = &raw.ca_file
    {
        cx.error(
            v.span(),
            "`ca_file` applies to https:// and tls:// sites only",
        );
    }
}
