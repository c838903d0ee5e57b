//! The HTTP layer of the probe against real servers on loopback: bodies
//! searched while they stream, everything a target can make large capped
//! where it is recorded, and configured headers kept on the site's origin
//! when it redirects.

mod common;

use common::http::{Recorder, response};
use common::tls::{CertKind, TestCa};
use sitewatch::config::SiteSpec;
use sitewatch::diagnosis::{Cause, Layer, Status};
use sitewatch::probe::text::{MAX_DETAIL, MAX_LAYER_DETAIL};
use sitewatch::probe::{ProbeDeps, ProbeReport};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// The one site of a sites.toml holding `keys`.
fn site(keys: &str) -> SiteSpec {
    let text = format!("[[site]]\nname = \"t\"\n{keys}\n");
    let config = sitewatch::config::parse(std::path::Path::new("t.toml"), &text).unwrap();
    config.sites[0].as_ref().clone()
}

async fn probe(site: &SiteSpec) -> ProbeReport {
    let deps = ProbeDeps::new([site]).unwrap();
    sitewatch::probe::run(site, &deps).await.unwrap()
}

/// Every text of the report is within its cap.
fn assert_capped(r: &ProbeReport) {
    assert!(
        r.detail.len() <= MAX_DETAIL,
        "detail of {} bytes",
        r.detail.len()
    );
    let hint = r.hint.as_deref().unwrap_or_default();
    assert!(hint.len() <= MAX_DETAIL, "hint of {} bytes", hint.len());
    for layer in &r.layers {
        assert!(
            layer.detail.len() <= MAX_LAYER_DETAIL,
            "{:?} layer detail of {} bytes",
            layer.layer,
            layer.detail.len()
        );
    }
}

fn html(body: &str) -> String {
    response(200, &[("Content-Type", "text/html; charset=utf-8")], body)
}

/// Runs the probe on a thread of its own, with a runtime like the daemon's,
/// so a probe that hogs the CPU fails the test instead of stalling the
/// server it talks to. Returns the report and the probe's own duration.
async fn probe_on_a_thread(site: SiteSpec) -> (ProbeReport, Duration) {
    let deps = ProbeDeps::new([&site]).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let started = Instant::now();
        let report = runtime
            .block_on(sitewatch::probe::run(&site, &deps))
            .unwrap();
        let _ = tx.send((report, started.elapsed()));
    });
    tokio::time::timeout(Duration::from_secs(20), rx)
        .await
        .expect("the probe did not finish within 20 s")
        .unwrap()
}

#[tokio::test]
async fn a_large_expected_text_against_a_1_mib_body_is_searched_fast() {
    const MIB: usize = 1024 * 1024;
    // A needle that matches the body for 512 KiB before it fails: the
    // worst case of a window-by-window comparison.
    let needle = format!("{}!", "n".repeat(512 * 1024));
    let server = Recorder::start(|r| {
        if r.path == "/present" {
            html(&format!("{}!", "n".repeat(MIB - 1)))
        } else {
            html(&"n".repeat(MIB + 4096))
        }
    })
    .await;
    for (path, want) in [("/absent", Some(Cause::HttpContent)), ("/present", None)] {
        let mut s = site(&format!(
            "url = \"http://{}{path}\"\nmax_redirects = 0",
            server.addr
        ));
        s.expect.body = Some(needle.clone());
        let (r, took) = probe_on_a_thread(s).await;
        assert_eq!(r.cause, want, "{path}: {}", r.detail);
        assert!(took < Duration::from_secs(2), "{path}: took {took:?}");
        assert_capped(&r);
        if want.is_some() {
            assert!(
                r.detail
                    .contains("but the body (first 1024 KiB) lacks \"nnnn"),
                "{}",
                r.detail
            );
            assert!(r.detail.contains("(524289 bytes)\""), "{}", r.detail);
        }
    }
}

/// A server redirecting `/` to a path of `len` bytes, which it answers 200.
async fn long_redirect(len: usize) -> (Recorder, String) {
    let long = format!("/{}", "a".repeat(len - 1));
    let location = long.clone();
    let server = Recorder::start(move |r| {
        if r.path == "/" {
            response(302, &[("Location", &location)], "")
        } else {
            html("<html><body>arrived</body></html>")
        }
    })
    .await;
    (server, long)
}

fn redirect_layer(r: &ProbeReport) -> &str {
    &r.layers
        .iter()
        .find(|l| l.layer == Layer::Http && l.detail.contains("redirect to /aaa"))
        .unwrap()
        .detail
}

