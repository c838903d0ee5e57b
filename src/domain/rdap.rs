//! When a domain's registration expires, asked of its registry over RDAP
//! (RFC 9082 queries, RFC 9083 answers). The registry's RDAP server is found
//! in IANA's bootstrap registry for DNS (RFC 9224), read from a URL or from
//! a local file.
//!
//! Answers are cached per domain for [`ANSWER_TTL`], failures for
//! [`FAILURE_TTL`], so that a registry is asked about a domain at most once
//! a day and a broken one at most once an hour. Parsing and judging are
//! pure; only [`Rdap::expiry`] does I/O.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// IANA's bootstrap registry of RDAP servers for top-level domains.
pub const IANA_BOOTSTRAP: &str = "https://data.iana.org/rdap/dns.json";

/// How long an answer (and the bootstrap registry) is kept.
pub const ANSWER_TTL: Duration = Duration::from_secs(24 * 3600);

/// How long a failure is kept before the registry is asked again.
pub const FAILURE_TTL: Duration = Duration::from_secs(3600);

/// The most of any body that is read: the bootstrap registry is about
/// 20 KiB and an answer a few KiB.
pub const MAX_BODY: usize = 1 << 20;

/// Time allowed for one request, redirects and body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Redirects followed for one request (a registry often sends the client
/// on to the registrar's server).
pub const MAX_REDIRECTS: usize = 5;

/// The media type of RDAP answers (RFC 9083).
const RDAP_JSON: &str = "application/rdap+json";

/// Where the bootstrap registry is read from: an http(s) URL, or a local
/// file path (for air-gapped hosts and tests).
#[derive(Clone, Debug, PartialEq)]
pub struct RdapConfig {
    /// An `http://` or `https://` URL, or a file path (`file://` optional).
    pub bootstrap: String,
    /// Extra CA certificates (PEM) to trust besides the system's roots.
    pub ca_file: Option<PathBuf>,
}

impl Default for RdapConfig {
    /// IANA's registry and the system's roots.
    fn default() -> Self {
        RdapConfig {
            bootstrap: IANA_BOOTSTRAP.to_string(),
            ca_file: None,
        }
    }
}

/// What is known of one domain's registration.
#[derive(Clone, Debug, PartialEq)]
pub enum Expiry {
    /// The registry's "expiration" event.
    At(SystemTime),
    /// Not known, and why in a few words (no RDAP server for the TLD, the
    /// server failed, no expiration event, ...).
    Unknown(String),
}

/// How an expiry compares with now and the warning window.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// The registration has expired.
    Expired {
        /// Whole days since it expired (0 on the day).
        days_ago: i64,
    },
    /// The registration expires within the warning window.
    Expiring {
        /// Whole days left (0 in the last day).
        days_left: i64,
    },
    /// The registration expires after the warning window.
    Fine {
        /// Whole days left.
        days_left: i64,
    },
    /// The expiry is not known, and why.
    Unknown(String),
}

/// Judges `expiry` at `now`: at or past the instant it is expired; with
/// fewer than `warn_days` whole days left it is expiring; otherwise fine.
pub fn judge(expiry: &Expiry, now: SystemTime, warn_days: u32) -> Verdict {
    let at = match expiry {
        Expiry::At(at) => *at,
        Expiry::Unknown(reason) => return Verdict::Unknown(reason.clone()),
    };
    match now.duration_since(at) {
        Ok(past) => Verdict::Expired {
            days_ago: whole_days(past),
        },
        Err(ahead) => {
            let days_left = whole_days(ahead.duration());
            if days_left < i64::from(warn_days) {
                Verdict::Expiring { days_left }
            } else {
                Verdict::Fine { days_left }
            }
        }
    }
}

fn whole_days(d: Duration) -> i64 {
    i64::try_from(d.as_secs() / 86_400).unwrap_or(i64::MAX)
}

/// The bootstrap registry: which RDAP server answers for which domain
/// suffixes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bootstrap {
    /// Lowercased suffix (`com`, `co.uk`) → index into `servers`.
    suffixes: HashMap<String, usize>,
    /// One base URL per service entry.
    servers: Vec<String>,
}

