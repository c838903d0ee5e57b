//! The Alertmanager channel against real Alertmanagers: Debian's
//! `prometheus-alertmanager` started by the test on loopback, alone or as a
//! two-node cluster (gossip on loopback, small group and peer timings),
//! routing to a local webhook receiver, with sitewatch in-process on the
//! test's current-thread runtime. What a person would get from
//! Alertmanager is what is checked: its notifications, and its own view of
//! the alerts (`/api/v2/alerts`, `amtool`).

mod common;
#[path = "alertmanager/fixture.rs"]
mod fixture;

use common::daemon::{get_json, wait_for, wait_status, write_config};
use common::http::{AcceptClose, closed_addr};
use common::receiver::{Receiver, Reply};
use fixture::{
    DUPLICATE_WINDOW, alertmanagers, held, notifications, notifications_of, wait_notifications,
    wait_notifications_of,
};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};
use tokio::net::TcpListener;
use tokio::process::Command;

/// sites.toml of an instance (vantage `vantage`, state under `dir`).
fn config_text(dir: &Path, vantage: &str, channels: &str, sites: &str) -> String {
    format!(
        "[daemon]\nstate_dir = \"{}\"\n\n[cluster]\nvantage = \"{vantage}\"\n\n[defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\n\n{channels}\n{sites}",
        dir.join("state").display()
    )
}

/// One `[[site]]` named `web` probing `tcp://site`.
fn web(site: SocketAddr) -> String {
    format!("[[site]]\nname = \"web\"\nurl = \"tcp://{site}\"\n")
}

/// Starts sitewatch in-process with `sites`.
async fn sitewatch_with(
    dir: &Path,
    vantage: &str,
    channels: &str,
    sites: &str,
) -> (sitewatch::app::Running, String) {
    std::fs::create_dir_all(dir).unwrap();
    let text = config_text(dir, vantage, channels, sites);
    let config =
        sitewatch::config::load(&write_config(dir, &text)).unwrap_or_else(|e| panic!("{e}"));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = sitewatch::app::start(&config, listener).unwrap();
    let api = format!("http://{}", running.addr);
    (running, api)
}

/// Starts sitewatch in-process, watching `tcp://site` as `web`.
async fn sitewatch(
    dir: &Path,
    vantage: &str,
    channels: &str,
    site: SocketAddr,
) -> (sitewatch::app::Running, String) {
    sitewatch_with(dir, vantage, channels, &web(site)).await
}

/// An `[alert.NAME]` table of type alertmanager.
fn channel(name: &str, urls: &[&str], extra: &str) -> String {
    let urls: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
    format!(
        "[alert.{name}]\ntype = \"alertmanager\"\nurls = [{}]\nlabels = {{ team = \"web\" }}\n{extra}\n",
        urls.join(", ")
    )
}

fn time(j: &Value) -> SystemTime {
    humantime::parse_rfc3339(j.as_str().unwrap_or_else(|| panic!("not a time: {j}"))).unwrap()
}

