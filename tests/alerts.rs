//! Alerts end to end: the daemon (in-process, or as a child killed with
//! SIGKILL) sends through a real SMTP server (aiosmtpd with STARTTLS and
//! AUTH), a local receiver standing in for Slack that checks the payload's
//! documented shape, and a generic webhook whose HMAC is verified; and it
//! keeps its promises when the receivers fail.

mod common;

use common::daemon::{get_json, signal, spawn_daemon, wait_for, wait_status, write_config};
use common::http::AcceptClose;
use common::receiver::{Receiver, Reply, check_slack_payload};
use common::smtp::{SmtpMode, TestSmtp};
use common::tls::{CertKind, TestCa};
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpListener;

const SLACK_TOKEN: &str = "T0SITEWATCH/B0TEST/xoxbSECRETtoken42";
const SMTP_PASSWORD: &str = "correct horse battery staple";
const HOOK_SECRET: &str = "hmac-key-0123456789";

async fn start(dir: &Path, config_text: &str) -> (sitewatch::app::Running, String) {
    let text = format!(
        "[daemon]\nstate_dir = \"{}\"\n\n{config_text}",
        dir.join("state").display()
    );
    let path = write_config(dir, &text);
    let config = sitewatch::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = sitewatch::app::start(&config, listener).unwrap();
    let api = format!("http://{}", running.addr);
    (running, api)
}

fn site(addr: std::net::SocketAddr) -> String {
    format!(
        "[defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\n\n[[site]]\nname = \"web\"\nurl = \"tcp://{addr}\"\n"
    )
}

#[tokio::test]
async fn down_and_recovery_reach_email_slack_and_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let ca_file = ca.write_root(dir.path());
    let cert = ca.leaf(CertKind::Valid, &["localhost", "127.0.0.1"]);
    let smtp = TestSmtp::options(SmtpMode::starttls(&cert.chain_pem, &cert.key_pem))
        .auth("sitewatch", SMTP_PASSWORD)
        .start()
        .await;
    let slack = Receiver::start_ok().await;
    let hook = Receiver::start_ok().await;
    std::fs::write(
        dir.path().join("smtp-password"),
        format!("{SMTP_PASSWORD}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("slack-url"),
        slack.url(&format!("/services/{SLACK_TOKEN}")),
    )
    .unwrap();
    let web = AcceptClose::bind("127.0.0.1:0").await.unwrap();
    let addr = web.addr;
    let config = format!(
        r#"{}
[alert.mail]
type = "email"
smtp_host = "127.0.0.1"
smtp_port = {}
username = "sitewatch"
password_file = "smtp-password"
from = "sitewatch <sitewatch@example.org>"
to = ["ops@example.org", "oncall@example.org"]
ca_file = "{}"

[alert.chat]
type = "slack"
webhook_url_file = "slack-url"

[alert.hook]
type = "webhook"
url = "{}"
secret = "{HOOK_SECRET}"
"#,
        site(addr),
        smtp.addr().port(),
        ca_file.display(),
        hook.url("/sitewatch")
    );
    let (daemon, api) = start(dir.path(), &config).await;
    wait_status(&api, "web", "up", None, Duration::from_secs(5)).await;
    web.close().await;
    wait_status(
        &api,
        "web",
        "down",
        Some("tcp.refused"),
        Duration::from_secs(6),
    )
    .await;

    // Email: over TLS, authenticated, to both, with the cause and the hint.
    let mails = smtp.wait_for_messages(1, Duration::from_secs(25)).await;
    let m = &mails[0];
    assert_eq!(
        m.subject,
        "[sitewatch] DOWN web — connection refused (tcp.refused)"
    );
    assert!(
        m.tls && m.authenticated,
        "tls {} auth {}",
        m.tls,
        m.authenticated
    );
    assert_eq!(m.rcpt_tos.len(), 2, "{:?}", m.rcpt_tos);
    assert!(
        m.body
            .starts_with("web is DOWN: connection refused (tcp.refused)\n"),
        "{}",
        m.body
    );
    assert!(
        m.body
            .contains(&format!("Check:    nothing is listening on {addr}")),
        "{}",
        m.body
    );
    assert!(
        m.message_id.as_deref().unwrap().starts_with("<web-down-"),
        "{:?}",
        m.message_id
    );

    // Slack: the documented shape, the subject as fallback text.
    let posts = slack.wait_for(1, Duration::from_secs(25)).await;
    assert_eq!(posts[0].path, format!("/services/{SLACK_TOKEN}"));
    let payload = posts[0].json();
    check_slack_payload(&payload).unwrap_or_else(|e| panic!("{e}\n{payload:#}"));
    assert_eq!(
        payload["text"],
        "[sitewatch] DOWN web — connection refused (tcp.refused)"
    );

    // Webhook: version 1, signed with the secret.
    let calls = hook.wait_for(1, Duration::from_secs(25)).await;
    let body = calls[0].body.clone();
    let sig = calls[0]
        .header("x-sitewatch-signature")
        .unwrap()
        .to_string();
    assert_eq!(
        sig,
        format!(
            "sha256={}",
            sitewatch::alert::channel::sign(HOOK_SECRET.as_bytes(), &body)
        )
    );
    let j = calls[0].json();
    assert_eq!(
        (
            j["version"].as_i64(),
            j["event"].as_str(),
            j["cause"].as_str()
        ),
        (Some(1), Some("down"), Some("tcp.refused")),
        "{j}"
    );
    assert!(
        calls[0]
            .header("x-sitewatch-delivery")
            .unwrap()
            .starts_with("web-down-")
    );

    // Recovery: the outage's length and its causes.
    let _web = AcceptClose::bind(&addr.to_string()).await.unwrap();
    wait_status(&api, "web", "up", None, Duration::from_secs(6)).await;
    let mails = smtp.wait_for_messages(2, Duration::from_secs(25)).await;
    let r = mails
        .iter()
        .find(|m| {
            m.subject
                .starts_with("[sitewatch] RECOVERED web — up after")
        })
        .expect("recovery mail");
    assert!(
        r.body.contains("Causes during the outage:")
            && r.body.contains("connection refused (tcp.refused)"),
        "{}",
        r.body
    );
    let hooks = hook.wait_for(2, Duration::from_secs(25)).await;
    assert_eq!(hooks[1].json()["event"], "recovered");
    assert!(hooks[1].json()["outage_s"].as_u64().is_some());

    // No secret ever leaves through the API.
    let (_, status) = get_json(&format!("{api}/status")).await;
    let (_, health) = get_json(&format!("{api}/healthz")).await;
    let (_, one) = get_json(&format!("{api}/status/web")).await;
    for body in [status.to_string(), health.to_string(), one.to_string()] {
        for secret in [SLACK_TOKEN, SMTP_PASSWORD, HOOK_SECRET] {
            assert!(!body.contains(secret), "{secret} leaked: {body}");
        }
    }
    // The count follows the server's last reply, a moment after the
    // server has the message.
    wait_for("the mail count", Duration::from_secs(10), || {
        let api = api.clone();
        async move {
            let (_, status) = get_json(&format!("{api}/status")).await;
            (status["alerts"]["channels"]["mail"]["sent"] == 2).then_some(())
        }
    })
    .await;
    daemon.stop();
    daemon.wait().await.unwrap();
}

