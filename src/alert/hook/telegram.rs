//! Telegram Bot API `sendMessage`, in HTML (only `&`, `<` and `>` need
//! escaping there), link previews off; anything said during an outage is a
//! reply to the message that opened it.

use super::{Answer, Request, Verdict, by_status_after, seconds};
use crate::alert::channel::Secret;
use crate::alert::render::{self, truncate};
use crate::alert::{Alert, AlertKind};
use serde_json::json;
use std::time::SystemTime;

/// A Telegram channel, ready.
pub struct Telegram {
    /// The bot's token (a secret, and part of the URL).
    pub token: Secret,
    /// The chat.
    pub chat_id: String,
    /// The forum topic, if any.
    pub thread: Option<i64>,
    /// Base URL.
    pub url: String,
}

/// Escapes what HTML mode reads.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `text` cut to `max` characters, then escaped.
fn part(text: &str, max: usize) -> String {
    escape(&truncate(text, max))
}

impl Telegram {
    pub(super) fn render(&self, a: &Alert, thread: Option<&str>, now: SystemTime) -> Vec<Request> {
        let chat: serde_json::Value = match self.chat_id.parse::<i64>() {
            Ok(n) => json!(n),
            Err(_) => json!(self.chat_id),
        };
        let mut body = json!({
            "chat_id": chat,
            "text": text(a, now),
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": true},
        });
        if let Some(t) = self.thread {
            body["message_thread_id"] = json!(t);
        }
        if let Some(id) = thread.and_then(|t| t.parse::<i64>().ok()) {
            body["reply_parameters"] =
                json!({"message_id": id, "allow_sending_without_reply": true});
        }
        vec![Request::post(
            format!("{}/bot{}/sendMessage", self.url, self.token.expose()),
            body,
        )]
    }
}

/// The message: bold subject, headline, facts, detail and hint, each cut
/// so that the whole stays under Telegram's limit.
pub fn text(a: &Alert, now: SystemTime) -> String {
    let mut out = format!(
        "<b>{}</b>\n{}",
        part(render::subject(a).trim_start_matches("[sitewatch] "), 250),
        part(&render::headline(a), 500)
    );
    if let Some(c) = a.cause {
        out.push_str(&format!(
            "\n\n<b>Cause:</b> {} (<code>{c}</code>)",
            part(c.words(), 200)
        ));
    }
    if a.kind != AlertKind::Test {
        let since = super::since_text(a, now);
        out.push_str(&format!("\n<b>Since:</b> {since}"));
        if !a.detail.is_empty() {
            out.push_str(&format!("\n\n{}", part(&a.detail, 1500)));
        }
    }
    out.push_str(&format!("\n<b>URL:</b> {}", part(&a.url, 300)));
    if let Some(h) = &a.hint {
        out.push_str(&format!("\n\n<b>Check first:</b> {}", part(h, 800)));
    }
    if !a.layers.is_empty() {
        out.push_str(&format!("\n<i>{}</i>", part(&render::layers_line(a), 300)));
    }
    out
}

/// `{"ok":true,"result":{"message_id":…}}` is taken (the message id the
/// remote id); a 429 waits for `parameters.retry_after`.
pub(super) fn classify(answer: &Answer) -> Verdict {
    let json = answer.json();
    let hint = seconds(&json["parameters"]["retry_after"]).or(answer.retry_after);
    match by_status_after(answer, hint) {
        Verdict::Done(_) if json["ok"] == json!(false) => {
            Verdict::Permanent(format!("Telegram refused: {}", answer.excerpt()))
        }
        Verdict::Done(_) => Verdict::Done(
            json["result"]["message_id"]
                .as_i64()
                .map(|id| id.to_string()),
        ),
        other => other,
    }
}
