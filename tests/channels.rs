//! The chat, paging and push services, each against a local HTTPS receiver
//! (a certificate of a test CA, trusted through the channel's `ca_file`)
//! that records what the service would receive and answers in its shape.
//!
//! - Every service's request is checked against its documented shape:
//!   method, path, headers, the JSON fields and their limits; no secret
//!   appears in the daemon's log.
//! - The daemon is SIGKILLed between the down alert and the recovery: after
//!   the restart, the recovery edits the same Discord message, replies to
//!   the same Telegram message, cancels the same Pushover receipt and
//!   resolves the same PagerDuty key.
//! - Each service's own retry hint is followed (Discord's and Telegram's
//!   429 bodies), a PagerDuty trigger retried after a 500 carries the same
//!   dedup key, and a refusal (400) is a dead letter on /api/v1/outbox.

mod common;

use common::daemon::{
    get_json, kill9, spawn_daemon, start_in_process, wait_for, wait_status, write_config,
};
use common::receiver::{Receiver, Recorded, Reply};
use common::tls::{CertKind, TestCa};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

/// The receivers of the eight services.
struct Services {
    pagerduty: Receiver,
    discord: Receiver,
    teams: Receiver,
    mattermost: Receiver,
    telegram: Receiver,
    ntfy: Receiver,
    pushover: Receiver,
    gotify: Receiver,
}

/// Secrets, each in a file as a systemd credential would be.
const SECRETS: &[(&str, &str)] = &[
    ("pd-key", "R0UTINGKEY0123456789abcdef012345"),
    ("tg-token", "123456:TELEGRAMSECRET"),
    ("ntfy-token", "tk_ntfysecret"),
    ("po-token", "pushoverapptoken"),
    ("po-user", "pushoveruserkey"),
    ("gotify-token", "GotifyAppToken"),
];