impl Bootstrap {
    /// The base URL of the RDAP server for `domain`: the service whose
    /// suffix matches the most trailing labels, case-insensitively; `None`
    /// when no suffix matches.
    pub fn server_for(&self, domain: &str) -> Option<&str> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let mut rest = domain.as_str();
        loop {
            if !rest.is_empty()
                && let Some(&i) = self.suffixes.get(rest)
            {
                return self.servers.get(i).map(String::as_str);
            }
            rest = &rest[rest.find('.')? + 1..];
        }
    }

    /// How many suffixes have a server.
    pub fn len(&self) -> usize {
        self.suffixes.len()
    }

    /// Whether no suffix has a server.
    pub fn is_empty(&self) -> bool {
        self.suffixes.is_empty()
    }
}

/// Parses a bootstrap registry (RFC 9224: `services` is a list of
/// `[[suffixes...], [urls...]]`). Of a service's URLs the first https one
/// is used, else the first; a suffix listed twice keeps its first service;
/// malformed entries are skipped.
pub fn parse_bootstrap(json: &[u8]) -> Result<Bootstrap, String> {
    let value: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| format!("not valid JSON: {e}"))?;
    let services = value
        .get("services")
        .and_then(serde_json::Value::as_array)
        .ok_or("no \"services\" list")?;
    let mut bootstrap = Bootstrap::default();
    for service in services {
        let (Some(suffixes), Some(urls)) = (
            service.get(0).and_then(serde_json::Value::as_array),
            service.get(1).and_then(serde_json::Value::as_array),
        ) else {
            continue;
        };
        let urls: Vec<&str> = urls.iter().filter_map(serde_json::Value::as_str).collect();
        let https = urls.iter().find(|u| {
            u.get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        });
        let Some(url) = https.or(urls.first()) else {
            continue;
        };
        let index = bootstrap.servers.len();
        bootstrap.servers.push(url.to_string());
        for suffix in suffixes.iter().filter_map(serde_json::Value::as_str) {
            let suffix = suffix.trim_matches('.').to_ascii_lowercase();
            if !suffix.is_empty() {
                bootstrap.suffixes.entry(suffix).or_insert(index);
            }
        }
    }
    Ok(bootstrap)
}

/// The expiration date of an RDAP domain answer: the `eventDate` of the
/// first event in `events` whose `eventAction` is "expiration". `Ok(None)`
/// when there is no such event; an error when the answer is not a JSON
/// object or the date is not RFC 3339 (a date without an offset is read as
/// UTC).
pub fn parse_expiration(json: &[u8]) -> Result<Option<SystemTime>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| format!("not valid JSON: {e}"))?;
    let answer = value.as_object().ok_or("not a JSON object")?;
    let Some(events) = answer.get("events") else {
        return Ok(None);
    };
    let events = events.as_array().ok_or("\"events\" is not a list")?;
    for event in events {
        let is_expiration = event
            .get("eventAction")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|a| a.eq_ignore_ascii_case("expiration"));
        if !is_expiration {
            continue;
        }
        let date = event
            .get("eventDate")
            .and_then(serde_json::Value::as_str)
            .ok_or("the expiration event has no date")?;
        return parse_date(date).map(Some);
    }
    Ok(None)
}

fn parse_date(date: &str) -> Result<SystemTime, String> {
    let date = date.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(date) {
        return Ok(t.into());
    }
    // Some servers leave out the offset; RDAP dates are UTC.
    chrono::NaiveDateTime::parse_from_str(date, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|t| t.and_utc().into())
        .map_err(|_| format!("bad expiration date {date:?}"))
}

/// The RDAP query for `domain` at the server `base` (RFC 9082).
fn query_url(base: &str, domain: &str) -> String {
    let mut url = base.to_string();
    if !url.ends_with('/') {
        url.push('/');
    }
    url.push_str("domain/");
    url.push_str(domain);
    url
}

/// `domain` as it is put in a query: ASCII (IDNA), lowercase, without a
/// trailing dot; `None` when it is not a host name.
fn normalise(domain: &str) -> Option<String> {
    let domain = domain.trim().trim_end_matches('.');
    let domain = if domain.is_ascii() {
        domain.to_ascii_lowercase()
    } else {
        match url::Host::parse(domain) {
            Ok(url::Host::Domain(d)) => d,
            _ => return None,
        }
    };
    let valid = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    valid.then_some(domain)
}

/// A value and when it was learnt.
struct Cached<T> {
    value: T,
    at: SystemTime,
    ttl: Duration,
}

