//! The pipeline on whole files: defaults, inheritance, every table.
use super::*;
use crate::config::{context, defaults};
use std::time::Duration;

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
fn a_flood_of_errors_is_cut_to_a_readable_report() {
    let many = context::MAX_REPORTED + 50;
    let text: String = (0..many)
        .map(|i| format!("[[site]]\nname = \"s{i}\"\nurl = \"ftp://x\"\n"))
        .collect();
    let e = parse(Path::new("s.toml"), &text).unwrap_err();
    assert_eq!(e.len(), context::MAX_REPORTED + 1);
    let last = e.last().unwrap();
    assert_eq!(
        last.message,
        "50 more errors not shown: fix the ones above first"
    );
    // It points at the first error it does not show.
    assert_eq!(last.line, 3 * context::MAX_REPORTED + 3);
}

#[test]
fn every_limit_is_allowed_up_to_its_value() {
    use defaults::*;
    let list = |n: usize, f: &dyn Fn(usize) -> String| (0..n).map(f).collect::<Vec<_>>().join(", ");
    let url = format!("https://a.example.com/{}", "p".repeat(MAX_URL_BYTES - 22));
    assert_eq!(url.len(), MAX_URL_BYTES);
    let mut headers = list(MAX_HEADERS - 1, &|i| format!("\"X-H{i}\" = \"v\""));
    headers.push_str(&format!(
        ", \"{}\" = \"{}\"",
        "N".repeat(MAX_HEADER_NAME_BYTES),
        "v".repeat(MAX_HEADER_VALUE_BYTES)
    ));
    let text = format!(
        r#"
[daemon]
max_concurrent_probes = {MAX_CONCURRENT_PROBES_LIMIT}
heartbeat_every = "24h"

[[site]]
name = "{name}"
url = "{url}"
interval = "24h"
timeout = "10m"
remind_every = "7d"
confirm_down = {MAX_CONFIRM}
confirm_up = {MAX_CONFIRM}
max_redirects = {MAX_REDIRECTS_LIMIT}
cert_warn_days = {MAX_CERT_WARN_DAYS}
expect_body = "{body}"
forbid_body = "{body}"
resolvers = [{resolvers}]
expect_ips = [{ips}]
expect_status = [{status}]
headers = {{ {headers} }}

[[site]]
name = "tcp"
url = "tcp://b.example.com:25"
expect_banner = "{banner}"

[alert.mail]
type = "email"
smtp_host = "smtp.example.com"
smtp_port = 65535
from = "sitewatch@example.com"
to = [{to}]
"#,
        name = "n".repeat(MAX_NAME_CHARS),
        body = "x".repeat(MAX_BODY_TEXT_BYTES),
        banner = "b".repeat(MAX_BANNER_BYTES),
        resolvers = list(MAX_RESOLVERS, &|i| format!("\"192.0.2.{i}\"")),
        ips = list(MAX_EXPECT_IPS, &|i| format!("\"192.0.2.{i}\"")),
        status = list(MAX_STATUS_RANGES, &|i| (200 + i).to_string()),
        to = list(MAX_RECIPIENTS, &|i| format!("\"u{i}@example.com\"")),
    );
    let c = ok(&text);
    assert_eq!(c.sites[0].interval, MAX_INTERVAL);
    assert_eq!(c.sites[0].remind_every, Some(MAX_REMIND_EVERY));
    assert_eq!(c.sites[0].http.headers.len(), MAX_HEADERS);
    assert_eq!(c.daemon.max_concurrent_probes, MAX_CONCURRENT_PROBES_LIMIT);
}

