//! An `[alert.NAME]` table as read, before validation: every key of every
//! channel type, each with the types it applies to, so that a key of
//! another type gets a clear message rather than "unknown field".

use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;

/// The channel types, as `type` names them.
pub(super) const TYPES: &[&str] = &[
    "email",
    "slack",
    "webhook",
    "alertmanager",
    "exec",
    "pagerduty",
    "discord",
    "teams",
    "mattermost",
    "telegram",
    "ntfy",
    "pushover",
    "gotify",
];

/// A list of strings as read.
pub(super) type List = Vec<Spanned<String>>;
/// A table of strings as read (`labels`, `severity`).
pub(super) type Strings = BTreeMap<String, Spanned<String>>;
/// A table of integers as read (`priority`).
pub(super) type Ints = BTreeMap<String, Spanned<i64>>;
/// A duration as read.
pub(super) type Dur = super::context::Dur;

macro_rules! raw_channel {
    ($($field:ident : $ty:ty => [$($kind:literal),* $(,)?]),* $(,)?) => {
        /// An `[alert.NAME]` table before validation.
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(super) struct RawChannel {
            #[serde(rename = "type")]
            pub(super) kind: Option<Spanned<String>>,
            pub(super) storm_hold: Option<Spanned<Dur>>,
            pub(super) events: Option<Spanned<List>>,
            pub(super) sites: Option<Spanned<List>>,
            pub(super) tags: Option<Spanned<List>>,
            $(pub(super) $field: Option<Spanned<$ty>>,)*
        }

        impl RawChannel {
            /// Each key given (besides `type`, `storm_hold` and `events`),
            /// where, and the types it applies to.
            pub(super) fn given(&self) -> Vec<(&'static str, Range<usize>, &'static [&'static str])> {
                let mut out = Vec::new();
                $(if let Some(v) = &self.$field {
                    out.push((stringify!($field), v.span(), &[$($kind),*][..]));
                })*
                out
            }
        }
    };
}

raw_channel! {
    // email
    smtp_host: String => ["email"],
    smtp_port: i64 => ["email"],
    tls: String => ["email"],
    allow_plain: bool => ["email"],
    username: String => ["email"],
    password: String => ["email"],
    password_file: String => ["email"],
    password_env: String => ["email"],
    password_credential: String => ["email"],
    from: String => ["email"],
    to: List => ["email"],
    ca_file: String => ["email", "webhook", "alertmanager", "pagerduty", "discord", "teams",
        "mattermost", "telegram", "ntfy", "pushover", "gotify"],
    // slack and the chat webhooks
    webhook_url: String => ["slack", "discord", "teams", "mattermost"],
    webhook_url_file: String => ["slack", "discord", "teams", "mattermost"],
    webhook_url_env: String => ["slack", "discord", "teams", "mattermost"],
    webhook_url_credential: String => ["slack", "discord", "teams", "mattermost"],
    // webhook (a secret), or a service's base URL
    url: String => ["webhook", "pagerduty", "telegram", "ntfy", "pushover", "gotify"],
    url_file: String => ["webhook"],
    url_env: String => ["webhook"],
    url_credential: String => ["webhook"],
    secret: String => ["webhook"],
    secret_file: String => ["webhook"],
    secret_env: String => ["webhook"],
    secret_credential: String => ["webhook"],
    // alertmanager
    urls: List => ["alertmanager"],
    resend_interval: Dur => ["alertmanager"],
    bearer_token: String => ["alertmanager"],
    bearer_token_file: String => ["alertmanager"],
    bearer_token_env: String => ["alertmanager"],
    bearer_token_credential: String => ["alertmanager"],
    labels: Strings => ["alertmanager"],
    // exec
    command: List => ["exec"],
    timeout: Dur => ["exec"],
    // pagerduty
    routing_key: String => ["pagerduty"],
    routing_key_file: String => ["pagerduty"],
    routing_key_env: String => ["pagerduty"],
    routing_key_credential: String => ["pagerduty"],
    source: String => ["pagerduty"],
    severity: Strings => ["pagerduty"],
    // telegram
    bot_token: String => ["telegram"],
    bot_token_file: String => ["telegram"],
    bot_token_env: String => ["telegram"],
    bot_token_credential: String => ["telegram"],
    chat_id: toml::Value => ["telegram"],
    message_thread_id: i64 => ["telegram"],
    // ntfy, pushover, gotify
    token: String => ["ntfy", "pushover", "gotify"],
    token_file: String => ["ntfy", "pushover", "gotify"],
    token_env: String => ["ntfy", "pushover", "gotify"],
    token_credential: String => ["ntfy", "pushover", "gotify"],
    priority: Ints => ["ntfy", "pushover", "gotify"],
    topic: String => ["ntfy"],
    click: String => ["ntfy"],
    user_key: String => ["pushover"],
    user_key_file: String => ["pushover"],
    user_key_env: String => ["pushover"],
    user_key_credential: String => ["pushover"],
    retry: Dur => ["pushover"],
    expire: Dur => ["pushover"],
}

/// "a" or "an" before a channel type.
pub(super) fn article(kind: &str) -> &'static str {
    if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// The types as a message lists them: "email", "slack", … or "gotify".
pub(super) fn types_text() -> String {
    let quoted: Vec<String> = TYPES.iter().map(|t| format!("\"{t}\"")).collect();
    let (last, rest) = quoted.split_last().expect("types");
    format!("{} or {last}", rest.join(", "))
}

/// The value of a key the channel cannot do without, or `None` after
/// saying it is missing.
pub(super) fn require<'a, T>(
    cx: &mut super::context::Cx<'_>,
    v: &'a Option<Spanned<T>>,
    key: &str,
    kind: &str,
    at: &Range<usize>,
) -> Option<&'a Spanned<T>> {
    if v.is_none() {
        cx.error(
            at.clone(),
            format!("{} {kind} channel needs `{key}`", article(kind)),
        );
    }
    v.as_ref()
}
