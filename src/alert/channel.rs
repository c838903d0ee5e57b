//! Sending one alert through one channel: email (lettre), Slack, the
//! generic webhook, Alertmanager, a program, and the HTTP services of
//! [`super::hook`] (reqwest). Secrets are resolved once, at start-up, and
//! never appear in logs or errors.

use super::alertmanager::{Postable, Target};
use super::{Alert, AlertKind, render};
use crate::config::{ChannelKind, ChannelSpec, Cluster, EmailSpec, SecretRef, SmtpTls};
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Time allowed for one attempt.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// A secret value: its Debug and Display never show it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Reads a secret from where sites.toml says it is.
pub fn resolve(source: &SecretRef) -> Result<Secret, String> {
    let value = match source {
        SecretRef::Value(v) => v.clone(),
        SecretRef::File(p) => {
            std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?
        }
        SecretRef::Env(name) => std::env::var(name)
            .map_err(|_| format!("the environment variable {name} is not set"))?,
        SecretRef::Credential(name) => {
            let dir = std::env::var_os("CREDENTIALS_DIRECTORY")
                .ok_or_else(|| format!("credential {name}: $CREDENTIALS_DIRECTORY is not set (is LoadCredential= in the unit?)"))?;
            let path = std::path::Path::new(&dir).join(name);
            std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read credential {}: {e}", path.display()))?
        }
    };
    let value = value.trim_end_matches(['\n', '\r']).to_string();
    if value.is_empty() {
        return Err("the secret is empty".to_string());
    }
    Ok(Secret(value))
}

/// A channel could not be prepared: a secret or CA file missing, a bad URL.
/// Preparing happens at start-up and before a reload is applied, so this
/// stops the start or keeps the running configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("alert channel {channel}: {reason}")]
pub struct SetupError {
    /// The channel's name.
    pub channel: String,
    /// What is wrong, scrubbed of secrets.
    pub reason: String,
}

/// Why an attempt failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq)]
pub enum SendError {
    /// Try again later (connection refused, SMTP 4xx, HTTP 5xx, 429).
    Transient {
        /// What happened.
        message: String,
        /// What the receiver asked for (Retry-After).
        retry_after: Option<Duration>,
    },
    /// Trying again will not help (SMTP 5xx such as a refused password, HTTP 4xx).
    Permanent(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Transient { message, .. } => write!(f, "{message} (will retry)"),
            SendError::Permanent(m) => write!(f, "{m} (permanent: not retried)"),
        }
    }
}

/// What a delivered alert left at the receiver.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// The id the receiver gave the message (a Discord or Telegram message
    /// id, a Pushover receipt, a PagerDuty key), for what follows to edit,
    /// reply to or cancel.
    pub remote_id: Option<String>,
}

/// A channel ready to send: spec plus resolved secrets and clients.
pub struct Channel {
    /// The name in sites.toml.
    pub name: String,
    /// How long a down alert waits while a storm is forming (`storm_hold`).
    pub storm_hold: Duration,
    /// The events it takes (empty: all).
    events: Vec<String>,
    kind: Ready,
    /// Every secret value of this channel, to scrub from error texts.
    secrets: Vec<Secret>,
}

enum Ready {
    Email {
        spec: EmailSpec,
        password: Option<Secret>,
        roots: Vec<Vec<u8>>,
    },
    Slack {
        url: Secret,
        client: reqwest::Client,
    },
    Webhook {
        url: Secret,
        key: Option<Secret>,
        client: reqwest::Client,
    },
    Alertmanager(Target),
    Exec(crate::config::ExecSpec),
    Hook {
        service: super::hook::Service,
        client: reqwest::Client,
    },
}

/// An HTTP client for alert receivers: ring, the system's roots plus an
/// optional `ca_file`, HTTP/1.1, the attempt timeout.
pub fn http_client(ca_file: Option<&std::path::Path>) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config(ca_file)?)
        .user_agent(crate::probe::http::USER_AGENT_VALUE)
        .timeout(ATTEMPT_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())
}

