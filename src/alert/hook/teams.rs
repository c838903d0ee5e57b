//! Microsoft Teams through a Workflows webhook ("Post to a channel when a
//! webhook request is received"): a message with one Adaptive Card 1.4,
//! the newest version Teams renders.

use super::{Request, Tone};
use crate::alert::channel::Secret;
use crate::alert::render;
use crate::alert::{Alert, AlertKind};
use serde_json::{Value, json};
use std::time::SystemTime;

/// A Teams channel, ready.
pub struct Teams {
    /// The workflow's URL (a secret).
    pub url: Secret,
}

impl Teams {
    pub(super) fn render(&self, a: &Alert, now: SystemTime) -> Vec<Request> {
        vec![Request::post(self.url.expose().to_string(), card(a, now))]
    }
}

/// The card's text without Markdown's meaning (TextBlocks read a subset).
fn plain(text: &str, max: usize) -> String {
    super::escaped(text, max, &['*', '_', '`', '[', ']', '#', '>', '-', '~'])
}

/// The message: one Adaptive Card with the headline, the facts (cause,
/// since, URL), the detail and what to check first.
pub fn card(a: &Alert, now: SystemTime) -> Value {
    let colour = match super::tone(a.kind) {
        Tone::Good => "Good",
        Tone::Bad => "Attention",
        Tone::Warn => "Warning",
        Tone::Plain => "Default",
    };
    let mut facts = Vec::new();
    if let Some(c) = a.cause {
        facts.push(json!({"title": "Cause", "value": plain(&format!("{} ({c})", c.words()), 300)}));
    }
    if a.kind != AlertKind::Test {
        let since = super::since_text(a, now);
        facts.push(json!({"title": "Since", "value": since}));
    }
    facts.push(json!({"title": "URL", "value": plain(&a.url, 500)}));
    let mut body = vec![
        json!({"type": "TextBlock", "text": plain(render::subject(a).trim_start_matches("[sitewatch] "), 250),
               "size": "Medium", "weight": "Bolder", "color": colour, "wrap": true}),
        json!({"type": "TextBlock", "text": plain(&render::headline(a), 1000), "wrap": true}),
        json!({"type": "FactSet", "facts": facts}),
    ];
    if a.kind != AlertKind::Test && !a.detail.is_empty() {
        body.push(json!({"type": "TextBlock", "text": plain(&a.detail, 2000), "wrap": true}));
    }
    if let Some(h) = &a.hint {
        body.push(json!({"type": "TextBlock", "text": format!("**Check first:** {}", plain(h, 1500)), "wrap": true}));
    }
    if !a.layers.is_empty() {
        body.push(
            json!({"type": "TextBlock", "text": plain(&render::layers_line(a), 500),
                         "wrap": true, "isSubtle": true, "size": "Small"}),
        );
    }
    body.push(
        json!({"type": "TextBlock", "text": plain(&format!("sitewatch · alert {}", a.id), 200),
                     "isSubtle": true, "size": "Small"}),
    );
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
                "msteams": {"width": "Full"},
            },
        }],
    })
}
