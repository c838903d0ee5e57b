//! Helpers to run the daemon in-process or as a child process, and to poll
//! its API until a condition holds (bounded in time, never a blind sleep).
#![allow(dead_code)]

use serde_json::Value;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// Writes `text` as sites.toml in `dir`.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("sites.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts the daemon in this process on `text` (written as sites.toml in
/// `dir`), with its API on a free loopback port; returns it and the API's
/// base URL.
pub async fn start_in_process(dir: &Path, text: &str) -> (sitewatch::app::Running, String) {
    let path = write_config(dir, text);
    let config = sitewatch::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = sitewatch::app::start(&config, listener).unwrap();
    let api = format!("http://{}", running.addr);
    (running, api)
}

/// GETs `url` and parses JSON; returns the status code too.
pub async fn get_json(url: &str) -> (u16, Value) {
    // reqwest is built without a default crypto provider (sitewatch uses ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let resp = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `limit`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `/status/{site}` until its `status` (and `cause`, if given) match.
pub async fn wait_status(
    api: &str,
    site: &str,
    status: &str,
    cause: Option<&str>,
    limit: Duration,
) -> Value {
    let url = format!("{api}/status/{site}");
    wait_for(&format!("{site} to be {status} {cause:?}"), limit, || {
        let url = url.clone();
        async move {
            let (_, j) = get_json(&url).await;
            (j["status"] == status && j["cause"].as_str() == cause).then_some(j)
        }
    })
    .await
}

/// Starts `sitewatch run` and returns it with its API address, read from
/// its own "api listening" log line (no fixed port, no sleep).
pub async fn spawn_daemon(
    config: &std::path::Path,
) -> (Child, String, mpsc::UnboundedReceiver<String>) {
    spawn_daemon_env(config, &[]).await
}

/// [`spawn_daemon`] with extra environment (e.g. `SITEWATCH_LOG=debug`,
/// or a preloaded library).
pub async fn spawn_daemon_env(
    config: &std::path::Path,
    env: &[(String, String)],
) -> (Child, String, mpsc::UnboundedReceiver<String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sitewatch"));
    cmd.args(["run", "--config"])
        .arg(config)
        .envs(env.iter().map(|(k, v)| (k, v)));
    spawn_daemon_cmd(cmd).await
}

/// Runs `sitewatch run --config CONFIG` inside the network namespace `ns`
/// (`ip netns exec`, which becomes the daemon itself).
pub async fn spawn_daemon_in(
    ns: &str,
    config: &std::path::Path,
    env: &[(String, String)],
) -> (Child, String, mpsc::UnboundedReceiver<String>) {
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        ns,
        env!("CARGO_BIN_EXE_sitewatch"),
        "run",
        "--config",
    ])
    .arg(config)
    .envs(env.iter().map(|(k, v)| (k, v)));
    spawn_daemon_cmd(cmd).await
}

/// Starts a prepared daemon command and returns it with its API address,
/// read from its own "api listening" log line.
pub async fn spawn_daemon_cmd(
    mut cmd: Command,
) -> (Child, String, mpsc::UnboundedReceiver<String>) {
    if !cmd.as_std().get_envs().any(|(k, _)| k == "SITEWATCH_LOG") {
        cmd.env("SITEWATCH_LOG", "info");
    }
    let mut child = cmd
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
            if line.contains(" api listening") {
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

pub fn signal(child: &Child, sig: i32) {
    let pid = child.id().expect("still running") as i32;
    // SAFETY: kill(2) on the PID of a child this test started and still owns.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

/// Reads the daemon's log lines until one contains `needle` (bounded).
pub async fn wait_log(
    logs: &mut mpsc::UnboundedReceiver<String>,
    needle: &str,
    limit: Duration,
) -> String {
    tokio::time::timeout(limit, async {
        while let Some(line) = logs.recv().await {
            if line.contains(needle) {
                return line;
            }
        }
        panic!("the daemon's log ended before a line with {needle:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("no log line with {needle:?} within {limit:?}"))
}

/// SIGKILL, then reaps it.
pub async fn kill9(mut child: Child) {
    signal(&child, libc::SIGKILL);
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
}
