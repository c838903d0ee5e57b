//! A channel's `events`: which of a site's events it takes.

use super::context::Cx;
use super::diagnostic::quote;
use toml::Spanned;

/// The events a channel's `events` may list (`test` always goes).
pub const EVENTS: &[&str] = &[
    "down",
    "cause_changed",
    "degraded",
    "recovered",
    "resolved",
    "reminder",
    "forgotten",
    "network_lost",
    "network_back",
    "vantage_lost",
    "vantage_back",
    "storm",
    "flapping",
    "settled",
];

/// Checks a channel's `events`: known words, each once, at least one.
pub(super) fn events(cx: &mut Cx<'_>, list: &Option<Spanned<Vec<Spanned<String>>>>) -> Vec<String> {
    let Some(list) = list else {
        return Vec::new();
    };
    if list.get_ref().is_empty() {
        cx.error(
            list.span(),
            "`events` must list at least one event (leave it out for every event)",
        );
    }
    let mut out: Vec<String> = Vec::new();
    for e in list.get_ref() {
        let word = e.get_ref();
        if !EVENTS.contains(&word.as_str()) {
            cx.error(
                e.span(),
                format!(
                    "`events` lists \"{}\", which is not an event: {}",
                    quote(word),
                    EVENTS.join(", ")
                ),
            );
        } else if out.contains(word) {
            cx.error(
                e.span(),
                format!("`events` lists \"{}\" twice", quote(word)),
            );
        } else {
            out.push(word.clone());
        }
    }
    out
}
