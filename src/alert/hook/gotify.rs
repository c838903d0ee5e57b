//! Gotify: `POST /message` with the application's token in a header (not
//! the URL, which may be logged), a title, a message and a priority.

use super::{Request, Tone, per_event};
use crate::alert::channel::Secret;
use crate::alert::render::{self, truncate};
use crate::alert::{Alert, AlertKind};
use crate::config::PerEvent;
use serde_json::json;
use std::time::SystemTime;

/// A Gotify channel, ready.
pub struct Gotify {
    /// The server's base URL.
    pub url: String,
    /// The application's token.
    pub token: Secret,
    /// Priority per event.
    pub priority: PerEvent<i64>,
}

/// 8 for down (Gotify's clients ring from 8), 5 degraded, 4 otherwise.
fn default_priority(kind: AlertKind) -> i64 {
    match super::tone(kind) {
        Tone::Bad => 8,
        Tone::Warn => 5,
        _ => 4,
    }
}

impl Gotify {
    pub(super) fn render(&self, a: &Alert, _now: SystemTime) -> Vec<Request> {
        let message = super::plain_message(a);
        let mut body = json!({
            "title": truncate(render::subject(a).trim_start_matches("[sitewatch] "), 250),
            "message": truncate(&message, 8000),
            "priority": per_event(&self.priority, a.kind, default_priority(a.kind)),
            "extras": {"client::display": {"contentType": "text/plain"}},
        });
        if a.url.starts_with("http") {
            body["extras"]["client::notification"] = json!({"click": {"url": a.url}});
        }
        vec![
            Request::post(format!("{}/message", self.url), body)
                .header("x-gotify-key", self.token.expose().to_string()),
        ]
    }
}
