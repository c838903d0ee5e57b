//! Raw TOML → validated [`Config`], collecting every mistake with its place.
//!
//! Each top-level table and each `[[site]]` is deserialized on its own, so a
//! typo in one site does not hide the errors of the next; then every value is
//! checked and the `[defaults]` are inherited. Pure: the text comes in, a
//! `Config` or a list of diagnostics comes out.

use super::defaults;
use super::model::*;
use super::{Diagnostic, locate};
use serde::de::{Deserialize, Deserializer, IntoDeserializer};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A duration written like `"30s"`, `"5m"` or `"1h 30m"`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text)
            .map(Dur)
            .map_err(serde::de::Error::custom)
    }
}

/// Parses a human duration, with the message sites.toml shows on failure.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|_| {
        format!("invalid duration \"{text}\": write it like \"30s\", \"5m\" or \"1h 30m\" (units: ms, s, m, h, d)")
    })
}

/// One element of `expect_status`: `200` or `"200-299"`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct StatusItem(u16, u16);

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
        let n: i64 = s
            .trim()
            .parse()
            .map_err(|_| format!("\"{text}\" is not an HTTP status or a range like \"200-299\""))?;
        status_code(n)
    };
    match text.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (parse(a)?, parse(b)?);
            if a > b {
                return Err(format!("the range \"{text}\" runs backwards"));
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
        "\"{text}\" is not a resolver address: write it like \"9.9.9.9\", \"127.0.0.1:5353\" or \"[2620:fe::fe]:53\""
    ))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    listen: Option<Spanned<String>>,
    state_dir: Option<Spanned<String>>,
    max_concurrent_probes: Option<Spanned<i64>>,
    heartbeat_url: Option<Spanned<String>>,
    heartbeat_every: Option<Spanned<Dur>>,
    api_token_file: Option<Spanned<String>>,
    public_page: Option<Spanned<bool>>,
}

/// A `[[site]]` or the `[defaults]` table, before validation.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSite {
    name: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
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

pub(super) struct Cx<'a> {
    path: &'a Path,
    text: &'a str,
    pub(super) diags: Vec<Diagnostic>,
}

impl Cx<'_> {
    pub(super) fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, column, source_line) = locate(self.text, span.start);
        self.diags.push(Diagnostic {
            path: self.path.to_path_buf(),
            line,
            column,
            message: message.into(),
            source_line,
        });
    }

    fn toml_error(&mut self, e: &toml::de::Error) {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim_end().replace('\n', " ");
        self.error(span, message);
    }

    fn de<T: for<'de> Deserialize<'de>>(&mut self, value: &Spanned<DeValue<'_>>) -> Option<T> {
        match T::deserialize(value.clone().into_deserializer()) {
            Ok(v) => Some(v),
            Err(e) => {
                self.toml_error(&e);
                None
            }
        }
    }

    pub(super) fn relative(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.path.parent().unwrap_or_else(|| Path::new(".")).join(p)
        }
    }
}

