//! PagerDuty Events API v2: a trigger per outage, keyed by the site
//! (`sitewatch/{site}`), so that a retry, a restart or another vantage
//! never opens a second incident; a resolve with the same key when it ends.

use super::{Answer, Request, Verdict, by_status_after, per_event};
use crate::alert::channel::Secret;
use crate::alert::render::{self, truncate};
use crate::alert::{Alert, AlertKind};
use crate::config::PerEvent;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime};

/// The longest `payload.summary` PagerDuty takes.
pub const MAX_SUMMARY: usize = 1024;
/// The longest `dedup_key`.
pub const MAX_DEDUP_KEY: usize = 255;
/// How long to wait after a 429 without a hint (PagerDuty asks for minutes).
const RATE_LIMITED_WAIT: Duration = Duration::from_secs(60);

/// A PagerDuty channel, ready.
pub struct PagerDuty {
    /// The integration's routing key.
    pub key: Secret,
    /// Base URL.
    pub url: String,
    /// `payload.source`.
    pub source: String,
    /// Severity per event.
    pub severity: PerEvent<String>,
}

/// The incident key of `what` about `subject` (a site, a vantage).
pub fn dedup_key(what: &str, subject: &str) -> String {
    let key = if what.is_empty() {
        format!("sitewatch/{subject}")
    } else {
        format!("sitewatch/{what}/{subject}")
    };
    key.chars().take(MAX_DEDUP_KEY).collect()
}

impl PagerDuty {
    pub(super) fn render(&self, a: &Alert, _now: SystemTime) -> Vec<Request> {
        let site = &a.site;
        let down = dedup_key("", site);
        let degraded = dedup_key("degraded", site);
        match a.kind {
            AlertKind::Down | AlertKind::CauseChanged | AlertKind::Reminder | AlertKind::Storm => {
                vec![self.trigger(a, &down, "critical")]
            }
            AlertKind::Degraded => vec![self.trigger(a, &degraded, "warning")],
            // An outage ends both keys: a degraded site may have gone down.
            AlertKind::Recovered | AlertKind::Forgotten => {
                vec![self.resolve(&down), self.resolve(&degraded)]
            }
            AlertKind::Resolved => vec![self.resolve(&degraded)],
            AlertKind::Flapping => vec![self.trigger(a, &dedup_key("flapping", site), "warning")],
            AlertKind::Settled => vec![self.resolve(&dedup_key("flapping", site))],
            AlertKind::NetworkLost => vec![self.trigger(a, &dedup_key("network", site), "error")],
            AlertKind::NetworkBack => vec![self.resolve(&dedup_key("network", site))],
            AlertKind::VantageLost => vec![self.trigger(a, &dedup_key("vantage", site), "error")],
            AlertKind::VantageBack => vec![self.resolve(&dedup_key("vantage", site))],
            // A test opens an incident of its own and resolves it at once.
            AlertKind::Test => {
                let key = dedup_key("test", &a.id);
                vec![self.trigger(a, &key, "info"), self.resolve(&key)]
            }
        }
    }

    fn event(&self, action: &str, key: &str) -> Value {
        json!({
            "routing_key": self.key.expose(),
            "event_action": action,
            "dedup_key": key,
            "client": "sitewatch",
        })
    }

    fn resolve(&self, key: &str) -> Request {
        Request::post(
            format!("{}/v2/enqueue", self.url),
            self.event("resolve", key),
        )
    }

    fn trigger(&self, a: &Alert, key: &str, severity: &str) -> Request {
        let severity = per_event(&self.severity, a.kind, severity.to_string());
        let mut details = json!({
            "event": a.kind.as_str(),
            "site": a.site,
            "url": a.url,
            "status": a.status,
            "detail": a.detail,
            "since": crate::timefmt::rfc3339(a.since),
            "alert_id": a.id,
        });
        if let Some(c) = a.cause {
            details["cause"] = json!(c.as_str());
            details["cause_words"] = json!(c.words());
        }
        if let Some(h) = &a.hint {
            details["hint"] = json!(h);
        }
        if !a.layers.is_empty() {
            details["layers"] = json!(render::layers_line(a));
        }
        if !a.seen.is_empty() {
            details["vantages"] = json!(render::seen_lines(a));
        }
        let mut body = self.event("trigger", key);
        body["payload"] = json!({
            "summary": truncate(render::subject(a).trim_start_matches("[sitewatch] "), MAX_SUMMARY),
            "source": self.source,
            "severity": severity,
            "timestamp": crate::timefmt::rfc3339(a.at),
            "component": a.site,
            "custom_details": details,
        });
        // Optional fields are left out rather than sent as null.
        if let Some(c) = a.cause {
            body["payload"]["class"] = json!(c.as_str());
        }
        if a.url.starts_with("http://") || a.url.starts_with("https://") {
            body["links"] = json!([{"href": a.url, "text": a.site}]);
        }
        Request::post(format!("{}/v2/enqueue", self.url), body)
    }
}

/// 202 is taken (its `dedup_key` the remote id), 400 is permanent, 429 is
/// retried after a minute unless the answer says otherwise.
pub(super) fn classify(request: &Request, answer: &Answer) -> Verdict {
    if answer.status == 429 {
        return by_status_after(answer, answer.retry_after.or(Some(RATE_LIMITED_WAIT)));
    }
    match by_status_after(answer, answer.retry_after) {
        Verdict::Done(_) => {
            let key = answer.json()["dedup_key"]
                .as_str()
                .map(str::to_string)
                .or_else(|| {
                    request.body.as_ref()?["dedup_key"]
                        .as_str()
                        .map(str::to_string)
                });
            Verdict::Done(key)
        }
        other => other,
    }
}
