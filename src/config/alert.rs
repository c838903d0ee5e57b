//! `[alert.NAME]` tables: raw form and validation into [`ChannelSpec`].
//! Builds on [`super::context`] only.

use super::context::{Cx, Dur, check_name, duration_in, int_in, list_len, secret};
use super::defaults;
use super::diagnostic::quote;
use super::model::*;
use toml::Spanned;

/// An `[alert.NAME]` table before validation: every key of every type, so
/// a key of another type gets a clear message rather than "unknown field".
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawChannel {
    #[serde(rename = "type")]
    kind: Option<Spanned<String>>,
    // email
    smtp_host: Option<Spanned<String>>,
    smtp_port: Option<Spanned<i64>>,
    tls: Option<Spanned<String>>,
    allow_plain: Option<Spanned<bool>>,
    username: Option<Spanned<String>>,
    password: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    password_env: Option<Spanned<String>>,
    password_credential: Option<Spanned<String>>,
    from: Option<Spanned<String>>,
    to: Option<Spanned<Vec<Spanned<String>>>>,
    ca_file: Option<Spanned<String>>,
    // slack
    webhook_url: Option<Spanned<String>>,
    webhook_url_file: Option<Spanned<String>>,
    webhook_url_env: Option<Spanned<String>>,
    webhook_url_credential: Option<Spanned<String>>,
    // webhook
    url: Option<Spanned<String>>,
    url_file: Option<Spanned<String>>,
    url_env: Option<Spanned<String>>,
    url_credential: Option<Spanned<String>>,
    secret: Option<Spanned<String>>,
    secret_file: Option<Spanned<String>>,
    secret_env: Option<Spanned<String>>,
    secret_credential: Option<Spanned<String>>,
    // every type
    storm_hold: Option<Spanned<Dur>>,
}

