//! The chat, paging and push services over HTTP, in one shape: a service
//! *renders* an alert into requests (with the remote id of the message its
//! outage opened, when there is one) and *classifies* each answer as done
//! (with the remote id it names), retry (after the service's own hint) or
//! permanent. Sending, backoff, ordering and the outbox stay the
//! dispatcher's, the same for every channel.
//!
//! Each service lives in a module of its own: `pagerduty`, `discord`,
//! `teams`, `mattermost`, `telegram`, `ntfy`, `pushover` and `gotify`.

mod discord;
mod gotify;
mod mattermost;
mod ntfy;
mod pagerduty;
mod pushover;
mod teams;
mod telegram;

use super::channel::{MAX_ERROR_BODY, Secret, SendError, Sent, resolve};
use super::{Alert, AlertKind};
use crate::config::{Cluster, PerEvent, ServiceSpec};
use serde_json::Value;
use std::time::{Duration, SystemTime};

/// The most of a service's answer read for classifying it.
pub const MAX_ANSWER: usize = 64 * 1024;

/// One HTTP request of a delivery.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// GET, POST, PATCH…
    pub method: reqwest::Method,
    /// Where (it may hold a secret: never logged).
    pub url: String,
    /// Headers besides `content-type: application/json`.
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body, if any.
    pub body: Option<Value>,
}

impl Request {
    /// A POST of `body` as JSON.
    pub fn post(url: String, body: Value) -> Request {
        Request {
            method: reqwest::Method::POST,
            url,
            headers: Vec::new(),
            body: Some(body),
        }
    }

    /// The same request with one more header.
    pub fn header(mut self, name: &'static str, value: String) -> Request {
        self.headers.push((name, value));
        self
    }
}

/// What a service answered to one request.
#[derive(Clone, Debug, Default)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The `Retry-After` header, in seconds, if it had one.
    pub retry_after: Option<Duration>,
    /// The body (at most [`MAX_ANSWER`] bytes, lossy UTF-8).
    pub body: String,
}

impl Answer {
    /// The body as JSON (`Null` if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The first 200 characters of the body, for an error text.
    pub fn excerpt(&self) -> String {
        self.body.trim().chars().take(200).collect()
    }
}

/// What an answer means.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Taken; the remote id it names (a message id, a receipt), if any.
    Done(Option<String>),
    /// Try again, after this long if the service said.
    Retry {
        /// What happened.
        message: String,
        /// The service's hint.
        after: Option<Duration>,
    },
    /// Trying again will not help.
    Permanent(String),
}

/// The usual reading of an answer: 2xx done; 408, 429 and 5xx retried
/// (after `Retry-After`); anything else permanent.
pub fn by_status(answer: &Answer) -> Verdict {
    by_status_after(answer, answer.retry_after)
}

/// [`by_status`] with the service's own retry hint.
pub fn by_status_after(answer: &Answer, after: Option<Duration>) -> Verdict {
    let s = answer.status;
    if (200..300).contains(&s) {
        return Verdict::Done(None);
    }
    let message = format!("the service answered {s}: {}", answer.excerpt());
    if s == 408 || s == 429 || s >= 500 {
        Verdict::Retry { message, after }
    } else {
        Verdict::Permanent(message)
    }
}

/// A service ready to send: its spec with secrets resolved.
pub enum Service {
    /// PagerDuty Events API v2.
    PagerDuty(pagerduty::PagerDuty),
    /// Discord.
    Discord(discord::Discord),
    /// Microsoft Teams (Workflows).
    Teams(teams::Teams),
    /// Mattermost.
    Mattermost(mattermost::Mattermost),
    /// Telegram.
    Telegram(telegram::Telegram),
    /// ntfy.
    Ntfy(ntfy::Ntfy),
    /// Pushover.
    Pushover(pushover::Pushover),
    /// Gotify.
    Gotify(gotify::Gotify),
}

