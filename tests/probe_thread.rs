//! Nothing slow runs on the probe thread: a storm of alerts on slow storage
//! (every sync of the daemon takes 300 ms, through a preloaded library) and
//! a reload of a large file leave probe timings and scheduling lag alone.

mod common;

use common::daemon::{get_json, signal, spawn_daemon, spawn_daemon_env, wait_for, write_config};
use common::http::{AcceptClose, closed_addr};
use common::receiver::Receiver;
use common::slowsync;
use serde_json::Value;
use std::time::{Duration, Instant, SystemTime};

/// The worst the up site looked while we watched: its last probe's age and
/// duration, the scheduler's lag p99, and how long /healthz took to answer.
#[derive(Debug, Default)]
struct Worst {
    probe_age: Duration,
    probe_ms: f64,
    lag_p99_ms: f64,
    healthz: Duration,
}

async fn watch(api: &str, site: &str, worst: &mut Worst) {
    let t = Instant::now();
    let (_, h) = get_json(&format!("{api}/healthz")).await;
    worst.healthz = worst.healthz.max(t.elapsed());
    worst.lag_p99_ms = worst
        .lag_p99_ms
        .max(h["scheduler"]["lag_ms"]["p99"].as_f64().unwrap_or(0.0));
    let (_, s) = get_json(&format!("{api}/status/{site}")).await;
    if let Some(last) = s["last_probe"].as_str() {
        let last = humantime::parse_rfc3339(last).unwrap();
        let age = SystemTime::now().duration_since(last).unwrap_or_default();
        worst.probe_age = worst.probe_age.max(age);
    }
    worst.probe_ms = worst.probe_ms.max(s["duration_ms"].as_f64().unwrap_or(0.0));
}

#[tokio::test]
async fn a_storm_of_alerts_on_slow_storage_leaves_probing_alone() {
    let dir = tempfile::tempdir().unwrap();
    let lib = slowsync::build(dir.path());
    let hook = Receiver::start_ok().await;
    let steady = AcceptClose::bind("127.0.0.1:0").await.unwrap();
    let mut text = format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n\n[defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\nconfirm_down = 1\n\n[alert.hook]\ntype = \"webhook\"\nurl = \"{}\"\n\n[[site]]\nname = \"steady\"\nurl = \"tcp://{}\"\n\n",
        dir.path().join("state").display(),
        hook.url("/h"),
        steady.addr
    );
    // Fifty sites, each on its own channel too: 100 deliveries, none grouped
    // on the per-site channels.
    for i in 0..50 {
        text.push_str(&format!(
            "[alert.c{i}]\ntype = \"webhook\"\nurl = \"{}\"\n\n[[site]]\nname = \"s{i}\"\nurl = \"tcp://{}\"\nnotify = [\"hook\", \"c{i}\"]\n\n",
            hook.url(&format!("/c{i}")),
            closed_addr()
        ));
    }
    let path = write_config(dir.path(), &text);
    let (child, api, _logs) = spawn_daemon_env(&path, &slowsync::env(&lib, 300)).await;
    let mut worst = Worst::default();
    let started = Instant::now();
    // Every site's own channel hears of it: 50 deliveries, each stored with
    // a 300 ms sync before it is sent, while we watch the steady site.
    loop {
        watch(&api, "steady", &mut worst).await;
        let per_site = hook
            .requests()
            .iter()
            .filter(|r| r.path.starts_with("/c"))
            .count();
        if per_site >= 50 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "only {per_site} of 50 alerts in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("worst while alerting on slow storage: {worst:?}");
    // Cumulative since start (start-up included): a frozen thread would
    // push it to seconds.
    assert!(worst.lag_p99_ms < 500.0, "{worst:?}");
    assert!(worst.probe_age < Duration::from_millis(2500), "{worst:?}");
    assert!(worst.probe_ms < 100.0, "{worst:?}");
    assert!(worst.healthz < Duration::from_secs(1), "{worst:?}");
    signal(&child, libc::SIGTERM);
    let _ = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output()).await;
}

#[tokio::test]
async fn a_reload_of_a_large_file_leaves_probing_alone() {
    const SITES: usize = 5_000;
    let dir = tempfile::tempdir().unwrap();
    let steady = AcceptClose::bind("127.0.0.1:0").await.unwrap();
    let text = |extra: &str| {
        let mut t = format!(
            "[daemon]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\nmax_concurrent_probes = 256\n\n[defaults]\ninterval = \"60s\"\ntimeout = \"2s\"\n\n[[site]]\nname = \"steady\"\nurl = \"tcp://{}\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n{extra}\n",
            dir.path().join("state").display(),
            steady.addr
        );
        for i in 0..SITES {
            t.push_str(&format!(
                "[[site]]\nname = \"s{i}\"\nurl = \"tcp://127.0.0.{}:{}\"\n\n",
                1 + i % 200,
                10_000 + i
            ));
        }
        t
    };
    let path = write_config(dir.path(), &text(""));
    let (child, api, _logs) = spawn_daemon(&path).await;
    wait_for("steady to be up", Duration::from_secs(30), || {
        let api = api.clone();
        async move {
            let (_, s) = get_json(&format!("{api}/status/steady")).await;
            (s["status"] == "up").then_some(())
        }
    })
    .await;
    // A policy change to one site: the whole file is read, parsed and
    // prepared again while we watch.
    std::fs::write(&path, text("confirm_down = 3")).unwrap();
    let mut worst = Worst::default();
    signal(&child, libc::SIGHUP);
    let t = Instant::now();
    let reloaded = loop {
        watch(&api, "steady", &mut worst).await;
        let (_, h) = get_json(&format!("{api}/healthz")).await;
        let at = h["config"]["last_reload_at"].as_str().map(str::to_string);
        let loaded = h["config"]["loaded_at"].as_str().map(str::to_string);
        if at.is_some() && at == loaded && h["config"]["last_reload_ok"] == true {
            let started: Value = h["started_at"].clone();
            if Some(started.as_str().unwrap_or_default().to_string()) != at {
                break t.elapsed();
            }
        }
        assert!(t.elapsed() < Duration::from_secs(120), "no reload in 120 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("reload of {SITES} sites took {reloaded:?}; worst meanwhile: {worst:?}");
    assert!(worst.healthz < Duration::from_secs(1), "{worst:?}");
    assert!(worst.probe_age < Duration::from_millis(2500), "{worst:?}");
    // Cumulative since start (start-up included): a frozen thread would
    // push it to seconds.
    assert!(worst.lag_p99_ms < 500.0, "{worst:?}");
    signal(&child, libc::SIGTERM);
    let _ = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output()).await;
}
