//! Discord: an execute-webhook post with `?wait=true`, so that the answer
//! names the message; the recovery edits that message into its resolved
//! form and posts a short line under it.

use super::{Answer, Request, Tone, Verdict, by_status_after, seconds};
use crate::alert::channel::Secret;
use crate::alert::render::{self, truncate};
use crate::alert::{Alert, AlertKind};
use serde_json::{Value, json};
use std::time::SystemTime;

/// Discord's limits: an embed's title, description and field value.
const TITLE: usize = 256;
const DESCRIPTION: usize = 2500;
const FIELD: usize = 1024;

/// A Discord channel, ready.
pub struct Discord {
    /// The webhook URL (a secret).
    pub url: Secret,
}

/// Red, amber, green, blue and grey.
const RED: u32 = 0xE0_2F_2F;
const AMBER: u32 = 0xF0_A0_20;
const GREEN: u32 = 0x2E_B8_5C;
const GREY: u32 = 0x8A_8F_98;

/// Whether Discord's markdown gives `c` a meaning: anywhere, or (lists,
/// headings, quotes) at the start of a line.
fn special(c: char, line_start: bool) -> bool {
    matches!(c, '\\' | '*' | '_' | '~' | '`' | '|' | '[' | ']')
        || (line_start && matches!(c, '-' | '#' | '>'))
}

/// Escapes Discord's markdown so that a detail shows as written.
pub fn escape(text: &str) -> String {
    field_text(text, usize::MAX)
}

/// `text` escaped and cut to at most `max` characters, never inside an
/// escape; a cut ends with '…'.
pub fn field_text(text: &str, max: usize) -> String {
    // Each character with whether it needs a backslash.
    let mut line_start = true;
    let marked: Vec<(char, bool)> = text
        .chars()
        .map(|c| {
            let escaped = special(c, line_start);
            line_start = c == '\n' || (line_start && c == ' ');
            (c, escaped)
        })
        .collect();
    let width = |&(_, escaped): &(char, bool)| if escaped { 2 } else { 1 };
    let fits = marked.iter().map(width).sum::<usize>() <= max;
    let room = if fits { max } else { max.saturating_sub(1) };
    let mut out = String::with_capacity(text.len().min(max));
    let mut n = 0usize;
    for m in &marked {
        let (c, escaped) = *m;
        if n + width(m) > room {
            out.push('…');
            break;
        }
        if escaped {
            out.push('\\');
        }
        out.push(c);
        n += width(m);
    }
    out
}

impl Discord {
    /// The URL with `extra` added to its path and `wait=true` to its query.
    fn url(&self, extra: &str, wait: bool) -> String {
        let url = self.url.expose();
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut query: Vec<&str> = query.split('&').filter(|q| !q.is_empty()).collect();
        if wait {
            query.push("wait=true");
        }
        if query.is_empty() {
            format!("{}{extra}", base.trim_end_matches('/'))
        } else {
            format!("{}{extra}?{}", base.trim_end_matches('/'), query.join("&"))
        }
    }

    pub(super) fn render(&self, a: &Alert, thread: Option<&str>, now: SystemTime) -> Vec<Request> {
        let post = |body: Value| Request::post(self.url("", true), body);
        match (a.kind, thread) {
            (AlertKind::Recovered | AlertKind::Resolved | AlertKind::Forgotten, Some(id)) => {
                let mut body = message(a, now, Some(id));
                // An edit keeps the message's author: only its content changes.
                if let Some(fields) = body.as_object_mut() {
                    fields.remove("username");
                }
                let mut edit = post(body);
                edit.method = reqwest::Method::PATCH;
                edit.url = self.url(&format!("/messages/{id}"), false);
                let line = format!("✅ {}", escape(&render::headline(a)));
                vec![
                    edit,
                    post(
                        json!({"content": truncate(&line, 2000), "allowed_mentions": {"parse": []}}),
                    ),
                ]
            }
            _ => vec![post(message(a, now, None))],
        }
    }
}

/// The message of `a`: one embed. `edited` is the id of the message a
/// recovery rewrites.
fn message(a: &Alert, now: SystemTime, edited: Option<&str>) -> Value {
    let colour = match super::tone(a.kind) {
        Tone::Good => GREEN,
        Tone::Bad => RED,
        Tone::Warn => AMBER,
        Tone::Plain => GREY,
    };
    let title = render::subject(a);
    let mut description = render::headline(a);
    if a.kind != AlertKind::Test && !a.detail.is_empty() {
        description = format!("{description}\n\n{}", a.detail);
    }
    let mut fields = Vec::new();
    let mut field = |name: &str, value: String, inline: bool| {
        if !value.is_empty() {
            fields.push(json!({"name": name, "value": value, "inline": inline}));
        }
    };
    if let Some(c) = a.cause {
        field("Cause", format!("{} (`{c}`)", escape(c.words())), true);
    }
    if a.kind != AlertKind::Test {
        let since = super::since_text(a, now);
        field("Since", since, true);
    }
    field("URL", field_text(&a.url, 500), false);
    if let Some(h) = &a.hint {
        field("Check first", field_text(h, FIELD), false);
    }
    if !a.layers.is_empty() {
        field("Layers", field_text(&render::layers_line(a), 500), false);
    }
    if !a.seen.is_empty() {
        field(
            "Seen from",
            field_text(&render::seen_lines(a).join("\n"), 500),
            false,
        );
    }
    let mut footer = format!("sitewatch · alert {}", a.id);
    if edited.is_some() {
        footer.push_str(" · this message was the outage's alert, edited when it ended");
    }
    json!({
        "username": "sitewatch",
        "allowed_mentions": {"parse": []},
        "embeds": [{
            "title": truncate(title.trim_start_matches("[sitewatch] "), TITLE),
            "description": field_text(&description, DESCRIPTION),
            "color": colour,
            "fields": fields,
            "timestamp": crate::timefmt::rfc3339(a.at),
            "footer": {"text": footer},
        }],
    })
}

/// A post answers the message (its `id` the remote id); an edit of a
/// message that is gone (404) does not stop the recovery's own line; a 429
/// is retried after the `retry_after` of its body.
pub(super) fn classify(request: &Request, answer: &Answer) -> Verdict {
    if request.method == reqwest::Method::PATCH && answer.status == 404 {
        return Verdict::Done(None);
    }
    let hint = seconds(&answer.json()["retry_after"]).or(answer.retry_after);
    match by_status_after(answer, hint) {
        Verdict::Done(_) => Verdict::Done(answer.json()["id"].as_str().map(str::to_string)),
        other => other,
    }
}
