//! `sitewatch check` as a process, against real servers on loopback: exit
//! codes, the JSON contract, the Nagios line and the text report.

mod common;

use common::dns::{Answer, TestDns};
use common::http::{AcceptClose, TestHttp, raw_server};
use common::tls::{After, CertKind, TestCa, TlsServer, garbage_server};
use serde_json::Value;

/// Runs `sitewatch check ARGS --json`; returns the exit code and the JSON.
async fn check_json(args: &[&str]) -> (i32, Value) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sitewatch"))
        .arg("check")
        .args(args)
        .arg("--json")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), json)
}

async fn check_raw(args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sitewatch"))
        .arg("check")
        .args(args)
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asserts the contract's shape: status, cause, detail, hint, layers.
fn assert_contract(j: &Value) {
    for key in ["status", "cause", "detail", "hint", "layers"] {
        assert!(j.get(key).is_some(), "missing `{key}` in {j}");
    }
    assert!(["up", "degraded", "down"].contains(&j["status"].as_str().unwrap()));
    assert!(j["detail"].as_str().is_some_and(|d| !d.is_empty()));
    for layer in j["layers"].as_array().unwrap() {
        assert!(
            ["dns", "tcp", "tls", "http"].contains(&layer["layer"].as_str().unwrap()),
            "{layer}"
        );
        assert!(
            layer["ok"].is_boolean() && layer["ms"].is_f64() && layer["detail"].is_string(),
            "{layer}"
        );
    }
    if j["status"] == "up" {
        assert!(j["cause"].is_null() && j["hint"].is_null());
    } else {
        assert!(
            j["cause"].is_string() && j["hint"].as_str().is_some_and(|h| h.len() > 20),
            "{j}"
        );
    }
}

fn layer_names(j: &Value) -> Vec<&str> {
    j["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["layer"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_up_then_refused() {
    let server = AcceptClose::bind("127.0.0.1:0").await.unwrap();
    let url = format!("tcp://{}", server.addr);
    let (code, j) = check_json(&[&url]).await;
    assert_contract(&j);
    assert_eq!((code, j["status"].as_str()), (0, Some("up")), "{j}");
    assert_eq!(layer_names(&j), ["tcp"], "an address literal needs no DNS");

    let addr = server.close().await;
    let (code, j) = check_json(&[&url]).await;
    assert_contract(&j);
    assert_eq!(code, 2);
    assert_eq!(j["cause"], "tcp.refused");
    assert_eq!(j["addr"], addr.to_string());
    assert!(
        j["hint"]
            .as_str()
            .unwrap()
            .contains(&format!("nothing is listening on {addr}")),
        "{j}"
    );
    assert_eq!(j["layers"][0]["ok"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_statuses_map_to_causes_and_exit_codes() {
    let server = TestHttp::start(200, "<html><body>hello</body></html>").await;
    let url = server.url("/health");
    let table: &[(u16, i32, Option<&str>)] = &[
        (200, 0, None),
        (301, 0, None),
        (404, 2, Some("http.status")),
        (403, 2, Some("http.blocked")),
        (429, 2, Some("http.blocked")),
        (500, 2, Some("http.status")),
        (502, 2, Some("http.bad_gateway")),
        (503, 2, Some("http.unavailable")),
        (504, 2, Some("http.gateway_timeout")),
    ];
    for &(status, want_code, want_cause) in table {
        server.set(status, "<html><body>page</body></html>");
        let (code, j) = check_json(&[&url]).await;
        assert_contract(&j);
        assert_eq!(code, want_code, "status {status}: {j}");
        assert_eq!(j["cause"].as_str(), want_cause, "status {status}");
        assert_eq!(j["http_status"], status);
        assert_eq!(layer_names(&j), ["tcp", "http"]);
    }
    // An expected status is fine, whatever it is.
    server.set(503, "maintenance");
    let (code, j) = check_json(&[&url, "--expect-status", "503"]).await;
    assert_eq!((code, j["status"].as_str()), (0, Some("up")), "{j}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_and_slow_expectations() {
    let server = TestHttp::start(200, "<html><body>all systems go</body></html>").await;
    let url = server.url("/");
    let (code, _) = check_json(&[&url, "--expect-body", "systems go"]).await;
    assert_eq!(code, 0);
    let (code, j) = check_json(&[&url, "--expect-body", "welcome"]).await;
    assert_eq!(
        (code, j["cause"].as_str()),
        (2, Some("http.content")),
        "{j}"
    );
    // 1 µs is slower than any real exchange: degraded, exit 1.
    let (code, j) = check_json(&[&url, "--slow", "1us"]).await;
    assert_contract(&j);
    assert_eq!(
        (code, j["status"].as_str(), j["cause"].as_str()),
        (1, Some("degraded"), Some("http.slow")),
        "{j}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protocol_failures() {
    let (addr, _t) = raw_server(b"SSH-2.0-OpenSSH_9.2p1\r\n").await;
    let (code, j) = check_json(&[&format!("http://{addr}/")]).await;
    assert_contract(&j);
    assert_eq!(
        (code, j["cause"].as_str()),
        (2, Some("http.protocol")),
        "{j}"
    );
    let (addr, _t) = raw_server(b"").await;
    let (code, j) = check_json(&[&format!("http://{addr}/")]).await;
    assert_eq!((code, j["cause"].as_str()), (2, Some("http.empty")), "{j}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_answers_map_to_causes() {
    let dns = TestDns::start().await;
    let server = AcceptClose::bind("127.0.0.1:0").await.unwrap();
    let port = server.addr.port();
    dns.set("up.test", Answer::Addrs(vec!["127.0.0.1".parse().unwrap()]));
    dns.set("gone.test", Answer::NxDomain);
    dns.set("empty.test", Answer::NoData);
    dns.set("broken.test", Answer::ServFail);
    dns.set("refused.test", Answer::Refused);
    dns.set("silent.test", Answer::Silent);
    let resolver = dns.addr.to_string();
    let table: &[(&str, i32, Option<&str>)] = &[
        ("up.test", 0, None),
        ("gone.test", 2, Some("dns.nxdomain")),
        ("empty.test", 2, Some("dns.no_address")),
        ("broken.test", 2, Some("dns.servfail")),
        ("refused.test", 2, Some("dns.error")),
        ("silent.test", 2, Some("dns.timeout")),
    ];
    for &(name, want_code, want_cause) in table {
        let url = format!("tcp://{name}:{port}");
        let (code, j) = check_json(&[&url, "--resolver", &resolver, "--timeout", "1s"]).await;
        assert_contract(&j);
        assert_eq!(
            (code, j["cause"].as_str()),
            (want_code, want_cause),
            "{name}: {j}"
        );
        assert_eq!(j["layers"][0]["layer"], "dns");
    }
    // expect_ips: the answer names what was found.
    let (code, j) = check_json(&[
        &format!("tcp://up.test:{port}"),
        "--resolver",
        &resolver,
        "--expect-ip",
        "203.0.113.7",
    ])
    .await;
    assert_eq!(
        (code, j["cause"].as_str()),
        (2, Some("dns.unexpected_address")),
        "{j}"
    );
    assert!(j["detail"].as_str().unwrap().contains("127.0.0.1"), "{j}");
    // A changed record is seen by the very next probe.
    dns.set("up.test", Answer::NxDomain);
    let (code, j) = check_json(&[&format!("tcp://up.test:{port}"), "--resolver", &resolver]).await;
    assert_eq!(
        (code, j["cause"].as_str()),
        (2, Some("dns.nxdomain")),
        "{j}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_handshake_failures_and_success() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let ca_file = ca.write_root(dir.path());
    let ca_file = ca_file.to_str().unwrap();

    let good = TlsServer::start(
        &ca.leaf(CertKind::Valid, &["localhost", "127.0.0.1"]),
        After::Http {
            status: 200,
            body: "ok".into(),
        },
    )
    .await;
    let (code, j) = check_json(&[
        &format!("https://127.0.0.1:{}/", good.addr.port()),
        "--ca-file",
        ca_file,
    ])
    .await;
    assert_contract(&j);
    assert_eq!(code, 0, "{j}");
    assert_eq!(layer_names(&j), ["tcp", "tls", "http"]);
    assert!(
        j["layers"][1]["detail"]
            .as_str()
            .unwrap()
            .starts_with("TLS 1."),
        "{j}"
    );

    let expired = TlsServer::start(&ca.leaf(CertKind::Expired, &["127.0.0.1"]), After::Close).await;
    let (code, j) = check_json(&[
        &format!("https://127.0.0.1:{}/", expired.addr.port()),
        "--ca-file",
        ca_file,
    ])
    .await;
    assert_eq!((code, j["cause"].as_str()), (2, Some("tls.expired")), "{j}");

    let (garbage, _g) = garbage_server().await;
    let (code, j) = check_json(&[&format!("https://127.0.0.1:{}/", garbage.port())]).await;
    assert_contract(&j);
    assert_eq!(
        (code, j["cause"].as_str()),
        (2, Some("tls.handshake")),
        "{j}"
    );
    assert_eq!(layer_names(&j), ["tcp", "tls"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nagios_and_text_formats() {
    let server = TestHttp::start(502, "bad gateway").await;
    let (code, out, _) = check_raw(&[&server.url("/"), "--format", "nagios"]).await;
    assert_eq!(code, 2);
    let line = out.trim_end();
    assert_eq!(line.lines().count(), 1, "{out}");
    assert!(
        line.starts_with(&format!(
            "SITEWATCH CRITICAL - {}: bad gateway (502) (http.bad_gateway)",
            server.url("/")
        )),
        "{line}"
    );
    let perf = line.split_once(" | ").unwrap().1;
    assert!(
        perf.starts_with("time=") && perf.contains(" connect=") && perf.contains(" ttfb="),
        "{perf}"
    );

    let (code, out, _) = check_raw(&[&server.url("/")]).await;
    assert_eq!(code, 2);
    assert!(out.starts_with("DOWN  "), "{out}");
    assert!(
        !out.contains('\x1b'),
        "no colour when stdout is not a terminal: {out:?}"
    );
    assert!(out.contains("hint:"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_3() {
    for args in [
        &["ftp://example.com"][..],
        &["http://x.test", "--expect-banner", "220"],
        &[],
        &["http://x.test", "--timeout", "soon"],
        &["http://x.test", "--timeout", "99999999999999s"],
        &["http://x.test", "--timeout", "11m"],
        &["http://x.test", "--expect-body", &"x".repeat(5000)],
    ] {
        let (code, out, err) = check_raw(args).await;
        assert_eq!(code, 3, "{args:?}: {out} {err}");
        assert!(!err.is_empty(), "{args:?}: a usage error says why");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    let (_, _, err) = check_raw(&["http://x.test", "--timeout", "99999999999999s"]).await;
    assert!(
        err.contains("invalid value '99999999999999s' for '--timeout <DUR>'")
            && err.contains("the timeout must be between 1ms and 10m"),
        "{err}"
    );
}