#[tokio::test]
async fn an_outage_fires_once_and_resolves_once_through_a_two_node_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start_ok().await;
    let nodes = alertmanagers(dir.path(), &hook, 2).await;
    let web = AcceptClose::bind("127.0.0.1:0").await.unwrap();
    let addr = web.addr;
    // A second site answers slowly: degraded (http.slow) all along.
    let slow_site = Receiver::start(vec![Reply::ok().delay(Duration::from_millis(200))]).await;
    let fast_site = Receiver::start_ok().await;
    let sites = |slow_url: String| {
        format!(
            "{}\n[[site]]\nname = \"slow\"\nurl = \"{slow_url}\"\nslow = \"100ms\"\n",
            self::web(addr)
        )
    };
    let urls: Vec<&str> = nodes.iter().map(|n| n.url.as_str()).collect();
    let am = channel("am", &urls, "resend_interval = \"10s\"");
    let sw = dir.path().join("sw");
    let (daemon, api) = sitewatch_with(&sw, "fra1", &am, &sites(slow_site.url("/"))).await;
    wait_status(&api, "web", "up", None, Duration::from_secs(5)).await;
    wait_status(
        &api,
        "slow",
        "degraded",
        Some("http.slow"),
        Duration::from_secs(5),
    )
    .await;

    web.close().await;
    wait_status(
        &api,
        "web",
        "down",
        Some("tcp.refused"),
        Duration::from_secs(6),
    )
    .await;
    let firing = wait_notifications_of(&hook, "/am", "firing", Some("web"), 1).await;
    let alert = &firing[0]["alerts"][0];
    assert_eq!(
        alert["labels"],
        serde_json::json!({"alertname": "SitewatchSiteDown", "site": "web", "cause": "tcp.refused",
                           "severity": "critical", "team": "web"}),
        "the documented labels, and no vantage: {alert}"
    );
    assert_eq!(alert["annotations"]["vantage"], "fra1");
    assert_eq!(
        alert["annotations"]["summary"],
        "DOWN web — connection refused (tcp.refused)"
    );
    assert_eq!(alert["generatorURL"], format!("tcp://{addr}"));
    let degraded = wait_notifications_of(&hook, "/am", "firing", Some("slow"), 1).await;
    let labels = &degraded[0]["alerts"][0]["labels"];
    assert_eq!(labels["alertname"], "SitewatchSiteDegraded", "{labels}");
    assert_eq!(labels["severity"], "warning", "{labels}");

    // Both instances hold it (sitewatch posts to each), as amtool shows.
    for node in &nodes {
        let held = held(&node.url, "SitewatchSiteDown").await;
        assert_eq!(held.len(), 1, "{} holds {held:?}", node.url);
        assert_eq!(held[0]["labels"]["cause"], "tcp.refused");
        assert_eq!(held[0]["status"]["state"], "active");
    }
    let out = Command::new("amtool")
        .args(["alert", "query", "-o", "json"])
        .arg(format!("--alertmanager.url={}", nodes[1].url))
        .arg("alertname=SitewatchSiteDown")
        .output()
        .await
        .unwrap();
    let listed: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("amtool: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(listed[0]["labels"]["site"], "web", "{listed}");

    // The refresh moves endsAt ahead (4 × 10 s from each post), for the
    // down site and the degraded one, so neither runs out while it lasts.
    let ends = |alertname: &'static str| {
        let url = nodes[0].url.clone();
        async move { Some(time(&held(&url, alertname).await.first()?["endsAt"])) }
    };
    let down_ends: SystemTime = ends("SitewatchSiteDown").await.unwrap();
    let slow_ends: SystemTime = ends("SitewatchSiteDegraded").await.unwrap();
    let ahead = down_ends
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    assert!(
        ahead > Duration::from_secs(25) && ahead <= Duration::from_secs(41),
        "{ahead:?}"
    );
    wait_for(
        "a refresh to move endsAt",
        Duration::from_secs(15),
        || async {
            let moved = ends("SitewatchSiteDown").await? > down_ends + Duration::from_secs(5)
                && ends("SitewatchSiteDegraded").await? > slow_ends + Duration::from_secs(5);
            moved.then_some(())
        },
    )
    .await;
    assert!(
        notifications(&hook, "/am", "resolved").is_empty(),
        "resolved while firing"
    );

    // The slow site now probes a fast URL: it starts over and is up (no
    // change to alert), and the next refresh resolves its old alert. The
    // down site recovers meanwhile.
    let config_path = sw.join("sites.toml");
    std::fs::write(
        &config_path,
        config_text(&sw, "fra1", &am, &sites(fast_site.url("/"))),
    )
    .unwrap();
    let config = sitewatch::config::load(&config_path).unwrap();
    let diff = daemon.reload(&config).await.unwrap();
    assert_eq!(diff.restarted, ["slow"], "{diff:?}");
    let _web = AcceptClose::bind(&addr.to_string()).await.unwrap();
    wait_status(&api, "web", "up", None, Duration::from_secs(6)).await;
    let resolved = wait_notifications_of(&hook, "/am", "resolved", Some("web"), 1).await;
    assert_eq!(resolved[0]["alerts"][0]["labels"]["cause"], "tcp.refused");
    wait_notifications_of(&hook, "/am", "resolved", Some("slow"), 1).await;
    tokio::time::sleep(DUPLICATE_WINDOW).await;
    for site in ["web", "slow"] {
        let count = |status| notifications_of(&hook, "/am", status, Some(site)).len();
        assert_eq!(
            (count("firing"), count("resolved")),
            (1, 1),
            "{site}: one of each: {:#?}",
            hook.requests()
                .iter()
                .map(|r| (r.at, r.json()))
                .collect::<Vec<_>>()
        );
    }
    // The watchdog reached the dead man's switch route.
    let deadman = wait_notifications(&hook, "/deadman", "firing", 1).await;
    assert_eq!(deadman[0]["alerts"][0]["labels"]["vantage"], "fra1");
    assert!(held(&nodes[0].url, "SitewatchSiteDown").await.is_empty());
    daemon.stop();
    daemon.wait().await.unwrap();
}

