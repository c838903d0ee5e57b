//! Heartbeats end to end: the daemon runs as a child process, jobs ping it
//! over real HTTP (curl-style requests, and `sitewatch ping` wrapping real
//! commands), alerts reach a local webhook receiver, and the daemon is
//! killed and restarted where restart safety is claimed. Deadlines run in
//! real time with the shortest period sitewatch allows (10 s); the
//! deadline arithmetic across days, time zones and daylight-saving nights
//! is table-tested in the library (`heartbeat::judge`, `heartbeat::cron`).

mod common;

use common::daemon::{
    get_json, kill9, spawn_daemon, wait_for, wait_log, wait_status, write_config,
};
use common::http::AcceptClose;
use common::receiver::{Receiver, Recorded};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const KEY: &str = "hb-0123456789abcdefghijklmnop";
const OTHER_KEY: &str = "hb-zyxwvutsrqponmlkjihgfedcba";

fn config(state: &Path, hook: &str, heartbeat: &str) -> String {
    format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n\n[alert.hook]\ntype = \"webhook\"\nurl = \"{hook}\"\n\n[[heartbeat]]\nname = \"backup\"\nkey = \"{KEY}\"\n{heartbeat}\n",
        state.display()
    )
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn ping(api: &str, path: &str) -> u16 {
    client()
        .get(format!("{api}{path}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
        .status()
        .as_u16()
}

async fn post(api: &str, path: &str, body: impl Into<reqwest::Body>) -> u16 {
    client()
        .post(format!("{api}{path}"))
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
        .status()
        .as_u16()
}

/// The webhook bodies of one kind of event.
fn events(calls: &[Recorded], event: &str) -> Vec<Value> {
    calls
        .iter()
        .map(Recorded::json)
        .filter(|j| j["event"] == event)
        .collect()
}

#[tokio::test]
async fn a_heartbeat_pinged_on_time_stays_up_and_a_missed_one_alerts_once() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start_ok().await;
    let path = write_config(
        dir.path(),
        &config(
            &dir.path().join("state"),
            &hook.url("/hook"),
            "period = \"10s\"\ngrace = \"1s\"",
        ),
    );
    let (child, api, _logs) = spawn_daemon(&path).await;

    let (_, j) = get_json(&format!("{api}/status/backup")).await;
    assert_eq!(j["status"], "unknown", "{j}");
    assert_eq!(j["url"], "heartbeat:backup");
    // A wrong key says nothing about which keys exist.
    assert_eq!(ping(&api, &format!("/ping/{OTHER_KEY}")).await, 404);
    assert_eq!(ping(&api, &format!("/ping/{KEY}/256")).await, 404);

    // On time: up at once (a ping is judged when it arrives), and it stays
    // up while pings keep coming within the period.
    assert_eq!(ping(&api, &format!("/ping/{KEY}")).await, 200);
    wait_status(&api, "backup", "up", None, Duration::from_secs(3)).await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(ping(&api, &format!("/ping/{KEY}")).await, 200);
        let (_, j) = get_json(&format!("{api}/status/backup")).await;
        assert_eq!(j["status"], "up", "{j}");
    }
    assert!(events(&hook.requests(), "down").is_empty());

    // Silence: missed once the period and grace have passed (judged at
    // least every 5 s), one alert, no second one while it stays missed.
    let down = wait_status(
        &api,
        "backup",
        "down",
        Some("heartbeat.missed"),
        Duration::from_secs(20),
    )
    .await;
    assert!(
        down["detail"]
            .as_str()
            .unwrap()
            .starts_with("no ping since "),
        "{down}"
    );
    let first = wait_for("the down alert", Duration::from_secs(5), || {
        let calls = hook.requests();
        async move { events(&calls, "down").first().cloned() }
    })
    .await;
    assert_eq!(first["cause"], "heartbeat.missed", "{first}");
    assert_eq!(first["site"], "backup");
    assert!(
        first["hint"].as_str().unwrap().contains("crontab"),
        "{first}"
    );
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(events(&hook.requests(), "down").len(), 1);

    // The job is back: recovered at once, with the outage's length.
    assert_eq!(ping(&api, &format!("/ping/{KEY}/0")).await, 200);
    let rec = wait_for("the recovery", Duration::from_secs(5), || {
        let calls = hook.requests();
        async move { events(&calls, "recovered").first().cloned() }
    })
    .await;
    assert!(rec["outage_s"].as_f64().unwrap() >= 6.0, "{rec}");
    kill9(child).await;
}

