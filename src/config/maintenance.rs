//! `[[maintenance]]` tables: planned windows during which the sites and
//! heartbeats they name (or tag) page nobody. See [`crate::maintenance`].

use super::context::{Cx, Dur, check_name, duration_in, list_len, text_len};
use super::diagnostic::quote;
use super::model::*;
use crate::heartbeat::cron::CronSchedule;
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::time::{Duration, SystemTime};
use toml::Spanned;

/// The longest window: a week.
const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);
/// The longest `announce`: 30 days.
const MAX_ANNOUNCE: Duration = Duration::from_secs(30 * 24 * 3600);
/// The default `announce`: three days.
const ANNOUNCE: Duration = Duration::from_secs(72 * 3600);
/// The longest title, in bytes.
const MAX_TITLE_BYTES: usize = 200;
/// The most names or tags one window lists.
const MAX_TARGETS: usize = 1000;

/// A `[[maintenance]]` before validation.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMaintenance {
    id: Option<Spanned<String>>,
    title: Option<Spanned<String>>,
    sites: Option<Spanned<Vec<Spanned<String>>>>,
    heartbeats: Option<Spanned<Vec<Spanned<String>>>>,
    tags: Option<Spanned<Vec<Spanned<String>>>>,
    start: Option<Spanned<String>>,
    end: Option<Spanned<String>>,
    schedule: Option<Spanned<String>>,
    duration: Option<Spanned<Dur>>,
    timezone: Option<Spanned<String>>,
    uptime: Option<Spanned<String>>,
    announce: Option<Spanned<Dur>>,
}

fn instant(cx: &mut Cx<'_>, key: &str, v: &Spanned<String>) -> Option<SystemTime> {
    match chrono::DateTime::parse_from_rfc3339(v.get_ref()) {
        Ok(t) => Some(SystemTime::from(t)),
        Err(_) => {
            cx.error(
                v.span(),
                format!(
                    "`{key}` is an RFC 3339 time with its offset, like \"2026-12-01T02:00:00+01:00\" or \"2026-12-01T01:00:00Z\", not \"{}\"",
                    quote(v.get_ref())
                ),
            );
            None
        }
    }
}

/// The names and tags a window may cover: every `[[site]]` and
/// `[[heartbeat]]` of the file, valid or not (a mistake in a site is
/// reported once, at the site). Indexed, so that checking a window's lists
/// costs the same however many sites the file has.
pub(super) struct Declared<'a> {
    /// Each name, and whether it is a heartbeat's (the first table that
    /// declares a name, sites before heartbeats, decides).
    pub(super) names: HashMap<&'a str, bool>,
    /// Every tag written on a site or heartbeat (or in `[defaults]`).
    pub(super) tags: HashSet<&'a str>,
}

/// A `name` and `tags` as a table wrote them.
type Named<'a> = (
    &'a Option<Spanned<String>>,
    &'a Option<Spanned<Vec<Spanned<String>>>>,
);

impl<'a> Declared<'a> {
    /// What the `[[site]]`s, `[[heartbeat]]`s and `[defaults]` declare.
    pub(super) fn of(
        sites: impl Iterator<Item = Named<'a>>,
        heartbeats: impl Iterator<Item = Named<'a>>,
        defaults: &'a Option<Spanned<Vec<Spanned<String>>>>,
    ) -> Declared<'a> {
        let strings = |list: &'a Option<Spanned<Vec<Spanned<String>>>>| {
            list.iter()
                .flat_map(|l| l.get_ref().iter().map(|s| s.get_ref().as_str()))
        };
        let mut out = Declared {
            names: HashMap::new(),
            tags: strings(defaults).collect(),
        };
        let sites = sites.map(|named| (named, false));
        let heartbeats = heartbeats.map(|named| (named, true));
        for ((name, tags), heartbeat) in sites.chain(heartbeats) {
            if let Some(n) = name {
                out.names.entry(n.get_ref().as_str()).or_insert(heartbeat);
            }
            out.tags.extend(strings(tags));
        }
        out
    }
}

