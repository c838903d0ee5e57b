//! The daemon as a child process: it starts on a config, serves its API,
//! stops cleanly with exit 0 on SIGTERM and SIGINT, and refuses an invalid
//! config with file:line:column.

mod common;

use common::daemon::{get_json, write_config};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// Starts `sitewatch run` and returns it with its API address, read from
/// its own "api listening" log line (no fixed port, no sleep).
async fn spawn_daemon(
    config: &std::path::Path,
) -> (Child, String, mpsc::UnboundedReceiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sitewatch"))
        .args(["run", "--config"])
        .arg(config)
        .env("SITEWATCH_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = tx.send(line);
        }
    });
    let addr = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = rx.recv().await {
            if line.contains("api listening") {
                let addr = line
                    .split("addr=")
                    .nth(1)
                    .unwrap()
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .to_string();
                return addr;
            }
        }
        panic!("the daemon exited before listening");
    })
    .await
    .expect("the daemon did not start listening within 10 s");
    (child, format!("http://{addr}"), rx)
}

fn signal(child: &Child, sig: i32) {
    let pid = child.id().expect("still running") as i32;
    // SAFETY: kill(2) on the PID of a child this test started and still owns.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

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