impl Service {
    /// Resolves the secrets of `spec`; returns the service and every
    /// secret value, to scrub from error texts.
    pub fn new(spec: &ServiceSpec, cluster: &Cluster) -> Result<(Service, Vec<Secret>), String> {
        Ok(match spec {
            ServiceSpec::PagerDuty {
                routing_key,
                url,
                source,
                severity,
            } => {
                let key = resolve(routing_key)?;
                let source = source.clone().unwrap_or_else(|| default_source(cluster));
                (
                    Service::PagerDuty(pagerduty::PagerDuty {
                        key: key.clone(),
                        url: url.clone(),
                        source,
                        severity: severity.clone(),
                    }),
                    vec![key],
                )
            }
            ServiceSpec::Discord { webhook_url } => {
                let url = web_url(webhook_url)?;
                (
                    Service::Discord(discord::Discord { url: url.clone() }),
                    vec![url],
                )
            }
            ServiceSpec::Teams { webhook_url } => {
                let url = web_url(webhook_url)?;
                (Service::Teams(teams::Teams { url: url.clone() }), vec![url])
            }
            ServiceSpec::Mattermost { webhook_url } => {
                let url = web_url(webhook_url)?;
                (
                    Service::Mattermost(mattermost::Mattermost { url: url.clone() }),
                    vec![url],
                )
            }
            ServiceSpec::Telegram {
                bot_token,
                chat_id,
                message_thread_id,
                url,
            } => {
                let token = resolve(bot_token)?;
                (
                    Service::Telegram(telegram::Telegram {
                        token: token.clone(),
                        chat_id: chat_id.clone(),
                        thread: *message_thread_id,
                        url: url.clone(),
                    }),
                    vec![token],
                )
            }
            ServiceSpec::Ntfy {
                url,
                topic,
                token,
                priority,
                click,
            } => {
                let token = token.as_ref().map(resolve).transpose()?;
                (
                    Service::Ntfy(ntfy::Ntfy {
                        url: url.clone(),
                        topic: topic.clone(),
                        token: token.clone(),
                        priority: priority.clone(),
                        click: click.clone(),
                    }),
                    token.into_iter().collect(),
                )
            }
            ServiceSpec::Pushover {
                token,
                user_key,
                url,
                priority,
                retry,
                expire,
            } => {
                let token = resolve(token)?;
                let user = resolve(user_key)?;
                (
                    Service::Pushover(pushover::Pushover {
                        token: token.clone(),
                        user: user.clone(),
                        url: url.clone(),
                        priority: priority.clone(),
                        retry: *retry,
                        expire: *expire,
                    }),
                    vec![token, user],
                )
            }
            ServiceSpec::Gotify {
                url,
                token,
                priority,
            } => {
                let token = resolve(token)?;
                (
                    Service::Gotify(gotify::Gotify {
                        url: url.clone(),
                        token: token.clone(),
                        priority: priority.clone(),
                    }),
                    vec![token],
                )
            }
        })
    }

    /// The requests that deliver `alert`, in order. `thread` is the remote
    /// id of the message that opened the site's outage on this channel.
    pub fn render(&self, alert: &Alert, thread: Option<&str>, now: SystemTime) -> Vec<Request> {
        match self {
            Service::PagerDuty(s) => s.render(alert, now),
            Service::Discord(s) => s.render(alert, thread, now),
            Service::Teams(s) => s.render(alert, now),
            Service::Mattermost(s) => s.render(alert, now),
            Service::Telegram(s) => s.render(alert, thread, now),
            Service::Ntfy(s) => s.render(alert, now),
            Service::Pushover(s) => s.render(alert, thread, now),
            Service::Gotify(s) => s.render(alert, now),
        }
    }

    /// What the answer to request `step` of [`Service::render`] means.
    pub fn classify(&self, request: &Request, answer: &Answer) -> Verdict {
        match self {
            Service::PagerDuty(_) => pagerduty::classify(request, answer),
            Service::Discord(_) => discord::classify(request, answer),
            Service::Telegram(_) => telegram::classify(answer),
            Service::Pushover(_) => pushover::classify(request, answer),
            Service::Teams(_) | Service::Mattermost(_) | Service::Ntfy(_) | Service::Gotify(_) => {
                by_status(answer)
            }
        }
    }

    /// Whether the service keeps one incident per key itself, so that
    /// every vantage may send to it and storms are not grouped for it.
    pub fn keyed(&self) -> bool {
        matches!(self, Service::PagerDuty(_))
    }
}

/// The vantage's name, or the host's.
fn default_source(cluster: &Cluster) -> String {
    if !cluster.vantage.is_empty() {
        return cluster.vantage.clone();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "sitewatch".to_string())
}

/// A webhook URL from its secret, which must be http(s).
fn web_url(source: &crate::config::SecretRef) -> Result<Secret, String> {
    let url = resolve(source)?;
    if !(url.expose().starts_with("https://") || url.expose().starts_with("http://")) {
        return Err("the webhook_url is not an http:// or https:// URL".to_string());
    }
    Ok(url)
}

/// The value for `alert`'s event in `table`, or `default`.
fn per_event<T: Clone>(table: &PerEvent<T>, kind: AlertKind, default: T) -> T {
    table.get(kind.as_str()).cloned().unwrap_or(default)
}

/// Whether an alert of this kind opens a thread: the message that its
/// recovery edits, replies to or cancels.
pub fn opens_thread(kind: AlertKind) -> bool {
    matches!(kind, AlertKind::Down | AlertKind::Degraded)
}