impl<T> Cached<T> {
    fn fresh(&self, now: SystemTime) -> bool {
        now.duration_since(self.at).is_ok_and(|age| age < self.ttl)
    }
}

/// One domain's cache entry; its lock is held during the lookup, so that
/// callers asking about the same domain at once make one request.
type Slot = Arc<tokio::sync::Mutex<Option<Cached<Expiry>>>>;

/// The bootstrap registry as last read, or why it could not be.
type BootstrapSlot = Option<Cached<Result<Arc<Bootstrap>, String>>>;

/// Asks registries when domains expire, with caches.
pub struct Rdap {
    client: reqwest::Client,
    config: RdapConfig,
    bootstrap: tokio::sync::Mutex<BootstrapSlot>,
    answers: Mutex<HashMap<String, Slot>>,
}

/// A response: its body when the status is a success, else the status.
enum Reply {
    Body(Vec<u8>),
    Status(reqwest::StatusCode),
}

impl Rdap {
    /// Checks `config` and builds the HTTP client (system roots plus
    /// `ca_file`, [`REQUEST_TIMEOUT`], at most [`MAX_REDIRECTS`]).
    pub fn new(config: RdapConfig) -> Result<Rdap, String> {
        if config.bootstrap.trim().is_empty() {
            return Err("the RDAP bootstrap is empty".to_string());
        }
        if is_url(&config.bootstrap) {
            url::Url::parse(&config.bootstrap)
                .map_err(|e| format!("bad RDAP bootstrap URL {:?}: {e}", config.bootstrap))?;
        }
        let client = http_client(config.ca_file.as_deref())?;
        Ok(Rdap {
            client,
            config,
            bootstrap: tokio::sync::Mutex::new(None),
            answers: Mutex::new(HashMap::new()),
        })
    }

    /// The expiry of `domain` (already a registrable domain, e.g.
    /// "example.co.uk"), as of `now`. Answers and the bootstrap registry
    /// are cached for [`ANSWER_TTL`] keyed by domain, failures for
    /// [`FAILURE_TTL`]; `now` is the caller's clock.
    pub async fn expiry(&self, domain: &str, now: SystemTime) -> Expiry {
        let Some(name) = normalise(domain) else {
            return Expiry::Unknown(format!("not a domain name: {domain:?}"));
        };
        let slot = self.slot(&name, now);
        let mut slot = slot.lock().await;
        if let Some(cached) = slot.as_ref()
            && cached.fresh(now)
        {
            return cached.value.clone();
        }
        let (value, ttl) = self.lookup(&name, now).await;
        *slot = Some(Cached {
            value: value.clone(),
            at: now,
            ttl,
        });
        value
    }

    /// The cache entry of `name`; entries that are stale and not in use
    /// are dropped on the way.
    fn slot(&self, name: &str, now: SystemTime) -> Slot {
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        answers.retain(|_, slot| match slot.try_lock() {
            Ok(entry) => entry.as_ref().is_some_and(|c| c.fresh(now)),
            Err(_) => true,
        });
        answers.entry(name.to_string()).or_default().clone()
    }

    /// Asks the registry; the answer and how long to keep it.
    async fn lookup(&self, name: &str, now: SystemTime) -> (Expiry, Duration) {
        let bootstrap = match self.bootstrap(now).await {
            Ok(b) => b,
            Err(reason) => {
                return (
                    Expiry::Unknown(format!("no RDAP bootstrap: {reason}")),
                    FAILURE_TTL,
                );
            }
        };
        let Some(base) = bootstrap.server_for(name) else {
            let tld = name.rsplit('.').next().unwrap_or(name);
            tracing::debug!(domain = name, "no RDAP server for .{tld}");
            return (
                Expiry::Unknown(format!("no RDAP server for .{tld}")),
                ANSWER_TTL,
            );
        };
        let url = query_url(base, name);
        let (value, ttl) = match self.get(&url, RDAP_JSON).await {
            Ok(Reply::Body(body)) => match parse_expiration(&body) {
                Ok(Some(at)) => return (Expiry::At(at), ANSWER_TTL),
                Ok(None) => (
                    "the registry gives no expiration date".to_string(),
                    ANSWER_TTL,
                ),
                Err(e) => (format!("bad RDAP answer: {e}"), FAILURE_TTL),
            },
            Ok(Reply::Status(status)) if status == reqwest::StatusCode::NOT_FOUND => {
                (format!("the registry has no record of {name}"), ANSWER_TTL)
            }
            Ok(Reply::Status(status)) if status == reqwest::StatusCode::TOO_MANY_REQUESTS => (
                "the RDAP server is rate limiting (HTTP 429)".to_string(),
                FAILURE_TTL,
            ),
            Ok(Reply::Status(status)) if status.is_server_error() => (
                format!("the RDAP server failed (HTTP {})", status.as_u16()),
                FAILURE_TTL,
            ),
            Ok(Reply::Status(status)) => (
                format!("the RDAP server answered HTTP {}", status.as_u16()),
                FAILURE_TTL,
            ),
            Err(e) => (format!("RDAP server: {e}"), FAILURE_TTL),
        };
        tracing::debug!(domain = name, url = %url, "no expiry: {value}");
        (Expiry::Unknown(value), ttl)
    }

