//! The daemon end to end, in-process: sites.toml → scheduler → probe →
//! state machine → /status, against real listeners on loopback.

mod common;

use common::daemon::{get_json, wait_status, write_config};
use common::http::{AcceptClose, TestHttp};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

async fn start(config_text: &str) -> (sitewatch::app::Running, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[daemon]\nstate_dir = \"{}\"\n\n{config_text}",
        dir.path().join("state").display()
    );
    let path = write_config(dir.path(), &text);
    let config = sitewatch::config::load(&path).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = sitewatch::app::start(&config, listener).unwrap();
    let api = format!("http://{}", running.addr);
    (running, api, dir)
}

#[tokio::test]
async fn tcp_site_goes_down_when_its_listener_closes_and_comes_back() {
    let server = AcceptClose::bind("127.0.0.1:0").await.unwrap();
    let addr = server.addr;
    let (daemon, api, _dir) = start(&format!(
        "[defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\n\n[[site]]\nname = \"db\"\nurl = \"tcp://{addr}\"\n"
    ))
    .await;
    // Offset < 1 s, then one probe: up.
    let j = wait_status(&api, "db", "up", None, Duration::from_secs(5)).await;
    assert_eq!(j["layers"][0]["layer"], "tcp");

    let closed_at = Instant::now();
    server.close().await;
    // Two failed probes (confirm_down = 2) at 1 s apart: down within ~2 intervals.
    let j = wait_status(
        &api,
        "db",
        "down",
        Some("tcp.refused"),
        Duration::from_secs(5),
    )
    .await;
    let took = closed_at.elapsed();
    assert!(
        took <= Duration::from_millis(3500),
        "confirmed after {took:?}"
    );
    assert_eq!(j["last_change"]["kind"], "down");
    assert!(
        j["hint"]
            .as_str()
            .unwrap()
            .contains(&format!("nothing is listening on {addr}")),
        "{j}"
    );

    let _server = AcceptClose::bind(&addr.to_string()).await.unwrap();
    let j = wait_status(&api, "db", "up", None, Duration::from_secs(5)).await;
    assert_eq!(j["last_change"]["kind"], "recovered");
    let outage = j["last_change"]["outage_s"].as_f64().unwrap();
    assert!((0.5..6.0).contains(&outage), "outage {outage}");

    daemon.stop();
    daemon.wait().await.unwrap();
}

