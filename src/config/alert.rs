//! `[alert.NAME]` tables: raw form and validation into [`ChannelSpec`].
//! Builds on [`super::context`] only.

use super::context::{Cx, Dur, check_name, duration_in, int_in, list_len, secret, text_len};
use super::defaults;
use super::diagnostic::quote;
use super::model::*;
use std::collections::BTreeMap;
use toml::Spanned;

/// The `labels` table as read.
type Labels = BTreeMap<String, Spanned<String>>;

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
    // alertmanager
    urls: Option<Spanned<Vec<Spanned<String>>>>,
    resend_interval: Option<Spanned<Dur>>,
    bearer_token: Option<Spanned<String>>,
    bearer_token_file: Option<Spanned<String>>,
    bearer_token_env: Option<Spanned<String>>,
    bearer_token_credential: Option<Spanned<String>>,
    labels: Option<Spanned<Labels>>,
    // exec
    command: Option<Spanned<Vec<Spanned<String>>>>,
    timeout: Option<Spanned<Dur>>,
    // every type
    storm_hold: Option<Spanned<Dur>>,
    events: Option<Spanned<Vec<Spanned<String>>>>,
}

/// "a" or "an" before a channel type.
fn article(kind: &str) -> &'static str {
    if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

fn require<'a, T>(
    cx: &mut Cx<'_>,
    v: &'a Option<Spanned<T>>,
    key: &str,
    kind: &str,
    at: &std::ops::Range<usize>,
) -> Option<&'a Spanned<T>> {
    if v.is_none() {
        cx.error(
            at.clone(),
            format!("{} {kind} channel needs `{key}`", article(kind)),
        );
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
                "[alert.{}] needs a `type`: \"email\", \"slack\", \"webhook\", \"alertmanager\" or \"exec\"",
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
    let alertmanager_keys = [
        ("urls", raw.urls.as_ref().map(|v| v.span())),
        (
            "resend_interval",
            raw.resend_interval.as_ref().map(|v| v.span()),
        ),
        ("bearer_token", raw.bearer_token.as_ref().map(|v| v.span())),
        (
            "bearer_token_file",
            raw.bearer_token_file.as_ref().map(|v| v.span()),
        ),
        (
            "bearer_token_env",
            raw.bearer_token_env.as_ref().map(|v| v.span()),
        ),
        (
            "bearer_token_credential",
            raw.bearer_token_credential.as_ref().map(|v| v.span()),
        ),
        ("labels", raw.labels.as_ref().map(|v| v.span())),
    ];
    let type_word = kind.get_ref().as_str();
    let foreign = |cx: &mut Cx<'_>, keys: &[(&str, Option<std::ops::Range<usize>>)]| {
        for (key, span) in keys {
            if let Some(span) = span {
                cx.error(
                    span.clone(),
                    format!(
                        "`{key}` does not apply to {} {type_word} channel",
                        article(type_word)
                    ),
                );
            }
        }
    };
    let exec_keys = [
        ("command", raw.command.as_ref().map(|v| v.span())),
        ("timeout", raw.timeout.as_ref().map(|v| v.span())),
    ];
    if type_word != "exec" {
        foreign(cx, &exec_keys);
    }
    let ca_file = raw.ca_file.as_ref().map(|p| cx.relative(p.get_ref()));
    let spec = match type_word {
        "email" => {
            foreign(cx, &slack_keys);
            foreign(cx, &webhook_keys);
            foreign(cx, &alertmanager_keys);
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
            foreign(cx, &alertmanager_keys);
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
            foreign(cx, &alertmanager_keys);
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
            foreign(cx, &email_keys);
            foreign(cx, &slack_keys);
            foreign(cx, &webhook_keys);
            ChannelKind::Alertmanager(alertmanager(cx, raw, &at, ca_file))
        }
        "exec" => {
            for keys in [
                &email_keys[..],
                &slack_keys,
                &webhook_keys,
                &alertmanager_keys,
            ] {
                foreign(cx, keys);
            }
            if let Some(c) = &raw.ca_file {
                cx.error(c.span(), "`ca_file` does not apply to an exec channel");
            }
            ChannelKind::Exec(super::exec::exec(
                cx,
                raw.command.as_ref(),
                raw.timeout.as_ref(),
                &at,
            ))
        }
        other => {
            cx.error(
                kind.span(),
                format!(
                    "unknown channel type \"{}\": use \"email\", \"slack\", \"webhook\", \"alertmanager\" or \"exec\"",
                    quote(other)
                ),
            );
            return None;
        }
    };
    let default_hold = match spec {
        ChannelKind::Alertmanager(_) => defaults::ALERTMANAGER_STORM_HOLD,
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
    })
}