#[tokio::test]
async fn a_failing_job_alerts_with_its_exit_code_and_output() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start_ok().await;
    let path = write_config(
        dir.path(),
        &config(
            &dir.path().join("state"),
            &hook.url("/hook"),
            "period = \"1h\"",
        ),
    );
    let (child, api, _logs) = spawn_daemon(&path).await;
    let port = api.rsplit(':').next().unwrap().to_string();
    // `sitewatch ping` finds the key and the address in the same file.
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    let client_config = dir.path().join("client.toml");
    std::fs::write(&client_config, text).unwrap();

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sitewatch"))
        .args(["ping", "backup", "--config"])
        .arg(&client_config)
        .args([
            "--",
            "sh",
            "-c",
            "echo dumping db; echo 'pg_dump: error: connection to server failed' >&2; exit 1",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "the job's exit code is kept");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "dumping db\n");

    let down = wait_status(
        &api,
        "backup",
        "down",
        Some("heartbeat.failed"),
        Duration::from_secs(5),
    )
    .await;
    let detail = down["detail"].as_str().unwrap();
    assert!(detail.contains("exit code 1"), "{detail}");
    assert!(detail.contains("pg_dump: error: connection"), "{detail}");
    let alert = wait_for("the down alert", Duration::from_secs(5), || {
        let calls = hook.requests();
        async move { events(&calls, "down").first().cloned() }
    })
    .await;
    assert_eq!(alert["cause"], "heartbeat.failed");
    assert!(
        alert["detail"]
            .as_str()
            .unwrap()
            .contains("pg_dump: error: connection"),
        "{alert}"
    );

    // A /fail with a body says the same over plain HTTP, and a success
    // ends the outage.
    assert_eq!(
        post(
            &api,
            &format!("/ping/{KEY}/fail"),
            "rsync: No space left on device"
        )
        .await,
        200
    );
    let (_, j) = get_json(&format!("{api}/status/backup")).await;
    assert!(
        j["detail"].as_str().unwrap().contains("No space left"),
        "{j}"
    );
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sitewatch"))
        .args(["ping", "--url", &format!("{api}/ping/{KEY}"), "--", "true"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    wait_status(&api, "backup", "up", None, Duration::from_secs(5)).await;

    // A wrapper that cannot find its heartbeat still runs the job (the
    // deadline will tell), and keeps its exit code.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sitewatch"))
        .args(["ping", "nosuch", "--config"])
        .arg(&client_config)
        .args(["--", "sh", "-c", "echo ran; exit 4"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no heartbeat named \"nosuch\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    kill9(child).await;
}

#[tokio::test]
async fn run_ids_pair_overlapping_runs_and_a_run_that_never_ends_overruns_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start_ok().await;
    let path = write_config(
        dir.path(),
        &config(
            &dir.path().join("state"),
            &hook.url("/hook"),
            "period = \"1h\"\nmax_runtime = \"4s\"",
        ),
    );
    let (child, api, _logs) = spawn_daemon(&path).await;
    assert_eq!(ping(&api, &format!("/ping/{KEY}/start?rid=a")).await, 200);
    assert_eq!(ping(&api, &format!("/ping/{KEY}/start?rid=b")).await, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ping(&api, &format!("/ping/{KEY}?rid=a")).await, 200);
    let up = wait_status(&api, "backup", "up", None, Duration::from_secs(3)).await;
    assert!(
        up["detail"].as_str().unwrap().starts_with("running since"),
        "run b is still open: {up}"
    );
    // An invalid run id is refused, not stored.
    assert_eq!(
        ping(&api, &format!("/ping/{KEY}/start?rid=%3Cscript%3E")).await,
        400
    );

    // Killed while run b is open; the open run comes back with the restart.
    tokio::time::sleep(Duration::from_millis(300)).await;
    kill9(child).await;
    let (child, api, _logs) = spawn_daemon(&path).await;
    let down = wait_status(
        &api,
        "backup",
        "down",
        Some("heartbeat.overrun"),
        Duration::from_secs(12),
    )
    .await;
    assert!(
        down["detail"].as_str().unwrap().contains("(run b)"),
        "{down}"
    );
    // Run b ends: up again.
    assert_eq!(ping(&api, &format!("/ping/{KEY}?rid=b")).await, 200);
    wait_status(&api, "backup", "up", None, Duration::from_secs(3)).await;
    let downs = events(&hook.requests(), "down");
    assert_eq!(downs.len(), 1, "{downs:?}");
    assert_eq!(downs[0]["cause"], "heartbeat.overrun");
    kill9(child).await;
}

#[tokio::test]
async fn a_huge_body_is_cut_a_flood_is_slowed_and_probes_keep_their_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start_ok().await;
    let server = AcceptClose::bind("127.0.0.1:0").await.unwrap();
    let mut text = config(
        &dir.path().join("state"),
        &hook.url("/hook"),
        "period = \"1h\"",
    );
    text = text.replace("[daemon]\n", "[daemon]\nping_listen = \"127.0.0.1:0\"\n");
    text.push_str(&format!(
        "\n[[site]]\nname = \"web\"\nurl = \"tcp://{}\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n",
        server.addr
    ));
    let path = write_config(dir.path(), &text);
    let (child, api, mut logs) = spawn_daemon(&path).await;
    let line = wait_log(
        &mut logs,
        "listening for heartbeat pings",
        Duration::from_secs(5),
    )
    .await;
    let pings = format!(
        "http://{}",
        line.split("addr=")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
    );
    wait_status(&api, "web", "up", None, Duration::from_secs(5)).await;
    // The ping listener serves pings only.
    let (code, _) = get_json(&format!("{pings}/status")).await;
    assert_eq!(code, 404);

    // 10 MB: answered, the first 100 KB read, 10 KB kept.
    let big = format!("{}THE-END", "x".repeat(10 << 20));
    assert_eq!(post(&pings, &format!("/ping/{KEY}/fail"), big).await, 200);
    let (_, j) = get_json(&format!("{api}/status/backup")).await;
    assert_eq!(j["cause"], "heartbeat.failed", "{j}");
    assert!(
        j["detail"].as_str().unwrap().contains("THE-END"),
        "the end of the body is kept: {j}"
    );
    assert!(
        j["detail"].as_str().unwrap().len() < 2_000,
        "the alert shows an excerpt"
    );

    // A flood on one key: 429 with Retry-After once its burst is spent.
    let client = client();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    let flood = async {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let client = client.clone();
            let url = format!("{pings}/ping/{KEY}");
            set.spawn(async move {
                let mut seen = Vec::new();
                for _ in 0..250 {
                    let r = client.get(&url).send().await.unwrap();
                    let retry = r
                        .headers()
                        .get("retry-after")
                        .map(|v| v.to_str().unwrap().to_string());
                    seen.push((r.status().as_u16(), retry));
                }
                seen
            });
        }
        while let Some(r) = set.join_next().await {
            for (code, retry) in r.unwrap() {
                statuses.push(code);
                if retry.is_some() {
                    retry_after = retry;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), flood)
        .await
        .expect("the flood ends");
    let ok = statuses.iter().filter(|&&c| c == 200).count();
    let slowed = statuses.iter().filter(|&&c| c == 429).count();
    assert_eq!(ok + slowed, 2000, "only 200 and 429");
    assert!(
        (15..=200).contains(&ok),
        "burst of 20, then 2 per second: {ok} accepted"
    );
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().unwrap() >= 1));

    // The probes kept their schedule meanwhile.
    let (_, h) = get_json(&format!("{api}/healthz")).await;
    let p99 = h["scheduler"]["lag_ms"]["p99"].as_f64().unwrap();
    assert!(p99 < 100.0, "probe lag p99 {p99} ms during the flood");
    let (_, web) = get_json(&format!("{api}/status/web")).await;
    assert_eq!(web["status"], "up", "{web}");
    kill9(child).await;

    // What was stored of the 10 MB body: its tail, at most 10 KB.
    let conn = rusqlite::Connection::open(dir.path().join("state/sitewatch.db")).unwrap();
    let len: i64 = conn
        .query_row(
            "SELECT length(record) FROM heartbeat WHERE name = 'backup'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(len < 30_000, "record of {len} bytes");
}

#[tokio::test]
async fn an_uptime_kuma_push_url_works_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start_ok().await;
    let path = write_config(
        dir.path(),
        &config(
            &dir.path().join("state"),
            &hook.url("/hook"),
            "period = \"1h\"",
        ),
    );
    let (child, api, _logs) = spawn_daemon(&path).await;
    let r = client()
        .get(format!(
            "{api}/api/push/{KEY}?status=down&msg=backup%20failed&ping=12"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap(), "{\"ok\":true}");
    let down = wait_status(
        &api,
        "backup",
        "down",
        Some("heartbeat.failed"),
        Duration::from_secs(3),
    )
    .await;
    assert!(
        down["detail"].as_str().unwrap().contains("backup failed"),
        "{down}"
    );
    assert_eq!(
        ping(&api, &format!("/api/push/{KEY}?status=up&msg=OK")).await,
        200
    );
    wait_status(&api, "backup", "up", None, Duration::from_secs(3)).await;
    assert_eq!(
        ping(&api, &format!("/api/push/{OTHER_KEY}?status=up")).await,
        404
    );

    // What it received is on /status, the page and /metrics.
    let (_, j) = get_json(&format!("{api}/status/backup")).await;
    assert_eq!(j["heartbeat"]["pings"], 2, "{j}");
    assert_eq!(j["heartbeat"]["last_output"], "OK", "{j}");
    let page = client()
        .get(format!("{api}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Heartbeat: last ping"),
        "the page shows the heartbeat"
    );
    let metrics = client()
        .get(format!("{api}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("sitewatch_heartbeat_last_success_timestamp_seconds{site=\"backup\"}")
        })
        .unwrap_or_else(|| panic!("no last-success series in\n{metrics}"));
    let at: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - at).abs() < 30.0, "{line}");
    assert!(
        metrics.contains("sitewatch_heartbeat_running{site=\"backup\"} 0"),
        "{metrics}"
    );
    kill9(child).await;
}

