//! The validated shape of the HTTP alert services (`type = "pagerduty"`,
//! `"discord"`, …) and of where a secret comes from. Names no other config
//! module, so the model and the validators can both use it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Per-event overrides (`severity = { down = "critical" }`): event word →
/// value. Events not listed take the service's default.
pub type PerEvent<T> = BTreeMap<String, T>;

/// A channel that speaks to a chat, paging or push service over HTTP.
#[derive(Clone, Debug, PartialEq)]
pub struct HookSpec {
    /// Which service, with its keys.
    pub service: ServiceSpec,
    /// Extra trusted roots for the service's certificate (a proxy, a
    /// self-hosted server).
    pub ca_file: Option<PathBuf>,
}

/// The services, each with what it needs. Base URLs have no trailing `/`.
#[derive(Clone, Debug, PartialEq)]
pub enum ServiceSpec {
    /// PagerDuty Events API v2.
    PagerDuty {
        /// The integration's routing key.
        routing_key: SecretRef,
        /// Base URL (`https://events.pagerduty.com`).
        url: String,
        /// `payload.source` (default: the vantage's name or the host name).
        source: Option<String>,
        /// `payload.severity` per event.
        severity: PerEvent<String>,
    },
    /// A Discord channel webhook.
    Discord {
        /// The webhook URL (a secret: it lets anyone post).
        webhook_url: SecretRef,
    },
    /// A Microsoft Teams Workflows webhook ("post to a channel when a
    /// webhook request is received").
    Teams {
        /// The workflow's URL (a secret).
        webhook_url: SecretRef,
    },
    /// A Mattermost incoming webhook (Slack's format).
    Mattermost {
        /// The webhook URL (a secret).
        webhook_url: SecretRef,
    },
    /// Telegram Bot API `sendMessage`.
    Telegram {
        /// The bot's token.
        bot_token: SecretRef,
        /// The chat: `-100…` or `@channelname`.
        chat_id: String,
        /// A forum topic of the chat.
        message_thread_id: Option<i64>,
        /// Base URL (`https://api.telegram.org`).
        url: String,
    },
    /// An ntfy server's topic.
    Ntfy {
        /// The server's base URL (`https://ntfy.sh`).
        url: String,
        /// The topic.
        topic: String,
        /// An access token, sent as `Authorization: Bearer`.
        token: Option<SecretRef>,
        /// Priority (1–5) per event.
        priority: PerEvent<i64>,
        /// Where tapping the notification leads (default: the site's URL).
        click: Option<String>,
    },
    /// Pushover.
    Pushover {
        /// The application's API token.
        token: SecretRef,
        /// The user (or group) key.
        user_key: SecretRef,
        /// Base URL (`https://api.pushover.net`).
        url: String,
        /// Priority (−2 to 2) per event; 2 is an emergency, repeated every
        /// `retry` until acknowledged or `expire`, and cancelled on recovery.
        priority: PerEvent<i64>,
        /// How often an emergency repeats (at least 30 s).
        retry: Duration,
        /// When an emergency stops repeating (at most 3 hours).
        expire: Duration,
    },
    /// A Gotify server.
    Gotify {
        /// The server's base URL.
        url: String,
        /// The application's token.
        token: SecretRef,
        /// Priority (0–10) per event.
        priority: PerEvent<i64>,
    },
}

impl ServiceSpec {
    /// The `type` word.
    pub fn as_str(&self) -> &'static str {
        match self {
            ServiceSpec::PagerDuty { .. } => "pagerduty",
            ServiceSpec::Discord { .. } => "discord",
            ServiceSpec::Teams { .. } => "teams",
            ServiceSpec::Mattermost { .. } => "mattermost",
            ServiceSpec::Telegram { .. } => "telegram",
            ServiceSpec::Ntfy { .. } => "ntfy",
            ServiceSpec::Pushover { .. } => "pushover",
            ServiceSpec::Gotify { .. } => "gotify",
        }
    }
}

/// Where a secret comes from. The value itself is read at start-up and
/// never logged or served.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// Written in sites.toml itself.
    Value(String),
    /// A file (trailing newline trimmed).
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A systemd credential in `$CREDENTIALS_DIRECTORY` (`LoadCredential=`).
    Credential(String),
}

impl std::fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretRef::Value(_) => f.write_str("Value(***)"),
            SecretRef::File(p) => write!(f, "File({})", p.display()),
            SecretRef::Env(v) => write!(f, "Env({v})"),
            SecretRef::Credential(c) => write!(f, "Credential({c})"),
        }
    }
}
