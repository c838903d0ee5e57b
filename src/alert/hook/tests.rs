//! Each service's rendering against its documented shape and limits, and
//! each classification of answers (retry hints, permanent refusals, the
//! remote ids a recovery needs).

use super::*;
use crate::config::{Cluster, SecretRef};
use crate::diagnosis::Cause;
use crate::diagnosis::Layer;
use crate::probe::LayerReport;
use reqwest::Method;
use serde_json::json;
use std::time::UNIX_EPOCH;

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_633_200 + secs)
}

/// A down alert whose detail is 5,000 characters of text that every
/// markup reads as something: `<`, `&`, `*` and `_`.
fn alert(kind: AlertKind) -> Alert {
    let mut a = Alert::bare(
        "blog-down-1795633200000".into(),
        kind,
        "blog".into(),
        crate::state::Level::Down,
        t(0),
    );
    a.url = "https://blog.example.com/".into();
    a.cause = Some(Cause::TcpRefused);
    a.detail = "<b>&amp; *bold* _it_".repeat(250);
    assert_eq!(a.detail.chars().count(), 5000);
    a.hint = Some("is nginx running? <check> & *restart* _it_".into());
    a.at = t(312);
    a.outage_s = Some(725);
    a.layers = vec![LayerReport {
        layer: Layer::Tcp,
        ok: false,
        ms: 0.41,
        detail: String::new(),
    }];
    a
}

fn service(spec: ServiceSpec) -> Service {
    Service::new(&spec, &Cluster::named("fra1")).unwrap().0
}

fn secret(v: &str) -> SecretRef {
    SecretRef::Value(v.into())
}

fn answer(status: u16, body: &str) -> Answer {
    Answer {
        status,
        retry_after: None,
        body: body.into(),
    }
}

fn pagerduty() -> Service {
    service(ServiceSpec::PagerDuty {
        routing_key: secret("R0UT1NG"),
        url: "https://pd.test".into(),
        source: None,
        severity: [("degraded".to_string(), "info".to_string())].into(),
    })
}

#[test]
fn pagerduty_triggers_and_resolves_one_key_per_site() {
    let pd = pagerduty();
    let down = pd.render(&alert(AlertKind::Down), None, t(400));
    assert_eq!(down.len(), 1);
    let b = down[0].body.as_ref().unwrap();
    assert_eq!(down[0].url, "https://pd.test/v2/enqueue");
    assert_eq!(b["routing_key"], "R0UT1NG");
    assert_eq!(b["event_action"], "trigger");
    assert_eq!(b["dedup_key"], "sitewatch/blog");
    assert_eq!(b["payload"]["severity"], "critical");
    assert_eq!(b["payload"]["source"], "fra1");
    assert_eq!(b["payload"]["custom_details"]["cause"], "tcp.refused");
    assert_eq!(b["payload"]["class"], "tcp.refused");
    assert!(b["payload"]["custom_details"]["hint"].is_string());
    assert!(b["payload"]["summary"].as_str().unwrap().chars().count() <= 1024);
    // A retry renders the same key: PagerDuty deduplicates it.
    assert_eq!(pd.render(&alert(AlertKind::Down), None, t(900)), down);
    // The severity table overrides the default per event.
    let degraded = pd.render(&alert(AlertKind::Degraded), None, t(400));
    assert_eq!(
        degraded[0].body.as_ref().unwrap()["payload"]["severity"],
        "info"
    );
    assert_eq!(
        degraded[0].body.as_ref().unwrap()["dedup_key"],
        "sitewatch/degraded/blog"
    );
    let rec = pd.render(&alert(AlertKind::Recovered), Some("x"), t(900));
    let keys: Vec<_> = rec
        .iter()
        .map(|r| r.body.as_ref().unwrap()["dedup_key"].clone())
        .collect();
    assert_eq!(
        keys,
        [json!("sitewatch/blog"), json!("sitewatch/degraded/blog")]
    );
    assert!(
        rec.iter()
            .all(|r| r.body.as_ref().unwrap()["event_action"] == "resolve")
    );
    // A test has no cause: no null class.
    let bare = Alert::bare(
        "t1".into(),
        AlertKind::Test,
        "c".into(),
        crate::state::Level::Up,
        t(0),
    );
    let test = pd.render(&bare, None, t(0));
    assert!(
        test[0].body.as_ref().unwrap()["payload"]
            .get("class")
            .is_none()
    );
    // A long summary is cut to PagerDuty's limit.
    let mut long = alert(AlertKind::Down);
    long.site = "s".repeat(2000);
    let r = pd.render(&long, None, t(0));
    let b = r[0].body.as_ref().unwrap();
    assert_eq!(
        b["payload"]["summary"].as_str().unwrap().chars().count(),
        1024
    );
    assert_eq!(b["dedup_key"].as_str().unwrap().chars().count(), 255);
}