#[test]
fn an_alertmanager_channel_and_the_cluster_are_read() {
    let c = ok(r#"
[cluster]
vantage = "fra1"

[[site]]
name = "a"
url = "https://a.example.com"

[alert.am]
type = "alertmanager"
urls = ["http://am1:9093/", "https://am2.example.com/prefix"]
bearer_token_credential = "am-token"
labels = { team = "web", _env = "prod" }

[alert.hook]
type = "webhook"
url = "https://hook.example.com/"
"#);
    assert_eq!(c.cluster.vantage, "fra1");
    let am = &c.channels[0];
    assert_eq!(am.kind.as_str(), "alertmanager");
    assert_eq!(
        am.storm_hold,
        defaults::ALERTMANAGER_STORM_HOLD,
        "Alertmanager groups"
    );
    assert_eq!(c.channels[1].storm_hold, defaults::STORM_HOLD);
    let ChannelKind::Alertmanager(spec) = &am.kind else {
        panic!("{am:?}")
    };
    assert_eq!(
        spec.urls,
        ["http://am1:9093", "https://am2.example.com/prefix"],
        "base URLs, without a trailing /"
    );
    assert_eq!(spec.resend_interval, defaults::RESEND_INTERVAL);
    assert_eq!(
        spec.bearer_token,
        Some(SecretRef::Credential("am-token".into()))
    );
    assert_eq!(spec.labels.len(), 2);
    // The site notifies every channel by default.
    assert_eq!(c.sites[0].notify, ["am", "hook"]);
    // Without [cluster], the vantage is the host's name.
    let bare = ok("[[site]]\nname = \"a\"\nurl = \"https://a.example.com\"\n");
    assert_eq!(bare.cluster.vantage, super::super::cluster::host_vantage());
}

#[test]
fn alertmanager_limits_are_allowed_up_to_their_value() {
    use defaults::*;
    let urls: Vec<String> = (0..MAX_ALERTMANAGER_URLS)
        .map(|i| format!("\"http://am{i}:9093\""))
        .collect();
    let mut labels: Vec<String> = (0..MAX_LABELS - 1)
        .map(|i| format!("l{i} = \"v\""))
        .collect();
    labels.push(format!(
        "{} = \"{}\"",
        "n".repeat(MAX_LABEL_NAME_BYTES),
        "v".repeat(MAX_LABEL_VALUE_BYTES)
    ));
    let text = format!(
        "[cluster]\nvantage = \"{}\"\n\n[[site]]\nname = \"a\"\nurl = \"https://a.example.com\"\n\n[alert.am]\ntype = \"alertmanager\"\nurls = [{}]\nresend_interval = \"1h\"\nlabels = {{ {} }}\n",
        "v".repeat(MAX_VANTAGE_CHARS),
        urls.join(", "),
        labels.join(", ")
    );
    let c = ok(&text);
    let ChannelKind::Alertmanager(spec) = &c.channels[0].kind else {
        panic!()
    };
    assert_eq!(spec.urls.len(), MAX_ALERTMANAGER_URLS);
    assert_eq!(spec.labels.len(), MAX_LABELS);
    assert_eq!(spec.resend_interval, MAX_RESEND_INTERVAL);
    let short = text.replace("\"1h\"", "\"10s\"");
    assert_eq!(short.matches("\"10s\"").count(), 1);
    let c = ok(&short);
    let ChannelKind::Alertmanager(spec) = &c.channels[0].kind else {
        panic!()
    };
    assert_eq!(spec.resend_interval, MIN_RESEND_INTERVAL);
    // One byte more is refused.
    let long = text.replace(
        &format!("{} =", "n".repeat(MAX_LABEL_NAME_BYTES)),
        &format!("{} =", "n".repeat(MAX_LABEL_NAME_BYTES + 1)),
    );
    assert!(errs(&long)[0].contains("above the maximum of 128"));
}

#[test]
fn a_masked_short_key_keeps_the_message_within_its_cap() {
    // The list of a channel's keys is long; the unknown key is masked
    // as `***` after the message is capped, which must not make it
    // longer than the cap.
    let e = errs(
        "[alert.am]\ntype = \"alertmanager\"\nurls = [\"http://am:9093\"]\nr.esend_interval = \"60s\"\n",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    let message = e[0].split_once(": ").map_or("", |(_, m)| m);
    assert!(
        message.starts_with("unknown field `***`, expected one of `type`"),
        "{message}"
    );
    assert!(
        message.chars().count() <= super::super::diagnostic::MESSAGE_CHARS + 1,
        "{}",
        message.chars().count()
    );
}

#[test]
fn label_names_follow_prometheus() {
    for good in ["team", "_x", "A1_b", "severity_override"] {
        assert!(is_label_name(good), "{good}");
    }
    for bad in ["", "1a", "bad-name", "a.b", "é", "a b"] {
        assert!(!is_label_name(bad), "{bad}");
    }
}

#[test]
fn limits_read_as_written() {
    use context::show_limit;
    assert_eq!(show_limit(defaults::MAX_INTERVAL), "24h");
    assert_eq!(show_limit(defaults::MAX_REMIND_EVERY), "7d");
    assert_eq!(show_limit(defaults::MAX_TIMEOUT), "10m");
    assert_eq!(show_limit(defaults::MIN_INTERVAL), "1s");
    assert_eq!(show_limit(defaults::MIN_TIMEOUT), "1ms");
}

#[test]
fn a_channel_hears_only_of_its_sites_and_tags() {
    let c = ok(r#"
[alert.all]
type = "webhook"
url = "http://127.0.0.1:9/all"

[alert.wp]
type = "webhook"
url = "http://127.0.0.1:9/wp"
tags = ["wordpress"]
sites = ["api"]

[[site]]
name = "blog"
url = "http://127.0.0.1:9/"
tags = ["wordpress"]

[[site]]
name = "api"
url = "http://127.0.0.1:9/"

[[site]]
name = "shop"
url = "http://127.0.0.1:9/"
tags = ["shop"]

[[heartbeat]]
name = "backup"
period = "1d"
key = "0123456789abcdef0123456789"
tags = ["wordpress"]
"#);
    let notify: Vec<(&str, Vec<&str>)> = c
        .sites
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.notify.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        notify,
        [
            ("blog", vec!["all", "wp"]),
            ("api", vec!["all", "wp"]),
            ("shop", vec!["all"]),
            ("backup", vec!["all", "wp"]),
        ]
    );
    assert_eq!(c.channels[1].tags, ["wordpress"]);
    assert_eq!(c.channels[1].sites, ["api"]);
}
