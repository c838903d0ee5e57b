//! The daemon as a systemd service would run it: sd_notify messages on a
//! real Unix datagram socket (READY, STATUS, WATCHDOG, RELOADING, STOPPING),
//! and hot reload on SIGHUP that applies only the difference, or keeps
//! everything when the new file is invalid.

mod common;

use common::daemon::{get_json, signal, spawn_daemon, wait_for, wait_status, write_config};
use common::http::AcceptClose;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UnixDatagram;
use tokio::process::{Child, Command};

async fn spawn_notified(config: &std::path::Path, socket: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sitewatch"))
        .args(["run", "--config"])
        .arg(config)
        .env("NOTIFY_SOCKET", socket)
        .env("WATCHDOG_USEC", "400000")
        .env("SITEWATCH_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line
                .split("addr=")
                .nth(1)
                .filter(|_| line.contains("api listening"))
            {
                return rest.split_whitespace().next().unwrap().to_string();
            }
        }
        panic!("the daemon exited before listening");
    })
    .await
    .expect("listening within 10 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, format!("http://{addr}"))
}

/// Reads notifications until one contains `want` (bounded).
async fn expect(sock: &UnixDatagram, want: &str, seen: &mut Vec<String>) {
    let mut buf = vec![0u8; 4096];
    let limit = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n = tokio::time::timeout_at(limit, sock.recv(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {want:?} within 10 s; saw {seen:#?}"))
            .unwrap();
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        seen.push(msg.clone());
        if msg.lines().any(|l| l == want || l.starts_with(want)) {
            return;
        }
    }
}

fn config_text(state: &std::path::Path, sites: &str) -> String {
    format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n\n[defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\n\n{sites}",
        state.display()
    )
}

#[tokio::test]
async fn systemd_hears_ready_status_watchdog_reloading_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&socket_path).unwrap();
    let path = write_config(
        dir.path(),
        &config_text(
            &dir.path().join("state"),
            "[[site]]\nname = \"x\"\nurl = \"tcp://127.0.0.1:9\"\n",
        ),
    );
    let (child, _api) = spawn_notified(&path, &socket_path).await;
    let mut seen = Vec::new();
    expect(&sock, "READY=1", &mut seen).await;
    expect(&sock, "STATUS=1 sites:", &mut seen).await;
    // WATCHDOG_USEC=400 ms: pinged every 200 ms, from the scheduler loop (at most once a second a turn).
    let before = seen.iter().filter(|m| m.contains("WATCHDOG=1")).count();
    for _ in 0..3 {
        expect(&sock, "WATCHDOG=1", &mut seen).await;
    }
    assert!(seen.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= before + 3);
    signal(&child, libc::SIGHUP);
    expect(&sock, "RELOADING=1", &mut seen).await;
    expect(&sock, "READY=1", &mut seen).await;
    signal(&child, libc::SIGTERM);
    expect(&sock, "STOPPING=1", &mut seen).await;
    let mut child = child;
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

async fn since(api: &str, site: &str) -> String {
    let (_, j) = get_json(&format!("{api}/status/{site}")).await;
    j["since"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn sighup_applies_only_the_difference() {
    let dir = tempfile::tempdir().unwrap();
    let up = AcceptClose::bind("127.0.0.1:0").await.unwrap();
    let state = dir.path().join("state");
    let before = format!(
        "[[site]]\nname = \"keep\"\nurl = \"tcp://{}\"\n\n[[site]]\nname = \"change\"\nurl = \"tcp://127.0.0.1:9\"\n\n[[site]]\nname = \"drop\"\nurl = \"tcp://127.0.0.1:9\"\n",
        up.addr
    );
    let path = write_config(dir.path(), &config_text(&state, &before));
    let (child, api, _logs) = spawn_daemon(&path).await;
    wait_status(&api, "keep", "up", None, Duration::from_secs(5)).await;
    wait_status(
        &api,
        "change",
        "down",
        Some("tcp.refused"),
        Duration::from_secs(6),
    )
    .await;
    let keep_since = since(&api, "keep").await;
    let change_since = since(&api, "change").await;

    // An invalid file: every site stays exactly as it was, probing goes on.
    std::fs::write(
        &path,
        config_text(
            &state,
            &format!("{before}\n[[site]]\nname = \"bad\"\nurl = \"ftp://x\"\n"),
        ),
    )
    .unwrap();
    let (_, h0) = get_json(&format!("{api}/healthz")).await;
    signal(&child, libc::SIGHUP);
    let h = wait_for("the failed reload to show", Duration::from_secs(10), || {
        let api = api.clone();
        async move {
            let (_, h) = get_json(&format!("{api}/healthz")).await;
            (h["config"]["last_reload_ok"] == false).then_some(h)
        }
    })
    .await;
    let err = h["config"]["last_reload_error"].as_str().unwrap();
    assert!(
        err.contains("sites.toml:") && err.contains("unsupported scheme \"ftp\""),
        "{err}"
    );
    assert_eq!(since(&api, "keep").await, keep_since);
    assert_eq!(since(&api, "change").await, change_since);
    let (code, _) = get_json(&format!("{api}/status/drop")).await;
    assert_eq!(code, 200, "nothing removed by an invalid file");
    wait_for("probing to go on", Duration::from_secs(10), || {
        let api = api.clone();
        let p0 = h0["scheduler"]["probes"].as_u64().unwrap();
        async move {
            let (_, h) = get_json(&format!("{api}/healthz")).await;
            (h["scheduler"]["probes"].as_u64().unwrap() > p0 + 3).then_some(())
        }
    })
    .await;

    // A valid file: keep is untouched, change starts over, drop goes, add comes.
    let after = format!(
        "[[site]]\nname = \"keep\"\nurl = \"tcp://{}\"\n\n[[site]]\nname = \"change\"\nurl = \"tcp://127.0.0.1:9\"\ninterval = \"2s\"\n\n[[site]]\nname = \"add\"\nurl = \"tcp://127.0.0.1:9\"\n",
        up.addr
    );
    std::fs::write(&path, config_text(&state, &after)).unwrap();
    signal(&child, libc::SIGHUP);
    wait_for("the reload to apply", Duration::from_secs(10), || {
        let api = api.clone();
        async move {
            let (code, _) = get_json(&format!("{api}/status/drop")).await;
            (code == 404).then_some(())
        }
    })
    .await;
    let (_, h) = get_json(&format!("{api}/healthz")).await;
    assert_eq!(h["config"]["last_reload_ok"], true, "{h}");
    assert_eq!(
        since(&api, "keep").await,
        keep_since,
        "an unchanged site keeps its state"
    );
    let (_, keep) = get_json(&format!("{api}/status/keep")).await;
    assert_eq!(keep["status"], "up");
    let (_, change) = get_json(&format!("{api}/status/change")).await;
    assert_eq!(change["interval_s"], 2.0);
    assert_ne!(
        change["since"].as_str().unwrap(),
        change_since,
        "a changed site starts over"
    );
    wait_status(
        &api,
        "add",
        "down",
        Some("tcp.refused"),
        Duration::from_secs(6),
    )
    .await;
    let (_, all) = get_json(&format!("{api}/status")).await;
    let names: Vec<&str> = all["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["keep", "change", "add"]);
    signal(&child, libc::SIGTERM);
    let mut child = child;
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
}

#[tokio::test]
async fn the_heartbeat_url_hears_from_a_healthy_scheduler() {
    let dir = tempfile::tempdir().unwrap();
    let switch = common::receiver::Receiver::start_ok().await;
    let text = format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\nheartbeat_url = \"{}\"\nheartbeat_every = \"1s\"\n\n[[site]]\nname = \"x\"\nurl = \"tcp://127.0.0.1:9\"\ninterval = \"1m\"\n",
        dir.path().join("state").display(),
        switch.url("/ping/abc")
    );
    let path = write_config(dir.path(), &text);
    let (child, _api, _logs) = spawn_daemon(&path).await;
    let pings = switch.wait_for(3, Duration::from_secs(10)).await;
    assert!(
        pings
            .iter()
            .all(|p| p.method == "GET" && p.path == "/ping/abc"),
        "{pings:?}"
    );
    let gap = pings[2].at - pings[1].at;
    assert!(
        gap >= Duration::from_millis(700) && gap <= Duration::from_millis(2500),
        "every second: {gap:?}"
    );
    signal(&child, libc::SIGTERM);
    let mut child = child;
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
}
