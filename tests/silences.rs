//! Silences end to end: the daemon runs as a child process, real TCP
//! servers go away, alerts reach a local webhook receiver, and silences
//! are made over the HTTP API and with `sitewatch silence` (which finds the
//! API and its token in the sites file).

mod common;

use common::daemon::{get_json, kill9, spawn_daemon, wait_for, wait_status, write_config};
use common::http::AcceptClose;
use common::receiver::{Receiver, Recorded};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, SystemTime};

const TOKEN: &str = "silence-test-token-0123456789";

fn config(state: &Path, hook: &str, blog: &str, shop: &str, token_file: Option<&Path>) -> String {
    let token = token_file.map_or_else(String::new, |p| {
        format!("api_token_file = \"{}\"\n", p.display())
    });
    format!(
        r#"[daemon]
listen = "127.0.0.1:0"
state_dir = "{}"
{token}
[defaults]
interval = "1s"
timeout = "500ms"
confirm_down = 1
confirm_up = 1

[alert.hook]
type = "webhook"
url = "{hook}"
storm_hold = "0s"

[[site]]
name = "blog"
url = "tcp://{blog}"
tags = ["wordpress"]

[[site]]
name = "shop"
url = "tcp://{shop}"
"#,
        state.display()
    )
}

fn events(calls: &[Recorded], event: &str, site: &str) -> Vec<Value> {
    calls
        .iter()
        .map(Recorded::json)
        .filter(|j| j["event"] == event && j["site"] == site)
        .collect()
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

#[tokio::test]
async fn a_silence_mutes_exactly_its_matches_survives_a_restart_and_ends_on_time() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start_ok().await;
    let blog = AcceptClose::bind("127.0.0.1:0").await.unwrap();
    let shop = AcceptClose::bind("127.0.0.1:0").await.unwrap();
    let (blog_addr, shop_addr) = (blog.addr, shop.addr);
    let path = write_config(
        dir.path(),
        &config(
            &dir.path().join("state"),
            &hook.url("/hook"),
            &blog_addr.to_string(),
            &shop_addr.to_string(),
            None,
        ),
    );
    let (child, api, _logs) = spawn_daemon(&path).await;
    wait_status(&api, "blog", "up", None, Duration::from_secs(5)).await;
    wait_status(&api, "shop", "up", None, Duration::from_secs(5)).await;

    // Bad silences are refused with a reason.
    let now = SystemTime::now();
    let bad = client()
        .post(format!("{api}/api/v1/silences"))
        .json(&json!({
            "matchers": [{"name": "instance", "value": "x", "isRegex": false}],
            "startsAt": humantime::format_rfc3339(now).to_string(),
            "endsAt": humantime::format_rfc3339(now + Duration::from_secs(60)).to_string(),
            "createdBy": "test", "comment": ""
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    assert!(
        bad.text()
            .await
            .unwrap()
            .contains("site, tag, cause, heartbeat")
    );

    // Mute the WordPress sites (by tag pattern) for 8 s.
    let ends = now + Duration::from_secs(8);
    let made: Value = client()
        .post(format!("{api}/api/v1/silences"))
        .json(&json!({
            "matchers": [{"name": "tag", "value": "word.*", "isRegex": true, "isEqual": true}],
            "startsAt": humantime::format_rfc3339(now).to_string(),
            "endsAt": humantime::format_rfc3339(ends).to_string(),
            "createdBy": "ops", "comment": "plugin update"
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = made["silenceID"].as_str().expect("an id").to_string();

    // Both go down: only shop is alerted; blog's state goes on.
    blog.close().await;
    shop.close().await;
    wait_for("shop's down alert", Duration::from_secs(10), || {
        let calls = hook.requests();
        async move { (!events(&calls, "down", "shop").is_empty()).then_some(()) }
    })
    .await;
    wait_status(
        &api,
        "blog",
        "down",
        Some("tcp.refused"),
        Duration::from_secs(5),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        events(&hook.requests(), "down", "blog").is_empty(),
        "blog is silenced"
    );

    // It survives a restart.
    kill9(child).await;
    let (child, api, _logs) = spawn_daemon(&path).await;
    let (_, list) = get_json(&format!("{api}/api/v1/silences")).await;
    let listed = list.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{list}");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["comment"], "plugin update");
    let state = listed[0]["status"]["state"].as_str().unwrap();
    if SystemTime::now() < ends {
        assert_eq!(state, "active");
    }

    // After its end it mutes nothing: blog's recovery is sent.
    let left = ends.duration_since(SystemTime::now()).unwrap_or_default();
    tokio::time::sleep(left + Duration::from_millis(200)).await;
    let _blog = AcceptClose::bind(&blog_addr.to_string()).await.unwrap();
    let rec = wait_for("blog's recovery", Duration::from_secs(10), || {
        let calls = hook.requests();
        async move { events(&calls, "recovered", "blog").first().cloned() }
    })
    .await;
    assert_eq!(rec["site"], "blog");
    let (_, one) = get_json(&format!("{api}/api/v1/silence/{id}")).await;
    assert_eq!(one["status"]["state"], "expired", "{one}");
    kill9(child).await;
}

#[tokio::test]
async fn the_cli_adds_lists_and_expires_silences_with_the_api_token() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start_ok().await;
    let blog = AcceptClose::bind("127.0.0.1:0").await.unwrap();
    let shop = AcceptClose::bind("127.0.0.1:0").await.unwrap();
    let token_file = dir.path().join("api.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let path = write_config(
        dir.path(),
        &config(
            &dir.path().join("state"),
            &hook.url("/hook"),
            &blog.addr.to_string(),
            &shop.addr.to_string(),
            Some(&token_file),
        ),
    );
    let (child, api, _logs) = spawn_daemon(&path).await;
    // The CLI finds the API in the sites file: give it the bound port.
    let port = api.rsplit(':').next().unwrap();
    let cli_config = dir.path().join("cli.toml");
    std::fs::write(
        &cli_config,
        std::fs::read_to_string(&path)
            .unwrap()
            .replace("127.0.0.1:0", &format!("127.0.0.1:{port}")),
    )
    .unwrap();
    let cli = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sitewatch"));
        cmd.arg("silence")
            .args(args)
            .arg("--config")
            .arg(&cli_config);
        cmd.env_remove("SITEWATCH_API_TOKEN");
        cmd
    };

    // Without the token the API refuses.
    let r = client()
        .get(format!("{api}/api/v1/silences"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    let out = cli(&[
        "add",
        "site=shop",
        "--for",
        "1h",
        "-c",
        "deploy",
        "--author",
        "ann",
    ])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(id.len(), 36, "{id}");
    let out = cli(&["list"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&id) && text.contains("active") && text.contains("site=shop"),
        "{text}"
    );
    assert!(text.contains("by ann: deploy"), "{text}");

    let out = cli(&["expire", &id]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("expired"));

    // Expired: shop's outage pages again.
    shop.close().await;
    wait_for("shop's down alert", Duration::from_secs(10), || {
        let calls = hook.requests();
        async move { (!events(&calls, "down", "shop").is_empty()).then_some(()) }
    })
    .await;

    // A bad matcher or an unknown id is an error, said plainly.
    let out = cli(&["add", "shop"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a matcher"));
    let out = cli(&["expire", "no-such-id"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"));
    drop(blog);
    kill9(child).await;
}