/// Checks the keys of an Alertmanager channel.
fn alertmanager(
    cx: &mut Cx<'_>,
    raw: &RawChannel,
    at: &std::ops::Range<usize>,
    ca_file: Option<std::path::PathBuf>,
) -> AlertmanagerSpec {
    let mut urls: Vec<String> = Vec::new();
    match require(cx, &raw.urls, "urls", "alertmanager", at) {
        Some(list) if list.get_ref().is_empty() => cx.error(
            list.span(),
            "`urls` must list at least one Alertmanager instance",
        ),
        Some(list) if !list_len(cx, "urls", "URLs", list, defaults::MAX_ALERTMANAGER_URLS) => {}
        Some(list) => {
            for u in list.get_ref() {
                if let Some(base) = base_url(cx, u) {
                    if urls.contains(&base) {
                        // The URL may carry a path someone wants private:
                        // no message quotes it.
                        cx.error(u.span(), "`urls` lists this Alertmanager twice");
                    } else {
                        urls.push(base);
                    }
                }
            }
        }
        None => {}
    }
    let resend_interval = match &raw.resend_interval {
        None => defaults::RESEND_INTERVAL,
        Some(v) => duration_in(
            cx,
            "resend_interval",
            v,
            defaults::MIN_RESEND_INTERVAL,
            defaults::MAX_RESEND_INTERVAL,
        )
        .unwrap_or(defaults::RESEND_INTERVAL),
    };
    let bearer_token = secret(
        cx,
        "bearer_token",
        defaults::MAX_SECRET_BYTES,
        [
            &raw.bearer_token,
            &raw.bearer_token_file,
            &raw.bearer_token_env,
            &raw.bearer_token_credential,
        ],
    );
    let labels = raw
        .labels
        .as_ref()
        .map_or_else(BTreeMap::new, |t| labels(cx, t));
    AlertmanagerSpec {
        urls,
        resend_interval,
        ca_file,
        bearer_token,
        labels,
    }
}

/// One entry of `urls` as a base URL without a trailing `/`, or `None`
/// after recording why it is not one.
fn base_url(cx: &mut Cx<'_>, u: &Spanned<String>) -> Option<String> {
    if !text_len(cx, "urls", u, defaults::MAX_URL_BYTES) {
        return None;
    }
    let problem = match url::Url::parse(u.get_ref()) {
        Err(_) => Some("is not a URL"),
        Ok(p) if !matches!(p.scheme(), "http" | "https") => {
            Some("is not an http:// or https:// URL")
        }
        Ok(p) if p.host_str().is_none_or(str::is_empty) => Some("has no host"),
        Ok(p) if !p.username().is_empty() || p.password().is_some() => Some(
            "carries user:password@: give a token with `bearer_token_file` (or `bearer_token_env`, `bearer_token_credential`)",
        ),
        Ok(p) if p.query().is_some() || p.fragment().is_some() => {
            Some("has a ?query or #fragment: give the base URL, like \"http://am1:9093\"")
        }
        Ok(_) => None,
    };
    match problem {
        Some(what) => {
            cx.error(u.span(), format!("this entry of `urls` {what}"));
            None
        }
        None => Some(u.get_ref().trim_end_matches('/').to_string()),
    }
}

/// The static labels: at most [`defaults::MAX_LABELS`], each a valid and
/// unreserved name with a non-empty value of bounded length.
fn labels(cx: &mut Cx<'_>, table: &Spanned<Labels>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let count = table.get_ref().len();
    if count > defaults::MAX_LABELS {
        cx.error(
            table.span(),
            format!(
                "`labels` lists {count} labels, above the maximum of {}",
                defaults::MAX_LABELS
            ),
        );
        return out;
    }
    for (name, value) in table.get_ref() {
        let problem = if name.len() > defaults::MAX_LABEL_NAME_BYTES {
            Some(format!(
                "the label name \"{}\" is {} bytes long, above the maximum of {}",
                quote(name),
                name.len(),
                defaults::MAX_LABEL_NAME_BYTES
            ))
        } else if !is_label_name(name) {
            Some(format!(
                "the label name \"{}\" must be a letter or '_', then letters, digits or '_'",
                quote(name)
            ))
        } else if name.starts_with("__") {
            Some(format!(
                "the label name \"{}\" starts with \"__\", which Prometheus reserves",
                quote(name)
            ))
        } else if RESERVED_LABELS.contains(&name.as_str()) {
            let (last, rest) = RESERVED_LABELS.split_last().unwrap_or((&"", &[]));
            Some(format!(
                "`labels` cannot set \"{name}\": sitewatch sets {} and {last} itself",
                rest.join(", ")
            ))
        } else {
            None
        };
        if let Some(msg) = problem {
            cx.error(table.span(), msg);
            continue;
        }
        let v = value.get_ref();
        if v.is_empty() {
            cx.error(
                value.span(),
                format!(
                    "the label \"{name}\" has an empty value, which Alertmanager reads as no label"
                ),
            );
        } else if v.len() > defaults::MAX_LABEL_VALUE_BYTES {
            cx.error(
                value.span(),
                format!(
                    "the value of label \"{name}\" is {} bytes long, above the maximum of {} (allowed: 1 to {} bytes)",
                    v.len(),
                    defaults::MAX_LABEL_VALUE_BYTES,
                    defaults::MAX_LABEL_VALUE_BYTES
                ),
            );
        } else {
            out.insert(name.clone(), v.clone());
        }
    }
    out
}