fn require<'a, T>(
    cx: &mut Cx<'_>,
    v: &'a Option<Spanned<T>>,
    key: &str,
    kind: &str,
    at: &std::ops::Range<usize>,
) -> Option<&'a Spanned<T>> {
    if v.is_none() {
        cx.error(at.clone(), format!("a {kind} channel needs `{key}`"));
    }
    v.as_ref()
}

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
                "[alert.{}] needs a `type`: \"email\", \"slack\" or \"webhook\"",
                name.get_ref()
            ),
        );
        return None;
    };
    // Keys of other types, present here, are mistakes.
    let email_keys: [(&str, Option<std::ops::Range<usize>>); 12] = [
        ("smtp_host", raw.smtp_host.as_ref().map(|v| v.span())),
        ("smtp_port", raw.smtp_port.as_ref().map(|v| v.span())),
        ("tls", raw.tls.as_ref().map(|v| v.span())),
        ("allow_plain", raw.allow_plain.as_ref().map(|v| v.span())),
        ("username", raw.username.as_ref().map(|v| v.span())),
        ("password", raw.password.as_ref().map(|v| v.span())),
        (
            "password_file",
            raw.password_file.as_ref().map(|v| v.span()),
        ),
        ("password_env", raw.password_env.as_ref().map(|v| v.span())),
        (
            "password_credential",
            raw.password_credential.as_ref().map(|v| v.span()),
        ),
        ("from", raw.from.as_ref().map(|v| v.span())),
        ("to", raw.to.as_ref().map(|v| v.span())),
        ("ca_file", None),
    ];
    let slack_keys = [
        ("webhook_url", raw.webhook_url.as_ref().map(|v| v.span())),
        (
            "webhook_url_file",
            raw.webhook_url_file.as_ref().map(|v| v.span()),
        ),
        (
            "webhook_url_env",
            raw.webhook_url_env.as_ref().map(|v| v.span()),
        ),
        (
            "webhook_url_credential",
            raw.webhook_url_credential.as_ref().map(|v| v.span()),
        ),
    ];
    let webhook_keys = [
        ("url", raw.url.as_ref().map(|v| v.span())),
        ("url_file", raw.url_file.as_ref().map(|v| v.span())),
        ("url_env", raw.url_env.as_ref().map(|v| v.span())),
        (
            "url_credential",
            raw.url_credential.as_ref().map(|v| v.span()),
        ),
        ("secret", raw.secret.as_ref().map(|v| v.span())),
        ("secret_file", raw.secret_file.as_ref().map(|v| v.span())),
        ("secret_env", raw.secret_env.as_ref().map(|v| v.span())),
        (
            "secret_credential",
            raw.secret_credential.as_ref().map(|v| v.span()),
        ),
    ];
    let type_word = kind.get_ref().as_str();
    let foreign = |cx: &mut Cx<'_>, keys: &[(&str, Option<std::ops::Range<usize>>)]| {
        for (key, span) in keys {
            if let Some(span) = span {
                cx.error(
                    span.clone(),
                    format!("`{key}` does not apply to a {type_word} channel"),
                );
            }
        }
    };
    let ca_file = raw.ca_file.as_ref().map(|p| cx.relative(p.get_ref()));
    let spec = match type_word {
        "email" => {
            foreign(cx, &slack_keys);
            foreign(cx, &webhook_keys);
            let host =
                require(cx, &raw.smtp_host, "smtp_host", "email", &at).map(|h| h.get_ref().clone());
            let tls = match raw.tls.as_ref().map(|t| (t.get_ref().as_str(), t.span())) {
                None | Some(("starttls", _)) => SmtpTls::StartTls,
                Some(("tls", _)) => SmtpTls::Tls,
                Some(("none", span)) => {
                    if !raw.allow_plain.as_ref().is_some_and(|a| *a.get_ref()) {
                        cx.error(span, "tls = \"none\" sends mail (and any password) unencrypted: set allow_plain = true to mean it");
                    }
                    SmtpTls::None
                }
                Some((other, span)) => {
                    cx.error(
                        span,
                        format!(
                            "`tls` must be \"starttls\", \"tls\" or \"none\", not \"{}\"",
                            quote(other)
                        ),
                    );
                    SmtpTls::StartTls
                }
            };
            let port = match &raw.smtp_port {
                None => match tls {
                    SmtpTls::StartTls => 587,
                    SmtpTls::Tls => 465,
                    SmtpTls::None => 25,
                },
                Some(p) => int_in(cx, "smtp_port", p, 1, u16::MAX.into()).unwrap_or(25),
            };
            let password = secret(
                cx,
                "password",
                defaults::MAX_SECRET_BYTES,
                [
                    &raw.password,
                    &raw.password_file,
                    &raw.password_env,
                    &raw.password_credential,
                ],
            );
            if password.is_some() && raw.username.is_none() {
                cx.error(at.clone(), "a password needs a `username`");
            }
            let from = require(cx, &raw.from, "from", "email", &at).map(|f| f.get_ref().clone());
            if let Some(f) = &raw.from
                && f.get_ref().parse::<lettre::message::Mailbox>().is_err()
            {
                cx.error(
                    f.span(),
                    format!(
                        "\"{}\" is not a mail address like \"sitewatch <sitewatch@example.com>\"",
                        quote(f.get_ref())
                    ),
                );
            }
            let mut to = Vec::new();
            match require(cx, &raw.to, "to", "email", &at) {
                Some(list) if list.get_ref().is_empty() => {
                    cx.error(list.span(), "`to` must list at least one address")
                }
                Some(list) if !list_len(cx, "to", "recipients", list, defaults::MAX_RECIPIENTS) => {
                }
                Some(list) => {
                    for addr in list.get_ref() {
                        if addr.get_ref().parse::<lettre::message::Mailbox>().is_err() {
                            cx.error(
                                addr.span(),
                                format!("\"{}\" is not a mail address", quote(addr.get_ref())),
                            );
                        }
                        to.push(addr.get_ref().clone());
                    }
                }
                None => {}
            }
            ChannelKind::Email(EmailSpec {
                host: host.unwrap_or_default(),
                port,
                tls,
                username: raw.username.as_ref().map(|u| u.get_ref().clone()),
                password,
                from: from.unwrap_or_default(),
                to,
                ca_file,
            })
        }
        "slack" => {
            foreign(cx, &email_keys);
            foreign(cx, &webhook_keys);
            if let Some(c) = &raw.ca_file {
                cx.error(c.span(), "`ca_file` does not apply to a slack channel");
            }
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
            foreign(cx, &email_keys);
            foreign(cx, &slack_keys);
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
        other => {
            cx.error(
                kind.span(),
                format!(
                    "unknown channel type \"{}\": use \"email\", \"slack\" or \"webhook\"",
                    quote(other)
                ),
            );
            return None;
        }
    };
    let storm_hold = match &raw.storm_hold {
        None => defaults::STORM_HOLD,
        Some(v) => duration_in(
            cx,
            "storm_hold",
            v,
            std::time::Duration::ZERO,
            defaults::MAX_STORM_HOLD,
        )
        .unwrap_or(defaults::STORM_HOLD),
    };
    (cx.count() == before).then(|| ChannelSpec {
        name: name.get_ref().clone(),
        kind: spec,
        storm_hold,
    })
}
