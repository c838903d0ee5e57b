//! The Alertmanager payload, pinned: exact JSON per change, label rules
//! and what a failed post means.

use super::*;
use crate::probe::LayerReport;
use serde_json::json;
use std::time::UNIX_EPOCH;

fn t(secs: u64) -> SystemTime {
    // 2026-11-25 19:00:00 UTC
    UNIX_EPOCH + Duration::from_secs(1_795_633_200 + secs)
}

fn shape() -> Shape {
    Shape {
        labels: [("team".to_string(), "web".to_string())].into(),
        vantage: "fra1".to_string(),
        resend_interval: Duration::from_secs(60),
    }
}

fn alert(kind: AlertKind) -> Alert {
    Alert {
        id: "blog-down-1795633200000".into(),
        kind,
        site: "blog".into(),
        url: "https://blog.example.com/".into(),
        status: Level::Down,
        cause: Some(Cause::TcpRefused),
        previous_cause: None,
        detail: "203.0.113.7:443 refused the connection".into(),
        hint: Some("nothing is listening on 203.0.113.7:443: is the web server running?".into()),
        since: t(0),
        at: t(0),
        outage_s: None,
        timeline: Vec::new(),
        first_error: None,
        last_error: None,
        layers: Vec::<LayerReport>::new(),
        addr: None,
        seen: Vec::new(),
    }
}

fn payload(a: &Alert, now: SystemTime) -> serde_json::Value {
    serde_json::to_value(shape().for_alert(a, now)).unwrap()
}

#[test]
fn down_fires_a_critical_alert_without_the_vantage_label() {
    assert_eq!(
        payload(&alert(AlertKind::Down), t(5)),
        json!([{
            "labels": {"alertname": "SitewatchSiteDown", "cause": "tcp.refused",
                       "severity": "critical", "site": "blog", "team": "web"},
            "annotations": {
                "summary": "DOWN blog — connection refused (tcp.refused)",
                "description": "203.0.113.7:443 refused the connection",
                "hint": "nothing is listening on 203.0.113.7:443: is the web server running?",
                "url": "https://blog.example.com/",
                "vantage": "fra1"
            },
            "startsAt": "2026-11-25T19:00:00.000Z",
            "endsAt": "2026-11-25T19:04:05.000Z",
            "generatorURL": "https://blog.example.com/"
        }])
    );
}

#[test]
fn a_voted_outage_carries_who_saw_what_in_an_annotation() {
    let mut a = alert(AlertKind::Down);
    a.seen = vec![
        crate::alert::Seen {
            vantage: "fra1".into(),
            verdict: "down".into(),
            cause: Some(Cause::TcpRefused),
            detail: "203.0.113.7:443 refused the connection".into(),
            earlier: false,
        },
        crate::alert::Seen {
            vantage: "nyc1".into(),
            verdict: "abstains".into(),
            cause: None,
            detail: "no answer within 5 s".into(),
            earlier: false,
        },
    ];
    let p = payload(&a, t(5));
    assert_eq!(
        p[0]["annotations"]["vantages"],
        "fra1  down  connection refused (tcp.refused): 203.0.113.7:443 refused the connection\nnyc1  abstains  abstains: no answer within 5 s"
    );
    // Still no vantage label: two vantages' posts are one alert.
    assert!(p[0]["labels"].get("vantage").is_none());
}

#[test]
fn degraded_fires_a_warning() {
    let mut a = alert(AlertKind::Degraded);
    a.status = Level::Degraded;
    a.cause = Some(Cause::TlsExpiring);
    a.detail = "the certificate expires in 9 days".into();
    a.hint = None;
    a.url = "https://user:pw@blog.example.com/".into();
    assert_eq!(
        payload(&a, t(5)),
        json!([{
            "labels": {"alertname": "SitewatchSiteDegraded", "cause": "tls.expiring",
                       "severity": "warning", "site": "blog", "team": "web"},
            "annotations": {
                "summary": "DEGRADED blog — certificate expires soon (tls.expiring)",
                "description": "the certificate expires in 9 days",
                "url": "https://blog.example.com/",
                "vantage": "fra1"
            },
            "startsAt": "2026-11-25T19:00:00.000Z",
            "endsAt": "2026-11-25T19:04:05.000Z",
            "generatorURL": "https://blog.example.com/"
        }])
    );
}