#[tokio::test]
async fn a_redirect_to_a_long_location_is_followed_and_recorded_capped() {
    let (server, long) = long_redirect(60_000).await;
    let r = probe(&site(&format!("url = \"http://{}/\"", server.addr))).await;
    assert_capped(&r);
    // Followed whole: the server saw the full path.
    let received = server.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[1].path, long);
    // Still says what happened.
    assert_eq!((r.status, r.cause), (Status::Up, None), "{}", r.detail);
    assert!(r.detail.contains("after 1 redirect ("), "{}", r.detail);
    assert!(r.detail.contains(" bytes))"), "{}", r.detail);
    assert!(redirect_layer(&r).ends_with("(60000 bytes)"));
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.len() < 8 * 1024, "{} bytes of JSON", json.len());
}

#[tokio::test]
async fn a_redirect_to_a_380_kb_location_is_reported_capped() {
    // hyper takes a head this large; no request can carry such a path
    // (the most is 64 KiB), which is http.protocol as before.
    let (server, _) = long_redirect(380_000).await;
    let r = probe(&site(&format!("url = \"http://{}/\"", server.addr))).await;
    assert_capped(&r);
    assert_eq!(server.received().len(), 1);
    assert_eq!(r.cause, Some(Cause::HttpProtocol), "{}", r.detail);
    assert!(r.detail.contains("bytes) from 127.0.0.1:"), "{}", r.detail);
    assert!(
        r.detail
            .ends_with("cannot build the request for a path of 380000 bytes: uri too long"),
        "{}",
        r.detail
    );
    assert!(redirect_layer(&r).ends_with("(380000 bytes)"));
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.len() < 8 * 1024, "{} bytes of JSON", json.len());
}

#[tokio::test]
async fn a_chain_of_long_redirects_gives_up_with_bounded_text() {
    let pad = "b".repeat(60_000);
    let server = Recorder::start(move |r| {
        let next = match r.path.strip_prefix("/hop/") {
            Some(rest) => rest.split('/').next().unwrap().parse::<u32>().unwrap() + 1,
            None => 1,
        };
        response(302, &[("Location", &format!("/hop/{next}/{pad}"))], "")
    })
    .await;
    let r = probe(&site(&format!("url = \"http://{}/start\"", server.addr))).await;
    assert_capped(&r);
    assert_eq!(r.cause, Some(Cause::HttpRedirects), "{}", r.detail);
    assert_eq!(server.received().len(), 6);
    let start = format!("more than 5 redirects: http://{}/start → ", server.addr);
    assert!(r.detail.starts_with(&start), "{}", r.detail);
    assert!(r.detail.contains(" more … → "), "{}", r.detail);
    assert!(r.detail.contains("/hop/6/bbb"), "{}", r.detail);
    assert_eq!(r.layers.len(), 12);
}

#[tokio::test]
async fn check_json_of_a_380_kb_redirect_prints_bounded_lines() {
    let (server, _) = long_redirect(380_000).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sitewatch"))
        .args(["check", &format!("http://{}/", server.addr), "--json"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.len() < 12 * 1024, "{} bytes printed", stdout.len());
    for line in stdout.lines() {
        assert!(
            line.len() <= MAX_DETAIL + 64,
            "a line of {} bytes",
            line.len()
        );
    }
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["cause"], "http.protocol", "{json}");
    let detail = json["detail"].as_str().unwrap();
    assert!(detail.contains("path of 380000 bytes"), "{detail}");
    let layers = json["layers"].as_array().unwrap();
    assert!(
        layers[1]["detail"]
            .as_str()
            .unwrap()
            .contains("redirect to /aaa")
    );
}

const SECRETS: &str = "headers = { Authorization = \"Bearer s3cr3t\", Cookie = \"session=abc\", User-Agent = \"probe-agent/1\" }";

