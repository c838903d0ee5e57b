//! Pushover: a message with a priority per event. An emergency (priority
//! 2) repeats until someone acknowledges it; its receipt is the remote id,
//! and the recovery cancels it before saying the site is back.

use super::{Answer, Request, Verdict, by_status, per_event};
use crate::alert::channel::Secret;
use crate::alert::render::{self, truncate};
use crate::alert::{Alert, AlertKind};
use crate::config::PerEvent;
use serde_json::json;
use std::time::{Duration, SystemTime};

/// Pushover's limits: message and title.
pub const MAX_MESSAGE: usize = 1024;
const MAX_TITLE: usize = 250;

/// A Pushover channel, ready.
pub struct Pushover {
    /// The application's token.
    pub token: Secret,
    /// The user or group key.
    pub user: Secret,
    /// Base URL.
    pub url: String,
    /// Priority per event.
    pub priority: PerEvent<i64>,
    /// How often an emergency repeats.
    pub retry: Duration,
    /// When it stops repeating.
    pub expire: Duration,
}

/// High (1, bypasses quiet hours) for down, normal otherwise.
fn default_priority(kind: AlertKind) -> i64 {
    match kind {
        AlertKind::Down | AlertKind::Storm => 1,
        _ => 0,
    }
}

impl Pushover {
    pub(super) fn render(&self, a: &Alert, thread: Option<&str>, _now: SystemTime) -> Vec<Request> {
        let mut requests = Vec::new();
        if let Some(receipt) = thread
            && super::closes_thread(a.kind)
            && receipt.chars().all(|c| c.is_ascii_alphanumeric())
        {
            requests.push(Request::post(
                format!("{}/1/receipts/{receipt}/cancel.json", self.url),
                json!({"token": self.token.expose()}),
            ));
        }
        let priority = per_event(&self.priority, a.kind, default_priority(a.kind));
        let mut message = render::headline(a);
        if a.kind != AlertKind::Test && !a.detail.is_empty() {
            message = format!("{message}\n\n{}", a.detail);
        }
        // The hint is what a phone screen must show: it is kept whole
        // (up to half the message) when the rest must be cut.
        if let Some(h) = &a.hint {
            // The hint is what a phone screen must show: it goes first
            // when the whole does not fit.
            let hint = format!("\n\nCheck first: {h}");
            let room = MAX_MESSAGE.saturating_sub(hint.chars().count().min(MAX_MESSAGE / 2));
            message = format!(
                "{}{}",
                truncate(&message, room),
                truncate(&hint, MAX_MESSAGE / 2)
            );
        }
        let mut body = json!({
            "token": self.token.expose(),
            "user": self.user.expose(),
            "title": truncate(render::subject(a).trim_start_matches("[sitewatch] "), MAX_TITLE),
            "message": truncate(&message, MAX_MESSAGE),
            "priority": priority,
            "timestamp": a.at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs(),
        });
        if priority == 2 {
            body["retry"] = json!(self.retry.as_secs());
            body["expire"] = json!(self.expire.as_secs());
        }
        if a.url.starts_with("http") && a.url.len() <= 512 {
            body["url"] = json!(a.url);
            body["url_title"] = json!(truncate(&a.site, 100));
        }
        requests.push(Request::post(format!("{}/1/messages.json", self.url), body));
        requests
    }
}

/// A message answers `{"status":1,"receipt":…}` for an emergency (the
/// receipt the remote id). A cancel of a receipt that is gone or expired
/// does not stop the recovery's message.
pub(super) fn classify(request: &Request, answer: &Answer) -> Verdict {
    let cancel = request.url.ends_with("/cancel.json");
    match by_status(answer) {
        Verdict::Permanent(_) if cancel => Verdict::Done(None),
        Verdict::Done(_) if cancel => Verdict::Done(None),
        Verdict::Done(_) => {
            let json = answer.json();
            if json["status"] != json!(1) && json["status"] != json!("1") {
                return Verdict::Permanent(format!("Pushover refused: {}", answer.excerpt()));
            }
            Verdict::Done(json["receipt"].as_str().map(str::to_string))
        }
        other => other,
    }
}
