//! Maintenance windows end to end: the daemon runs as a child process, a
//! real TCP server goes away inside a one-off window whose times the test
//! writes into sites.toml, alerts reach a local webhook receiver, and the
//! daemon is killed and restarted inside the window. The window arithmetic
//! (recurring windows, time zones, daylight saving) is table-tested in the
//! library (`maintenance`, `heartbeat::cron`).

mod common;

use common::daemon::{get_json, kill9, spawn_daemon, wait_for, wait_status, write_config};
use common::http::AcceptClose;
use common::receiver::{Receiver, Recorded};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// A site on `target`, probed every second, covered by a window from
/// `start` to `end`.
fn config(
    state: &Path,
    hook: &str,
    target: SocketAddr,
    start: SystemTime,
    end: SystemTime,
) -> String {
    format!(
        r#"[daemon]
listen = "127.0.0.1:0"
state_dir = "{}"

[alert.hook]
type = "webhook"
url = "{hook}"

[[site]]
name = "web"
url = "tcp://{target}"
interval = "1s"
timeout = "500ms"
confirm_down = 2
tags = ["linux"]

[[maintenance]]
id = "patch"
title = "Patch night"
tags = ["linux"]
start = "{}"
end = "{}"
"#,
        state.display(),
        rfc3339(start),
        rfc3339(end)
    )
}

fn events(calls: &[Recorded], event: &str) -> Vec<Value> {
    calls
        .iter()
        .map(Recorded::json)
        .filter(|j| j["event"] == event)
        .collect()
}