#[tokio::test]
async fn two_vantages_watching_one_site_make_one_notification() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start_ok().await;
    let nodes = alertmanagers(dir.path(), &hook, 2).await;
    let web = closed_addr();
    let urls: Vec<&str> = nodes.iter().map(|n| n.url.as_str()).collect();
    let am = channel("am", &urls, "");
    let (east, east_api) = sitewatch(&dir.path().join("east"), "east", &am, web).await;
    let (west, west_api) = sitewatch(&dir.path().join("west"), "west", &am, web).await;
    for api in [&east_api, &west_api] {
        wait_status(
            api,
            "web",
            "down",
            Some("tcp.refused"),
            Duration::from_secs(6),
        )
        .await;
    }
    let firing = wait_notifications(&hook, "/am", "firing", 1).await;
    assert_eq!(
        firing[0]["alerts"].as_array().unwrap().len(),
        1,
        "{}",
        firing[0]
    );
    tokio::time::sleep(DUPLICATE_WINDOW).await;
    assert_eq!(
        notifications(&hook, "/am", "firing").len(),
        1,
        "both vantages post the same labels: one alert, one notification"
    );
    // Each vantage's watchdog is its own alert, on both instances.
    for node in &nodes {
        assert_eq!(held(&node.url, "SitewatchSiteDown").await.len(), 1);
        let mut vantages: Vec<String> = held(&node.url, "SitewatchWatchdog")
            .await
            .iter()
            .map(|a| a["labels"]["vantage"].as_str().unwrap().to_string())
            .collect();
        vantages.sort();
        assert_eq!(vantages, ["east", "west"], "{}", node.url);
    }
    let deadman = wait_notifications(&hook, "/deadman", "firing", 2).await;
    assert!(
        deadman
            .iter()
            .all(|n| n["alerts"][0]["labels"]["alertname"] == "SitewatchWatchdog")
    );
    for d in [east, west] {
        d.stop();
        d.wait().await.unwrap();
    }
}

#[tokio::test]
async fn losing_one_instance_during_an_outage_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start_ok().await;
    let mut nodes = alertmanagers(dir.path(), &hook, 2).await;
    let web = AcceptClose::bind("127.0.0.1:0").await.unwrap();
    let addr = web.addr;
    let urls: Vec<&str> = nodes.iter().map(|n| n.url.as_str()).collect();
    let (daemon, api) = sitewatch(
        &dir.path().join("sw"),
        "fra1",
        &channel("am", &urls, ""),
        addr,
    )
    .await;
    wait_status(&api, "web", "up", None, Duration::from_secs(5)).await;
    web.close().await;
    wait_status(
        &api,
        "web",
        "down",
        Some("tcp.refused"),
        Duration::from_secs(6),
    )
    .await;
    wait_notifications(&hook, "/am", "firing", 1).await;
    // Once the second node has read the first one's notification from the
    // replicated log (and so not notified again), the first node dies.
    // Killed sooner, its notification may not have been replicated, and
    // the second node sends its own: at-least-once, by design.
    tokio::time::sleep(DUPLICATE_WINDOW).await;
    assert_eq!(notifications(&hook, "/am", "firing").len(), 1);
    nodes[0].child.kill().await.unwrap();
    let _web = AcceptClose::bind(&addr.to_string()).await.unwrap();
    wait_status(&api, "web", "up", None, Duration::from_secs(6)).await;
    let resolved = wait_notifications(&hook, "/am", "resolved", 1).await;
    assert_eq!(resolved[0]["alerts"][0]["labels"]["site"], "web");
    tokio::time::sleep(DUPLICATE_WINDOW).await;
    let count = |status| notifications(&hook, "/am", status).len();
    assert_eq!(
        (count("firing"), count("resolved")),
        (1, 1),
        "one of each: {:#?}",
        hook.requests()
            .iter()
            .map(|r| (r.at, r.json()))
            .collect::<Vec<_>>()
    );
    // The recovery counts as delivered: one instance took it.
    let (_, h) = get_json(&format!("{api}/healthz")).await;
    let stats = &h["alerts"]["channels"]["am"];
    assert_eq!(stats["sent"], 2, "{h}");
    assert_eq!(stats["given_up"], 0, "{h}");
    daemon.stop();
    daemon.wait().await.unwrap();
}

