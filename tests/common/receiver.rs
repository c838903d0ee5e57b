//! HTTP receiver fixture: stands in for Slack incoming webhooks and generic
//! webhook endpoints. An axum server on 127.0.0.1:<random port> that records
//! every request and answers from a script of replies.
//!
//! ```ignore
//! let rx = Receiver::start(vec![
//!     Reply::new(429).header("Retry-After", "1"),
//!     Reply::ok(),
//! ]).await;
//! // ... configure sitewatch with rx.url("/hooks/slack") ...
//! let reqs = rx.wait_for(2, Duration::from_secs(10)).await;
//! check_slack_payload(&reqs[1].json()).unwrap();
//! ```
//!
//! Also `check_slack_payload`, a validator for the Slack incoming-webhook
//! payload shape sitewatch sends (see its doc comment for the sources).
//!
//! Not every test binary uses every helper, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use tokio::task::JoinHandle;

/// Largest request body the receiver reads.
const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// One scripted answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Wait this long before answering (the request is recorded at once).
    /// For sender timeout tests; zero by default.
    pub delay: Duration,
}

impl Reply {
    /// `status` with an empty body.
    pub fn new(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    /// 200 with body `ok`: what Slack's incoming webhooks answer.
    pub fn ok() -> Reply {
        Reply::new(200).body("ok")
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<String>) -> Reply {
        self.body = body.into();
        self
    }

    pub fn delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path plus `?query` if any.
    pub path: String,
    /// In arrival order, names lower-case (as HTTP/1 servers see them).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When the request (head and body) had been read.
    pub at: Instant,
    /// The status the script answered with.
    pub status: u16,
}

impl Recorded {
    /// First header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8.
    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; panics (showing the body) if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} {} body is not JSON ({e}): {:?}",
                self.method,
                self.path,
                self.body_str()
            )
        })
    }
}

struct Shared {
    script: Mutex<(Vec<Reply>, usize)>,
    requests: Mutex<Vec<Recorded>>,
}

/// A receiver's record, shared with the thread that serves it.
#[derive(Clone)]
pub struct ReceiverView {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl ReceiverView {
    /// `http://ADDR<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Everything received so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().expect("requests lock").clone()
    }
}

/// The receiver. Dropping it stops accepting and closes idle connections.
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
    scheme: &'static str,
}

/// Accepts TCP connections and completes their TLS handshake; a failed
/// handshake is dropped and the next connection accepted.
struct TlsListener {
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, peer)) = self.listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let handshake = self.acceptor.accept(tcp);
            if let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(5), handshake).await {
                return (tls, peer);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        // Dropping axum's serve future also tells every connection task to
        // shut down gracefully (idle keep-alive connections close).
        self.task.abort();
    }
}

impl Receiver {
    /// Starts on 127.0.0.1:0. Request i gets `responses[i]`; once the list
    /// is used up the last reply repeats (`[500, 200]`: a 500, then 200s).
    /// An empty list means `Reply::ok()` for everything.
    pub async fn start(responses: Vec<Reply>) -> Receiver {
        Receiver::start_at(std::net::IpAddr::from([127, 0, 0, 1]), responses).await
    }

    /// Always answers `Reply::ok()`, on another address of this network
    /// namespace (for senders in other namespaces).
    pub async fn start_on(ip: std::net::IpAddr) -> Receiver {
        Receiver::start_at(ip, Vec::new()).await
    }

    async fn start_at(ip: std::net::IpAddr, responses: Vec<Reply>) -> Receiver {
        Receiver::start_with(ip, None, responses).await
    }

    /// Starts on 127.0.0.1:0 speaking HTTPS with `config` (a certificate
    /// of a test CA, which the sender trusts through its `ca_file`).
    pub async fn start_tls(config: rustls::ServerConfig, responses: Vec<Reply>) -> Receiver {
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        Receiver::start_with(
            std::net::IpAddr::from([127, 0, 0, 1]),
            Some(acceptor),
            responses,
        )
        .await
    }