/// Checks one window against the sites and heartbeats declared.
pub(super) fn validate(
    cx: &mut Cx<'_>,
    span: Range<usize>,
    raw: &RawMaintenance,
    declared: &Declared<'_>,
) -> Option<MaintenanceSpec> {
    let before = cx.count();
    let id = match &raw.id {
        None => {
            cx.error(span.clone(), "this [[maintenance]] has no `id`");
            None
        }
        Some(v) => match check_name(v.get_ref()) {
            Ok(()) => Some(v.get_ref().clone()),
            Err(msg) => {
                cx.error(v.span(), msg.replacen("site name", "maintenance id", 1));
                None
            }
        },
    };
    let title = match &raw.title {
        Some(t) if text_len(cx, "title", t, MAX_TITLE_BYTES) => Some(t.get_ref().clone()),
        Some(_) => None,
        None => id.clone(),
    };
    // What it covers.
    let mut names = Vec::new();
    for (key, list, heartbeat) in [
        ("sites", &raw.sites, false),
        ("heartbeats", &raw.heartbeats, true),
    ] {
        let Some(list) = list else { continue };
        if !list_len(cx, key, "names", list, MAX_TARGETS) {
            continue;
        }
        for n in list.get_ref() {
            match declared.names.get(n.get_ref().as_str()) {
                Some(is_heartbeat) if *is_heartbeat == heartbeat => names.push(n.get_ref().clone()),
                Some(_) => cx.error(
                    n.span(),
                    format!(
                        "\"{}\" is a {}: list it under `{}`",
                        quote(n.get_ref()),
                        if heartbeat { "site" } else { "heartbeat" },
                        if heartbeat { "sites" } else { "heartbeats" }
                    ),
                ),
                None => cx.error(
                    n.span(),
                    format!(
                        "`{key}` names \"{}\", which is not a [[{}]] in this file",
                        quote(n.get_ref()),
                        if heartbeat { "heartbeat" } else { "site" }
                    ),
                ),
            }
        }
    }
    let mut tags = Vec::new();
    if let Some(list) = &raw.tags
        && list_len(cx, "tags", "tags", list, MAX_TARGETS)
    {
        for t in list.get_ref() {
            if declared.tags.contains(t.get_ref().as_str()) {
                tags.push(t.get_ref().clone());
            } else {
                cx.error(
                    t.span(),
                    format!(
                        "no site or heartbeat has the tag \"{}\": add it to their `tags`, or fix the spelling",
                        quote(t.get_ref())
                    ),
                );
            }
        }
    }
    if raw.sites.is_none() && raw.heartbeats.is_none() && raw.tags.is_none() {
        cx.error(
            span.clone(),
            "this [[maintenance]] covers nothing: list `sites`, `heartbeats` or `tags`",
        );
    }
    // When.
    let when = match (&raw.start, &raw.end, &raw.schedule) {
        (Some(s), Some(e), None) => {
            if let Some(d) = &raw.duration {
                cx.error(
                    d.span(),
                    "`duration` goes with `schedule`; a one-off window has `start` and `end`",
                );
            }
            match (instant(cx, "start", s), instant(cx, "end", e)) {
                (Some(start), Some(end)) if start < end => Some(When::Once { start, end }),
                (Some(_), Some(_)) => {
                    cx.error(e.span(), "`end` must come after `start`");
                    None
                }
                _ => None,
            }
        }
        (None, None, Some(s)) => {
            let zone = raw
                .timezone
                .as_ref()
                .map_or("UTC", |z| z.get_ref().as_str());
            let schedule = match crate::heartbeat::cron::parse_timezone(zone) {
                Err(msg) => {
                    if let Some(z) = &raw.timezone {
                        cx.error(z.span(), msg);
                    }
                    None
                }
                Ok(_) => match CronSchedule::parse(s.get_ref(), zone) {
                    Ok(c) => Some(c),
                    Err(msg) => {
                        cx.error(s.span(), msg);
                        None
                    }
                },
            };
            let duration = match &raw.duration {
                None => {
                    cx.error(
                        span.clone(),
                        "a recurring window needs a `duration` (e.g. \"2h\")",
                    );
                    None
                }
                Some(d) => duration_in(cx, "duration", d, Duration::from_secs(60), MAX_DURATION),
            };
            match (schedule, duration) {
                (Some(schedule), Some(duration)) => {
                    let gap = schedule.shortest_gap(SystemTime::now());
                    match (gap, &raw.duration) {
                        (Some(gap), Some(d)) if duration >= gap => {
                            cx.error(
                                d.span(),
                                format!(
                                    "`duration` ({}) is as long as the time between two starts of the schedule ({}): the window would never end",
                                    humantime::format_duration(duration),
                                    humantime::format_duration(gap)
                                ),
                            );
                            None
                        }
                        _ => Some(When::Every {
                            schedule: Box::new(schedule),
                            duration,
                        }),
                    }
                }
                _ => None,
            }
        }
        (None, None, None) => {
            cx.error(
                span.clone(),
                "this [[maintenance]] says neither `start` and `end` (one-off) nor `schedule` and `duration` (recurring)",
            );
            None
        }
        (_, _, Some(s)) => {
            cx.error(
                s.span(),
                "give `start` and `end`, or `schedule` and `duration`, not both",
            );
            None
        }
        (Some(s), None, None) => {
            cx.error(s.span(), "a one-off window needs an `end` too");
            None
        }
        (None, Some(e), None) => {
            cx.error(e.span(), "a one-off window needs a `start` too");
            None
        }
    };
    if raw.schedule.is_none()
        && let Some(z) = &raw.timezone
    {
        cx.error(
            z.span(),
            "`timezone` goes with `schedule`; `start` and `end` carry their own offset",
        );
    }
    let exclude_uptime = match &raw.uptime {
        None => true,
        Some(u) => match u.get_ref().as_str() {
            "exclude" => true,
            "count" => false,
            other => {
                cx.error(
                    u.span(),
                    format!(
                        "`uptime` is \"exclude\" (the default: maintenance time is left out of uptime) or \"count\" (for strict SLAs), not \"{}\"",
                        quote(other)
                    ),
                );
                true
            }
        },
    };
    let announce = match &raw.announce {
        None => ANNOUNCE,
        Some(a) => duration_in(cx, "announce", a, Duration::ZERO, MAX_ANNOUNCE).unwrap_or(ANNOUNCE),
    };
    if cx.count() > before {
        return None;
    }
    Some(MaintenanceSpec {
        id: id?,
        title: title?,
        sites: names,
        tags,
        when: when?,
        exclude_uptime,
        announce,
    })
}
