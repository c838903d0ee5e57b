//! `sitewatch check TARGET`: one probe with the daemon's own probe code,
//! printed for a person, as the contract's JSON, or as a Nagios plugin line.

use super::log;
use crate::config::{self, AddressMode, Expect, HttpOptions, Method, SiteSpec, StatusSet};
use crate::diagnosis::Status;
use crate::probe::{self, ProbeDeps, ProbeReport};
use clap::{Args, ValueEnum};
use http::{HeaderName, HeaderValue};
use serde::Serialize;
use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Exit code for usage and internal errors (Nagios UNKNOWN).
pub const EXIT_UNKNOWN: i32 = 3;

/// Options of `sitewatch check` (the same knobs a site has in sites.toml).
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// http://…, https://…, tcp://host:port or tls://host:port
    pub target: String,
    /// Whole-probe budget (1ms to 10m)
    #[arg(long, default_value = "10s", value_parser = parse_timeout, value_name = "DUR")]
    pub timeout: Duration,
    /// DNS server to ask instead of the system's (repeatable)
    #[arg(long = "resolver", value_parser = config::parse_resolver, value_name = "IP:PORT")]
    pub resolvers: Vec<SocketAddr>,
    /// Extra trusted root(s) for TLS, PEM
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// An address the name must resolve to (repeatable)
    #[arg(long = "expect-ip", value_name = "IP")]
    pub expect_ips: Vec<IpAddr>,
    /// An accepted HTTP status or range like 200-299 (repeatable) [default: 200-399]
    #[arg(long = "expect-status", value_parser = config::parse_status_range, value_name = "N")]
    pub expect_status: Vec<(u16, u16)>,
    /// Text the body must contain
    #[arg(long, value_name = "TEXT")]
    pub expect_body: Option<String>,
    /// Text the body must not contain
    #[arg(long, value_name = "TEXT")]
    pub forbid_body: Option<String>,
    /// Request method: GET or HEAD
    #[arg(long, default_value = "GET", value_parser = parse_method, value_name = "GET|HEAD")]
    pub method: Method,
    /// An extra request header (repeatable)
    #[arg(long = "header", value_parser = parse_header, value_name = "'NAME: VALUE'")]
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Redirects to follow, each hop probed layer by layer (0: judge the 3xx itself)
    #[arg(long, default_value_t = config::MAX_REDIRECTS, value_name = "N")]
    pub max_redirects: u32,
    /// Do not treat success pages that show an application error as down
    #[arg(long)]
    pub no_app_errors: bool,
    /// A host a redirect may end on although it is on another domain
    /// (`example.org`, or `*.example.net` for every name under it; repeatable)
    #[arg(long = "allow-redirect-to", value_name = "HOST")]
    pub allow_redirects_to: Vec<String>,
    /// Response time above which the result is degraded
    #[arg(long, value_parser = config::parse_duration, value_name = "DUR")]
    pub slow: Option<Duration>,
    /// Days before certificate expiry that make TLS degraded
    #[arg(long, default_value_t = config::CERT_WARN_DAYS, value_name = "N")]
    pub cert_warn_days: u32,
    /// For tcp:// and tls://: text the server's first line must contain
    #[arg(long, value_name = "TEXT")]
    pub expect_banner: Option<String>,
    /// all: every address must work, else tcp.partial; any: the first that works is enough
    #[arg(long, default_value = "all", value_parser = config::parse_address_mode, value_name = "all|any")]
    pub addresses: AddressMode,
    /// Machine-readable output (same as --format json)
    #[arg(long)]
    pub json: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// TARGET is a site's name in the configuration: probe it from here and
    /// ask every [[cluster.peer]] for its view of it, at once
    #[arg(long)]
    pub from_peers: bool,
    /// The sites file, with --from-peers [default: $CONFIGURATION_DIRECTORY/sites.toml, else /etc/sitewatch/sites.toml]
    #[arg(
        long,
        short,
        env = "SITEWATCH_CONFIG",
        value_name = "PATH",
        requires = "from_peers"
    )]
    pub config: Option<PathBuf>,
}

/// `--timeout`: a duration within the limits a site's `timeout` has, so
/// the deadline arithmetic cannot overflow.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let d = config::parse_duration(text)?;
    if (config::MIN_TIMEOUT..=config::MAX_TIMEOUT).contains(&d) {
        Ok(d)
    } else {
        Err(format!(
            "the timeout must be between {} and {}",
            humantime::format_duration(config::MIN_TIMEOUT),
            humantime::format_duration(config::MAX_TIMEOUT)
        ))
    }
}

fn parse_method(text: &str) -> Result<Method, String> {
    match text.to_ascii_uppercase().as_str() {
        "GET" => Ok(Method::Get),
        "HEAD" => Ok(Method::Head),
        _ => Err(format!("\"{text}\" is not GET or HEAD")),
    }
}

fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("\"{text}\" is not a header: write it as 'Name: value'"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("\"{}\" is not a valid header name", name.trim()))?;
    if name == http::header::HOST {
        return Err("Host comes from the target and cannot be set".to_string());
    }
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| "the header value holds characters a header cannot carry".to_string())?;
    Ok((name, value))
}

