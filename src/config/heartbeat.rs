//! `[[heartbeat]]` tables: jobs that ping sitewatch on a schedule. Each
//! becomes a [`SiteSpec`] whose target is `heartbeat:NAME`, so heartbeats
//! share the state machine, alerts, history, page and metrics of sites.

use super::context::{Cx, Dur, check_name, duration_in, pick, secret};
use super::defaults;
use super::model::*;
use super::site::{RawSite, notify};
use crate::heartbeat::cron::CronSchedule;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;
use toml::Spanned;

/// A `[[heartbeat]]` before validation.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHeartbeat {
    pub(super) name: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
    key_file: Option<Spanned<String>>,
    key_env: Option<Spanned<String>>,
    key_credential: Option<Spanned<String>>,
    period: Option<Spanned<Dur>>,
    schedule: Option<Spanned<String>>,
    timezone: Option<Spanned<String>>,
    grace: Option<Spanned<Dur>>,
    max_runtime: Option<Spanned<Dur>>,
    min_runtime: Option<Spanned<Dur>>,
    late: Option<Spanned<bool>>,
    notify: Option<Spanned<Vec<Spanned<String>>>>,
    remind_every: Option<Spanned<Dur>>,
    vantages: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) tags: Option<Spanned<Vec<Spanned<String>>>>,
}

/// Checks a ping key: URL-safe characters, long enough to be unguessable.
pub fn check_ping_key(key: &str) -> Result<(), String> {
    let n = key.chars().count();
    if !key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
    {
        return Err(
            "a ping key uses only letters, digits, '-' and '_' (it is part of a URL)".to_string(),
        );
    }
    if n < defaults::MIN_PING_KEY_CHARS {
        return Err(format!(
            "a ping key of {n} characters is too easy to guess: use at least {} random characters (128 bits), e.g. `head -c 16 /dev/urandom | basenc --base64url | tr -d =`",
            defaults::MIN_PING_KEY_CHARS
        ));
    }
    if n > defaults::MAX_PING_KEY_CHARS {
        return Err(format!(
            "a ping key is at most {} characters",
            defaults::MAX_PING_KEY_CHARS
        ));
    }
    Ok(())
}