    async fn start_with(
        ip: std::net::IpAddr,
        tls: Option<tokio_rustls::TlsAcceptor>,
        responses: Vec<Reply>,
    ) -> Receiver {
        let listener = tokio::net::TcpListener::bind((ip, 0))
            .await
            .expect("bind port 0");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            script: Mutex::new((responses, 0)),
            requests: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let scheme = if tls.is_some() { "https" } else { "http" };
        let task = match tls {
            None => tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            }),
            Some(acceptor) => tokio::spawn(async move {
                let _ = axum::serve(TlsListener { listener, acceptor }, app).await;
            }),
        };
        Receiver {
            addr,
            shared,
            task,
            scheme,
        }
    }

    /// What was received, readable from another thread (for a receiver
    /// that runs in another network namespace).
    pub fn view(&self) -> ReceiverView {
        ReceiverView {
            addr: self.addr,
            shared: Arc::clone(&self.shared),
        }
    }

    /// Always answers `Reply::ok()`.
    pub async fn start_ok() -> Receiver {
        Receiver::start(Vec::new()).await
    }

    /// `http://127.0.0.1:<port><path>` (`path` should start with `/`), or
    /// `https://` for a TLS receiver (its certificate names 127.0.0.1).
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme, self.addr, path)
    }

    /// Replaces the script; the next request gets `responses[0]`.
    pub fn set_script(&self, responses: Vec<Reply>) {
        *self.shared.script.lock().expect("script lock") = (responses, 0);
    }

    /// Everything received so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().expect("requests lock").clone()
    }

    /// Polls every 50 ms until at least `n` requests arrived; panics after
    /// `limit` with what did arrive.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Recorded> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let reqs = self.requests();
            if reqs.len() >= n {
                return reqs;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "timed out after {limit:?} waiting for {n} request(s) on {}: got {:?}",
                    self.addr,
                    reqs.iter()
                        .map(|r| format!("{} {} -> {}", r.method, r.path, r.status))
                        .collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b.to_vec(),
        Err(e) => {
            return Response::builder()
                .status(400)
                .body(Body::from(format!("receiver: bad body: {e}")))
                .expect("static response");
        }
    };
    let reply = {
        let mut script = shared.script.lock().expect("script lock");
        let (replies, next) = &mut *script;
        let reply = if replies.is_empty() {
            Reply::ok()
        } else {
            replies[(*next).min(replies.len() - 1)].clone()
        };
        *next += 1;
        reply
    };
    let path = parts.uri.path_and_query().map_or_else(
        || parts.uri.path().to_string(),
        |pq| pq.as_str().to_string(),
    );
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    shared
        .requests
        .lock()
        .expect("requests lock")
        .push(Recorded {
            method: parts.method.as_str().to_string(),
            path,
            headers,
            body,
            at: Instant::now(),
            status: reply.status,
        });
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut resp = Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        resp = resp.header(k.as_str(), v.as_str());
    }
    resp.body(Body::from(reply.body))
        .unwrap_or_else(|e| panic!("receiver: bad scripted reply: {e}"))
}

// ---------------------------------------------------------------------------
// Slack payload validation
// ---------------------------------------------------------------------------

/// Slack limits, all confirmed on Slack's own reference pages
/// (docs.slack.dev, Block Kit reference, read 2026):
/// - header block, https://docs.slack.dev/reference/block-kit/blocks/header-block :
///   `text` is a `plain_text` text object, "Maximum length for the text in
///   this field is 150 characters".
/// - section block, https://docs.slack.dev/reference/block-kit/blocks/section-block :
///   `text` "Minimum length ... is 1 and maximum length is 3000 characters";
///   `fields` "Maximum number of items is 10. Maximum length for the text in
///   each item is 2000 characters"; one of `text`/`fields` is required.
/// - context block, https://docs.slack.dev/reference/block-kit/blocks/context-block :
///   `elements` "Maximum number of items is 10" (image elements and text
///   objects; sitewatch sends text only, so images are refused here).
/// - escaping, Slack's "Formatting text for app surfaces" reference
///   (https://api.slack.com/reference/surfaces/formatting, "Escaping text";
///   now under docs.slack.dev): "Slack uses &, <, and > as control
///   characters for special parsing in text objects, so they must be
///   converted to HTML entities if they're not going to be used for their
///   parsing purpose".
/// - NOT confirmed on a Slack page (the excerpts available covered only the
///   escaping rule): that `<!channel>`, `<!here>`, `<!everyone>`,
///   `<!subteam^..>` and `<@U..>` notify people. That comes from third-party
///   sources (slack-blocks crate docs, Mattermost's Slack-compatible webhook
///   issue #7615). Every `<!...>` (also the harmless `<!date^...>`) and
///   `<@...>` is refused here: sitewatch has no reason to send any.
///
/// Lengths are counted in Unicode scalar values of the JSON string (Slack
/// does not say how it counts; escapes like `&amp;` count as 5).
pub const SLACK_HEADER_MAX: usize = 150;
pub const SLACK_SECTION_TEXT_MAX: usize = 3000;
pub const SLACK_SECTION_FIELDS_MAX: usize = 10;
pub const SLACK_FIELD_TEXT_MAX: usize = 2000;
pub const SLACK_CONTEXT_ELEMENTS_MAX: usize = 10;

