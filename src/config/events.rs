//! A channel's `events` (which of a site's events it takes), and its
//! `sites` and `tags` (which sites it hears of).

use super::context::{Cx, list_len};
use super::diagnostic::quote;
use super::maintenance::Declared;
use super::model::{ChannelSpec, SiteSpec};
use std::sync::Arc;
use toml::Spanned;

/// A list of strings as read.
type List = Option<Spanned<Vec<Spanned<String>>>>;

/// The most entries a channel's `sites` or `tags` may list.
const MAX_SCOPE: usize = 10_000;

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

/// Checks each channel's `sites` and `tags` (`scopes[i]` is channel `i`'s)
/// against the names and tags the file declares, then keeps in each
/// site's `notify` only the channels that hear of it.
pub(super) fn scope(
    cx: &mut Cx<'_>,
    channels: &mut [ChannelSpec],
    scopes: &[(List, List)],
    declared: &Declared<'_>,
    sites: &mut [Arc<SiteSpec>],
) {
    for (channel, (names, tags)) in channels.iter_mut().zip(scopes) {
        for (key, list, is_tag) in [("sites", names, false), ("tags", tags, true)] {
            let Some(list) = list else { continue };
            if list.get_ref().is_empty() {
                cx.error(
                    list.span(),
                    format!("`{key}` must list at least one (leave it out for every site)"),
                );
            }
            if !list_len(cx, key, "entries", list, MAX_SCOPE) {
                continue;
            }
            for entry in list.get_ref() {
                let word = entry.get_ref();
                let known = if is_tag {
                    declared.tags.contains(word.as_str())
                } else {
                    declared.names.contains_key(word.as_str())
                };
                if !known {
                    let what = if is_tag {
                        "no site or heartbeat has the tag"
                    } else {
                        "there is no site or heartbeat named"
                    };
                    cx.error(entry.span(), format!("`{key}`: {what} \"{}\"", quote(word)));
                } else if is_tag {
                    channel.tags.push(word.clone());
                } else {
                    channel.sites.push(word.clone());
                }
            }
        }
    }
    let scoped: Vec<&ChannelSpec> = channels
        .iter()
        .filter(|c| !c.sites.is_empty() || !c.tags.is_empty())
        .collect();
    for site in sites {
        let deaf: Vec<&str> = scoped
            .iter()
            .filter(|c| site.notify.contains(&c.name) && !c.hears(site))
            .map(|c| c.name.as_str())
            .collect();
        if !deaf.is_empty() {
            let mut spec = (**site).clone();
            spec.notify.retain(|n| !deaf.contains(&n.as_str()));
            *site = Arc::new(spec);
        }
    }
}