async fn incidents(api: &str) -> usize {
    let (_, j) = get_json(&format!("{api}/incidents?site=web")).await;
    j["incidents"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_site_down_inside_a_window_pages_nobody_and_alerts_once_if_still_down_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start_ok().await;
    let server = AcceptClose::bind("127.0.0.1:0").await.unwrap();
    let target = server.addr;
    let start = SystemTime::now();
    let end = start + Duration::from_secs(12);
    let path = write_config(
        dir.path(),
        &config(
            &dir.path().join("state"),
            &hook.url("/hook"),
            target,
            start,
            end,
        ),
    );
    let (child, api, _logs) = spawn_daemon(&path).await;
    let up = wait_status(&api, "web", "up", None, Duration::from_secs(5)).await;
    assert_eq!(up["maintenance"]["id"], "patch", "{up}");
    assert_eq!(up["maintenance"]["title"], "Patch night");

    // The work begins: the site goes down, is judged down, pages nobody.
    server.close().await;
    wait_status(
        &api,
        "web",
        "down",
        Some("tcp.refused"),
        Duration::from_secs(5),
    )
    .await;
    let page = reqwest::get(format!("{api}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Under maintenance: Patch night"),
        "the page says so"
    );
    let metrics = reqwest::get(format!("{api}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("sitewatch_maintenance_active{site=\"web\"} 1"),
        "{metrics}"
    );

    // A restart inside the window changes nothing.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    kill9(child).await;
    let (child, api, _logs) = spawn_daemon(&path).await;
    let (_, j) = get_json(&format!("{api}/status/web")).await;
    assert_eq!(j["status"], "down", "{j}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(hook.requests().is_empty(), "no alert inside the window");
    assert_eq!(incidents(&api).await, 0, "no incident inside the window");

    // The window ends with the site still down: confirmed again, one
    // alert that says so.
    let alert = wait_for(
        "the alert after the window",
        Duration::from_secs(20),
        || {
            let calls = hook.requests();
            async move { events(&calls, "down").first().cloned() }
        },
    )
    .await;
    assert!(SystemTime::now() >= end, "not before the window's end");
    assert_eq!(alert["cause"], "tcp.refused");
    assert!(
        alert["detail"]
            .as_str()
            .unwrap()
            .starts_with("still down after maintenance \"Patch night\""),
        "{alert}"
    );
    let (_, j) = get_json(&format!("{api}/status/web")).await;
    assert!(j.get("maintenance").is_none(), "{j}");
    // Maintenance time is reported apart from the uptime and the unknown.
    let share = j["uptime"]["maintenance"]["24h"].as_f64().unwrap_or(0.0);
    assert!(share > 0.0, "{j}");
    assert_eq!(j["uptime"]["unverified"]["24h"].as_f64(), Some(0.0), "{j}");
    assert_eq!(incidents(&api).await, 1);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(events(&hook.requests(), "down").len(), 1, "one alert");
    kill9(child).await;

    // Uptime leaves the window out: its probes are stored as maintenance.
    let conn = rusqlite::Connection::open(dir.path().join("state/sitewatch.db")).unwrap();
    let count = |status: i64| -> i64 {
        conn.query_row(
            "SELECT COUNT(*) FROM sample s JOIN site t ON t.id = s.site_id WHERE t.name = 'web' AND s.status = ?1",
            [status],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert!(count(4) >= 5, "probes under maintenance: {}", count(4));
    assert_eq!(count(3), 0, "none unknown");
    assert!(count(2) >= 2, "failed probes after it: {}", count(2));
}

#[tokio::test]
async fn a_site_that_fails_and_comes_back_inside_a_window_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start_ok().await;
    let server = AcceptClose::bind("127.0.0.1:0").await.unwrap();
    let target = server.addr;
    let start = SystemTime::now();
    let end = start + Duration::from_secs(10);
    let path = write_config(
        dir.path(),
        &config(
            &dir.path().join("state"),
            &hook.url("/hook"),
            target,
            start,
            end,
        ),
    );
    let (child, api, _logs) = spawn_daemon(&path).await;
    wait_status(&api, "web", "up", None, Duration::from_secs(5)).await;
    server.close().await;
    wait_status(
        &api,
        "web",
        "down",
        Some("tcp.refused"),
        Duration::from_secs(5),
    )
    .await;
    // Back before the window ends.
    let _server = AcceptClose::bind(&target.to_string()).await.unwrap();
    wait_status(&api, "web", "up", None, Duration::from_secs(5)).await;
    // Past the end, and a few probes more.
    let left = end.duration_since(SystemTime::now()).unwrap_or_default();
    tokio::time::sleep(left + Duration::from_secs(3)).await;
    let (_, j) = get_json(&format!("{api}/status/web")).await;
    assert_eq!(j["status"], "up", "{j}");
    assert!(
        hook.requests().is_empty(),
        "nothing to say: {:?}",
        hook.requests().len()
    );
    assert_eq!(incidents(&api).await, 0);
    kill9(child).await;
}

#[tokio::test]
async fn an_outage_that_began_before_a_window_and_spans_two_windows_alerts_after_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start_ok().await;
    let server = AcceptClose::bind("127.0.0.1:0").await.unwrap();
    let target = server.addr;
    let t0 = SystemTime::now();
    let (start, middle, end) = (
        t0 + Duration::from_secs(3),
        t0 + Duration::from_secs(7),
        t0 + Duration::from_secs(11),
    );
    // Three failures confirm; the first comes before the first window.
    let mut text = config(
        &dir.path().join("state"),
        &hook.url("/hook"),
        target,
        start,
        middle,
    )
    .replace("confirm_down = 2", "confirm_down = 3");
    // Extended back to back, as people extend a window.
    text.push_str(&format!(
        "\n[[maintenance]]\nid = \"patch-extended\"\ntitle = \"Patch night, extended\"\nsites = [\"web\"]\nstart = \"{}\"\nend = \"{}\"\n",
        rfc3339(middle),
        rfc3339(end)
    ));
    let path = write_config(dir.path(), &text);
    let (child, api, _logs) = spawn_daemon(&path).await;
    wait_status(&api, "web", "up", None, Duration::from_secs(3)).await;
    server.close().await;
    let down = wait_status(
        &api,
        "web",
        "down",
        Some("tcp.refused"),
        Duration::from_secs(8),
    )
    .await;
    assert!(
        SystemTime::now() >= start,
        "confirmed inside the window: {down}"
    );
    let alert = wait_for(
        "the alert after both windows",
        Duration::from_secs(20),
        || {
            let calls = hook.requests();
            async move { events(&calls, "down").first().cloned() }
        },
    )
    .await;
    assert!(SystemTime::now() >= end, "not before the last window's end");
    assert!(
        alert["detail"]
            .as_str()
            .unwrap()
            .starts_with("still down after maintenance \"Patch night, extended\""),
        "{alert}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(events(&hook.requests(), "down").len(), 1, "one alert");
    kill9(child).await;
}