/// Checks one heartbeat against `d` (the `[defaults]`, for `notify` and
/// `remind_every`), the channels and the vantages.
pub(super) fn validate(
    cx: &mut Cx<'_>,
    span: Range<usize>,
    raw: &RawHeartbeat,
    d: &RawSite,
    channels: &[String],
    known_vantages: &[String],
    keys: &mut std::collections::HashMap<String, String>,
) -> Option<SiteSpec> {
    let before = cx.count();
    let name = match &raw.name {
        None => {
            cx.error(span.clone(), "this [[heartbeat]] has no `name`");
            None
        }
        Some(n) => match check_name(n.get_ref()) {
            Ok(()) => Some(n.get_ref().clone()),
            Err(msg) => {
                cx.error(n.span(), msg.replacen("site name", "heartbeat name", 1));
                None
            }
        },
    };
    let key = secret(
        cx,
        "key",
        defaults::MAX_PING_KEY_CHARS,
        [&raw.key, &raw.key_file, &raw.key_env, &raw.key_credential],
    );
    if key.is_none() && cx.count() == before {
        cx.error(
            span.clone(),
            "this [[heartbeat]] has no ping key: set `key_file`, `key_env` or `key_credential` (or `key`)",
        );
    }
    if let (Some(SecretRef::Value(k)), Some(v)) = (&key, &raw.key) {
        if let Err(msg) = check_ping_key(k) {
            cx.error(v.span(), msg);
        } else if let Some(other) = keys.get(k) {
            cx.error(
                v.span(),
                format!(
                    "heartbeat \"{other}\" has this ping key too: each heartbeat needs its own"
                ),
            );
        } else if let Some(n) = &raw.name {
            keys.insert(k.clone(), n.get_ref().clone());
        }
    }
    let bounded = |cx: &mut Cx<'_>, key: &str, v: &Option<Spanned<Dur>>, min: Duration| {
        v.as_ref()
            .and_then(|v| duration_in(cx, key, v, min, defaults::MAX_PERIOD))
    };
    let due = match (&raw.period, &raw.schedule) {
        (Some(_), Some(s)) => {
            cx.error(
                s.span(),
                "give `period` or `schedule`, not both: `period` counts from the latest ping, `schedule` names the times of a cron job",
            );
            None
        }
        (None, None) => {
            cx.error(
                span.clone(),
                "this [[heartbeat]] says neither `period` (e.g. \"1h\") nor `schedule` (a crontab line such as \"30 2 * * *\")",
            );
            None
        }
        (Some(_), None) => bounded(cx, "period", &raw.period, defaults::MIN_PERIOD).map(Due::Every),
        (None, Some(s)) => {
            let zone = raw
                .timezone
                .as_ref()
                .map_or("UTC", |z| z.get_ref().as_str());
            match crate::heartbeat::cron::parse_timezone(zone) {
                Err(msg) => {
                    if let Some(z) = &raw.timezone {
                        cx.error(z.span(), msg);
                    }
                    None
                }
                Ok(_) => match CronSchedule::parse(s.get_ref(), zone) {
                    Err(msg) => {
                        cx.error(s.span(), msg);
                        None
                    }
                    Ok(c) if c.next_after(std::time::SystemTime::now()).is_none() => {
                        cx.error(
                            s.span(),
                            "this schedule never runs (no such day, e.g. 30 February): check the day and month fields",
                        );
                        None
                    }
                    Ok(c) => Some(Due::Cron(Box::new(c))),
                },
            }
        }
    };
    if raw.period.is_some()
        && let Some(z) = &raw.timezone
    {
        cx.error(
            z.span(),
            "`timezone` goes with `schedule`: a `period` counts from the latest ping, in any zone",
        );
    }
    let grace = bounded(cx, "grace", &raw.grace, Duration::ZERO).unwrap_or(defaults::GRACE);
    let max_runtime = bounded(cx, "max_runtime", &raw.max_runtime, Duration::from_secs(1));
    let min_runtime = bounded(cx, "min_runtime", &raw.min_runtime, Duration::from_secs(1));
    if let (Some(min), Some(max), Some(v)) = (min_runtime, max_runtime, &raw.min_runtime)
        && min >= max
    {
        cx.error(
            v.span(),
            format!(
                "`min_runtime` ({}) must be shorter than `max_runtime` ({})",
                humantime::format_duration(min),
                humantime::format_duration(max)
            ),
        );
    }
    let notify = notify(cx, pick(&raw.notify, &d.notify), channels);
    let remind_every = pick(&raw.remind_every, &d.remind_every).and_then(|v| {
        duration_in(
            cx,
            "remind_every",
            v,
            defaults::MIN_REMIND_EVERY,
            defaults::MAX_REMIND_EVERY,
        )
    });
    let vantages = vantages(cx, &span, raw, known_vantages);
    let tags = super::site::tags(cx, raw.tags.as_ref());
    if cx.count() > before {
        return None;
    }
    let name = name?;
    let target = Target {
        url: format!("heartbeat:{name}"),
        scheme: Scheme::Heartbeat,
        host: Host::Name(name.clone()),
        host_str: name.clone(),
        port: 0,
        path: String::new(),
    };
    let mut spec = SiteSpec::with_defaults(&name, target, Duration::from_secs(1));
    spec.interval = defaults::HEARTBEAT_TICK;
    spec.confirm_down = 1;
    spec.confirm_up = 1;
    spec.notify = notify;
    spec.remind_every = remind_every;
    // Judged from pings that reach this host: the monitor's own uplink
    // does not make them unbelievable.
    spec.local = true;
    spec.vantages = vantages;
    spec.tags = tags;
    spec.heartbeat = Some(Arc::new(HeartbeatSpec {
        key: key?,
        due: due?,
        grace,
        max_runtime,
        min_runtime,
        late: raw.late.as_ref().is_some_and(|v| *v.get_ref()),
    }));
    Some(spec)
}

/// The vantage that receives the pings. Alone, this instance; in a
/// cluster the heartbeat names exactly one vantage, since a ping reaches
/// only the instance the job calls.
fn vantages(
    cx: &mut Cx<'_>,
    span: &Range<usize>,
    raw: &RawHeartbeat,
    known: &[String],
) -> Vec<String> {
    match &raw.vantages {
        None if known.len() > 1 => {
            cx.error(
                span.clone(),
                format!(
                    "in a [cluster], a heartbeat is watched by the one vantage its job pings: add `vantages = [\"NAME\"]` with one of {}",
                    known.join(", ")
                ),
            );
            Vec::new()
        }
        None => Vec::new(),
        Some(list) => match list.get_ref().as_slice() {
            [one] if known.contains(one.get_ref()) => vec![one.get_ref().clone()],
            [one] => {
                cx.error(
                    one.span(),
                    format!(
                        "`vantages` names \"{}\", which is neither this instance nor one of its [[cluster.peer]] ({})",
                        super::diagnostic::quote(one.get_ref()),
                        known.join(", ")
                    ),
                );
                Vec::new()
            }
            _ => {
                cx.error(
                    list.span(),
                    "a heartbeat's `vantages` names exactly one vantage: the one its job pings",
                );
                Vec::new()
            }
        },
    }
}