/// Checks a Slack incoming-webhook payload: top-level `text` (non-empty
/// string, the notification fallback, parsed as mrkdwn by Slack); optional
/// `blocks` array of header/section/context/divider blocks within the
/// limits above; every mrkdwn text (and the top-level `text`) free of raw
/// `<`, `>`, `&` except the escapes `&lt;` `&gt;` `&amp;` and links
/// `<http(s)://...>` / `<http(s)://...|label>`; no mention syntax that would
/// ping people (`<!channel>`, `<!here>`, any `<!...>`, `<@...>`).
/// Returns every problem found, one per line.
pub fn check_slack_payload(json: &serde_json::Value) -> Result<(), String> {
    let mut errs: Vec<String> = Vec::new();
    let Some(obj) = json.as_object() else {
        return Err("payload is not a JSON object".to_string());
    };
    match obj.get("text") {
        Some(serde_json::Value::String(t)) if !t.trim().is_empty() => {
            check_mrkdwn("text", t, &mut errs);
        }
        Some(serde_json::Value::String(_)) => errs.push("text: empty".to_string()),
        Some(other) => errs.push(format!("text: not a string: {other}")),
        None => errs.push("text: missing (the notification fallback)".to_string()),
    }
    match obj.get("blocks") {
        None => {}
        Some(serde_json::Value::Array(blocks)) => {
            for (i, block) in blocks.iter().enumerate() {
                check_block(&format!("blocks[{i}]"), block, &mut errs);
            }
        }
        Some(other) => errs.push(format!("blocks: not an array: {other}")),
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("\n"))
    }
}

fn check_block(at: &str, block: &serde_json::Value, errs: &mut Vec<String>) {
    let Some(kind) = block.get("type").and_then(|t| t.as_str()) else {
        errs.push(format!("{at}: no string `type`"));
        return;
    };
    match kind {
        "divider" => {}
        "header" => match block.get("text") {
            Some(t) => {
                if let Some(s) = check_text_object(&format!("{at}.text"), t, &["plain_text"], errs)
                {
                    check_len(&format!("{at}.text.text"), s, SLACK_HEADER_MAX, errs);
                }
            }
            None => errs.push(format!("{at}: header without `text`")),
        },
        "section" => {
            let text = block.get("text");
            let fields = block.get("fields");
            if text.is_none() && fields.is_none() {
                errs.push(format!("{at}: section needs `text` or `fields`"));
            }
            if let Some(t) = text {
                let path = format!("{at}.text");
                if let Some(s) = check_text_object(&path, t, &["mrkdwn", "plain_text"], errs) {
                    check_len(&format!("{path}.text"), s, SLACK_SECTION_TEXT_MAX, errs);
                }
            }
            match fields {
                None => {}
                Some(serde_json::Value::Array(items)) => {
                    if items.is_empty() {
                        errs.push(format!("{at}.fields: empty"));
                    }
                    if items.len() > SLACK_SECTION_FIELDS_MAX {
                        errs.push(format!(
                            "{at}.fields: {} items, Slack allows {SLACK_SECTION_FIELDS_MAX}",
                            items.len()
                        ));
                    }
                    for (j, f) in items.iter().enumerate() {
                        let path = format!("{at}.fields[{j}]");
                        if let Some(s) =
                            check_text_object(&path, f, &["mrkdwn", "plain_text"], errs)
                        {
                            check_len(&format!("{path}.text"), s, SLACK_FIELD_TEXT_MAX, errs);
                        }
                    }
                }
                Some(other) => errs.push(format!("{at}.fields: not an array: {other}")),
            }
        }
        "context" => match block.get("elements") {
            Some(serde_json::Value::Array(items)) => {
                if items.is_empty() {
                    errs.push(format!("{at}.elements: empty"));
                }
                if items.len() > SLACK_CONTEXT_ELEMENTS_MAX {
                    errs.push(format!(
                        "{at}.elements: {} items, Slack allows {SLACK_CONTEXT_ELEMENTS_MAX}",
                        items.len()
                    ));
                }
                for (j, e) in items.iter().enumerate() {
                    check_text_object(
                        &format!("{at}.elements[{j}]"),
                        e,
                        &["mrkdwn", "plain_text"],
                        errs,
                    );
                }
            }
            Some(other) => errs.push(format!("{at}.elements: not an array: {other}")),
            None => errs.push(format!("{at}: context without `elements`")),
        },
        other => errs.push(format!(
            "{at}: block type {other:?} (expected header, section, context or divider)"
        )),
    }
}

