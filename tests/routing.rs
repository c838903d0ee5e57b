//! Routing by what happened, and failures made visible: a channel that
//! takes only `down` and `recovered` (a pager) beside one that takes every
//! event (a chat), and a receiver that refuses every alert for good. The
//! site is a real HTTP server scripted to be slow (degraded), then broken
//! (down), then well (recovered). The refused deliveries are listed by
//! `GET /api/v1/outbox` with their error, and counted on `/metrics`.

mod common;

use common::daemon::{get_json, start_in_process, wait_status};
use common::receiver::{Receiver, Reply};
use std::time::Duration;

fn events(r: &Receiver) -> Vec<String> {
    r.requests()
        .iter()
        .map(|q| q.json()["event"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn a_pager_hears_down_and_recovered_a_chat_everything_and_refusals_are_listed() {
    let site = Receiver::start(vec![
        Reply::ok()
            .body("<html><body>slow</body></html>")
            .header("content-type", "text/html")
            .delay(Duration::from_millis(300)),
    ])
    .await;
    let pager = Receiver::start_ok().await;
    let chat = Receiver::start_ok().await;
    let dead = Receiver::start(vec![Reply::new(400).body("bad payload")]).await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"[daemon]
state_dir = "{state}"

[[site]]
name = "web"
url = "{url}"
interval = "1s"
timeout = "900ms"
slow = "150ms"

[alert.pager]
type = "webhook"
url = "{pager}"
events = ["down", "recovered"]

[alert.chat]
type = "webhook"
url = "{chat}"

[alert.dead]
type = "webhook"
url = "{dead}"
events = ["degraded"]
"#,
        state = dir.path().join("state").display(),
        url = site.url("/health"),
        pager = pager.url("/pager"),
        chat = chat.url("/chat"),
        dead = dead.url("/dead"),
    );
    let (running, api) = start_in_process(dir.path(), &text).await;
    let limit = Duration::from_secs(20);

    // Slow: degraded. The chat hears it, the pager does not.
    wait_status(&api, "web", "degraded", Some("http.slow"), limit).await;
    chat.wait_for(1, limit).await;
    // Broken: down, for both.
    site.set_script(vec![Reply::new(500)]);
    wait_status(&api, "web", "down", Some("http.status"), limit).await;
    pager.wait_for(1, limit).await;
    // Well: recovered, for both.
    site.set_script(vec![
        Reply::ok()
            .body("<html><body>fine</body></html>")
            .header("content-type", "text/html"),
    ]);
    wait_status(&api, "web", "up", None, limit).await;
    pager.wait_for(2, limit).await;
    chat.wait_for(3, limit).await;
    assert_eq!(events(&pager), ["down", "recovered"]);
    assert_eq!(events(&chat), ["degraded", "down", "recovered"]);

    // The refused delivery is a dead letter, listed with its error.
    let (code, j) = get_json(&format!("{api}/api/v1/outbox?state=failed")).await;
    assert_eq!(code, 200, "{j}");
    let list = j["deliveries"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{j}");
    let d = &list[0];
    assert_eq!(
        (
            d["channel"].as_str(),
            d["site"].as_str(),
            d["event"].as_str()
        ),
        (Some("dead"), Some("web"), Some("degraded")),
        "{d}"
    );
    assert_eq!(d["attempts"], 1, "a permanent refusal is not retried: {d}");
    assert!(d["last_error"].as_str().unwrap().contains("400"), "{d}");
    assert!(d["done_at"].is_string(), "{d}");
    assert_eq!(dead.requests().len(), 1);
    let (_, pending) = get_json(&format!("{api}/api/v1/outbox?state=pending")).await;
    assert_eq!(
        pending["deliveries"].as_array().unwrap().len(),
        0,
        "{pending}"
    );
    let bad = reqwest::get(format!("{api}/api/v1/outbox?state=lost"))
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);

    // And counted.
    let metrics = reqwest::get(format!("{api}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "sitewatch_notifications_total{channel=\"pager\",event=\"down\"} 1",
        "sitewatch_notifications_total{channel=\"pager\",event=\"recovered\"} 1",
        "sitewatch_notifications_total{channel=\"chat\",event=\"degraded\"} 1",
        "sitewatch_notification_failures_total{channel=\"dead\",reason=\"permanent\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} missing from:\n{}",
            metrics
                .lines()
                .filter(|l| l.starts_with("sitewatch_notif"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    running.stop();
    running.wait().await.unwrap();
}