/// How `check` prints its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A layer-by-layer report for a person.
    Text,
    /// The diagnosis contract's JSON object.
    Json,
    /// One Nagios plugin line with perfdata.
    Nagios,
}

impl CheckArgs {
    /// The site this check probes, validated like a sites.toml entry.
    pub fn site(&self) -> Result<SiteSpec, String> {
        let target = config::parse_target(&self.target)?;
        if self.timeout.is_zero() {
            return Err("--timeout must be longer than 0s".to_string());
        }
        if let Some(slow) = self.slow
            && (slow.is_zero() || slow >= self.timeout)
        {
            return Err("--slow must be above 0s and below --timeout".to_string());
        }
        if target.scheme.uses_http() && self.expect_banner.is_some() {
            return Err("--expect-banner applies to tcp:// and tls:// targets only".to_string());
        }
        if !target.scheme.uses_http()
            && (self.expect_body.is_some()
                || self.forbid_body.is_some()
                || !self.expect_status.is_empty())
        {
            return Err("--expect-body, --forbid-body and --expect-status apply to http:// and https:// targets only".to_string());
        }
        if self.method == Method::Head && (self.expect_body.is_some() || self.forbid_body.is_some())
        {
            return Err("body checks need the body: use --method GET".to_string());
        }
        if self.max_redirects > config::MAX_REDIRECTS_LIMIT {
            return Err(format!(
                "--max-redirects must be between 0 and {}",
                config::MAX_REDIRECTS_LIMIT
            ));
        }
        if self.cert_warn_days > config::MAX_CERT_WARN_DAYS {
            return Err(format!(
                "--cert-warn-days must be between 0 and {}",
                config::MAX_CERT_WARN_DAYS
            ));
        }
        for (flag, text, max) in [
            (
                "--expect-body",
                &self.expect_body,
                config::MAX_BODY_TEXT_BYTES,
            ),
            (
                "--forbid-body",
                &self.forbid_body,
                config::MAX_BODY_TEXT_BYTES,
            ),
            (
                "--expect-banner",
                &self.expect_banner,
                config::MAX_BANNER_BYTES,
            ),
        ] {
            if let Some(t) = text
                && !(1..=max).contains(&t.len())
            {
                return Err(format!("{flag} must be 1 to {max} bytes long"));
            }
        }
        if self.headers.len() > config::MAX_HEADERS
            || self.resolvers.len() > config::MAX_RESOLVERS
            || self.expect_ips.len() > config::MAX_EXPECT_IPS
        {
            return Err(format!(
                "at most {} --header, {} --resolver and {} --expect-ip",
                config::MAX_HEADERS,
                config::MAX_RESOLVERS,
                config::MAX_EXPECT_IPS
            ));
        }
        Ok(SiteSpec {
            name: "check".to_string(),
            target,
            interval: self.timeout,
            timeout: self.timeout,
            confirm_down: 1,
            confirm_up: 1,
            expect: Expect {
                status: if self.expect_status.is_empty() {
                    StatusSet(vec![config::EXPECT_STATUS])
                } else {
                    StatusSet(self.expect_status.clone())
                },
                body: self.expect_body.clone(),
                forbid_body: self.forbid_body.clone(),
                ips: self.expect_ips.clone(),
                slow: self.slow,
                cert_warn_days: self.cert_warn_days,
                resolvers: self.resolvers.clone(),
                ca_file: self.ca_file.clone(),
                addresses: self.addresses,
                banner: self.expect_banner.clone(),
                domain_warn_days: 0,
            },
            http: HttpOptions {
                method: self.method,
                headers: self.headers.clone(),
                max_redirects: self.max_redirects,
                app_errors: !self.no_app_errors,
                allow_redirects_to: self
                    .allow_redirects_to
                    .iter()
                    .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
                    .collect(),
            },
            notify: Vec::new(),
            remind_every: None,
            local: false,
            vantages: Vec::new(),
            quorum: crate::config::Quorum::Majority,
            tags: Vec::new(),
            intermittent: None,
            heartbeat: None,
        })
    }

    pub(super) fn format(&self) -> Format {
        if self.json { Format::Json } else { self.format }
    }
}

/// The JSON printed by `check --json`: the contract's fields plus the target.
#[derive(Serialize)]
struct CheckJson<'a> {
    target: &'a str,
    #[serde(flatten)]
    report: &'a ProbeReport,
}

