//! The daemon as a child process: it starts on a config, serves its API,
//! stops cleanly with exit 0 on SIGTERM and SIGINT, and refuses an invalid
//! config with file:line:column.

mod common;

use common::daemon::{get_json, signal, spawn_daemon, write_config};
use std::time::Duration;
use tokio::process::Command;

async fn stops_cleanly_on(sig: i32) {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[daemon]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n\n[[site]]\nname = \"closed\"\nurl = \"tcp://127.0.0.1:9\"\ninterval = \"1s\"\n",
            dir.path().join("state").display()
        ),
    );
    let (mut child, api, mut logs) = spawn_daemon(&config).await;
    let (code, h) = get_json(&format!("{api}/healthz")).await;
    assert_eq!(
        (code, h["status"].as_str(), h["sites"].as_u64()),
        (200, Some("ok"), Some(1))
    );
    signal(&child, sig);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("stopped within 10 s")
        .unwrap();
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
    let mut seen = Vec::new();
    // The pipe closes when the process exits: read to its end.
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_secs(5), logs.recv()).await {
        seen.push(line);
    }
    assert!(seen.iter().any(|l| l.contains("stopped")), "{seen:#?}");
}

#[tokio::test]
async fn sigterm_stops_the_daemon_with_exit_0() {
    stops_cleanly_on(libc::SIGTERM).await;
}

#[tokio::test]
async fn sigint_stops_the_daemon_with_exit_0() {
    stops_cleanly_on(libc::SIGINT).await;
}

#[tokio::test]
async fn an_invalid_config_is_refused_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[[site]]\nname = \"a\"\nurl = \"http://a.test\"\ninterval = \"0s\"\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_sitewatch"))
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sites.toml:4:12: `interval` is 0s, below the minimum of 1s"),
        "{err}"
    );
}

/// With `worker_threads = 2` the probes run on two threads: sites are
/// judged, a reload applies and SIGTERM still stops it cleanly.
#[tokio::test]
async fn two_worker_threads_probe_reload_and_stop_cleanly() {
    use common::daemon::{wait_for, wait_status};
    let dir = tempfile::tempdir().unwrap();
    let up = common::receiver::Receiver::start_ok().await;
    let text = |extra: &str| {
        format!(
            "[daemon]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\nworker_threads = 2\n\n[[site]]\nname = \"closed\"\nurl = \"tcp://127.0.0.1:9\"\ninterval = \"1s\"\n\n[[site]]\nname = \"up\"\nurl = \"{}\"\ninterval = \"1s\"\n{extra}",
            dir.path().join("state").display(),
            up.url("/"),
        )
    };
    let config = write_config(dir.path(), &text(""));
    let (mut child, api, _logs) = spawn_daemon(&config).await;
    let limit = Duration::from_secs(20);
    wait_status(&api, "closed", "down", Some("tcp.refused"), limit).await;
    wait_status(&api, "up", "up", None, limit).await;
    // The probing threads are there (besides the API's).
    let pid = child.id().unwrap();
    let threads: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|c| c.trim().to_string())
        .collect();
    assert_eq!(
        threads
            .iter()
            .filter(|c| c.starts_with("sitewatch-probe"))
            .count(),
        2,
        "{threads:?}"
    );
    std::fs::write(
        &config,
        text("\n[[site]]\nname = \"added\"\nurl = \"tcp://127.0.0.1:9\"\ninterval = \"1s\"\n"),
    )
    .unwrap();
    signal(&child, libc::SIGHUP);
    wait_for("the added site", limit, || async {
        let (_, j) = get_json(&format!("{api}/status/added")).await;
        (j["status"] == "down").then_some(())
    })
    .await;
    signal(&child, libc::SIGTERM);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("stopped within 10 s")
        .unwrap();
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
}