/// The TLS configuration of sitewatch's HTTP clients: the ring provider,
/// the system's roots plus those of `ca_file`, HTTP/1.1.
pub fn tls_config(ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        for cert in CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        {
            let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tls)
}

impl Channel {
    /// Resolves secrets and builds clients for a channel of sites.toml, as
    /// this instance of `cluster` sends it.
    pub fn new(spec: &ChannelSpec, cluster: &Cluster) -> Result<Channel, SetupError> {
        Self::build(spec, cluster).map_err(|reason| SetupError {
            channel: spec.name.clone(),
            reason,
        })
    }

    fn build(spec: &ChannelSpec, cluster: &Cluster) -> Result<Channel, String> {
        let (kind, secrets) = match &spec.kind {
            ChannelKind::Email(e) => {
                let password = e.password.as_ref().map(resolve).transpose()?;
                let roots = match &e.ca_file {
                    Some(p) => vec![
                        std::fs::read(p)
                            .map_err(|err| format!("cannot read {}: {err}", p.display()))?,
                    ],
                    None => Vec::new(),
                };
                let secrets = password.iter().cloned().collect();
                (
                    Ready::Email {
                        spec: e.clone(),
                        password,
                        roots,
                    },
                    secrets,
                )
            }
            ChannelKind::Slack(s) => {
                let url = resolve(&s.url)?;
                let client = http_client(None)?;
                (
                    Ready::Slack {
                        url: url.clone(),
                        client,
                    },
                    vec![url],
                )
            }
            ChannelKind::Webhook(w) => {
                let url = resolve(&w.url)?;
                if !(url.expose().starts_with("http://") || url.expose().starts_with("https://")) {
                    return Err("the webhook url is not an http:// or https:// URL".to_string());
                }
                let key = w.secret.as_ref().map(resolve).transpose()?;
                let client = http_client(w.ca_file.as_deref())?;
                let mut secrets = vec![url.clone()];
                secrets.extend(key.iter().cloned());
                (Ready::Webhook { url, key, client }, secrets)
            }
            ChannelKind::Exec(e) => (Ready::Exec(e.clone()), Vec::new()),
            ChannelKind::Hook(h) => {
                let (service, secrets) = super::hook::Service::new(&h.service, cluster)?;
                let client = http_client(h.ca_file.as_deref())?;
                (Ready::Hook { service, client }, secrets)
            }
            ChannelKind::Alertmanager(a) => {
                let token = a.bearer_token.as_ref().map(resolve).transpose()?;
                let client = http_client(a.ca_file.as_deref())?;
                let secrets = token.iter().cloned().collect();
                (
                    Ready::Alertmanager(Target::new(a, cluster, token, client)),
                    secrets,
                )
            }
        };
        Ok(Channel {
            name: spec.name.clone(),
            storm_hold: spec.storm_hold,
            events: spec.events.clone(),
            kind,
            secrets,
        })
    }