impl Services {
    async fn start(ca: &TestCa) -> Services {
        let tls = || ca.leaf(CertKind::Valid, &["127.0.0.1"]).server_config();
        let json = |status: u16, body: &str| {
            Reply::new(status)
                .header("content-type", "application/json")
                .body(body.to_string())
        };
        Services {
            pagerduty: Receiver::start_tls(
                tls(),
                vec![json(
                    202,
                    r#"{"status":"success","message":"Event processed","dedup_key":"sitewatch/web"}"#,
                )],
            )
            .await,
            discord: Receiver::start_tls(
                tls(),
                vec![json(200, r#"{"id":"1180000000000000001","channel_id":"99"}"#)],
            )
            .await,
            teams: Receiver::start_tls(tls(), vec![Reply::new(202)]).await,
            mattermost: Receiver::start_tls(tls(), vec![Reply::ok().body("ok")]).await,
            telegram: Receiver::start_tls(
                tls(),
                vec![json(200, r#"{"ok":true,"result":{"message_id":4242}}"#)],
            )
            .await,
            ntfy: Receiver::start_tls(tls(), vec![json(200, r#"{"id":"n1"}"#)]).await,
            pushover: Receiver::start_tls(
                tls(),
                vec![json(
                    200,
                    r#"{"status":1,"request":"req1","receipt":"rcpt4242abc"}"#,
                )],
            )
            .await,
            gotify: Receiver::start_tls(tls(), vec![json(200, r#"{"id":7}"#)]).await,
        }
    }

    fn all(&self) -> [(&'static str, &Receiver); 8] {
        [
            ("pagerduty", &self.pagerduty),
            ("discord", &self.discord),
            ("teams", &self.teams),
            ("mattermost", &self.mattermost),
            ("telegram", &self.telegram),
            ("ntfy", &self.ntfy),
            ("pushover", &self.pushover),
            ("gotify", &self.gotify),
        ]
    }

    /// The channel tables, every one trusting the test CA.
    fn config(&self, dir: &Path, ca: &Path) -> String {
        for (name, value) in SECRETS {
            std::fs::write(dir.join(name), format!("{value}\n")).unwrap();
        }
        let secret = |name: &str| dir.join(name).display().to_string();
        let url_file = |name: &str, url: String| {
            std::fs::write(dir.join(name), url).unwrap();
            secret(name)
        };
        let ca = ca.display();
        format!(
            r#"
[alert.pagerduty]
type = "pagerduty"
url = "{pd}"
routing_key_file = "{pd_key}"
source = "fra1.example.net"
ca_file = "{ca}"

[alert.discord]
type = "discord"
webhook_url_file = "{discord}"
ca_file = "{ca}"

[alert.teams]
type = "teams"
webhook_url_file = "{teams}"
ca_file = "{ca}"

[alert.mattermost]
type = "mattermost"
webhook_url_file = "{mattermost}"
ca_file = "{ca}"

[alert.telegram]
type = "telegram"
url = "{telegram}"
bot_token_file = "{tg_token}"
chat_id = -1001234567890
message_thread_id = 7
ca_file = "{ca}"

[alert.ntfy]
type = "ntfy"
url = "{ntfy}"
topic = "ops-alerts"
token_file = "{ntfy_token}"
ca_file = "{ca}"

[alert.pushover]
type = "pushover"
url = "{pushover}"
token_file = "{po_token}"
user_key_file = "{po_user}"
priority = {{ down = 2 }}
retry = "1m"
expire = "1h"
ca_file = "{ca}"

[alert.gotify]
type = "gotify"
url = "{gotify}"
token_file = "{gotify_token}"
ca_file = "{ca}"
"#,
            pd = self.pagerduty.url(""),
            // Webhook URLs are secrets: from files, like the keys.
            pd_key = secret("pd-key"),
            discord = url_file(
                "discord-url",
                self.discord.url("/api/webhooks/123/webhooktoken")
            ),
            teams = url_file(
                "teams-url",
                self.teams
                    .url("/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=teamssig")
            ),
            mattermost = url_file(
                "mattermost-url",
                self.mattermost.url("/hooks/mattermostkey")
            ),
            telegram = self.telegram.url(""),
            tg_token = secret("tg-token"),
            ntfy = self.ntfy.url(""),
            ntfy_token = secret("ntfy-token"),
            pushover = self.pushover.url(""),
            po_token = secret("po-token"),
            po_user = secret("po-user"),
            gotify = self.gotify.url(""),
            gotify_token = secret("gotify-token"),
        )
    }
}

fn site_config(dir: &Path, site: &Receiver, notify: &[&str]) -> String {
    let notify: Vec<String> = notify.iter().map(|n| format!("\"{n}\"")).collect();
    format!(
        r#"[daemon]
listen = "127.0.0.1:0"
state_dir = "{state}"

[[site]]
name = "web"
url = "{url}"
interval = "1s"
timeout = "900ms"
notify = [{notify}]
"#,
        state = dir.join("state").display(),
        url = site.url("/health"),
        notify = notify.join(", "),
    )
}

fn header<'a>(r: &'a Recorded, name: &str) -> &'a str {
    r.header(name).unwrap_or_default()
}

fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

/// Checks each service's down request against its documented shape.
fn check_down(s: &Services, cause: &str, site_url: &str) {
    let first = |r: &Receiver| r.requests().remove(0);

    let pd = first(&s.pagerduty);
    assert_eq!(
        (pd.method.as_str(), pd.path.as_str()),
        ("POST", "/v2/enqueue")
    );
    assert_eq!(header(&pd, "content-type"), "application/json");
    let b = pd.json();
    assert_eq!(b["routing_key"], SECRETS[0].1);
    assert_eq!(b["event_action"], "trigger");
    assert_eq!(b["dedup_key"], "sitewatch/web");
    assert_eq!(b["payload"]["severity"], "critical");
    assert_eq!(b["payload"]["source"], "fra1.example.net");
    assert_eq!(b["payload"]["custom_details"]["cause"], cause);
    assert!(b["payload"]["custom_details"]["hint"].is_string(), "{b}");
    assert!(b["payload"]["custom_details"]["layers"].is_string(), "{b}");
    assert!((1..=1024).contains(&chars(&b["payload"]["summary"])), "{b}");
    assert!(
        b["payload"]["timestamp"].as_str().unwrap().ends_with('Z'),
        "{b}"
    );

    let d = first(&s.discord);
    assert_eq!(
        (d.method.as_str(), d.path.as_str()),
        ("POST", "/api/webhooks/123/webhooktoken?wait=true")
    );
    let b = d.json();
    assert_eq!(b["allowed_mentions"], json!({"parse": []}), "{b}");
    let embed = &b["embeds"][0];
    assert!(embed["title"].as_str().unwrap().contains("DOWN web"), "{b}");
    assert!(chars(&embed["title"]) <= 256 && chars(&embed["description"]) <= 4096);
    assert_eq!(embed["color"], json!(0xE0_2F_2F));
    let fields: Vec<&str> = embed["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"Cause") && fields.contains(&"Check first"),
        "{fields:?}"
    );
    assert!(embed["timestamp"].is_string());

    let t = first(&s.teams);
    assert_eq!(
        t.path,
        "/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=teamssig"
    );
    let b = t.json();
    assert_eq!(b["type"], "message");
    let card = &b["attachments"][0];
    assert_eq!(
        card["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(card["content"]["version"], "1.4");
    assert_eq!(card["content"]["type"], "AdaptiveCard");
    let facts: Vec<&str> = card["content"]["body"][2]["facts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["title"].as_str().unwrap())
        .collect();
    assert_eq!(facts, ["Cause", "Since", "URL"]);

    let m = first(&s.mattermost);
    assert_eq!(
        (m.method.as_str(), m.path.as_str()),
        ("POST", "/hooks/mattermostkey")
    );
    let b = m.json();
    assert!(b["text"].as_str().unwrap().contains("DOWN web"), "{b}");
    assert!(b["attachments"][0]["color"].is_string());

    let tg = first(&s.telegram);
    assert_eq!(tg.path, format!("/bot{}/sendMessage", SECRETS[1].1));
    let b = tg.json();
    assert_eq!(b["chat_id"], json!(-1001234567890i64));
    assert_eq!(b["parse_mode"], "HTML");
    assert_eq!(b["message_thread_id"], 7);
    assert_eq!(b["link_preview_options"]["is_disabled"], true);
    assert!(
        b["text"].as_str().unwrap().starts_with("<b>DOWN web"),
        "{b}"
    );
    assert!(b.get("reply_parameters").is_none());

    let n = first(&s.ntfy);
    assert_eq!((n.method.as_str(), n.path.as_str()), ("POST", "/"));
    assert_eq!(
        header(&n, "authorization"),
        format!("Bearer {}", SECRETS[2].1)
    );
    let b = n.json();
    assert_eq!(b["topic"], "ops-alerts");
    assert_eq!(b["priority"], 5);
    assert_eq!(b["tags"], json!(["rotating_light"]));
    assert_eq!(b["click"], site_url);

    let p = first(&s.pushover);
    assert_eq!(p.path, "/1/messages.json");
    let b = p.json();
    assert_eq!(
        (b["token"].as_str(), b["user"].as_str()),
        (Some(SECRETS[3].1), Some(SECRETS[4].1))
    );
    assert_eq!(
        (
            b["priority"].clone(),
            b["retry"].clone(),
            b["expire"].clone()
        ),
        (json!(2), json!(60), json!(3600))
    );
    assert!(
        chars(&b["message"]) <= 1024 && chars(&b["title"]) <= 250,
        "{b}"
    );

    let g = first(&s.gotify);
    assert_eq!(g.path, "/message");
    assert_eq!(header(&g, "x-gotify-key"), SECRETS[5].1);
    assert_eq!(g.json()["priority"], 8);
}

#[tokio::test]
async fn every_service_gets_its_shape_and_a_restart_still_closes_what_the_outage_opened() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_root(dir.path());
    let services = Services::start(&ca).await;
    let site = Receiver::start(vec![Reply::new(503).body("down for now")]).await;
    let names: Vec<&str> = services.all().iter().map(|(n, _)| *n).collect();
    let text = site_config(dir.path(), &site, &names) + &services.config(dir.path(), &ca_file);
    let path = write_config(dir.path(), &text);

    let (child, api, mut logs) = spawn_daemon(&path).await;
    wait_status(&api, "web", "down", Some("http.unavailable"), LIMIT).await;
    for (name, r) in services.all() {
        assert!(!r.wait_for(1, LIMIT).await.is_empty(), "{name}");
    }
    check_down(&services, "http.unavailable", &site.url("/health"));
    // Every delivery is recorded as sent (so the remote ids are committed)
    // before the daemon is killed.
    wait_for("no pending delivery", LIMIT, || async {
        let (_, j) = get_json(&format!("{api}/api/v1/outbox?state=pending")).await;
        j["deliveries"]
            .as_array()
            .is_some_and(Vec::is_empty)
            .then_some(())
    })
    .await;
    kill9(child).await;
    let mut log = String::new();
    while let Ok(line) = logs.try_recv() {
        log.push_str(&line);
        log.push('\n');
    }
    for (_, secret) in SECRETS {
        assert!(!log.contains(secret), "a secret in the log:\n{log}");
    }
    for word in ["webhooktoken", "teamssig", "mattermostkey"] {
        assert!(!log.contains(word), "a webhook URL in the log:\n{log}");
    }

    // The site comes back while sitewatch is down; the next start sees it.
    site.set_script(vec![Reply::ok().body("fine")]);
    let (child, api, _logs) = spawn_daemon(&path).await;
    wait_status(&api, "web", "up", None, LIMIT).await;

    // Discord: the down message edited, then a short line under it.
    let d = services.discord.wait_for(3, LIMIT).await;
    assert_eq!(d[1].method, "PATCH");
    assert_eq!(
        d[1].path,
        "/api/webhooks/123/webhooktoken/messages/1180000000000000001"
    );
    let edited = &d[1].json()["embeds"][0];
    assert!(
        edited["title"].as_str().unwrap().contains("RECOVERED web"),
        "{edited}"
    );
    assert_eq!(edited["color"], json!(0x2E_B8_5C));
    assert_eq!(d[2].method, "POST");
    assert!(d[2].json()["content"].as_str().unwrap().starts_with('✅'));
    // Telegram: a reply to the down message.
    let tg = services.telegram.wait_for(2, LIMIT).await;
    assert_eq!(
        tg[1].json()["reply_parameters"],
        json!({"message_id": 4242, "allow_sending_without_reply": true})
    );
    // Pushover: the emergency's receipt cancelled, then the good news.
    let p = services.pushover.wait_for(3, LIMIT).await;
    assert_eq!(p[1].path, "/1/receipts/rcpt4242abc/cancel.json");
    assert_eq!(p[1].json()["token"], SECRETS[3].1);
    assert_eq!(p[2].path, "/1/messages.json");
    assert_eq!(p[2].json()["priority"], 0);
    // PagerDuty: the same key resolved.
    let pd = services.pagerduty.wait_for(2, LIMIT).await;
    assert_eq!(pd[1].json()["event_action"], "resolve");
    assert_eq!(pd[1].json()["dedup_key"], "sitewatch/web");
    assert_eq!(pd[1].json()["routing_key"], SECRETS[0].1);
    // The others hear the recovery as a message of its own.
    for r in [
        &services.teams,
        &services.mattermost,
        &services.ntfy,
        &services.gotify,
    ] {
        let got = r.wait_for(2, LIMIT).await;
        assert!(
            got[1].body_str().contains("RECOVERED web"),
            "{}",
            got[1].body_str()
        );
    }
    kill9(child).await;
}

#[tokio::test]
async fn each_service_retry_hint_is_followed_and_a_refusal_is_a_dead_letter() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_root(dir.path());
    let services = Services::start(&ca).await;
    let json = |status: u16, body: &str| Reply::new(status).body(body.to_string());
    // Discord: rate limited, with the wait in the body only (1.2 s → 2 s).
    services.discord.set_script(vec![
        json(
            429,
            r#"{"message":"You are being rate limited.","retry_after":1.2,"global":false}"#,
        ),
        json(200, r#"{"id":"77"}"#),
    ]);
    // Telegram: rate limited, with parameters.retry_after.
    services.telegram.set_script(vec![
        json(429, r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 2","parameters":{"retry_after":2}}"#),
        json(200, r#"{"ok":true,"result":{"message_id":5}}"#),
    ]);
    // PagerDuty: a failure, then taken: the retry carries the same key.
    services.pagerduty.set_script(vec![
        Reply::new(500).header("retry-after", "1"),
        json(202, r#"{"status":"success","dedup_key":"sitewatch/web"}"#),
    ]);
    // ntfy refuses for good.
    services.ntfy.set_script(vec![json(
        400,
        r#"{"code":40001,"http":400,"error":"invalid request"}"#,
    )]);
    let site = Receiver::start(vec![Reply::new(503)]).await;
    let text = site_config(
        dir.path(),
        &site,
        &["discord", "telegram", "pagerduty", "ntfy"],
    ) + &services.config(dir.path(), &ca_file);
    let (running, api) = start_in_process(dir.path(), &text).await;
    wait_status(&api, "web", "down", Some("http.unavailable"), LIMIT).await;

    for (name, r, hint) in [
        ("discord", &services.discord, 2.0),
        ("telegram", &services.telegram, 2.0),
        ("pagerduty", &services.pagerduty, 1.0),
    ] {
        let got = r.wait_for(2, LIMIT).await;
        let gap = got[1].at.duration_since(got[0].at).as_secs_f64();
        // The default backoff would wait 4 s or more.
        assert!(
            gap >= hint - 0.05 && gap < 3.9,
            "{name}: retried {gap:.2} s after a {hint} s hint"
        );
        // The same alert again (only "… ago" may have moved on).
        let same = |r: &Recorded| match name {
            "discord" => r.json()["embeds"][0]["footer"].clone(),
            "telegram" => r.json()["text"].as_str().unwrap().lines().next().into(),
            _ => r.json(),
        };
        assert_eq!(
            same(&got[0]),
            same(&got[1]),
            "{name}: the retry is the same alert"
        );
    }
    assert_eq!(
        services.pagerduty.requests()[1].json()["dedup_key"],
        "sitewatch/web"
    );

    let failed = wait_for("the ntfy dead letter", LIMIT, || async {
        let (_, j) = get_json(&format!("{api}/api/v1/outbox?state=failed")).await;
        let list = j["deliveries"].as_array().cloned().unwrap_or_default();
        (!list.is_empty()).then_some(list)
    })
    .await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["channel"], "ntfy");
    assert_eq!(failed[0]["attempts"], 1);
    let error = failed[0]["last_error"].as_str().unwrap();
    assert!(
        error.contains("400") && error.contains("invalid request"),
        "{error}"
    );
    assert!(!error.contains(SECRETS[2].1));
    assert_eq!(
        services.ntfy.requests().len(),
        1,
        "a refusal is not retried"
    );
    running.stop();
    running.wait().await.unwrap();
}

#[tokio::test]
async fn notify_test_reaches_every_service() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_root(dir.path());
    let services = Services::start(&ca).await;
    let site = Receiver::start_ok().await;
    let names: Vec<&str> = services.all().iter().map(|(n, _)| *n).collect();
    let text = site_config(dir.path(), &site, &names) + &services.config(dir.path(), &ca_file);
    let config = sitewatch::config::load(&write_config(dir.path(), &text)).unwrap();
    let outcomes = sitewatch::alert::notify_test(&config, None).await.unwrap();
    let mut shown: Vec<String> = outcomes.iter().map(|o| o.to_string()).collect();
    shown.sort();
    let mut expected: Vec<String> = names.iter().map(|n| format!("{n} ({n}): sent")).collect();
    expected.sort();
    assert_eq!(shown, expected);
    for (name, r) in services.all() {
        let got = r.requests();
        assert!(
            got.iter().any(|q| q.body_str().contains("TEST")),
            "{name}: {:?}",
            got.iter().map(Recorded::body_str).collect::<Vec<_>>()
        );
    }
    // PagerDuty's test incident is resolved at once, under its own key.
    let pd: Vec<Value> = services
        .pagerduty
        .requests()
        .iter()
        .map(Recorded::json)
        .collect();
    assert_eq!(pd.len(), 2);
    assert_eq!(
        (
            pd[0]["event_action"].as_str(),
            pd[1]["event_action"].as_str()
        ),
        (Some("trigger"), Some("resolve"))
    );
    assert_eq!(pd[0]["dedup_key"], pd[1]["dedup_key"]);
    assert!(
        pd[0]["dedup_key"]
            .as_str()
            .unwrap()
            .starts_with("sitewatch/test/")
    );
    assert_eq!(pd[0]["payload"]["severity"], "info");
}