    /// The bootstrap registry, read again once a day. When reading it
    /// again fails, the last good copy is kept and the read retried after
    /// [`FAILURE_TTL`].
    async fn bootstrap(&self, now: SystemTime) -> Result<Arc<Bootstrap>, String> {
        let mut cache = self.bootstrap.lock().await;
        if let Some(cached) = cache.as_ref()
            && cached.fresh(now)
        {
            return cached.value.clone();
        }
        let source = self.config.bootstrap.as_str();
        let (value, ttl) = match self.read_bootstrap().await {
            Ok(b) => {
                tracing::debug!(source, suffixes = b.len(), "read the RDAP bootstrap");
                (Ok(Arc::new(b)), ANSWER_TTL)
            }
            Err(e) => {
                tracing::info!(source, "cannot read the RDAP bootstrap: {e}");
                match cache.take() {
                    Some(Cached { value: Ok(old), .. }) => (Ok(old), FAILURE_TTL),
                    _ => (Err(e), FAILURE_TTL),
                }
            }
        };
        *cache = Some(Cached {
            value: value.clone(),
            at: now,
            ttl,
        });
        value
    }

    async fn read_bootstrap(&self) -> Result<Bootstrap, String> {
        let source = self.config.bootstrap.trim();
        let body = if is_url(source) {
            match self.get(source, "application/json").await? {
                Reply::Body(body) => body,
                Reply::Status(status) => return Err(format!("HTTP {}", status.as_u16())),
            }
        } else {
            let path = source.strip_prefix("file://").unwrap_or(source);
            read_file(Path::new(path)).await?
        };
        parse_bootstrap(&body)
    }

    /// GETs `url`, reading at most [`MAX_BODY`] of a successful answer.
    async fn get(&self, url: &str, accept: &str) -> Result<Reply, String> {
        let resp = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, accept)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = resp.status();
        if !status.is_success() {
            return Ok(Reply::Status(status));
        }
        read_body(resp).await.map(Reply::Body)
    }
}

fn is_url(source: &str) -> bool {
    let source = source.trim_start();
    ["http://", "https://"].iter().any(|scheme| {
        source
            .get(..scheme.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
    })
}

fn too_large() -> String {
    format!("larger than {} MiB", MAX_BODY >> 20)
}

async fn read_body(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| describe(&e))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut body = Vec::new();
    file.take(MAX_BODY as u64 + 1)
        .read_to_end(&mut body)
        .await
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if body.len() > MAX_BODY {
        return Err(format!("{}: {}", path.display(), too_large()));
    }
    Ok(body)
}

/// A request error in a few words, without the URL.
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("no answer within {} s", REQUEST_TIMEOUT.as_secs());
    }
    if e.is_redirect() {
        return format!("more than {MAX_REDIRECTS} redirects");
    }
    let mut inner: &dyn std::error::Error = e;
    while let Some(source) = inner.source() {
        inner = source;
    }
    if e.is_connect() {
        format!("cannot connect: {inner}")
    } else {
        inner.to_string()
    }
}

/// A client with the ring provider, the system's roots plus `ca_file`,
/// [`REQUEST_TIMEOUT`] and at most [`MAX_REDIRECTS`] redirects.
fn http_client(ca_file: Option<&Path>) -> Result<reqwest::Client, String> {
    let tls = crate::alert::channel::tls_config(ca_file)?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .user_agent(crate::probe::http::USER_AGENT_VALUE)
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        .build()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