    /// Removes every secret value from a text (errors may quote URLs).
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            out = out.replace(s.expose(), "***");
        }
        out
    }

    /// Sends `alert` once. `thread` is the remote id of the message that
    /// opened the site's outage on this channel, if one was sent.
    pub async fn send(
        &self,
        alert: &Alert,
        thread: Option<&str>,
        now: SystemTime,
    ) -> Result<Sent, SendError> {
        let result = match &self.kind {
            Ready::Email {
                spec,
                password,
                roots,
            } => send_email(spec, password.as_ref(), roots, alert, &self.name, now).await,
            Ready::Slack { url, client } => {
                let body = render::slack(alert, now);
                post(client, url.expose(), &body, &[]).await
            }
            Ready::Webhook { url, key, client } => {
                let body = serde_json::to_vec(&render::webhook(alert))
                    .map_err(|e| SendError::Permanent(e.to_string()))?;
                let mut headers = vec![(
                    "x-sitewatch-delivery".to_string(),
                    format!("{}.{}", alert.id, self.name),
                )];
                if let Some(k) = key {
                    headers.push((
                        "x-sitewatch-signature".to_string(),
                        format!("sha256={}", sign(k.expose().as_bytes(), &body)),
                    ));
                }
                post_bytes(client, url.expose(), body, &headers).await
            }
            Ready::Alertmanager(t) => {
                return self
                    .post_alerts(&t.shape.for_alert(alert, now))
                    .await
                    .map(|()| Sent::default());
            }
            Ready::Exec(spec) => super::exec::run(spec, alert, &self.name).await,
            Ready::Hook { service, client } => {
                return super::hook::deliver(client, service, alert, thread, now)
                    .await
                    .map_err(|e| self.scrub_error(e));
            }
        };
        result
            .map(|()| Sent::default())
            .map_err(|e| self.scrub_error(e))
    }

    fn scrub_error(&self, e: SendError) -> SendError {
        match e {
            SendError::Transient {
                message,
                retry_after,
            } => SendError::Transient {
                message: self.scrub(&message),
                retry_after,
            },
            SendError::Permanent(m) => SendError::Permanent(self.scrub(&m)),
        }
    }

    /// The Alertmanager side of this channel, when it is one.
    pub fn alertmanager(&self) -> Option<&Target> {
        match &self.kind {
            Ready::Alertmanager(t) => Some(t),
            _ => None,
        }
    }

    /// Whether alerts of `kind` are delivered through this channel. An
    /// Alertmanager channel takes the changes of a site's state and tests;
    /// reminders, storms and flapping notices are Alertmanager's own
    /// business (`repeat_interval`, `group_by`), and the refresh keeps it
    /// in step with each site's state.
    pub fn takes(&self, kind: AlertKind) -> bool {
        let listed = |word: &str| self.events.iter().any(|e| e == word);
        let wanted = self.events.is_empty()
            || kind == AlertKind::Test
            || listed(kind.as_str())
            || (kind == AlertKind::Storm && listed("down"));
        wanted
            && (self.alertmanager().is_none()
                || !matches!(
                    kind,
                    AlertKind::Reminder
                        | AlertKind::Storm
                        | AlertKind::Flapping
                        | AlertKind::Settled
                ))
            && !(self.keyed() && kind == AlertKind::Storm)
    }

    /// Whether the receiver keeps one incident per key (PagerDuty).
    fn keyed(&self) -> bool {
        matches!(&self.kind, Ready::Hook { service, .. } if service.keyed())
    }

    /// Whether every vantage sends to this channel: its receiver keeps
    /// one alert per key (Alertmanager, a webhook with the stable ids);
    /// a chat or email channel hears only the site's owner.
    pub fn broadcast(&self) -> bool {
        matches!(self.kind, Ready::Alertmanager(_) | Ready::Webhook { .. }) || self.keyed()
    }

    /// Whether down alerts held while a storm forms are grouped into one
    /// message for this channel (Alertmanager groups them itself).
    pub fn groups_storms(&self) -> bool {
        self.alertmanager().is_none() && !self.keyed()
    }

    /// Posts `alerts` to every instance of this Alertmanager channel: done
    /// when one instance took them (the instances that failed are logged,
    /// and the next refresh fills them in). Nothing to post is done too.
    pub async fn post_alerts(&self, alerts: &[Postable]) -> Result<(), SendError> {
        let Some(t) = self.alertmanager() else {
            return Err(SendError::Permanent(
                "not an alertmanager channel".to_string(),
            ));
        };
        if alerts.is_empty() {
            return Ok(());
        }
        let outcome = t.post(alerts).await.map_err(|e| self.scrub_error(e))?;
        if !outcome.accepted.is_empty() && !outcome.failed.is_empty() {
            tracing::warn!(
                channel = %self.name,
                accepted = %outcome.accepted.join(" "),
                failed = %self.scrub(&outcome.failed_text()),
                "some alertmanager instances did not take the alerts; the next refresh posts them again"
            );
        }
        outcome.verdict().map_err(|e| self.scrub_error(e))
    }
}

/// HMAC-SHA256 of `body` with `key`, hex-encoded.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), body);
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

