//! `[alert.NAME]` tables: validation of the raw form into [`ChannelSpec`].
//! Each type's keys are checked in its own module (`email`,
//! `alertmanager`, `exec`, `hook`); the keys and the types they apply to
//! are listed once, in `raw_channel`.

use super::context::{Cx, check_name, duration_in, secret};
use super::defaults;
use super::diagnostic::quote;
use super::model::*;
use super::raw_channel::{RawChannel, article, types_text};
use toml::Spanned;

pub(super) use super::raw_channel::RawChannel as Raw;

/// Checks one `[alert.NAME]` table.
pub(super) fn validate(
    cx: &mut Cx<'_>,
    name: &Spanned<String>,
    at: std::ops::Range<usize>,
    raw: &RawChannel,
) -> Option<ChannelSpec> {
    let before = cx.count();
    if let Err(msg) = check_name(name.get_ref()) {
        cx.error(name.span(), msg.replace("site name", "channel name"));
    }
    let Some(kind) = &raw.kind else {
        cx.error(
            at,
            format!(
                "[alert.{}] needs a `type`: {}",
                name.get_ref(),
                types_text()
            ),
        );
        return None;
    };
    let type_word = kind.get_ref().as_str();
    if !super::raw_channel::TYPES.contains(&type_word) {
        cx.error(
            kind.span(),
            format!(
                "unknown channel type \"{}\": use {}",
                quote(type_word),
                types_text()
            ),
        );
        return None;
    }
    // Keys of other types, present here, are mistakes.
    for (key, span, types) in raw.given() {
        if !types.contains(&type_word) {
            cx.error(
                span,
                format!(
                    "`{key}` does not apply to {} {type_word} channel",
                    article(type_word)
                ),
            );
        }
    }
    let ca_file = raw.ca_file.as_ref().map(|p| cx.relative(p.get_ref()));
    let spec = match type_word {
        "email" => ChannelKind::Email(super::email::email(cx, raw, &at, ca_file)),
        "slack" => {
            let url = secret(
                cx,
                "webhook_url",
                defaults::MAX_URL_BYTES,
                [
                    &raw.webhook_url,
                    &raw.webhook_url_file,
                    &raw.webhook_url_env,
                    &raw.webhook_url_credential,
                ],
            );
            // Only when none is given: a bad one has its own message.
            if url.is_none()
                && raw.webhook_url.is_none()
                && raw.webhook_url_file.is_none()
                && raw.webhook_url_env.is_none()
                && raw.webhook_url_credential.is_none()
            {
                cx.error(at.clone(), "a slack channel needs `webhook_url` (or `webhook_url_file`, `webhook_url_env`, `webhook_url_credential`)");
            }
            ChannelKind::Slack(SlackSpec {
                url: url.unwrap_or(SecretRef::Value(String::new())),
            })
        }
        "webhook" => {
            let url = secret(
                cx,
                "url",
                defaults::MAX_URL_BYTES,
                [&raw.url, &raw.url_file, &raw.url_env, &raw.url_credential],
            );
            if url.is_none()
                && raw.url.is_none()
                && raw.url_file.is_none()
                && raw.url_env.is_none()
                && raw.url_credential.is_none()
            {
                cx.error(
                    at.clone(),
                    "a webhook channel needs `url` (or `url_file`, `url_env`, `url_credential`)",
                );
            }
            if let Some(SecretRef::Value(u)) = &url
                && let Some(v) = &raw.url
                && !(u.starts_with("http://") || u.starts_with("https://"))
            {
                // The URL is a secret: the message does not quote it.
                cx.error(v.span(), "`url` must be an http:// or https:// URL");
            }
            let secret = secret(
                cx,
                "secret",
                defaults::MAX_SECRET_BYTES,
                [
                    &raw.secret,
                    &raw.secret_file,
                    &raw.secret_env,
                    &raw.secret_credential,
                ],
            );
            ChannelKind::Webhook(WebhookSpec {
                url: url.unwrap_or(SecretRef::Value(String::new())),
                secret,
                ca_file,
            })
        }
        "alertmanager" => {
            ChannelKind::Alertmanager(super::alertmanager::alertmanager(cx, raw, &at, ca_file))
        }
        "exec" => ChannelKind::Exec(super::exec::exec(
            cx,
            raw.command.as_ref(),
            raw.timeout.as_ref(),
            &at,
        )),
        other => ChannelKind::Hook(super::hook::hook(cx, other, raw, &at, ca_file)?),
    };
    // Receivers that group by key themselves need no hold.
    let default_hold = match &spec {
        ChannelKind::Alertmanager(_)
        | ChannelKind::Hook(HookSpec {
            service: ServiceSpec::PagerDuty { .. },
            ..
        }) => defaults::ALERTMANAGER_STORM_HOLD,
        _ => defaults::STORM_HOLD,
    };
    let storm_hold = match &raw.storm_hold {
        None => default_hold,
        Some(v) => duration_in(
            cx,
            "storm_hold",
            v,
            std::time::Duration::ZERO,
            defaults::MAX_STORM_HOLD,
        )
        .unwrap_or(default_hold),
    };
    let events = super::events::events(cx, &raw.events);
    (cx.count() == before).then(|| ChannelSpec {
        name: name.get_ref().clone(),
        kind: spec,
        storm_hold,
        events,
        // Checked against the file's sites once they are read.
        sites: Vec::new(),
        tags: Vec::new(),
    })
}