#[test]
fn a_cause_change_resolves_the_old_cause_and_fires_the_new_in_one_post() {
    let mut a = alert(AlertKind::CauseChanged);
    a.previous_cause = Some(Cause::HttpBadGateway);
    a.hint = None;
    a.at = t(180);
    let summary = "STILL DOWN blog — now connection refused (tcp.refused), was bad gateway (502) (http.bad_gateway)";
    assert_eq!(
        payload(&a, t(180)),
        json!([
            {
                "labels": {"alertname": "SitewatchSiteDown", "cause": "http.bad_gateway",
                           "severity": "critical", "site": "blog", "team": "web"},
                "annotations": {"summary": summary,
                    "description": "203.0.113.7:443 refused the connection",
                    "url": "https://blog.example.com/", "vantage": "fra1"},
                "startsAt": "2026-11-25T19:00:00.000Z",
                "endsAt": "2026-11-25T19:03:00.000Z",
                "generatorURL": "https://blog.example.com/"
            },
            {
                "labels": {"alertname": "SitewatchSiteDown", "cause": "tcp.refused",
                           "severity": "critical", "site": "blog", "team": "web"},
                "annotations": {"summary": summary,
                    "description": "203.0.113.7:443 refused the connection",
                    "url": "https://blog.example.com/", "vantage": "fra1"},
                "startsAt": "2026-11-25T19:00:00.000Z",
                "endsAt": "2026-11-25T19:07:00.000Z",
                "generatorURL": "https://blog.example.com/"
            }
        ])
    );
}

#[test]
fn a_recovery_resolves_the_down_alert_from_the_outage_start() {
    let mut a = alert(AlertKind::Recovered);
    a.status = Level::Up;
    a.cause = None;
    a.previous_cause = Some(Cause::TcpRefused);
    a.since = t(725);
    a.outage_s = Some(725);
    a.detail = "connected in 0.4 ms".into();
    a.hint = None;
    assert_eq!(
        payload(&a, t(727)),
        json!([{
            "labels": {"alertname": "SitewatchSiteDown", "cause": "tcp.refused",
                       "severity": "critical", "site": "blog", "team": "web"},
            "annotations": {
                "summary": "RECOVERED blog — up after 12m 5s",
                "description": "connected in 0.4 ms",
                "url": "https://blog.example.com/",
                "vantage": "fra1"
            },
            "startsAt": "2026-11-25T19:00:00.000Z",
            "endsAt": "2026-11-25T19:12:07.000Z",
            "generatorURL": "https://blog.example.com/"
        }])
    );
}

fn labels_of(ps: &[Postable]) -> Vec<(String, String, bool)> {
    ps.iter()
        .map(|p| {
            (
                p.labels["alertname"].clone(),
                p.labels.get("cause").cloned().unwrap_or_default(),
                p.ends_at > p.starts_at.max(t(100)),
            )
        })
        .collect()
}

#[test]
fn every_change_moves_the_right_alerts() {
    let s = shape();
    let now = t(100);
    let down = |c: &str, firing| ("SitewatchSiteDown".to_string(), c.to_string(), firing);
    let degr = |c: &str, firing| ("SitewatchSiteDegraded".to_string(), c.to_string(), firing);

    // Degraded, then down: the degraded alert ends as the down one fires.
    let mut a = alert(AlertKind::Down);
    a.previous_cause = Some(Cause::HttpSlow);
    assert_eq!(
        labels_of(&s.for_alert(&a, now)),
        [degr("http.slow", false), down("tcp.refused", true)]
    );
    // Back, but degraded: the down alert ends, a degraded one fires.
    let mut a = alert(AlertKind::Recovered);
    a.status = Level::Degraded;
    a.cause = Some(Cause::HttpSlow);
    a.previous_cause = Some(Cause::TcpRefused);
    a.outage_s = Some(50);
    let ps = s.for_alert(&a, now);
    assert_eq!(
        labels_of(&ps),
        [down("tcp.refused", false), degr("http.slow", true)]
    );
    assert!(ps[1].annotations["summary"].starts_with("DEGRADED blog"));
    // The refresh keeps firing that one.
    assert_eq!(s.firing(&a, now), Some(ps[1].clone()));
    // Degraded for another reason.
    let mut a = alert(AlertKind::Degraded);
    a.status = Level::Degraded;
    a.cause = Some(Cause::TlsExpiring);
    a.previous_cause = Some(Cause::HttpSlow);
    assert_eq!(
        labels_of(&s.for_alert(&a, now)),
        [degr("http.slow", false), degr("tls.expiring", true)]
    );
    // No longer degraded.
    let mut a = alert(AlertKind::Resolved);
    a.status = Level::Up;
    a.cause = None;
    a.previous_cause = Some(Cause::TlsExpiring);
    assert_eq!(
        labels_of(&s.for_alert(&a, now)),
        [degr("tls.expiring", false)]
    );
    // An outage no longer tracked is resolved.
    let mut a = alert(AlertKind::Forgotten);
    a.status = Level::Unknown;
    a.previous_cause = a.cause;
    assert_eq!(
        labels_of(&s.for_alert(&a, now)),
        [down("tcp.refused", false)]
    );
    // Alertmanager repeats and groups by itself; the refresh re-posts.
    for kind in [
        AlertKind::Reminder,
        AlertKind::Storm,
        AlertKind::Flapping,
        AlertKind::Settled,
    ] {
        assert!(s.for_alert(&alert(kind), now).is_empty(), "{kind:?}");
    }
    // A site that is up fires nothing.
    let mut up = alert(AlertKind::Recovered);
    up.status = Level::Up;
    up.cause = None;
    assert_eq!(s.firing(&up, now), None);
}