/// Whether an alert of this kind ends the thread its outage opened.
pub fn closes_thread(kind: AlertKind) -> bool {
    matches!(
        kind,
        AlertKind::Recovered | AlertKind::Resolved | AlertKind::Forgotten
    )
}

/// How an alert reads: its colour in every chat service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// Something ended (green).
    Good,
    /// Something is down (red).
    Bad,
    /// Needs attention (amber): degraded, flapping.
    Warn,
    /// Anything else (grey): tests, settled, forgotten.
    Plain,
}

/// The tone of an alert of this kind.
pub fn tone(kind: AlertKind) -> Tone {
    match kind {
        AlertKind::Recovered
        | AlertKind::Resolved
        | AlertKind::NetworkBack
        | AlertKind::VantageBack
        | AlertKind::Settled => Tone::Good,
        AlertKind::Down
        | AlertKind::CauseChanged
        | AlertKind::Reminder
        | AlertKind::Storm
        | AlertKind::NetworkLost
        | AlertKind::VantageLost => Tone::Bad,
        AlertKind::Degraded | AlertKind::Flapping => Tone::Warn,
        AlertKind::Test | AlertKind::Forgotten => Tone::Plain,
    }
}

/// "since" in words: when the state began and how long ago, or, for a
/// recovery, when it ended and after how long.
pub fn since_text(a: &Alert, now: SystemTime) -> String {
    use crate::alert::render::{human, when};
    match a.kind {
        AlertKind::Recovered | AlertKind::Resolved => format!(
            "back at {} after {}",
            when(a.since),
            human(Duration::from_secs(a.outage_s.unwrap_or(0)))
        ),
        _ => format!(
            "{} ({} ago)",
            when(a.since),
            human(now.duration_since(a.since).unwrap_or_default())
        ),
    }
}

/// The plain text of a push notification: what happened, the detail and
/// what to check first.
pub fn plain_message(a: &Alert) -> String {
    let mut message = crate::alert::render::headline(a);
    if a.kind != AlertKind::Test && !a.detail.is_empty() {
        message = format!("{message}\n\n{}", a.detail);
    }
    if let Some(h) = &a.hint {
        message = format!("{message}\n\nCheck first: {h}");
    }
    message
}

/// `text` cut to `max` characters, with each of `marks` escaped by a
/// backslash (Markdown dialects that read them).
pub fn escaped(text: &str, max: usize, marks: &[char]) -> String {
    let mut out = String::new();
    for c in crate::alert::render::truncate(text, max).chars() {
        if c == '\\' || marks.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Sends each request of `service`'s rendering in turn; the first that is
/// not done ends the delivery with its verdict. The remote id is the first
/// one a request named.
pub async fn deliver(
    client: &reqwest::Client,
    service: &Service,
    alert: &Alert,
    thread: Option<&str>,
    now: SystemTime,
) -> Result<Sent, SendError> {
    let mut remote_id = None;
    for request in service.render(alert, thread, now) {
        let answer = exchange(client, &request).await?;
        match service.classify(&request, &answer) {
            Verdict::Done(id) => remote_id = remote_id.or(id),
            Verdict::Retry { message, after } => {
                return Err(SendError::Transient {
                    message,
                    retry_after: after,
                });
            }
            Verdict::Permanent(message) => return Err(SendError::Permanent(message)),
        }
    }
    Ok(Sent { remote_id })
}

/// One request and its answer (a network failure is transient).
async fn exchange(client: &reqwest::Client, request: &Request) -> Result<Answer, SendError> {
    let mut req = client.request(request.method.clone(), &request.url);
    if let Some(body) = &request.body {
        let bytes = serde_json::to_vec(body).map_err(|e| SendError::Permanent(e.to_string()))?;
        req = req.header("content-type", "application/json").body(bytes);
    }
    for (k, v) in &request.headers {
        req = req.header(*k, v);
    }
    let resp = req.send().await.map_err(|e| SendError::Transient {
        // without_url: the URL may hold the secret (a webhook, a bot token).
        message: format!("cannot reach the service: {}", e.without_url()),
        retry_after: None,
    })?;
    let status = resp.status().as_u16();
    let retry_after = super::channel::retry_after(&resp);
    let limit = if (200..300).contains(&status) {
        MAX_ANSWER
    } else {
        MAX_ERROR_BODY
    };
    let body = super::channel::read_capped(resp, limit).await;
    Ok(Answer {
        status,
        retry_after,
        body,
    })
}

/// Seconds from a JSON number (Discord's `retry_after` is fractional),
/// rounded up and kept within a day.
fn seconds(v: &Value) -> Option<Duration> {
    let s = v.as_f64()?;
    (s.is_finite() && s >= 0.0).then(|| Duration::from_secs(s.ceil().min(86_400.0) as u64))
}

#[cfg(test)]
mod tests;