#[tokio::test]
async fn an_instance_that_refuses_the_alerts_is_a_permanent_failure_on_healthz() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start_ok().await;
    let nodes = alertmanagers(dir.path(), &hook, 1).await;
    // Stands in for an Alertmanager that refuses what it is sent.
    let broken = Receiver::start(vec![
        Reply::new(400).body("\"invalid label set: invalid name \\\"bad-name\\\"\""),
    ])
    .await;
    let broken_url = broken.url("");
    let channels = format!(
        "{}{}",
        channel("refusing", &[&broken_url], ""),
        channel("am", &[&nodes[0].url, &broken_url], "")
    );
    let (daemon, api) = sitewatch(&dir.path().join("sw"), "fra1", &channels, closed_addr()).await;
    wait_status(
        &api,
        "web",
        "down",
        Some("tcp.refused"),
        Duration::from_secs(6),
    )
    .await;
    let h = wait_for(
        "the refused delivery on /healthz",
        Duration::from_secs(10),
        || {
            let api = api.clone();
            async move {
                let (_, h) = get_json(&format!("{api}/healthz")).await;
                let c = &h["alerts"]["channels"];
                (c["refusing"]["given_up"] == 1 && c["am"]["sent"] == 1).then_some(h)
            }
        },
    )
    .await;
    let err = h["alerts"]["channels"]["refusing"]["last_error"]
        .as_str()
        .unwrap();
    assert!(
        err.contains("400 Bad Request") && err.contains("invalid label set"),
        "{err}"
    );
    // Not retried: one delivery attempt, whatever the refreshes did.
    assert_eq!(
        h["alerts"]["channels"]["refusing"]["failed_attempts"], 1,
        "{h}"
    );
    assert_eq!(h["alerts"]["channels"]["am"]["given_up"], 0, "{h}");
    assert_eq!(held(&nodes[0].url, "SitewatchSiteDown").await.len(), 1);

    // notify-test posts an alert that ends at once.
    let config = sitewatch::config::load(&dir.path().join("sw/sites.toml")).unwrap();
    let outcomes = sitewatch::alert::notify_test(&config, None).await.unwrap();
    let mut shown: Vec<String> = outcomes.iter().map(|o| o.to_string()).collect();
    shown.sort();
    assert_eq!(shown.len(), 2, "{shown:?}");
    assert_eq!(shown[0], "am (alertmanager): sent");
    assert!(
        shown[1].starts_with("refusing (alertmanager): FAILED:")
            && shown[1].contains("400 Bad Request"),
        "{shown:?}"
    );
    let tests: Vec<Value> = broken
        .requests()
        .iter()
        .flat_map(|r| r.json().as_array().cloned().unwrap_or_default())
        .filter(|a| a["labels"]["alertname"] == "SitewatchTest")
        .collect();
    assert_eq!(tests.len(), 2, "one per channel");
    assert_eq!(tests[0]["startsAt"], tests[0]["endsAt"]);
    daemon.stop();
    daemon.wait().await.unwrap();
}

#[tokio::test]
async fn many_sites_down_at_once_reach_alertmanager_one_alert_each() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start_ok().await;
    let nodes = alertmanagers(dir.path(), &hook, 1).await;
    // A storm forming holds down alerts; other channels would get them as
    // one grouped message, Alertmanager gets each site's alert.
    let sites: String = (0..6)
        .map(|i| {
            format!(
                "[[site]]\nname = \"s{i}\"\nurl = \"tcp://{}\"\n",
                closed_addr()
            )
        })
        .collect();
    let am = channel("am", &[&nodes[0].url], "storm_hold = \"3s\"");
    let (daemon, api) = sitewatch_with(&dir.path().join("sw"), "fra1", &am, &sites).await;
    let held = wait_for("six down alerts", Duration::from_secs(20), || {
        let url = nodes[0].url.clone();
        async move {
            let h = held(&url, "SitewatchSiteDown").await;
            (h.len() == 6).then_some(h)
        }
    })
    .await;
    let mut names: Vec<&str> = held
        .iter()
        .map(|a| a["labels"]["site"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["s0", "s1", "s2", "s3", "s4", "s5"]);
    let (_, h) = get_json(&format!("{api}/healthz")).await;
    assert_eq!(
        h["alerts"]["channels"]["am"]["sent"], 6,
        "one delivery per site: {h}"
    );
    daemon.stop();
    daemon.wait().await.unwrap();
}