#[tokio::test]
async fn a_webhook_that_fails_then_works_gets_the_alert_once() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start(vec![Reply::new(500).body("busy"), Reply::ok()]).await;
    let closed = common::http::closed_addr();
    let config = format!(
        "{}\n[alert.hook]\ntype = \"webhook\"\nurl = \"{}\"\n",
        site(closed),
        hook.url("/h")
    );
    let (daemon, api) = start(dir.path(), &config).await;
    let calls = hook.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(calls[0].status, 500);
    assert_eq!(calls[1].status, 200);
    assert_eq!(
        calls[0].header("x-sitewatch-delivery"),
        calls[1].header("x-sitewatch-delivery"),
        "same delivery id on the retry"
    );
    let gap = calls[1].at - calls[0].at;
    assert!(
        gap >= Duration::from_secs(3),
        "backoff before the retry: {gap:?}"
    );
    // Delivered: nothing more comes (the next retry would be due after ~10 s).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(hook.requests().len(), 2);
    let (_, s) = get_json(&format!("{api}/status")).await;
    assert_eq!(s["alerts"]["channels"]["hook"]["sent"], 1, "{s}");
    assert_eq!(s["alerts"]["channels"]["hook"]["failed_attempts"], 1, "{s}");
    daemon.stop();
    daemon.wait().await.unwrap();
}