async fn send_email(
    spec: &EmailSpec,
    password: Option<&Secret>,
    roots: &[Vec<u8>],
    alert: &Alert,
    channel: &str,
    now: SystemTime,
) -> Result<(), SendError> {
    let permanent =
        |what: &str, e: &dyn std::fmt::Display| SendError::Permanent(format!("{what}: {e}"));
    let mut message = Message::builder()
        .from(spec.from.parse().map_err(|e| permanent("bad From", &e))?)
        .subject(render::subject(alert))
        .message_id(Some(format!("<{}.{}@sitewatch>", alert.id, channel)))
        .header(ContentType::TEXT_PLAIN);
    for to in &spec.to {
        message = message.to(to.parse().map_err(|e| permanent("bad To", &e))?);
    }
    let message = message
        .body(render::body(alert, now))
        .map_err(|e| permanent("cannot build the message", &e))?;
    let tls = if spec.tls == SmtpTls::None {
        Tls::None
    } else {
        let mut params = TlsParameters::builder(spec.host.clone());
        for pem in roots {
            params = params.add_root_certificate(
                Certificate::from_pem(pem).map_err(|e| permanent("bad ca_file", &e))?,
            );
        }
        let params = params
            .build_rustls()
            .map_err(|e| permanent("cannot configure TLS", &e))?;
        match spec.tls {
            SmtpTls::StartTls => Tls::Required(params),
            _ => Tls::Wrapper(params),
        }
    };
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(spec.host.clone())
        .port(spec.port)
        .tls(tls)
        .timeout(Some(ATTEMPT_TIMEOUT));
    if let (Some(user), Some(pw)) = (&spec.username, password) {
        transport = transport.credentials(Credentials::new(user.clone(), pw.expose().to_string()));
    }
    match transport.build().send(message).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_permanent() => Err(SendError::Permanent(format!(
            "the mail server refused: {e}"
        ))),
        Err(e) => Err(SendError::Transient {
            message: format!("mail to {}:{} failed: {e}", spec.host, spec.port),
            retry_after: None,
        }),
    }
}

/// The most of a receiver's answer that is read (for its error text): a
/// receiver cannot make sitewatch hold a large body.
pub const MAX_ERROR_BODY: usize = 4096;

/// The answer's `Retry-After`, in seconds (the HTTP-date form is not
/// followed: the usual backoff applies then).
pub(super) fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// Reads at most `limit` bytes of a response body.
pub(super) async fn read_capped(mut resp: reqwest::Response, limit: usize) -> String {
    let mut buf = Vec::new();
    while buf.len() < limit {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit - buf.len();
                buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
    headers: &[(String, String)],
) -> Result<(), SendError> {
    let bytes = serde_json::to_vec(body).map_err(|e| SendError::Permanent(e.to_string()))?;
    post_bytes(client, url, bytes, headers).await
}

async fn post_bytes(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    headers: &[(String, String)],
) -> Result<(), SendError> {
    post_answer(client, url, body, headers)
        .await
        .map_err(|f| f.error)
}

/// A failed post: the status the receiver answered (none when it could not
/// be reached) and what the failure means.
pub(super) struct PostFailure {
    /// The HTTP status, if the receiver answered.
    pub status: Option<u16>,
    /// Transient or permanent, with the receiver's words (capped).
    pub error: SendError,
}

/// POSTs a JSON body; a failure keeps the receiver's status.
pub(super) async fn post_answer(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    headers: &[(String, String)],
) -> Result<(), PostFailure> {
    let mut req = client
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = req.send().await.map_err(|e| PostFailure {
        status: None,
        error: SendError::Transient {
            // without_url: the URL of a Slack webhook is its secret.
            message: format!("cannot reach the receiver: {}", e.without_url()),
            retry_after: None,
        },
    })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let retry_after = retry_after(&resp);
    let text: String = read_capped(resp, MAX_ERROR_BODY)
        .await
        .chars()
        .take(200)
        .collect();
    let message = format!("the receiver answered {status}: {}", text.trim());
    let error = if status.as_u16() == 429 || status.is_server_error() || status.as_u16() == 408 {
        SendError::Transient {
            message,
            retry_after,
        }
    } else {
        SendError::Permanent(message)
    };
    Err(PostFailure {
        status: Some(status.as_u16()),
        error,
    })
}

#[cfg(test)]
mod tests;
