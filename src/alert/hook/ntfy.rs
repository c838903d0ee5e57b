//! ntfy: a JSON publish to the server's root URL, with a title, a priority
//! and tags per event, and a click URL.

use super::{Request, Tone, per_event};
use crate::alert::channel::Secret;
use crate::alert::render::{self, truncate};
use crate::alert::{Alert, AlertKind};
use crate::config::PerEvent;
use serde_json::json;
use std::time::SystemTime;

/// ntfy's default message limit (longer ones become attachments).
pub const MAX_MESSAGE: usize = 4000;

/// An ntfy channel, ready.
pub struct Ntfy {
    /// The server's base URL.
    pub url: String,
    /// The topic.
    pub topic: String,
    /// An access token.
    pub token: Option<Secret>,
    /// Priority per event.
    pub priority: PerEvent<i64>,
    /// Where a tap leads (default: the site's URL).
    pub click: Option<String>,
}

/// The default priority of an event: 5 (urgent) for down, 4 while it
/// stays down, 3 otherwise.
fn default_priority(kind: AlertKind) -> i64 {
    match kind {
        AlertKind::Down | AlertKind::Storm => 5,
        AlertKind::CauseChanged
        | AlertKind::Reminder
        | AlertKind::NetworkLost
        | AlertKind::VantageLost => 4,
        _ => 3,
    }
}

/// The emoji tags ntfy shows before the title.
fn tags(kind: AlertKind) -> &'static [&'static str] {
    match (super::tone(kind), kind) {
        (Tone::Good, _) => &["white_check_mark"],
        (Tone::Bad, _) => &["rotating_light"],
        (_, AlertKind::Test) => &["wrench"],
        _ => &["warning"],
    }
}

impl Ntfy {
    pub(super) fn render(&self, a: &Alert, _now: SystemTime) -> Vec<Request> {
        let message = super::plain_message(a);
        let mut body = json!({
            "topic": self.topic,
            "title": truncate(render::subject(a).trim_start_matches("[sitewatch] "), 250),
            "message": truncate(&message, MAX_MESSAGE),
            "priority": per_event(&self.priority, a.kind, default_priority(a.kind)),
            "tags": tags(a.kind),
        });
        let click = self
            .click
            .clone()
            .or_else(|| a.url.starts_with("http").then(|| a.url.clone()));
        if let Some(c) = click {
            body["click"] = json!(c);
        }
        let mut request = Request::post(format!("{}/", self.url), body);
        if let Some(t) = &self.token {
            request = request.header("authorization", format!("Bearer {}", t.expose()));
        }
        vec![request]
    }
}