#[tokio::test]
async fn an_smtp_server_that_comes_up_late_gets_the_alert_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::http::closed_addr().port();
    let closed = common::http::closed_addr();
    let config = format!(
        "{}\n[alert.mail]\ntype = \"email\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\ntls = \"none\"\nallow_plain = true\nfrom = \"sitewatch@example.org\"\nto = [\"ops@example.org\"]\n",
        site(closed)
    );
    let (daemon, api) = start(dir.path(), &config).await;
    wait_status(
        &api,
        "web",
        "down",
        Some("tcp.refused"),
        Duration::from_secs(6),
    )
    .await;
    // The first attempt finds no server: a transient failure.
    wait_for("a failed attempt", Duration::from_secs(25), || {
        let api = api.clone();
        async move {
            let (_, s) = get_json(&format!("{api}/status")).await;
            (s["alerts"]["channels"]["mail"]["failed_attempts"].as_u64() >= Some(1)).then_some(())
        }
    })
    .await;
    let smtp = TestSmtp::start_on(port, SmtpMode::Plain).await;
    let mails = smtp.wait_for_messages(1, Duration::from_secs(20)).await;
    assert_eq!(
        mails[0].subject,
        "[sitewatch] DOWN web — connection refused (tcp.refused)"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(smtp.messages().len(), 1, "exactly once");
    daemon.stop();
    daemon.wait().await.unwrap();
}

#[tokio::test]
async fn a_permanent_refusal_is_not_retried_and_shows() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start(vec![Reply::new(400).body("invalid_payload")]).await;
    let closed = common::http::closed_addr();
    let config = format!(
        "{}\n[alert.hook]\ntype = \"webhook\"\nurl = \"{}\"\n",
        site(closed),
        hook.url("/h")
    );
    let (daemon, api) = start(dir.path(), &config).await;
    hook.wait_for(1, Duration::from_secs(25)).await;
    let s = wait_for("the refusal to show", Duration::from_secs(5), || {
        let api = api.clone();
        async move {
            let (_, s) = get_json(&format!("{api}/status")).await;
            (s["alerts"]["channels"]["hook"]["given_up"] == 1).then_some(s)
        }
    })
    .await;
    assert!(
        s["alerts"]["channels"]["hook"]["last_error"]
            .as_str()
            .unwrap()
            .contains("400"),
        "{s}"
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(hook.requests().len(), 1, "a 4xx is not retried");
    daemon.stop();
    daemon.wait().await.unwrap();
}

#[tokio::test]
async fn an_alert_pending_at_sigkill_is_delivered_once_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start(vec![Reply::new(503)]).await;
    let closed = common::http::closed_addr();
    let text = format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n\n{}\n[alert.hook]\ntype = \"webhook\"\nurl = \"{}\"\n",
        dir.path().join("state").display(),
        site(closed),
        hook.url("/h")
    );
    let path = write_config(dir.path(), &text);
    let (mut child, _api, _logs) = spawn_daemon(&path).await;
    let first = hook.wait_for(1, Duration::from_secs(25)).await;
    let id = first[0].header("x-sitewatch-delivery").unwrap().to_string();
    signal(&child, libc::SIGKILL);
    let _ = child.wait().await;

    hook.set_script(vec![Reply::ok()]);
    let (mut child, api, _logs) = spawn_daemon(&path).await;
    let calls = hook.wait_for(2, Duration::from_secs(25)).await;
    assert_eq!(calls[1].status, 200);
    assert_eq!(
        calls[1].header("x-sitewatch-delivery"),
        Some(id.as_str()),
        "the same alert, not a new one"
    );
    // The site is still down after the restart, but that is no new outage.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, s) = get_json(&format!("{api}/status/web")).await;
    assert_eq!(s["status"], "down");
    let ok: Vec<_> = hook
        .requests()
        .into_iter()
        .filter(|r| r.status == 200)
        .collect();
    assert_eq!(
        ok.len(),
        1,
        "delivered exactly once: {:?}",
        ok.iter()
            .map(|r| r.header("x-sitewatch-delivery"))
            .collect::<Vec<_>>()
    );
    signal(&child, libc::SIGTERM);
    let _ = child.wait().await;
}

#[tokio::test]
async fn notify_test_says_which_channel_failed() {
    let dir = tempfile::tempdir().unwrap();
    let good = Receiver::start_ok().await;
    let bad = Receiver::start(vec![Reply::new(403).body("invalid_token")]).await;
    let config = format!(
        "[[site]]\nname = \"x\"\nurl = \"tcp://127.0.0.1:9\"\n\n[alert.good]\ntype = \"webhook\"\nurl = \"{}\"\n\n[alert.chat]\ntype = \"slack\"\nwebhook_url = \"{}\"\n",
        good.url("/ok"),
        bad.url(&format!("/services/{SLACK_TOKEN}"))
    );
    let path = write_config(dir.path(), &config);
    let run = move |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sitewatch"))
            .arg("notify-test")
            .arg("--config")
            .arg(&path)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = tokio::task::spawn_blocking(move || (run(&[]), run(&["--channel", "good"])))
        .await
        .unwrap();
    assert_eq!(code.0, Some(1), "{}", code.1);
    assert!(code.1.contains("good (webhook): sent"), "{}", code.1);
    assert!(code.1.contains("chat (slack): FAILED: the receiver answered 403 Forbidden: invalid_token (permanent: not retried)"), "{}", code.1);
    assert!(
        !code.1.contains(SLACK_TOKEN),
        "the Slack URL is a secret: {}",
        code.1
    );
    assert_eq!(out.0, Some(0), "{}", out.1);
    let test = good.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(test[0].json()["event"], "test");
}