#[tokio::test]
async fn configured_headers_stay_on_the_site_origin() {
    let b_port = Arc::new(AtomicU16::new(0));
    let a_port = Arc::new(AtomicU16::new(0));
    let to_b = Arc::clone(&b_port);
    let a = Recorder::start(move |r| {
        let b = format!("http://127.0.0.1:{}", to_b.load(Ordering::SeqCst));
        match r.path.as_str() {
            "/away" => response(302, &[("Location", &format!("{b}/landing"))], ""),
            "/bounce" => response(302, &[("Location", &format!("{b}/back"))], ""),
            "/home" => response(302, &[("Location", "/there")], ""),
            _ => html("<html><body>a</body></html>"),
        }
    })
    .await;
    a_port.store(a.port(), Ordering::SeqCst);
    let to_a = Arc::clone(&a_port);
    let b = Recorder::start(move |r| {
        let a = format!("http://127.0.0.1:{}", to_a.load(Ordering::SeqCst));
        match r.path.as_str() {
            "/back" => response(302, &[("Location", &format!("{a}/again"))], ""),
            _ => html("<html><body>b</body></html>"),
        }
    })
    .await;
    b_port.store(b.port(), Ordering::SeqCst);
    let ua = format!("sitewatch/{}", env!("CARGO_PKG_VERSION"));

    // To another port: not sent there.
    let r = probe(&site(&format!(
        "url = \"http://{}/away\"\n{SECRETS}",
        a.addr
    )))
    .await;
    assert_eq!(r.status, Status::Up, "{}", r.detail);
    let at_a = &a.received()[0];
    assert_eq!(at_a.header("authorization"), ["Bearer s3cr3t"]);
    assert_eq!(at_a.header("cookie"), ["session=abc"]);
    assert_eq!(at_a.header("user-agent"), ["probe-agent/1"]);
    let at_b = &b.received()[0];
    assert_eq!(at_b.path, "/landing");
    assert!(at_b.header("authorization").is_empty(), "{}", at_b.head);
    assert!(at_b.header("cookie").is_empty(), "{}", at_b.head);
    assert_eq!(at_b.header("user-agent"), [ua.as_str()]);
    assert!(
        r.layers
            .iter()
            .any(|l| l.detail.contains("without the configured headers")),
        "{:?}",
        r.layers
    );

    // On the same origin, another path: sent on every hop.
    let r = probe(&site(&format!(
        "url = \"http://{}/home\"\n{SECRETS}",
        a.addr
    )))
    .await;
    assert_eq!(r.status, Status::Up, "{}", r.detail);
    let heads = a.received();
    let there = heads.iter().find(|q| q.path == "/there").unwrap();
    assert_eq!(there.header("authorization"), ["Bearer s3cr3t"]);
    assert_eq!(there.header("cookie"), ["session=abc"]);
    assert_eq!(there.header("user-agent"), ["probe-agent/1"]);

    // Away and back again: once the chain has left, they stay off.
    let r = probe(&site(&format!(
        "url = \"http://{}/bounce\"\n{SECRETS}",
        a.addr
    )))
    .await;
    assert_eq!(r.status, Status::Up, "{}", r.detail);
    let heads = a.received();
    let again = heads.iter().find(|q| q.path == "/again").unwrap();
    assert!(again.header("authorization").is_empty(), "{}", again.head);
    assert!(again.header("cookie").is_empty(), "{}", again.head);
}

#[tokio::test]
async fn https_to_http_on_the_same_host_and_port_drops_the_headers() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_root(dir.path());
    let cert = ca.leaf(CertKind::Valid, &["127.0.0.1"]);
    let port = Arc::new(AtomicU16::new(0));
    let own = Arc::clone(&port);
    let server = Recorder::start_tls(Arc::new(cert.server_config()), move |r| {
        if r.tls {
            let to = format!("http://127.0.0.1:{}/plain", own.load(Ordering::SeqCst));
            response(302, &[("Location", &to)], "")
        } else {
            html("<html><body>plain</body></html>")
        }
    })
    .await;
    port.store(server.port(), Ordering::SeqCst);
    let r = probe(&site(&format!(
        "url = \"https://127.0.0.1:{}/secure\"\nca_file = \"{}\"\n{SECRETS}",
        server.port(),
        ca_file.display()
    )))
    .await;
    // It works, but visitors lose TLS on the way: degraded, and said.
    assert_eq!(r.status, Status::Degraded, "{}", r.detail);
    assert_eq!(r.cause, Some(Cause::HttpInsecureRedirect), "{}", r.detail);
    assert!(r.detail.contains("but it leaves https"), "{}", r.detail);
    let heads = server.received();
    assert_eq!(heads.len(), 2, "{heads:?}");
    assert!(heads[0].tls && heads[0].path == "/secure");
    assert_eq!(heads[0].header("authorization"), ["Bearer s3cr3t"]);
    assert!(!heads[1].tls && heads[1].path == "/plain");
    assert!(
        heads[1].header("authorization").is_empty(),
        "{}",
        heads[1].head
    );
    assert!(heads[1].header("cookie").is_empty(), "{}", heads[1].head);
}
