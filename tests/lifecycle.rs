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