pub(super) fn parse(path: &Path, text: &str) -> Result<Config, Vec<Diagnostic>> {
    let mut cx = Cx {
        path,
        text,
        diags: Vec::new(),
    };
    let root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(e) => {
            cx.toml_error(&e);
            return Err(cx.diags);
        }
    };

    let mut daemon = None;
    let mut defaults_raw = RawSite::default();
    let mut sites_raw: Vec<(Range<usize>, RawSite)> = Vec::new();
    let mut channels = Vec::new();
    for (key, value) in root.get_ref().iter() {
        match key.get_ref().as_ref() {
            "version" => match value.get_ref().as_integer().map(|i| i.as_str()) {
                Some("1") => {}
                _ => cx.error(
                    value.span(),
                    "unsupported `version`: this sitewatch reads version = 1",
                ),
            },
            "daemon" => daemon = cx.de::<RawDaemon>(value),
            "defaults" => {
                if let Some(d) = cx.de::<RawSite>(value) {
                    for (field, span) in [
                        ("name", d.name.as_ref().map(|s| s.span())),
                        ("url", d.url.as_ref().map(|s| s.span())),
                    ] {
                        if let Some(span) = span {
                            cx.error(
                                span,
                                format!("`{field}` belongs in a [[site]], not in [defaults]"),
                            );
                        }
                    }
                    defaults_raw = d;
                }
            }
            "site" => match value.get_ref().as_array() {
                Some(sites) => {
                    for site in sites.iter() {
                        if let Some(raw) = cx.de::<RawSite>(site) {
                            sites_raw.push((site.span(), raw));
                        }
                    }
                }
                None => cx.error(
                    value.span(),
                    "`site` must be a list of tables: write each site as a [[site]] block",
                ),
            },
            "alert" => match value.get_ref().as_table() {
                Some(table) => {
                    for (name, body) in table.iter() {
                        let name = Spanned::new(name.span(), name.get_ref().to_string());
                        if let Some(raw) = cx.de::<super::alert::RawChannel>(body)
                            && let Some(ch) =
                                super::alert::validate(&mut cx, &name, body.span(), &raw)
                        {
                            channels.push(ch);
                        }
                    }
                }
                None => cx.error(
                    value.span(),
                    "`alert` must hold tables: write each channel as [alert.NAME]",
                ),
            },
            other => cx.error(
                key.span(),
                format!(
                    "unknown table `{other}`, expected `daemon`, `defaults`, `site` or `alert`"
                ),
            ),
        }
    }

    let daemon = validate_daemon(&mut cx, daemon);
    let channel_names: Vec<String> = channels
        .iter()
        .map(|c: &ChannelSpec| c.name.clone())
        .collect();
    let mut sites = Vec::with_capacity(sites_raw.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (span, raw) in &sites_raw {
        // Names are checked for uniqueness even when the rest of a site is invalid.
        let mut duplicate = false;
        if let Some(name) = &raw.name {
            let line = locate(text, name.span().start).0;
            if let Some(first) = seen.get(name.get_ref()) {
                cx.error(
                    name.span(),
                    format!(
                        "duplicate site name \"{}\" (first defined on line {first}): names must be unique",
                        name.get_ref()
                    ),
                );
                duplicate = true;
            } else {
                seen.insert(name.get_ref().clone(), line);
            }
        }
        if let Some(site) = validate_site(&mut cx, span.clone(), raw, &defaults_raw, &channel_names)
            && !duplicate
        {
            sites.push(Arc::new(site));
        }
    }

    if cx.diags.is_empty() {
        Ok(Config {
            path: path.to_path_buf(),
            daemon,
            sites,
            channels,
        })
    } else {
        cx.diags.sort_by_key(|d| (d.line, d.column));
        Err(cx.diags)
    }
}

fn validate_daemon(cx: &mut Cx<'_>, raw: Option<RawDaemon>) -> Daemon {
    let mut daemon = Daemon {
        listen: defaults::LISTEN,
        state_dir: None,
        max_concurrent_probes: defaults::MAX_CONCURRENT_PROBES,
        heartbeat_url: None,
        heartbeat_every: defaults::HEARTBEAT_EVERY,
        api_token_file: None,
        public_page: false,
    };
    let Some(raw) = raw else { return daemon };
    if let Some(listen) = &raw.listen {
        match listen.get_ref().parse::<SocketAddr>() {
            Ok(addr) => daemon.listen = addr,
            Err(_) => cx.error(
                listen.span(),
                format!(
                    "`listen` must be an address and port like \"127.0.0.1:9898\", not \"{}\"",
                    listen.get_ref()
                ),
            ),
        }
    }
    if let Some(dir) = &raw.state_dir {
        if dir.get_ref().is_empty() {
            cx.error(dir.span(), "`state_dir` must not be empty");
        } else {
            daemon.state_dir = Some(cx.relative(dir.get_ref()));
        }
    }
    if let Some(max) = &raw.max_concurrent_probes {
        match usize::try_from(*max.get_ref()) {
            Ok(n) if (1..=1_000_000).contains(&n) => daemon.max_concurrent_probes = n,
            _ => cx.error(
                max.span(),
                "`max_concurrent_probes` must be between 1 and 1000000",
            ),
        }
    }
    if let Some(url) = &raw.heartbeat_url {
        let u = url.get_ref();
        if url::Url::parse(u).is_ok_and(|p| matches!(p.scheme(), "http" | "https")) {
            daemon.heartbeat_url = Some(u.clone());
        } else {
            cx.error(
                url.span(),
                format!("`heartbeat_url` must be an http:// or https:// URL, not \"{u}\""),
            );
        }
    }
    if let Some(f) = &raw.api_token_file {
        if f.get_ref().is_empty() {
            cx.error(f.span(), "`api_token_file` must not be empty");
        } else {
            daemon.api_token_file = Some(cx.relative(f.get_ref()));
        }
    }
    if let Some(p) = &raw.public_page {
        daemon.public_page = *p.get_ref();
    }
    if let Some(every) = &raw.heartbeat_every {
        if every.get_ref().0 < Duration::from_secs(1) {
            cx.error(every.span(), "`heartbeat_every` must be at least 1s");
        } else {
            daemon.heartbeat_every = every.get_ref().0;
        }
    }
    daemon
}