#[test]
fn the_watchdog_and_the_test_alert_carry_the_vantage() {
    let s = shape();
    let w = serde_json::to_value(s.watchdog(t(0), t(30))).unwrap();
    assert_eq!(
        w["labels"],
        json!({"alertname": "SitewatchWatchdog", "severity": "none", "team": "web", "vantage": "fra1"})
    );
    assert_eq!(w["startsAt"], "2026-11-25T19:00:00.000Z");
    assert_eq!(w["endsAt"], "2026-11-25T19:04:30.000Z");
    assert!(w.get("generatorURL").is_none());
    let mut a = alert(AlertKind::Test);
    a.site = "am".into();
    let p = s.for_alert(&a, t(30));
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].labels["alertname"], "SitewatchTest");
    assert_eq!(p[0].labels["vantage"], "fra1");
    assert_eq!(p[0].starts_at, p[0].ends_at, "it ends at once");
    assert_eq!(p[0].annotations["summary"], "TEST am — this channel works");
}

#[test]
fn what_is_sent_is_validated() {
    let s = shape();
    let good = s.watchdog(t(0), t(1));
    assert_eq!(validate(std::slice::from_ref(&good)), Ok(()));
    let mut p = good.clone();
    p.labels.remove("alertname");
    assert!(validate(&[p]).unwrap_err().contains("without alertname"));
    let mut p = good.clone();
    p.labels.insert("bad-name".into(), "x".into());
    assert!(validate(&[p]).unwrap_err().contains("invalid label name"));
    let mut p = good.clone();
    p.labels.insert("empty".into(), String::new());
    assert!(validate(&[p]).unwrap_err().contains("empty value"));
    let mut p = good.clone();
    p.ends_at = t(0) - Duration::from_secs(1);
    assert!(validate(&[p]).unwrap_err().contains("ends before"));
    let resolved = good.resolved(t(2));
    assert_eq!(resolved.ends_at, t(2));
    assert_eq!(resolved.labels, good.labels);
}

#[test]
fn a_post_is_done_when_one_instance_took_it() {
    let transient = |m: &str| SendError::Transient {
        message: m.into(),
        retry_after: None,
    };
    let outcome = |accepted: &[&str], failed: Vec<(&str, Option<u16>, SendError)>| Outcome {
        accepted: accepted.iter().map(|s| s.to_string()).collect(),
        failed: failed
            .into_iter()
            .map(|(u, s, e)| (u.to_string(), s, e))
            .collect(),
    };
    assert_eq!(
        outcome(
            &["http://a"],
            vec![("http://b", None, transient("refused"))]
        )
        .verdict(),
        Ok(())
    );
    match outcome(
        &[],
        vec![
            ("http://a", None, transient("refused")),
            (
                "http://b",
                Some(503),
                transient("the receiver answered 503"),
            ),
        ],
    )
    .verdict()
    {
        Err(SendError::Transient { message, .. }) => assert_eq!(
            message,
            "http://a: refused; http://b: the receiver answered 503"
        ),
        other => panic!("{other:?}"),
    }
    // Alertmanager refused the alerts themselves: retrying cannot help.
    let bad = SendError::Permanent("the receiver answered 400 Bad Request: bad label".into());
    assert!(matches!(
        outcome(
            &[],
            vec![
                ("http://a", Some(400), bad),
                ("http://b", None, transient("refused"))
            ]
        )
        .verdict(),
        Err(SendError::Permanent(m)) if m.starts_with("http://a: the receiver answered 400")
    ));
}