#[tokio::test]
async fn a_run_too_fast_to_be_true_and_a_late_ping_degrade_it() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start_ok().await;
    let mut text = config(
        &dir.path().join("state"),
        &hook.url("/hook"),
        "period = \"10s\"\ngrace = \"6s\"\nmin_runtime = \"2s\"\nlate = true",
    );
    text = text.replace(
        "type = \"webhook\"\n",
        "type = \"webhook\"\nstorm_hold = \"0s\"\n",
    );
    let path = write_config(dir.path(), &text);
    let (child, api, _logs) = spawn_daemon(&path).await;

    // A backup that "finished" in no time most likely did nothing.
    assert_eq!(ping(&api, &format!("/ping/{KEY}/start?rid=r1")).await, 200);
    assert_eq!(ping(&api, &format!("/ping/{KEY}?rid=r1")).await, 200);
    let fast = wait_status(
        &api,
        "backup",
        "degraded",
        Some("heartbeat.too_fast"),
        Duration::from_secs(3),
    )
    .await;
    assert!(
        fast["detail"]
            .as_str()
            .unwrap()
            .contains("under min_runtime 2s"),
        "{fast}"
    );
    let alert = wait_for("the degraded alert", Duration::from_secs(5), || {
        let calls = hook.requests();
        async move { events(&calls, "degraded").first().cloned() }
    })
    .await;
    assert_eq!(alert["cause"], "heartbeat.too_fast");

    // No ping at the expected time: late inside the grace, then missed.
    wait_status(
        &api,
        "backup",
        "degraded",
        Some("heartbeat.late"),
        Duration::from_secs(15),
    )
    .await;
    wait_status(
        &api,
        "backup",
        "down",
        Some("heartbeat.missed"),
        Duration::from_secs(12),
    )
    .await;
    kill9(child).await;
}
