//! The keys of the HTTP services: PagerDuty, Discord, Teams, Mattermost,
//! Telegram, ntfy, Pushover and Gotify.

use super::alertmanager::base_url;
use super::channels::{HookSpec, PerEvent, SecretRef, ServiceSpec};
use super::context::{Cx, duration_in, secret, text_len};
use super::defaults;
use super::diagnostic::quote;
use super::events::EVENTS;
use super::raw_channel::{RawChannel, article, require};
use std::ops::Range;
use std::time::Duration;
use toml::Spanned;

/// PagerDuty's Events API.
pub const PAGERDUTY_URL: &str = "https://events.pagerduty.com";
/// Telegram's Bot API.
pub const TELEGRAM_URL: &str = "https://api.telegram.org";
/// The public ntfy server.
pub const NTFY_URL: &str = "https://ntfy.sh";
/// Pushover's API.
pub const PUSHOVER_URL: &str = "https://api.pushover.net";
/// How often a Pushover emergency repeats, by default (Pushover's least is 30 s).
pub const PUSHOVER_RETRY: Duration = Duration::from_secs(60);
/// When a Pushover emergency stops repeating, by default.
pub const PUSHOVER_EXPIRE: Duration = Duration::from_secs(3600);
/// The longest Pushover lets an emergency repeat.
pub const PUSHOVER_MAX_EXPIRE: Duration = Duration::from_secs(10_800);

/// PagerDuty's severities.
const SEVERITIES: &[&str] = &["critical", "error", "warning", "info"];

/// A secret key given as `KEY`, `KEY_file`, `KEY_env` or `KEY_credential`,
/// required or not.
fn secret_key(
    cx: &mut Cx<'_>,
    key: &str,
    options: [&Option<Spanned<String>>; 4],
    required: Option<(&str, &Range<usize>)>,
) -> Option<SecretRef> {
    // These services' secrets never sit in sites.toml itself, which is
    // read by more people and tools than the secret should be.
    if let Some(inline) = options[0] {
        cx.error(
            inline.span(),
            format!(
                "`{key}` is a secret: give it with `{key}_file`, `{key}_env` or `{key}_credential`, not in sites.toml"
            ),
        );
        return None;
    }
    let value = secret(cx, key, defaults::MAX_SECRET_BYTES, options);
    if let Some((kind, at)) = required
        && options.iter().all(|o| o.is_none())
    {
        cx.error(
            at.clone(),
            format!(
                "{} {kind} channel needs `{key}` (or `{key}_file`, `{key}_env`, `{key}_credential`)",
                article(kind)
            ),
        );
    }
    value
}

/// The service's base URL: `url` if given (checked), else its default.
fn service_url(
    cx: &mut Cx<'_>,
    raw: &RawChannel,
    default: Option<&str>,
    kind: &str,
    at: &Range<usize>,
) -> String {
    match (&raw.url, default) {
        (Some(u), _) => base_url(cx, "url", u, "`url`").unwrap_or_default(),
        (None, Some(d)) => d.to_string(),
        (None, None) => {
            require(cx, &raw.url, "url", kind, at);
            String::new()
        }
    }
}

/// A per-event table: known event words, values checked by `check`.
fn per_event<T: Clone>(
    cx: &mut Cx<'_>,
    key: &str,
    table: &Option<Spanned<std::collections::BTreeMap<String, Spanned<T>>>>,
    check: impl Fn(&T) -> Option<String>,
) -> PerEvent<T> {
    let mut out = PerEvent::new();
    let Some(table) = table else {
        return out;
    };
    for (event, value) in table.get_ref() {
        if !EVENTS.contains(&event.as_str()) {
            cx.error(
                table.span(),
                format!(
                    "`{key}` names \"{}\", which is not an event: {}",
                    quote(event),
                    EVENTS.join(", ")
                ),
            );
        } else if let Some(problem) = check(value.get_ref()) {
            cx.error(value.span(), format!("`{key}` for {event}: {problem}"));
        } else {
            out.insert(event.clone(), value.get_ref().clone());
        }
    }
    out
}

/// Priorities between `lo` and `hi`.
fn priorities(cx: &mut Cx<'_>, raw: &RawChannel, lo: i64, hi: i64) -> PerEvent<i64> {
    per_event(cx, "priority", &raw.priority, |p| {
        (!(lo..=hi).contains(p)).then(|| format!("{p} is outside {lo} to {hi}"))
    })
}