/// The value a site uses for a key: its own, else the one from `[defaults]`.
fn pick<'a, T>(
    own: &'a Option<Spanned<T>>,
    inherited: &'a Option<Spanned<T>>,
) -> Option<&'a Spanned<T>> {
    own.as_ref().or(inherited.as_ref())
}

fn validate_site(
    cx: &mut Cx<'_>,
    span: Range<usize>,
    raw: &RawSite,
    d: &RawSite,
    channels: &[String],
) -> Option<SiteSpec> {
    let before = cx.diags.len();
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
                    format!("\"{}\" in `expect_ips` is not an IP address", ip.get_ref()),
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
                    format!("`method` must be \"GET\" or \"HEAD\", not \"{other}\""),
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
                    format!("\"{name}\" in `headers` is not a valid header name"),
                ),
                (_, Err(_)) => cx.error(
                    value.span(),
                    format!(
                        "the value of header \"{name}\" holds characters a header cannot carry"
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
                            n.get_ref()
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

    if cx.diags.len() > before {
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

/// Parses `"all"` or `"any"`.
pub fn parse_address_mode(text: &str) -> Result<AddressMode, String> {
    match text {
        "all" => Ok(AddressMode::All),
        "any" => Ok(AddressMode::Any),
        other => Err(format!(
            "`addresses` must be \"all\" or \"any\", not \"{other}\""
        )),
    }
}

pub(super) fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "site name \"{name}\" must start with a letter or digit and use only letters, digits, '-', '_' and '.' (at most 64)"
        ))
    }
}