/// Checks `{type, text}` with `type` in `allowed` and a non-empty string
/// `text` (mrkdwn texts also for escaping); returns the text.
fn check_text_object<'a>(
    at: &str,
    obj: &'a serde_json::Value,
    allowed: &[&str],
    errs: &mut Vec<String>,
) -> Option<&'a str> {
    let kind = obj.get("type").and_then(|t| t.as_str());
    let text = obj.get("text").and_then(|t| t.as_str());
    match kind {
        Some(k) if allowed.contains(&k) => {}
        Some(k) => errs.push(format!("{at}.type: {k:?}, expected one of {allowed:?}")),
        None => errs.push(format!("{at}: not a text object (no string `type`)")),
    }
    let Some(text) = text else {
        errs.push(format!("{at}.text: missing or not a string"));
        return None;
    };
    if text.is_empty() {
        errs.push(format!("{at}.text: empty"));
    }
    if kind == Some("mrkdwn") {
        check_mrkdwn(&format!("{at}.text"), text, errs);
    }
    Some(text)
}

fn check_len(at: &str, text: &str, max: usize, errs: &mut Vec<String>) {
    let n = text.chars().count();
    if n > max {
        errs.push(format!("{at}: {n} characters, Slack allows {max}"));
    }
}

/// Raw `&`, `<`, `>` in mrkdwn: only entity escapes and http(s) links pass.
fn check_mrkdwn(at: &str, text: &str, errs: &mut Vec<String>) {
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let c = rest.chars().next().expect("non-empty");
        match c {
            '&' => {
                let Some(n) = ["&amp;", "&lt;", "&gt;"]
                    .iter()
                    .find(|e| rest.starts_with(**e))
                    .map(|e| e.len())
                else {
                    errs.push(format!(
                        "{at}: raw `&` at byte {i} (send `&amp;`): {:?}",
                        snippet(rest)
                    ));
                    i += 1;
                    continue;
                };
                i += n;
                continue;
            }
            '<' => {
                let Some(end) = rest.find('>') else {
                    errs.push(format!(
                        "{at}: raw `<` at byte {i} (send `&lt;`): {:?}",
                        snippet(rest)
                    ));
                    i += 1;
                    continue;
                };
                let inner = &rest[1..end];
                if inner.starts_with('!') || inner.starts_with('@') {
                    errs.push(format!(
                        "{at}: mention `<{inner}>` would notify people; escape `<` as `&lt;`"
                    ));
                } else if inner.starts_with("http://") || inner.starts_with("https://") {
                    let (url, label) = inner.split_once('|').unwrap_or((inner, ""));
                    if url.contains(['<', ' ']) {
                        errs.push(format!("{at}: malformed link `<{inner}>`"));
                    }
                    let mut sub = Vec::new();
                    check_mrkdwn(&format!("{at} (link label)"), label, &mut sub);
                    errs.extend(sub);
                } else {
                    errs.push(format!(
                        "{at}: raw `<` at byte {i} (send `&lt;`, or link as <https://...|label>): {:?}",
                        snippet(rest)
                    ));
                    i += 1;
                    continue;
                }
                i += end + 1;
                continue;
            }
            '>' => errs.push(format!(
                "{at}: raw `>` at byte {i} (send `&gt;`): {:?}",
                snippet(rest)
            )),
            _ => {}
        }
        i += c.len_utf8();
    }
}

fn snippet(s: &str) -> String {
    s.chars().take(30).collect()
}
