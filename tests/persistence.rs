//! Memory across restarts and storage faults, with the daemon as a child
//! process killed with SIGKILL at chosen moments, real SQLite files in
//! temporary directories, and (as root) small tmpfs mounts that are made
//! read-only or full.

mod common;

use common::daemon::{get_json, kill9, spawn_daemon, wait_for, wait_status, write_config};
use common::http::AcceptClose;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

fn config(state_dir: &Path, target: &str) -> String {
    format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n\n[defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\n\n[[site]]\nname = \"app\"\nurl = \"tcp://{target}\"\n",
        state_dir.display()
    )
}

async fn incidents(api: &str) -> Vec<Value> {
    let (code, j) = get_json(&format!("{api}/incidents?site=app")).await;
    assert_eq!(code, 200, "{j}");
    j["incidents"].as_array().unwrap().clone()
}

fn since(j: &Value) -> SystemTime {
    humantime::parse_rfc3339(j["since"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn an_outage_survives_sigkill_and_recovers_with_its_true_length() {
    let dir = tempfile::tempdir().unwrap();
    let server = AcceptClose::bind("127.0.0.1:0").await.unwrap();
    let target = server.addr;
    let path = write_config(
        dir.path(),
        &config(&dir.path().join("state"), &target.to_string()),
    );

    let (child, api, _logs) = spawn_daemon(&path).await;
    wait_status(&api, "app", "up", None, Duration::from_secs(5)).await;
    server.close().await;
    let down = wait_status(
        &api,
        "app",
        "down",
        Some("tcp.refused"),
        Duration::from_secs(6),
    )
    .await;
    let outage_start = since(&down);
    wait_for("the incident to be written", Duration::from_secs(5), || {
        let api = api.clone();
        async move { (incidents(&api).await.len() == 1).then_some(()) }
    })
    .await;
    // Let the writer commit (it writes at least once a second), then kill without warning.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    kill9(child).await;

    // Restarted: still down since the same moment, with no second incident.
    let (child, api, _logs) = spawn_daemon(&path).await;
    let (_, j) = get_json(&format!("{api}/status/app")).await;
    assert_eq!(
        (j["status"].as_str(), j["cause"].as_str()),
        (Some("down"), Some("tcp.refused")),
        "resumed before any probe: {j}"
    );
    assert_eq!(since(&j), outage_start);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, j) = get_json(&format!("{api}/status/app")).await;
    assert_eq!(j["status"], "down");
    assert_eq!(
        since(&j),
        outage_start,
        "more failures keep the outage's start"
    );
    let list = incidents(&api).await;
    assert_eq!(list.len(), 1, "no duplicate outage: {list:#?}");
    assert!(list[0]["ended_at"].is_null());

    // Recovery: the outage length counts from before the restart.
    let _server = AcceptClose::bind(&target.to_string()).await.unwrap();
    let j = wait_status(&api, "app", "up", None, Duration::from_secs(6)).await;
    assert_eq!(j["last_change"]["kind"], "recovered");
    let outage = j["last_change"]["outage_s"].as_f64().unwrap();
    let lower = SystemTime::now()
        .duration_since(outage_start)
        .unwrap()
        .as_secs_f64()
        - 3.0;
    assert!(
        outage >= lower,
        "outage {outage}s should cover the restart (≥ {lower}s)"
    );
    let list = wait_for("the incident to close", Duration::from_secs(5), || {
        let api = api.clone();
        async move {
            let list = incidents(&api).await;
            (!list[0]["ended_at"].is_null()).then_some(list)
        }
    })
    .await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["causes"][0]["cause"], "tcp.refused");
    assert!(
        list[0]["first_error"].as_str().unwrap().contains("refused"),
        "{list:#?}"
    );

    // History and uptime come from the same store.
    let (code, h) = get_json(&format!("{api}/status/app/history")).await;
    assert_eq!(code, 200, "{h}");
    assert_eq!(h["resolution"], "raw");
    let points = h["points"].as_array().unwrap();
    assert!(
        points.iter().any(|p| p["status"] == "down") && points.iter().any(|p| p["status"] == "up"),
        "{h}"
    );
    let uptime = wait_for("uptime figures", Duration::from_secs(8), || {
        let api = api.clone();
        async move {
            let (_, j) = get_json(&format!("{api}/status/app")).await;
            j["uptime"]["24h"].as_f64()
        }
    })
    .await;
    assert!(uptime > 0.0 && uptime < 100.0, "uptime {uptime}");
    kill9(child).await;
}

#[tokio::test]
async fn a_site_that_recovered_while_sitewatch_was_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap();
    drop(listener);
    let path = write_config(
        dir.path(),
        &config(&dir.path().join("state"), &target.to_string()),
    );
    let (child, api, _logs) = spawn_daemon(&path).await;
    let down = wait_status(
        &api,
        "app",
        "down",
        Some("tcp.refused"),
        Duration::from_secs(6),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    kill9(child).await;
    let _server = AcceptClose::bind(&target.to_string()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let (child, api, _logs) = spawn_daemon(&path).await;
    let j = wait_status(&api, "app", "up", None, Duration::from_secs(6)).await;
    assert_eq!(j["last_change"]["kind"], "recovered", "{j}");
    let outage = j["last_change"]["outage_s"].as_f64().unwrap();
    assert!(
        outage >= 3.0,
        "the outage ran from {} across the stop: {outage}s",
        down["since"]
    );
    kill9(child).await;
}

#[tokio::test]
async fn a_corrupt_database_is_moved_aside_not_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("sitewatch.db"),
        b"this is not an SQLite database, it is garbage ".repeat(200),
    )
    .unwrap();
    let path = write_config(dir.path(), &config(&state, "127.0.0.1:9"));
    let (child, api, _logs) = spawn_daemon(&path).await;
    let (code, h) = get_json(&format!("{api}/healthz")).await;
    assert_eq!(code, 200, "{h}");
    wait_status(
        &api,
        "app",
        "down",
        Some("tcp.refused"),
        Duration::from_secs(6),
    )
    .await;
    let aside: Vec<PathBuf> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("sitewatch.db.corrupt-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(
        std::fs::read(&aside[0])
            .unwrap()
            .starts_with(b"this is not an SQLite")
    );
    kill9(child).await;
}