/// Runs the check and prints it; returns the exit code. A result that
/// cannot be written (stdout closed or full) is UNKNOWN (3), as is any
/// usage or internal error.
pub fn run(args: &CheckArgs) -> i32 {
    if args.from_peers {
        return super::peers::run(args);
    }
    let site = match args.site() {
        Ok(s) => s,
        Err(msg) => {
            log::error(&format!("sitewatch check: {msg}"));
            return EXIT_UNKNOWN;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            log::error(&format!(
                "sitewatch check: cannot start the async runtime: {e}"
            ));
            return EXIT_UNKNOWN;
        }
    };
    let result = runtime.block_on(async {
        let deps = ProbeDeps::new([&site]).map_err(|e| e.to_string())?;
        probe::run(&site, &deps).await.map_err(|e| e.to_string())
    });
    let report = match result {
        Ok(r) => r,
        Err(msg) => {
            let out = match args.format() {
                Format::Nagios => format!("SITEWATCH UNKNOWN - {}: {msg}\n", site.target.url),
                Format::Json => format!(
                    "{}\n",
                    serde_json::json!({"target": site.target.url, "error": msg})
                ),
                Format::Text => {
                    log::error(&format!("sitewatch check: {msg}"));
                    String::new()
                }
            };
            let _ = super::print_or_unknown("check", &out);
            return EXIT_UNKNOWN;
        }
    };
    let out = match args.format() {
        Format::Json => match serde_json::to_string_pretty(&CheckJson {
            target: &site.target.url,
            report: &report,
        }) {
            Ok(s) => format!("{s}\n"),
            Err(e) => {
                log::error(&format!("sitewatch check: {e}"));
                return EXIT_UNKNOWN;
            }
        },
        Format::Nagios => format!("{}\n", nagios_line(&site, &report)),
        Format::Text => {
            let colour = std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            text_report(&site, &report, colour)
        }
    };
    super::print_or_unknown("check", &out).unwrap_or(report.status.nagios_code())
}

fn seconds(ms: f64) -> String {
    let s = format!("{:.6}", ms / 1000.0);
    let s = s.trim_end_matches('0');
    if s.ends_with('.') {
        format!("{s}0s")
    } else {
        format!("{s}s")
    }
}

/// One Nagios plugin line: `SITEWATCH OK - URL: detail | time=…s dns=…s …`.
pub fn nagios_line(site: &SiteSpec, report: &ProbeReport) -> String {
    let word = match report.status {
        Status::Up => "OK",
        Status::Degraded => "WARNING",
        Status::Down => "CRITICAL",
    };
    let what = match report.cause {
        Some(c) => format!("{} ({c}): {}", c.words(), report.detail),
        None => report.detail.clone(),
    };
    let mut perf = format!("time={};;;0", seconds(report.ms));
    for layer in &report.layers {
        let label = match layer.layer {
            crate::diagnosis::Layer::Dns => "dns",
            crate::diagnosis::Layer::Tcp => "connect",
            crate::diagnosis::Layer::Tls => "tls",
            crate::diagnosis::Layer::Http => "ttfb",
            crate::diagnosis::Layer::Vantage => "vantages",
            crate::diagnosis::Layer::Heartbeat => "heartbeat",
            crate::diagnosis::Layer::Site => "site",
            crate::diagnosis::Layer::Domain => "domain",
        };
        if perf.contains(&format!(" {label}=")) {
            continue;
        }
        perf.push_str(&format!(" {label}={};;;0", seconds(layer.ms)));
    }
    if let Some(cert) = &report.cert {
        perf.push_str(&format!(
            " cert_days={};{}:;0:",
            cert.days_left, site.expect.cert_warn_days
        ));
    }
    // Perfdata and the text are separated by '|', so none may appear in the text.
    format!(
        "SITEWATCH {word} - {}: {} | {perf}",
        site.target.url,
        what.replace('|', "/")
    )
}

/// The report for a person: status, then one line per layer, then detail and hint.
pub fn text_report(site: &SiteSpec, report: &ProbeReport, colour: bool) -> String {
    let paint = |code: &str, s: &str| {
        if colour {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    let (word, code) = match report.status {
        Status::Up => ("UP", "1;32"),
        Status::Degraded => ("DEGRADED", "1;33"),
        Status::Down => ("DOWN", "1;31"),
    };
    let mut out = format!("{}  {}", paint(code, word), site.target.url);
    if let Some(c) = report.cause {
        out.push_str(&format!("  {}  ({c})", c.words()));
    }
    out.push_str(&format!("  {:.1} ms\n", report.ms));
    for l in &report.layers {
        let mark = if l.ok {
            paint("32", "ok  ")
        } else {
            paint("31", "FAIL")
        };
        out.push_str(&format!(
            "  {:<4} {mark} {:>9.1} ms  {}\n",
            l.layer.as_str(),
            l.ms,
            l.detail
        ));
    }
    out.push_str(&format!("  detail: {}\n", report.detail));
    if let Some(h) = &report.hint {
        out.push_str(&format!("  hint:   {h}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_is_bounded_like_a_sites() {
        assert_eq!(parse_timeout("10m"), Ok(config::MAX_TIMEOUT));
        assert_eq!(parse_timeout("1ms"), Ok(config::MIN_TIMEOUT));
        let e = parse_timeout("99999999999999s").unwrap_err();
        assert_eq!(e, "the timeout must be between 1ms and 10m");
        assert!(parse_timeout("0s").is_err());
        assert!(parse_timeout("11m").is_err());
    }

    #[test]
    fn seconds_are_short_and_exact() {
        assert_eq!(seconds(231.0), "0.231s");
        assert_eq!(seconds(1000.0), "1.0s");
        assert_eq!(seconds(0.5), "0.0005s");
    }
}
