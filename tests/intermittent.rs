//! Scattered failures end to end: a real HTTP server that fails one
//! request in four, never twice in a row, watched by the daemon with the
//! default `confirm_down` (2). No down alert is ever sent; the site turns
//! degraded with `site.intermittent` (one webhook alert, naming the causes
//! and counts), `/status` shows the failure rate; when the failures stop,
//! a whole window of working probes brings it back up.

mod common;

use common::daemon::{get_json, start_in_process, wait_status};
use common::http::Recorder;
use common::receiver::Receiver;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

const OK: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 27\r\nconnection: close\r\n\r\n<html><body>ok</body></html>";
const BAD: &str = "HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

#[tokio::test]
async fn one_failure_in_four_is_degraded_not_down() {
    let requests = Arc::new(AtomicUsize::new(0));
    let failing = Arc::new(AtomicBool::new(true));
    let web = {
        let (requests, failing) = (Arc::clone(&requests), Arc::clone(&failing));
        Recorder::start(move |_| {
            let n = requests.fetch_add(1, Ordering::SeqCst);
            if failing.load(Ordering::SeqCst) && n % 4 == 3 {
                BAD.to_string()
            } else {
                OK.to_string()
            }
        })
        .await
    };
    let hook = Receiver::start_ok().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"[daemon]
state_dir = "{state}"

[defaults]
interval = "1s"
timeout = "800ms"

[[site]]
name = "flaky"
url = "http://{addr}/"
intermittent_window = 12

[alert.hook]
type = "webhook"
url = "{hook}"
"#,
        state = dir.path().join("state").display(),
        addr = web.addr,
        hook = hook.url("/hook"),
    );
    let (running, api) = start_in_process(dir.path(), &text).await;

    // Failures at probes 4, 8 and 12: the third makes it degraded.
    let s = wait_status(
        &api,
        "flaky",
        "degraded",
        Some("site.intermittent"),
        Duration::from_secs(30),
    )
    .await;
    let recent = &s["recent"];
    assert!(recent["failed"].as_u64().unwrap() >= 3, "{s}");
    assert!(recent["failure_rate"].as_f64().unwrap() > 0.2, "{s}");
    assert_eq!(recent["causes"][0]["cause"], "http.bad_gateway", "{s}");
    assert_eq!(s["flapping"], false, "{s}");

    let alerts = hook.wait_for(1, Duration::from_secs(10)).await;
    let a = alerts[0].json();
    assert_eq!(
        (a["event"].as_str(), a["cause"].as_str()),
        (Some("degraded"), Some("site.intermittent")),
        "{a}"
    );
    let detail = a["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(
            "3 of the last 12 probes failed: http.bad_gateway ×3; no outage was confirmed"
        ),
        "{detail}"
    );
    assert!(
        a["hint"].as_str().unwrap().contains("fails now and then"),
        "{a}"
    );

    // It keeps failing now and then: still degraded, nothing more is sent.
    let seen = requests.load(Ordering::SeqCst);
    common::daemon::wait_for("eight more probes", Duration::from_secs(20), || {
        let n = requests.load(Ordering::SeqCst);
        async move { (n >= seen + 8).then_some(()) }
    })
    .await;
    let (_, s) = get_json(&format!("{api}/status/flaky")).await;
    assert_eq!(s["cause"], "site.intermittent", "{s}");
    assert_eq!(hook.requests().len(), 1, "one alert only");

    // The failures stop: a whole window of working probes, then up.
    failing.store(false, Ordering::SeqCst);
    wait_status(&api, "flaky", "up", None, Duration::from_secs(30)).await;
    let alerts = hook.wait_for(2, Duration::from_secs(10)).await;
    let events: Vec<String> = alerts
        .iter()
        .map(|r| r.json()["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(events, ["degraded", "resolved"]);
    assert!(
        !events.iter().any(|e| e == "down"),
        "never a down alert: {events:?}"
    );
    running.stop();
    running.wait().await.unwrap();
}
