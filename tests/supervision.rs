//! The daemon watches itself: a task that ends on its own stops the daemon
//! with an error (so systemd restarts it) and shows on /healthz; one daemon
//! per state directory; a second stop signal ends a slow drain at once.

mod common;

use common::daemon::{get_json, signal, spawn_daemon, wait_for, wait_status, write_config};
use common::http::AcceptClose;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::net::TcpListener;

fn config(state: &Path, target: &str) -> String {
    format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n\n[defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\n\n[[site]]\nname = \"app\"\nurl = \"tcp://{target}\"\n",
        state.display()
    )
}

#[tokio::test]
async fn a_task_that_ends_stops_the_daemon_with_an_error_and_shows_on_healthz() {
    for task in ["dispatcher", "scheduler", "api"] {
        let dir = tempfile::tempdir().unwrap();
        let web = AcceptClose::bind("127.0.0.1:0").await.unwrap();
        let path = write_config(
            dir.path(),
            &config(&dir.path().join("state"), &web.addr.to_string()),
        );
        let cfg = sitewatch::config::load(&path).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = sitewatch::app::start(&cfg, listener).unwrap();
        let api = format!("http://{}", running.addr);
        if task != "api" {
            let (code, h) = get_json(&format!("{api}/healthz")).await;
            assert_eq!(code, 200, "{h}");
        }
        running.abort_task(task);
        // The supervisor notices within a check and ends with an error.
        let stopped = std::future::pending::<&'static str>();
        let result = tokio::time::timeout(
            Duration::from_secs(20),
            sitewatch::app::serve(
                running,
                &path,
                stopped,
                sitewatch::shutdown::reload_signal().unwrap(),
            ),
        )
        .await
        .unwrap_or_else(|_| panic!("the daemon did not stop after its {task} ended"));
        let err = result.expect_err(task).to_string();
        assert!(err.contains(task), "{err}");
    }
}

#[tokio::test]
async fn healthz_lists_every_task_and_fails_when_one_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let web = AcceptClose::bind("127.0.0.1:0").await.unwrap();
    let path = write_config(
        dir.path(),
        &config(&dir.path().join("state"), &web.addr.to_string()),
    );
    let cfg = sitewatch::config::load(&path).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = sitewatch::app::start(&cfg, listener).unwrap();
    let api = format!("http://{}", running.addr);
    let (code, h) = get_json(&format!("{api}/healthz")).await;
    assert_eq!(code, 200, "{h}");
    let names: Vec<&str> = h["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["scheduler", "dispatcher", "history", "api"]);
    running.abort_task("dispatcher");
    // Aborting takes effect when the runtime next turns.
    let r = &running;
    wait_for("the dispatcher to end", Duration::from_secs(5), || {
        let dead = r.check() == Err("dispatcher");
        async move { dead.then_some(()) }
    })
    .await;
    let (code, h) = get_json(&format!("{api}/healthz")).await;
    assert_eq!(code, 503, "{h}");
    assert_eq!(h["status"], "error");
    let dispatcher = h["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "dispatcher")
        .unwrap();
    assert_eq!(dispatcher["running"], false, "{h}");
    running.stop();
    let _ = running.wait().await;
}

#[tokio::test]
async fn a_second_daemon_on_the_same_state_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let web = AcceptClose::bind("127.0.0.1:0").await.unwrap();
    let path = write_config(
        dir.path(),
        &config(&dir.path().join("state"), &web.addr.to_string()),
    );
    let (first, api, _logs) = spawn_daemon(&path).await;
    wait_status(&api, "app", "up", None, Duration::from_secs(5)).await;
    let pid = first.id().unwrap();
    let second = tokio::process::Command::new(env!("CARGO_BIN_EXE_sitewatch"))
        .args(["run", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("the second daemon should refuse at once")
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("already using the state directory") && err.contains(&format!("pid {pid}")),
        "{err}"
    );
    // The first one is untouched.
    let (code, _) = get_json(&format!("{api}/healthz")).await;
    assert_eq!(code, 200);
    signal(&first, libc::SIGTERM);
}

#[tokio::test]
async fn a_state_directory_that_is_the_root_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("state");
    std::os::unix::fs::symlink("/", &link).unwrap();
    let path = write_config(dir.path(), &config(&link, "127.0.0.1:9"));
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sitewatch"))
        .args(["run", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("refusing to keep state in the root directory"),
        "{err}"
    );
    assert!(!Path::new("/sitewatch.db").exists());
    assert!(!Path::new("/.sitewatch-write-test").exists());
}

#[tokio::test]
async fn a_second_stop_signal_ends_a_slow_drain_at_once() {
    // A site whose probe hangs for 8 s: the first SIGTERM drains (up to
    // 5 s for probes in flight), the second ends it without waiting.
    let dir = tempfile::tempdir().unwrap();
    let hang = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let text = format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n\n[[site]]\nname = \"hang\"\nurl = \"http://{}/\"\ninterval = \"10s\"\ntimeout = \"8s\"\n",
        dir.path().join("state").display(),
        hang.local_addr().unwrap()
    );
    let path = write_config(dir.path(), &text);
    let (mut child, api, _logs) = spawn_daemon(&path).await;
    wait_for("the probe to be in flight", Duration::from_secs(15), || {
        let api = api.clone();
        async move {
            let (_, h) = get_json(&format!("{api}/healthz")).await;
            (h["scheduler"]["in_flight"] == 1).then_some(())
        }
    })
    .await;
    signal(&child, libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = std::time::Instant::now();
    signal(&child, libc::SIGTERM);
    let status = tokio::time::timeout(Duration::from_secs(3), child.wait())
        .await
        .expect("a second SIGTERM must end the drain at once")
        .unwrap();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_ne!(status.code(), Some(0), "{status:?}");
    drop(hang);
}