/// Checks the keys of an HTTP service channel of type `kind`.
pub(super) fn hook(
    cx: &mut Cx<'_>,
    kind: &str,
    raw: &RawChannel,
    at: &Range<usize>,
    ca_file: Option<std::path::PathBuf>,
) -> Option<HookSpec> {
    let empty = || SecretRef::Value(String::new());
    let webhook_url = |cx: &mut Cx<'_>| {
        secret_key(
            cx,
            "webhook_url",
            [
                &raw.webhook_url,
                &raw.webhook_url_file,
                &raw.webhook_url_env,
                &raw.webhook_url_credential,
            ],
            Some((kind, at)),
        )
        .unwrap_or_else(empty)
    };
    let token = |cx: &mut Cx<'_>, required: bool| {
        secret_key(
            cx,
            "token",
            [
                &raw.token,
                &raw.token_file,
                &raw.token_env,
                &raw.token_credential,
            ],
            required.then_some((kind, at)),
        )
    };
    let service = match kind {
        "pagerduty" => ServiceSpec::PagerDuty {
            routing_key: secret_key(
                cx,
                "routing_key",
                [
                    &raw.routing_key,
                    &raw.routing_key_file,
                    &raw.routing_key_env,
                    &raw.routing_key_credential,
                ],
                Some((kind, at)),
            )
            .unwrap_or_else(empty),
            url: service_url(cx, raw, Some(PAGERDUTY_URL), kind, at),
            source: raw.source.as_ref().and_then(|s| {
                text_len(cx, "source", s, defaults::MAX_URL_BYTES).then(|| s.get_ref().clone())
            }),
            severity: per_event(cx, "severity", &raw.severity, |s: &String| {
                (!SEVERITIES.contains(&s.as_str())).then(|| {
                    format!(
                        "\"{}\" is not a PagerDuty severity: critical, error, warning or info",
                        quote(s)
                    )
                })
            }),
        },
        "discord" => ServiceSpec::Discord {
            webhook_url: webhook_url(cx),
        },
        "teams" => ServiceSpec::Teams {
            webhook_url: webhook_url(cx),
        },
        "mattermost" => ServiceSpec::Mattermost {
            webhook_url: webhook_url(cx),
        },
        "telegram" => {
            let chat_id = match require(cx, &raw.chat_id, "chat_id", kind, at) {
                Some(v) => match v.get_ref() {
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::String(s) if !s.is_empty() && s.len() <= 256 => s.clone(),
                    _ => {
                        cx.error(
                            v.span(),
                            "`chat_id` must be a chat's number (like -1001234567890) or \"@channelname\"",
                        );
                        String::new()
                    }
                },
                None => String::new(),
            };
            ServiceSpec::Telegram {
                bot_token: secret_key(
                    cx,
                    "bot_token",
                    [
                        &raw.bot_token,
                        &raw.bot_token_file,
                        &raw.bot_token_env,
                        &raw.bot_token_credential,
                    ],
                    Some((kind, at)),
                )
                .unwrap_or_else(empty),
                chat_id,
                message_thread_id: raw.message_thread_id.as_ref().map(|t| *t.get_ref()),
                url: service_url(cx, raw, Some(TELEGRAM_URL), kind, at),
            }
        }
        "ntfy" => {
            let topic = match require(cx, &raw.topic, "topic", kind, at) {
                Some(t)
                    if !t.get_ref().is_empty()
                        && t.get_ref().len() <= 64
                        && t.get_ref()
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
                {
                    t.get_ref().clone()
                }
                Some(t) => {
                    cx.error(
                        t.span(),
                        "`topic` must be 1 to 64 letters, digits, '-' or '_' (as ntfy requires)",
                    );
                    String::new()
                }
                None => String::new(),
            };
            let click = raw
                .click
                .as_ref()
                .and_then(|c| base_url(cx, "click", c, "`click`"));
            ServiceSpec::Ntfy {
                url: service_url(cx, raw, Some(NTFY_URL), kind, at),
                topic,
                token: token(cx, false),
                priority: priorities(cx, raw, 1, 5),
                click,
            }
        }
        "pushover" => {
            let retry = raw.retry.as_ref().map_or(Some(PUSHOVER_RETRY), |r| {
                duration_in(cx, "retry", r, Duration::from_secs(30), PUSHOVER_MAX_EXPIRE)
            });
            let expire = raw.expire.as_ref().map_or(Some(PUSHOVER_EXPIRE), |e| {
                duration_in(
                    cx,
                    "expire",
                    e,
                    Duration::from_secs(30),
                    PUSHOVER_MAX_EXPIRE,
                )
            });
            ServiceSpec::Pushover {
                token: token(cx, true).unwrap_or_else(empty),
                user_key: secret_key(
                    cx,
                    "user_key",
                    [
                        &raw.user_key,
                        &raw.user_key_file,
                        &raw.user_key_env,
                        &raw.user_key_credential,
                    ],
                    Some((kind, at)),
                )
                .unwrap_or_else(empty),
                url: service_url(cx, raw, Some(PUSHOVER_URL), kind, at),
                priority: priorities(cx, raw, -2, 2),
                retry: retry.unwrap_or(PUSHOVER_RETRY),
                expire: expire.unwrap_or(PUSHOVER_EXPIRE),
            }
        }
        "gotify" => ServiceSpec::Gotify {
            url: service_url(cx, raw, None, kind, at),
            token: token(cx, true).unwrap_or_else(empty),
            priority: priorities(cx, raw, 0, 10),
        },
        _ => return None,
    };
    Some(HookSpec { service, ca_file })
}