/// A small tmpfs mounted for one test, unmounted on drop. Needs root.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str, test: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .unwrap();
        if !out.status.success() {
            let msg = format!(
                "SKIPPED {test}: cannot mount a tmpfs ({}); storage-fault tests need root",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            if std::env::var_os("CI").is_some() {
                panic!("{msg} (CI must run every test)");
            }
            eprintln!("\n!!!!!!!! {msg} !!!!!!!!\n");
            return None;
        }
        Some(Tmpfs {
            path: path.to_path_buf(),
        })
    }

    fn remount(&self, opts: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(&self.path)
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

async fn wait_health(api: &str, want: u16, limit: Duration) -> Value {
    let url = format!("{api}/healthz");
    wait_for(&format!("/healthz to answer {want}"), limit, || {
        let url = url.clone();
        async move {
            let (code, j) = get_json(&url).await;
            (code == want).then_some(j)
        }
    })
    .await
}

#[tokio::test]
async fn a_read_only_state_directory_never_stops_probing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(
        &dir.path().join("state"),
        "4m",
        "a_read_only_state_directory_never_stops_probing",
    ) else {
        return;
    };
    fs.remount("ro");
    let server = AcceptClose::bind("127.0.0.1:0").await.unwrap();
    let path = write_config(dir.path(), &config(&fs.path, &server.addr.to_string()));
    let (child, api, _logs) = spawn_daemon(&path).await;
    let h = wait_health(&api, 503, Duration::from_secs(5)).await;
    assert_eq!(h["status"], "error");
    assert!(
        h["storage_error"]
            .as_str()
            .unwrap()
            .contains("sitewatch.db"),
        "{h}"
    );
    // Probing and state changes go on regardless.
    wait_status(&api, "app", "up", None, Duration::from_secs(5)).await;
    let addr = server.close().await;
    wait_status(
        &api,
        "app",
        "down",
        Some("tcp.refused"),
        Duration::from_secs(6),
    )
    .await;

    // Writable again: sitewatch recovers on its own and writes what it kept.
    fs.remount("rw");
    wait_health(&api, 200, Duration::from_secs(15)).await;
    let list = wait_for(
        "the outage kept in memory to reach the disk",
        Duration::from_secs(10),
        || {
            let api = api.clone();
            async move {
                let list = incidents(&api).await;
                (!list.is_empty()).then_some(list)
            }
        },
    )
    .await;
    assert_eq!(
        list[0]["causes"][0]["cause"], "tcp.refused",
        "{list:#?} ({addr})"
    );
    kill9(child).await;
}

#[tokio::test]
async fn a_full_disk_never_stops_probing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(
        &dir.path().join("state"),
        "2m",
        "a_full_disk_never_stops_probing",
    ) else {
        return;
    };
    let path = write_config(dir.path(), &config(&fs.path, "127.0.0.1:9"));
    let (child, api, _logs) = spawn_daemon(&path).await;
    wait_status(
        &api,
        "app",
        "down",
        Some("tcp.refused"),
        Duration::from_secs(6),
    )
    .await;
    // Fill the filesystem to the last byte.
    let filler = fs.path.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", filler.display()))
        .output();
    let h = wait_health(&api, 503, Duration::from_secs(30)).await;
    assert!(h["storage_error"].as_str().is_some(), "{h}");
    let (_, before) = get_json(&format!("{api}/healthz")).await;
    let before = before["scheduler"]["probes"].as_u64().unwrap();
    wait_for(
        "probing to go on with the disk full",
        Duration::from_secs(10),
        || {
            let api = api.clone();
            async move {
                let (_, after) = get_json(&format!("{api}/healthz")).await;
                (after["scheduler"]["probes"].as_u64().unwrap() >= before + 2).then_some(())
            }
        },
    )
    .await;
    std::fs::remove_file(&filler).unwrap();
    wait_health(&api, 200, Duration::from_secs(15)).await;
    kill9(child).await;
}