#[tokio::test]
async fn http_502_is_bad_gateway_and_the_api_shows_it() {
    let web = TestHttp::start(200, "<html><body>shop</body></html>").await;
    let (daemon, api, _dir) = start(&format!(
        r#"[defaults]
interval = "1s"
timeout = "1s"

[[site]]
name = "shop"
url = "{}"

[[site]]
name = "closed"
url = "tcp://127.0.0.1:9"
"#,
        web.url("/cart")
    ))
    .await;
    wait_status(&api, "shop", "up", None, Duration::from_secs(5)).await;
    web.set(502, "<html><body>502 Bad Gateway</body></html>");
    let j = wait_status(
        &api,
        "shop",
        "down",
        Some("http.bad_gateway"),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(j["cause_text"], "bad gateway (502)");
    assert_eq!(j["probe_status"], "down");
    assert!(j["hint"].as_str().unwrap().contains("PHP-FPM"), "{j}");
    let layers: Vec<&str> = j["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["layer"].as_str().unwrap())
        .collect();
    assert_eq!(layers, ["tcp", "http"]);
    for key in [
        "name",
        "url",
        "status",
        "cause",
        "since",
        "last_probe",
        "duration_ms",
        "detail",
        "hint",
        "layers",
    ] {
        assert!(j.get(key).is_some(), "missing {key}");
    }

    // /status lists every site in file order.
    wait_status(
        &api,
        "closed",
        "down",
        Some("tcp.refused"),
        Duration::from_secs(5),
    )
    .await;
    let (code, all) = get_json(&format!("{api}/status")).await;
    assert_eq!(code, 200);
    let names: Vec<&str> = all["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["shop", "closed"]);

    let (code, h) = get_json(&format!("{api}/healthz")).await;
    assert_eq!(code, 200);
    assert_eq!(
        (
            h["status"].as_str(),
            h["sites"].as_u64(),
            h["down"].as_u64()
        ),
        (Some("ok"), Some(2), Some(2)),
        "{h}"
    );
    assert!(h["scheduler"]["probes"].as_u64().unwrap() >= 4, "{h}");

    let (code, e) = get_json(&format!("{api}/status/nope")).await;
    assert_eq!(code, 404);
    assert_eq!(e["error"], "no site named \"nope\"");
    let (code, _) = get_json(&format!("{api}/nothing-here")).await;
    assert_eq!(code, 404);

    daemon.stop();
    daemon.wait().await.unwrap();
}

#[tokio::test]
async fn a_hanging_site_never_delays_another() {
    // A listener that accepts nothing: connects complete (backlog) but HTTP never answers.
    let hang = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let web = TestHttp::start(200, "ok").await;
    let (daemon, api, _dir) = start(&format!(
        r#"[defaults]
interval = "2s"
timeout = "2s"
confirm_down = 1

[[site]]
name = "hang"
url = "http://{}/"

[[site]]
name = "web"
url = "{}"
interval = "1s"
timeout = "500ms"
"#,
        hang.local_addr().unwrap(),
        web.url("/")
    ))
    .await;
    let j = wait_status(
        &api,
        "hang",
        "down",
        Some("http.timeout"),
        Duration::from_secs(8),
    )
    .await;
    assert!(j["duration_ms"].as_f64().unwrap() >= 1900.0, "{j}");
    // Meanwhile "web" kept its 1 s schedule.
    let (_, h) = get_json(&format!("{api}/healthz")).await;
    assert!(
        h["scheduler"]["lag_ms"]["p99"].as_f64().unwrap() < 250.0,
        "{h}"
    );
    let j = wait_status(&api, "web", "up", None, Duration::from_secs(3)).await;
    let last = humantime::parse_rfc3339(j["last_probe"].as_str().unwrap()).unwrap();
    let age = std::time::SystemTime::now()
        .duration_since(last)
        .unwrap_or_default();
    assert!(
        age < Duration::from_millis(1500),
        "web's last probe is {age:?} old"
    );
    daemon.stop();
    daemon.wait().await.unwrap();
    drop(hang);
}

#[tokio::test]
async fn api_token_file_guards_the_api_but_not_the_page() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("api-token"), "s3cr3t-token\n").unwrap();
    let text = format!(
        "[daemon]\nstate_dir = \"{}\"\napi_token_file = \"{}\"\n\n[[site]]\nname = \"x\"\nurl = \"tcp://127.0.0.1:9\"\n",
        dir.path().join("state").display(),
        dir.path().join("api-token").display()
    );
    let path = write_config(dir.path(), &text);
    let config = sitewatch::config::load(&path).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = sitewatch::app::start(&config, listener).unwrap();
    let api2 = format!("http://{}", running.addr);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let status = |path: &str, token: Option<&str>| {
        let mut req = client.get(format!("{api2}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status("/status", None).await, 401);
    assert_eq!(status("/status", Some("wrong")).await, 401);
    assert_eq!(status("/status", Some("s3cr3t-token")).await, 200);
    assert_eq!(status("/metrics", None).await, 401);
    assert_eq!(status("/", None).await, 200, "the page stays open");
    running.stop();
    running.wait().await.unwrap();
}

#[tokio::test]
async fn a_probe_that_waited_for_a_slot_gets_its_whole_timeout() {
    // One probe at a time, and two sites that hang for their whole 2 s
    // timeout every 3 s: the slot is always taken, so "slow" starts late.
    // It answers after 1.5 s; with its whole 2 s it is up. (It used to get
    // only what was left before its next slot, and timed out.)
    let hang = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow = common::receiver::Receiver::start(vec![
        common::receiver::Reply::ok().delay(Duration::from_millis(1500)),
    ])
    .await;
    let (daemon, api, _dir) = start(&format!(
        r#"max_concurrent_probes = 1

[defaults]
interval = "3s"
timeout = "2s"
confirm_down = 1
confirm_up = 1

[[site]]
name = "hang-a"
url = "http://{hang}/a"

[[site]]
name = "hang-b"
url = "http://{hang}/b"

[[site]]
name = "slow"
url = "{}"
"#,
        slow.url("/slow"),
        hang = hang.local_addr().unwrap(),
    ))
    .await;
    let j = wait_status(&api, "slow", "up", None, Duration::from_secs(20)).await;
    assert!(j["duration_ms"].as_f64().unwrap() >= 1400.0, "{j}");
    let (_, h) = get_json(&format!("{api}/healthz")).await;
    assert!(
        h["scheduler"]["lag_ms"]["max"].as_f64().unwrap() >= 1000.0,
        "the slot was never contended: the test proves nothing: {h}"
    );
    daemon.stop();
    daemon.wait().await.unwrap();
    drop(hang);
}