#[tokio::test]
async fn a_storm_of_twenty_sites_is_one_grouped_message() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start_ok().await;
    let mut config = String::from("[defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\n\n");
    for i in 0..20 {
        let closed = common::http::closed_addr();
        config.push_str(&format!(
            "[[site]]\nname = \"s{i:02}\"\nurl = \"tcp://{closed}\"\n\n"
        ));
    }
    config.push_str(&format!(
        "[alert.hook]\ntype = \"webhook\"\nurl = \"{}\"\n",
        hook.url("/h")
    ));
    let (daemon, _api) = start(dir.path(), &config).await;
    let calls = hook.wait_for(1, Duration::from_secs(25)).await;
    let j = calls[0].json();
    assert_eq!(j["event"], "storm", "{j}");
    assert_eq!(
        j["subject"],
        "[sitewatch] DOWN 20 sites — connection refused (tcp.refused)"
    );
    let detail = j["detail"].as_str().unwrap();
    for i in 0..20 {
        assert!(
            detail.contains(&format!("- s{i:02} (tcp://")),
            "s{i:02} missing: {detail}"
        );
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(hook.requests().len(), 1, "one message, not twenty");
    daemon.stop();
    daemon.wait().await.unwrap();
}

#[tokio::test]
async fn a_flapping_site_is_reported_once_then_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start_ok().await;
    let server = AcceptClose::bind("127.0.0.1:0").await.unwrap();
    let addr = server.addr;
    let config = format!(
        "[defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\nconfirm_down = 1\nconfirm_up = 1\n\n[[site]]\nname = \"flappy\"\nurl = \"tcp://{addr}\"\n\n[alert.hook]\ntype = \"webhook\"\nurl = \"{}\"\n",
        hook.url("/h")
    );
    let (daemon, api) = start(dir.path(), &config).await;
    wait_status(&api, "flappy", "up", None, Duration::from_secs(5)).await;
    // Down and up, four times over: eight changes in a few seconds.
    let mut server = Some(server);
    for _ in 0..4 {
        if let Some(s) = server.take() {
            s.close().await;
        }
        wait_status(
            &api,
            "flappy",
            "down",
            Some("tcp.refused"),
            Duration::from_secs(5),
        )
        .await;
        server = Some(AcceptClose::bind(&addr.to_string()).await.unwrap());
        wait_status(&api, "flappy", "up", None, Duration::from_secs(5)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let events: Vec<String> = hook
        .requests()
        .iter()
        .map(|r| r.json()["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        events,
        ["down", "recovered", "down", "recovered", "flapping"],
        "then quiet"
    );
    daemon.stop();
    daemon.wait().await.unwrap();
}

#[tokio::test]
async fn a_reminder_follows_while_the_site_stays_down() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start_ok().await;
    let closed = common::http::closed_addr();
    let config = format!(
        "[defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\nremind_every = \"1m\"\n\n[[site]]\nname = \"web\"\nurl = \"tcp://{closed}\"\n\n[alert.hook]\ntype = \"webhook\"\nurl = \"{}\"\n",
        hook.url("/h")
    );
    let (daemon, _api) = start(dir.path(), &config).await;
    let first = hook.wait_for(1, Duration::from_secs(25)).await;
    assert_eq!(first[0].json()["event"], "down");
    // One minute after the down alert was made (it was held 10 s for storms).
    let calls = hook.wait_for(2, Duration::from_secs(80)).await;
    let r = calls[1].json();
    assert_eq!(r["event"], "reminder", "{r}");
    assert!(
        r["subject"]
            .as_str()
            .unwrap()
            .starts_with("[sitewatch] STILL DOWN web — connection refused (tcp.refused) for 1m"),
        "{r}"
    );
    assert_eq!(r["since"], first[0].json()["since"], "the outage's start");
    daemon.stop();
    daemon.wait().await.unwrap();
}