/// Parses a site's `url` (`http://`, `https://`, `tcp://host:port`, `tls://host:port`).
pub fn parse_target(text: &str) -> Result<Target, String> {
    let url = url::Url::parse(text).map_err(|e| format!("\"{text}\" is not a valid URL: {e}"))?;
    let scheme = match url.scheme() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        "tcp" => Scheme::Tcp,
        "tls" => Scheme::Tls,
        other => {
            return Err(format!(
                "unsupported scheme \"{other}\" in \"{text}\": use http://, https://, tcp://host:port or tls://host:port"
            ));
        }
    };
    let (host, host_str) = match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if d.is_empty() {
                return Err(format!("\"{text}\" has no host"));
            }
            // Non-special schemes (tcp://, tls://) leave address literals as names.
            match d.parse::<IpAddr>() {
                Ok(ip) => (Host::Ip(ip), d),
                Err(_) => (Host::Name(d.clone()), d),
            }
        }
        Some(url::Host::Ipv4(ip)) => (Host::Ip(IpAddr::V4(ip)), ip.to_string()),
        Some(url::Host::Ipv6(ip)) => (Host::Ip(IpAddr::V6(ip)), ip.to_string()),
        None => return Err(format!("\"{text}\" has no host")),
    };
    let port = match (url.port_or_known_default(), scheme) {
        (Some(p), _) => p,
        (None, _) => {
            return Err(format!(
                "\"{text}\" needs a port: write it like {}://{host_str}:25",
                url.scheme()
            ));
        }
    };
    if port == 0 {
        return Err(format!(
            "\"{text}\" has port 0, which cannot be connected to"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "\"{text}\" carries credentials: sitewatch does not send them in URLs"
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
            "\"{text}\" has a path, but {}:// targets are host:port only",
            url.scheme()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Config {
        parse(Path::new("s.toml"), text).unwrap_or_else(|d| panic!("{d:?}"))
    }

    fn errs(text: &str) -> Vec<String> {
        parse(Path::new("s.toml"), text)
            .expect_err("should fail")
            .iter()
            .map(|d| d.to_string())
            .collect()
    }

    #[test]
    fn defaults_are_inherited_and_overridden() {
        let c = ok(r#"
[defaults]
interval = "30s"
confirm_down = 3

[[site]]
name = "a"
url = "https://example.com/health?x=1"

[[site]]
name = "b"
url = "tcp://10.0.0.1:25"
interval = "5m"
timeout = "2s"
"#);
        let a = &c.sites[0];
        assert_eq!(a.interval, Duration::from_secs(30));
        assert_eq!(a.timeout, Duration::from_secs(10));
        assert_eq!(a.confirm_down, 3);
        assert_eq!(a.confirm_up, 2);
        assert_eq!(a.target.port, 443);
        assert_eq!(a.target.path, "/health?x=1");
        assert_eq!(a.target.host, Host::Name("example.com".into()));
        assert!(a.expect.status.contains(301) && !a.expect.status.contains(404));
        let b = &c.sites[1];
        assert_eq!(b.interval, Duration::from_secs(300));
        assert_eq!(b.target.host, Host::Ip("10.0.0.1".parse().unwrap()));
        assert_eq!(b.target.scheme, Scheme::Tcp);
        assert_eq!(c.daemon.listen, defaults::LISTEN);
    }

    #[test]
    fn short_interval_gets_a_timeout_that_fits() {
        let c = ok("[[site]]\nname = \"a\"\nurl = \"http://x.test\"\ninterval = \"5s\"\n");
        assert_eq!(c.sites[0].timeout, Duration::from_secs(5));
    }

    #[test]
    fn every_error_is_reported_at_once_with_its_place() {
        let e = errs(
            r#"[[site]]
name = "a"
url = "ftp://x"

[[site]]
name = "b"
url = "http://x"
timeuot = "1s"

[[site]]
name = "a"
url = "tcp://x"
interval = "500ms"
"#,
        );
        assert_eq!(e.len(), 5, "{e:#?}");
        assert!(
            e[0].starts_with("s.toml:3:7: unsupported scheme \"ftp\""),
            "{}",
            e[0]
        );
        assert!(
            e[1].starts_with("s.toml:8:1: unknown field `timeuot`"),
            "{}",
            e[1]
        );
        assert!(
            e[2].starts_with("s.toml:11:8: duplicate site name \"a\" (first defined on line 2)"),
            "{}",
            e[2]
        );
        assert!(
            e[3].starts_with("s.toml:12:7: \"tcp://x\" needs a port"),
            "{}",
            e[3]
        );
        assert!(
            e[4].starts_with("s.toml:13:12: `interval` is 500ms"),
            "{}",
            e[4]
        );
    }

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
    fn status_ranges_and_resolvers_parse() {
        assert_eq!(parse_status_range("200-299"), Ok((200, 299)));
        assert!(parse_status_range("299-200").is_err());
        assert!(parse_status_range("700").is_err());
        assert_eq!(parse_resolver("9.9.9.9").unwrap().port(), 53);
        assert_eq!(parse_resolver("[::1]:5353").unwrap().port(), 5353);
        assert!(parse_resolver("dns.google").is_err());
    }
}
