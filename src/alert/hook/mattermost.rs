//! Mattermost's incoming webhooks take Slack's older format: text and
//! attachments (Mattermost does not draw Slack's blocks).

use super::{Request, Tone};
use crate::alert::channel::Secret;
use crate::alert::render::{self, truncate};
use crate::alert::{Alert, AlertKind};
use serde_json::{Value, json};
use std::time::SystemTime;

/// A Mattermost channel, ready.
pub struct Mattermost {
    /// The webhook URL (a secret).
    pub url: Secret,
}

impl Mattermost {
    pub(super) fn render(&self, a: &Alert, now: SystemTime) -> Vec<Request> {
        vec![Request::post(
            self.url.expose().to_string(),
            message(a, now),
        )]
    }
}

/// Mattermost's Markdown, escaped, so a detail shows as written.
fn plain(text: &str, max: usize) -> String {
    super::escaped(
        text,
        max,
        &['*', '_', '`', '[', ']', '#', '>', '~', '|', '<'],
    )
}

/// The post: a fallback text and one attachment.
pub fn message(a: &Alert, now: SystemTime) -> Value {
    let colour = match super::tone(a.kind) {
        Tone::Good => "#2EB85C",
        Tone::Bad => "#E02F2F",
        Tone::Warn => "#F0A020",
        Tone::Plain => "#8A8F98",
    };
    let mut fields = Vec::new();
    if let Some(c) = a.cause {
        fields.push(json!({"short": true, "title": "Cause", "value": plain(&format!("{} ({c})", c.words()), 300)}));
    }
    if a.kind != AlertKind::Test {
        let since = super::since_text(a, now);
        fields.push(json!({"short": true, "title": "Since", "value": since}));
    }
    if let Some(h) = &a.hint {
        fields.push(json!({"short": false, "title": "Check first", "value": plain(h, 1500)}));
    }
    if !a.layers.is_empty() {
        fields.push(json!({"short": false, "title": "Layers", "value": plain(&render::layers_line(a), 500)}));
    }
    let mut text = plain(&render::headline(a), 1000);
    if a.kind != AlertKind::Test && !a.detail.is_empty() {
        text = format!("{text}\n\n{}", plain(&a.detail, 3000));
    }
    let subject = render::subject(a);
    json!({
        "username": "sitewatch",
        "text": plain(&subject, 300),
        "attachments": [{
            "fallback": truncate(&subject, 300),
            "color": colour,
            "title": truncate(subject.trim_start_matches("[sitewatch] "), 250),
            "title_link": a.url.starts_with("http").then_some(&a.url),
            "text": text,
            "fields": fields,
            "footer": format!("sitewatch · alert {}", a.id),
        }],
    })
}