#[test]
fn pagerduty_answers() {
    let pd = pagerduty();
    let req = &pd.render(&alert(AlertKind::Down), None, t(0))[0];
    assert_eq!(
        pd.classify(
            req,
            &answer(202, r#"{"status":"success","dedup_key":"sitewatch/blog"}"#)
        ),
        Verdict::Done(Some("sitewatch/blog".into()))
    );
    assert!(matches!(
        pd.classify(req, &answer(400, "{}")),
        Verdict::Permanent(_)
    ));
    assert!(matches!(
        pd.classify(req, &answer(429, "")),
        Verdict::Retry { after: Some(d), .. } if d == Duration::from_secs(60)
    ));
    assert!(matches!(
        pd.classify(req, &answer(503, "")),
        Verdict::Retry { after: None, .. }
    ));
}

fn discord() -> Service {
    service(ServiceSpec::Discord {
        webhook_url: secret("https://discord.test/api/webhooks/1/tok?thread_id=9"),
    })
}

#[test]
fn discord_posts_an_embed_and_edits_it_on_recovery() {
    let d = discord();
    let down = d.render(&alert(AlertKind::Down), None, t(400));
    assert_eq!(down.len(), 1);
    assert_eq!(down[0].method, Method::POST);
    assert_eq!(
        down[0].url,
        "https://discord.test/api/webhooks/1/tok?thread_id=9&wait=true"
    );
    let b = down[0].body.as_ref().unwrap();
    assert_eq!(b["allowed_mentions"], json!({"parse": []}));
    let embed = &b["embeds"][0];
    assert_eq!(embed["color"], json!(0xE0_2F_2F));
    let description = embed["description"].as_str().unwrap();
    assert!(description.chars().count() <= 4096);
    assert!(description.ends_with('…'));
    assert!(description.contains("\\*bold\\* \\_it\\_"), "{description}");
    let mut total = embed["title"].as_str().unwrap().chars().count() + description.chars().count();
    for f in embed["fields"].as_array().unwrap() {
        assert!(f["value"].as_str().unwrap().chars().count() <= 1024);
        total += f["name"].as_str().unwrap().len() + f["value"].as_str().unwrap().chars().count();
    }
    assert!(total <= 6000, "{total}");
    let rec = d.render(&alert(AlertKind::Recovered), Some("1234"), t(900));
    assert_eq!(rec.len(), 2);
    assert_eq!(rec[0].method, Method::PATCH);
    assert_eq!(
        rec[0].url,
        "https://discord.test/api/webhooks/1/tok/messages/1234?thread_id=9"
    );
    assert_eq!(
        rec[0].body.as_ref().unwrap()["embeds"][0]["color"],
        json!(0x2E_B8_5C)
    );
    assert!(rec[0].body.as_ref().unwrap().get("username").is_none());
    assert_eq!(rec[1].method, Method::POST);
    assert!(
        rec[1].body.as_ref().unwrap()["content"]
            .as_str()
            .unwrap()
            .starts_with('✅')
    );
    // Without the down message's id, the recovery is a message of its own.
    assert_eq!(
        d.render(&alert(AlertKind::Recovered), None, t(900)).len(),
        1
    );
}

#[test]
fn discord_answers() {
    let d = discord();
    let down = &d.render(&alert(AlertKind::Down), None, t(0))[0];
    assert_eq!(
        d.classify(down, &answer(200, r#"{"id":"1180","channel_id":"9"}"#)),
        Verdict::Done(Some("1180".into()))
    );
    assert_eq!(
        d.classify(down, &answer(429, r#"{"message":"You are being rate limited.","retry_after":2.5,"global":false}"#)),
        Verdict::Retry {
            message: "the service answered 429: {\"message\":\"You are being rate limited.\",\"retry_after\":2.5,\"global\":false}".into(),
            after: Some(Duration::from_secs(3))
        }
    );
    assert!(matches!(
        d.classify(down, &answer(400, "{}")),
        Verdict::Permanent(_)
    ));
    let edit = &d.render(&alert(AlertKind::Recovered), Some("1"), t(0))[0];
    // The down message was deleted: the recovery still says so below.
    assert_eq!(d.classify(edit, &answer(404, "{}")), Verdict::Done(None));
}

#[test]
fn discord_escapes_and_cuts_without_splitting_an_escape() {
    use discord::field_text;
    assert_eq!(field_text("a*b", 10), "a\\*b");
    assert_eq!(field_text("abcdef", 6), "abcdef");
    assert_eq!(field_text("abcdefg", 6), "abcde…");
    assert_eq!(field_text("abcd*", 5), "abcd…");
    assert_eq!(field_text("ab*cd", 4), "ab…");
    // Lists, headings and quotes only mean something at the start of a line.
    assert_eq!(
        field_text("- a\n# b-c 200-399 >x", 100),
        "\\- a\n\\# b-c 200-399 >x"
    );
}

#[test]
fn telegram_sends_html_and_replies_within_the_outage() {
    let tg = service(ServiceSpec::Telegram {
        bot_token: secret("123:ABC"),
        chat_id: "-1001234".into(),
        message_thread_id: Some(7),
        url: "https://tg.test".into(),
    });
    let down = tg.render(&alert(AlertKind::Down), None, t(400));
    assert_eq!(down[0].url, "https://tg.test/bot123:ABC/sendMessage");
    let b = down[0].body.as_ref().unwrap();
    assert_eq!(b["chat_id"], json!(-1001234));
    assert_eq!(b["parse_mode"], "HTML");
    assert_eq!(b["message_thread_id"], 7);
    assert_eq!(b["link_preview_options"]["is_disabled"], true);
    assert!(b.get("reply_parameters").is_none());
    let text = b["text"].as_str().unwrap();
    assert!(text.contains("&lt;b&gt;&amp;amp; *bold* _it_"), "{text}");
    assert!(!text.contains("<check>"));
    // Visible length (entities parsed) within Telegram's 4096.
    let visible = text
        .replace("<b>", "")
        .replace("</b>", "")
        .replace("<i>", "")
        .replace("</i>", "")
        .replace("<code>", "")
        .replace("</code>", "")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    assert!(
        visible.chars().count() <= 4096,
        "{}",
        visible.chars().count()
    );
    let rec = tg.render(&alert(AlertKind::Recovered), Some("55"), t(900));
    assert_eq!(
        rec[0].body.as_ref().unwrap()["reply_parameters"],
        json!({"message_id": 55, "allow_sending_without_reply": true})
    );
    let channel = service(ServiceSpec::Telegram {
        bot_token: secret("1:A"),
        chat_id: "@ops".into(),
        message_thread_id: None,
        url: "https://tg.test".into(),
    });
    assert_eq!(
        channel.render(&alert(AlertKind::Down), None, t(0))[0]
            .body
            .as_ref()
            .unwrap()["chat_id"],
        "@ops"
    );
    let req = &down[0];
    assert_eq!(
        tg.classify(
            req,
            &answer(200, r#"{"ok":true,"result":{"message_id":55}}"#)
        ),
        Verdict::Done(Some("55".into()))
    );
    assert!(matches!(
        tg.classify(req, &answer(429, r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 15","parameters":{"retry_after":15}}"#)),
        Verdict::Retry { after: Some(d), .. } if d == Duration::from_secs(15)
    ));
    assert!(matches!(
        tg.classify(req, &answer(400, r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#)),
        Verdict::Permanent(m) if m.contains("chat not found")
    ));
}

#[test]
fn teams_sends_an_adaptive_card_1_4() {
    let teams = service(ServiceSpec::Teams {
        webhook_url: secret("https://prod.logic.test/workflows/x?sig=s"),
    });
    let r = teams.render(&alert(AlertKind::Down), None, t(400));
    let b = r[0].body.as_ref().unwrap();
    assert_eq!(b["type"], "message");
    let att = &b["attachments"][0];
    assert_eq!(
        att["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(att["content"]["type"], "AdaptiveCard");
    assert_eq!(att["content"]["version"], "1.4");
    let facts = att["content"]["body"][2]["facts"].as_array().unwrap();
    let titles: Vec<_> = facts.iter().map(|f| f["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["Cause", "Since", "URL"]);
    assert!(serde_json::to_vec(b).unwrap().len() < 28_000);
}

#[test]
fn ntfy_gotify_and_mattermost_shapes() {
    let ntfy = service(ServiceSpec::Ntfy {
        url: "https://ntfy.test".into(),
        topic: "ops".into(),
        token: Some(secret("tk_abc")),
        priority: [("recovered".to_string(), 1)].into(),
        click: None,
    });
    let r = ntfy.render(&alert(AlertKind::Down), None, t(0));
    assert_eq!(r[0].url, "https://ntfy.test/");
    assert_eq!(
        r[0].headers,
        [("authorization", "Bearer tk_abc".to_string())]
    );
    let b = r[0].body.as_ref().unwrap();
    assert_eq!(b["topic"], "ops");
    assert_eq!(b["priority"], 5);
    assert_eq!(b["tags"], json!(["rotating_light"]));
    assert_eq!(b["click"], "https://blog.example.com/");
    assert!(b["message"].as_str().unwrap().chars().count() <= 4000);
    let r = ntfy.render(&alert(AlertKind::Recovered), None, t(0));
    assert_eq!(r[0].body.as_ref().unwrap()["priority"], 1);

    let gotify = service(ServiceSpec::Gotify {
        url: "https://gotify.test".into(),
        token: secret("AppTok"),
        priority: Default::default(),
    });
    let r = gotify.render(&alert(AlertKind::Down), None, t(0));
    assert_eq!(r[0].url, "https://gotify.test/message");
    assert_eq!(r[0].headers, [("x-gotify-key", "AppTok".to_string())]);
    assert_eq!(r[0].body.as_ref().unwrap()["priority"], 8);

    let mm = service(ServiceSpec::Mattermost {
        webhook_url: secret("https://mm.test/hooks/abc"),
    });
    let r = mm.render(&alert(AlertKind::Down), None, t(0));
    let b = r[0].body.as_ref().unwrap();
    assert!(b["text"].as_str().unwrap().contains("DOWN blog"));
    assert!(
        b["attachments"][0]["text"]
            .as_str()
            .unwrap()
            .contains("\\*bold\\*")
    );
}

#[test]
fn pushover_emergency_is_cancelled_on_recovery() {
    let po = service(ServiceSpec::Pushover {
        token: secret("apptoken"),
        user_key: secret("userkey"),
        url: "https://po.test".into(),
        priority: [("down".to_string(), 2)].into(),
        retry: Duration::from_secs(60),
        expire: Duration::from_secs(3600),
    });
    let down = po.render(&alert(AlertKind::Down), None, t(0));
    assert_eq!(down.len(), 1);
    assert_eq!(down[0].url, "https://po.test/1/messages.json");
    let b = down[0].body.as_ref().unwrap();
    assert_eq!(
        (
            b["priority"].clone(),
            b["retry"].clone(),
            b["expire"].clone()
        ),
        (json!(2), json!(60), json!(3600))
    );
    let message = b["message"].as_str().unwrap();
    assert!(message.chars().count() <= 1024);
    assert!(
        message.contains("Check first: is nginx running?"),
        "{message}"
    );
    assert_eq!(
        po.classify(
            &down[0],
            &answer(200, r#"{"status":1,"request":"r1","receipt":"rcpt7"}"#)
        ),
        Verdict::Done(Some("rcpt7".into()))
    );
    assert!(matches!(
        po.classify(
            &down[0],
            &answer(
                400,
                r#"{"user":"invalid","errors":["user identifier is invalid"],"status":0}"#
            )
        ),
        Verdict::Permanent(_)
    ));
    let rec = po.render(&alert(AlertKind::Recovered), Some("rcpt7"), t(900));
    assert_eq!(rec.len(), 2);
    assert_eq!(rec[0].url, "https://po.test/1/receipts/rcpt7/cancel.json");
    assert_eq!(rec[0].body.as_ref().unwrap()["token"], "apptoken");
    assert_eq!(rec[1].body.as_ref().unwrap()["priority"], 0);
    assert!(rec[1].body.as_ref().unwrap().get("retry").is_none());
    // A receipt already expired does not stop the recovery's message.
    assert_eq!(
        po.classify(&rec[0], &answer(404, "{}")),
        Verdict::Done(None)
    );
}

#[test]
fn the_usual_reading_of_statuses() {
    let after = |s: u16| match by_status(&Answer {
        status: s,
        retry_after: Some(Duration::from_secs(7)),
        body: String::new(),
    }) {
        Verdict::Done(_) => "done",
        Verdict::Retry { after, .. } => {
            assert_eq!(after, Some(Duration::from_secs(7)));
            "retry"
        }
        Verdict::Permanent(_) => "permanent",
    };
    for (s, v) in [
        (200, "done"),
        (202, "done"),
        (204, "done"),
        (400, "permanent"),
        (401, "permanent"),
        (404, "permanent"),
        (408, "retry"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
    ] {
        assert_eq!(after(s), v, "{s}");
    }
}
