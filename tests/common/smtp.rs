//! SMTP test fixture: a real SMTP server (aiosmtpd, from Debian's
//! `python3-aiosmtpd`) run as a child process on 127.0.0.1, plus a small
//! RFC 5322 / MIME reader for the messages it stores.
//!
//! The server is `tests/common/smtp_server.py`, run with `/usr/bin/python3`
//! (Debian's interpreter, which sees `python3-aiosmtpd`; a pyenv `python3`
//! earlier on PATH usually does not). It prints `READY <port>` once it
//! listens; `start` waits for that line, never for a fixed time.
//!
//! ```ignore
//! let cert = ca.leaf(CertKind::Valid, &["localhost", "127.0.0.1"]);
//! let smtp = TestSmtp::options(SmtpMode::starttls(&cert.chain_pem, &cert.key_pem))
//!     .auth("alerts", "s3cret")
//!     .fail_first(1, 451)
//!     .start()
//!     .await;
//! // ... point sitewatch at 127.0.0.1:{smtp.port} ...
//! let msgs = smtp.wait_for_messages(1, Duration::from_secs(10)).await;
//! assert_eq!(msgs[0].subject, "…");
//! ```
//!
//! Behaviour of aiosmtpd 1.4.3 as seen through this fixture (checked by
//! tests/common/selftest/alerting.rs):
//! - STARTTLS mode: EHLO offers STARTTLS and no AUTH; anything but
//!   EHLO/NOOP/STARTTLS/QUIT before the upgrade gets
//!   `530 Must issue a STARTTLS command first`; after it EHLO offers
//!   `AUTH LOGIN PLAIN`.
//! - with `auth`: MAIL before AUTH gets `530 5.7.0 Authentication required`,
//!   good credentials `235 2.7.0 Authentication successful`, bad ones
//!   `535 5.7.8 Authentication credentials invalid` (the session stays open).
//! - `fail_first(n, code)`: the first `n` attempts get
//!   `<code> <class>.0.0 sitewatch test: fail-first i/n`.
//!
//! Not every test binary uses every helper, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Debian's interpreter: the one that imports `aiosmtpd` from
/// `python3-aiosmtpd`. Not `python3` from PATH (pyenv shims come first there).
pub const PYTHON: &str = "/usr/bin/python3";

/// The server script, next to this file.
pub const SERVER_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/smtp_server.py");

/// How long `start` waits for `READY <port>`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `stop`/`Drop` wait after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How the server speaks TLS.
#[derive(Clone)]
pub enum SmtpMode {
    /// Plain connection; EHLO offers STARTTLS and the server refuses mail
    /// until the client has upgraded (`require_starttls`, as on port 587).
    StartTls { cert_pem: String, key_pem: String },
    /// TLS from the first byte (SMTPS, as on port 465).
    ImplicitTls { cert_pem: String, key_pem: String },
    /// No TLS at all.
    Plain,
}

impl std::fmt::Debug for SmtpMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SmtpMode::StartTls { .. } => "StartTls",
            SmtpMode::ImplicitTls { .. } => "ImplicitTls",
            SmtpMode::Plain => "Plain",
        })
    }
}

impl SmtpMode {
    /// `StartTls` serving `chain_pem` (leaf first, e.g. `ServerCert::chain_pem`)
    /// with `key_pem` (e.g. `ServerCert::key_pem`).
    pub fn starttls(chain_pem: &str, key_pem: &str) -> SmtpMode {
        SmtpMode::StartTls {
            cert_pem: chain_pem.to_string(),
            key_pem: key_pem.to_string(),
        }
    }

    /// `ImplicitTls` serving `chain_pem` with `key_pem`.
    pub fn implicit_tls(chain_pem: &str, key_pem: &str) -> SmtpMode {
        SmtpMode::ImplicitTls {
            cert_pem: chain_pem.to_string(),
            key_pem: key_pem.to_string(),
        }
    }

    /// True for the two TLS modes.
    pub fn is_tls(&self) -> bool {
        !matches!(self, SmtpMode::Plain)
    }
}

/// Where `fail_first` refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailStage {
    /// At the end of DATA (after the final dot): the whole message is refused.
    #[default]
    Data,
    /// At RCPT TO: each RCPT command counts as one attempt.
    Rcpt,
}

/// Options for a `TestSmtp`; `TestSmtp::options(mode)` starts one.
#[derive(Debug, Clone)]
pub struct SmtpOptions {
    pub mode: SmtpMode,
    /// Require AUTH (PLAIN or LOGIN) with these credentials before MAIL.
    pub auth: Option<(String, String)>,
    /// Answer the first `n` attempts with `code` (4xx or 5xx).
    pub fail_first: Option<(u32, u16)>,
    pub fail_stage: FailStage,
    /// Listen on this port instead of one chosen by the kernel.
    pub port: Option<u16>,
    /// Store messages here instead of in the fixture's temp dir (which is
    /// deleted with the `TestSmtp`).
    pub maildir: Option<PathBuf>,
}

impl SmtpOptions {
    pub fn new(mode: SmtpMode) -> SmtpOptions {
        SmtpOptions {
            mode,
            auth: None,
            fail_first: None,
            fail_stage: FailStage::Data,
            port: None,
            maildir: None,
        }
    }

    pub fn auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Some((user.into(), password.into()));
        self
    }

    /// The first `n` attempts (see `fail_stage`, default DATA) get `code`.
    pub fn fail_first(mut self, n: u32, code: u16) -> Self {
        assert!(
            (400..=599).contains(&code),
            "fail_first wants a 4xx or 5xx code, got {code}"
        );
        self.fail_first = Some((n, code));
        self
    }

    pub fn fail_stage(mut self, stage: FailStage) -> Self {
        self.fail_stage = stage;
        self
    }

    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    pub fn maildir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.maildir = Some(dir.into());
        self
    }

    /// Starts the server; panics (with the server's log) if it does not come
    /// up, e.g. because an explicit `port` is taken.
    pub async fn start(self) -> TestSmtp {
        match self.try_start().await {
            Ok(smtp) => smtp,
            Err(e) => panic!("{e}"),
        }
    }

    /// Starts the server, or says why it did not come up.
    pub async fn try_start(self) -> Result<TestSmtp, String> {
        TestSmtp::spawn(self).await
    }
}

/// A running aiosmtpd on 127.0.0.1. Dropping it stops the server (SIGTERM,
/// then SIGKILL after 5 s) and deletes its temp dir.
pub struct TestSmtp {
    pub port: u16,
    /// Where accepted messages land (`NNNNNN.eml` + `NNNNNN.json`).
    pub maildir: PathBuf,
    pub options: SmtpOptions,
    child: Option<Child>,
    // Held open: the server exits when its stdin reaches EOF (test died).
    _stdin: Option<ChildStdin>,
    _stdout: Option<ChildStdout>,
    log_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for TestSmtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestSmtp")
            .field("port", &self.port)
            .field("mode", &self.options.mode)
            .field("maildir", &self.maildir)
            .finish_non_exhaustive()
    }
}

impl TestSmtp {
    /// A server in `mode` on a kernel-chosen port, no AUTH, no failures.
    pub async fn start(mode: SmtpMode) -> TestSmtp {
        SmtpOptions::new(mode).start().await
    }

    /// Same as `start`, on `port` (e.g. the port of a server stopped
    /// earlier). Panics if the port is taken.
    pub async fn start_on(port: u16, mode: SmtpMode) -> TestSmtp {
        SmtpOptions::new(mode).port(port).start().await
    }

    /// Builder for AUTH, fail-first, fixed port or maildir.
    pub fn options(mode: SmtpMode) -> SmtpOptions {
        SmtpOptions::new(mode)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The child's PID (None once stopped).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    async fn spawn(options: SmtpOptions) -> Result<TestSmtp, String> {
        let dir = tempfile::Builder::new()
            .prefix("sitewatch-smtp-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let maildir = options
            .maildir
            .clone()
            .unwrap_or_else(|| dir.path().join("mail"));
        std::fs::create_dir_all(&maildir).map_err(|e| format!("create {maildir:?}: {e}"))?;
        let log_path = dir.path().join("server.log");
        let log = std::fs::File::create(&log_path).map_err(|e| format!("create log: {e}"))?;

        let mut cmd = Command::new(PYTHON);
        cmd.arg(SERVER_SCRIPT);
        let write_pair = |cert: &str, key: &str| -> Result<(PathBuf, PathBuf), String> {
            let (c, k) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            std::fs::write(&c, cert).map_err(|e| format!("write cert: {e}"))?;
            std::fs::write(&k, key).map_err(|e| format!("write key: {e}"))?;
            Ok((c, k))
        };
        match &options.mode {
            SmtpMode::Plain => {
                cmd.arg("--plain");
            }
            SmtpMode::StartTls { cert_pem, key_pem } => {
                let (c, k) = write_pair(cert_pem, key_pem)?;
                cmd.arg("--starttls").arg(c).arg(k);
            }
            SmtpMode::ImplicitTls { cert_pem, key_pem } => {
                let (c, k) = write_pair(cert_pem, key_pem)?;
                cmd.arg("--implicit-tls").arg(c).arg(k);
            }
        }
        cmd.arg("--maildir").arg(&maildir);
        if let Some(port) = options.port {
            cmd.arg("--port").arg(port.to_string());
        }
        if let Some((user, pass)) = &options.auth {
            cmd.arg("--auth").arg(format!("{user}:{pass}"));
        }
        if let Some((n, code)) = options.fail_first {
            cmd.arg("--fail-first")
                .arg(n.to_string())
                .arg(code.to_string());
            cmd.arg("--fail-stage").arg(match options.fail_stage {
                FailStage::Data => "data",
                FailStage::Rcpt => "rcpt",
            });
        }
        cmd.env_remove("PYTHONPATH")
            .env_remove("PYTHONHOME")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);

        let mut child = cmd
            .spawn()
            .map_err(|e| format!("spawn {PYTHON} {SERVER_SCRIPT}: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(READY_TIMEOUT, lines.next_line()).await;
        let port = match &ready {
            Ok(Ok(Some(line))) => line
                .strip_prefix("READY ")
                .and_then(|p| p.trim().parse::<u16>().ok()),
            _ => None,
        };
        let Some(port) = port else {
            terminate(&mut child).await;
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let why = match ready {
                Err(_) => format!("no READY line within {READY_TIMEOUT:?}"),
                Ok(Ok(Some(line))) => format!("unexpected first line {line:?}"),
                Ok(Ok(None)) => "it exited before printing READY".to_string(),
                Ok(Err(e)) => format!("reading its stdout: {e}"),
            };
            let hint = if log.contains("No module named 'aiosmtpd'") {
                "\n(install it: apt-get install -y python3-aiosmtpd)"
            } else {
                ""
            };
            return Err(format!(
                "SMTP test server ({:?}, port {:?}) did not start: {why}; its log:\n{log}{hint}",
                options.mode, options.port
            ));
        };
        if let Some(want) = options.port {
            assert_eq!(port, want, "server bound another port than asked");
        }
        Ok(TestSmtp {
            port,
            maildir,
            options,
            child: Some(child),
            _stdin: stdin,
            _stdout: Some(lines.into_inner().into_inner()),
            log_path,
            _dir: dir,
        })
    }

    /// The server's stderr so far (warnings and errors; tracebacks).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Every message accepted so far, in arrival order.
    pub fn messages(&self) -> Vec<Received> {
        read_maildir(&self.maildir)
    }

    /// Polls the maildir every 50 ms until at least `n` messages are there;
    /// panics after `limit` (with what did arrive, the refusals and the log).
    pub async fn wait_for_messages(&self, n: usize, limit: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let msgs = self.messages();
            if msgs.len() >= n {
                return msgs;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "timed out after {limit:?} waiting for {n} message(s) on SMTP port {}: got {} {:?}; refusals: {:?}; server log:\n{}",
                    self.port,
                    msgs.len(),
                    msgs.iter().map(|m| &m.subject).collect::<Vec<_>>(),
                    self.rejections(),
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Refused attempts so far: fail-first refusals (stage `data`/`rcpt`)
    /// and failed AUTH (stage `auth`), in order.
    pub fn rejections(&self) -> Vec<Rejection> {
        let Ok(text) = std::fs::read_to_string(self.maildir.join("rejections.jsonl")) else {
            return Vec::new();
        };
        // Only complete lines: the last one may still be being written.
        let complete = match text.rfind('\n') {
            Some(i) => &text[..=i],
            None => "",
        };
        complete
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("bad rejections.jsonl line {l:?}: {e}"));
                Rejection::from_json(&v)
            })
            .collect()
    }

    /// Polls until at least `n` refusals were recorded; panics after `limit`.
    pub async fn wait_for_rejections(&self, n: usize, limit: Duration) -> Vec<Rejection> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let r = self.rejections();
            if r.len() >= n {
                return r;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "timed out after {limit:?} waiting for {n} SMTP refusal(s): got {r:?}; server log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the server (SIGTERM, SIGKILL after 5 s) and waits until it has
    /// exited, so the port is free; returns the port for `start_on`. The
    /// temp dir (and the default maildir in it) goes away.
    pub async fn stop(mut self) -> u16 {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child).await;
        }
        self.port
    }
}

/// SIGTERM, wait up to `STOP_GRACE`, then SIGKILL and wait.
async fn terminate(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    if let Some(pid) = child.id() {
        // Not reaped yet (try_wait said so), so the PID is still ours.
        // SAFETY: kill(2) with a valid signal number has no memory effects.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGTERM);
        }
    }
    if tokio::time::timeout(STOP_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ = child.start_kill();
        let _ = tokio::time::timeout(STOP_GRACE, child.wait()).await;
    }
}

impl Drop for TestSmtp {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        if let Some(pid) = child.id() {
            // SAFETY: as in `terminate`; the child has not been reaped.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
        // Drop cannot await: poll for the exit (it takes a few ms).
        let deadline = std::time::Instant::now() + STOP_GRACE;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.start_kill();
        let deadline = std::time::Instant::now() + STOP_GRACE;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Still not reaped: kill_on_drop and tokio's orphan reaper take over.
    }
}

/// An attempt the server refused on purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// `data`, `rcpt` or `auth`.
    pub stage: String,
    /// The reply code sent (e.g. 451, 550, 535).
    pub code: u16,
    /// The full reply line sent.
    pub reply: String,
    pub mail_from: Option<String>,
    pub rcpt_tos: Vec<String>,
    /// For `auth`: the user name the client tried.
    pub user: Option<String>,
}

impl Rejection {
    fn from_json(v: &serde_json::Value) -> Rejection {
        let reply = v["reply"].as_str().unwrap_or_default().to_string();
        Rejection {
            stage: v["stage"].as_str().unwrap_or_default().to_string(),
            code: reply.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0),
            reply,
            mail_from: v["mail_from"].as_str().map(str::to_string),
            rcpt_tos: str_array(&v["rcpt_tos"]),
            user: v["user"].as_str().map(str::to_string),
        }
    }
}

fn str_array(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// One accepted message: envelope (from the server) plus the parsed content.
#[derive(Debug, Clone)]
pub struct Received {
    /// The message as received (lossy UTF-8; CRLF line ends).
    pub raw: String,
    /// Header fields in order, unfolded, values as sent (not decoded).
    pub headers: Vec<(String, String)>,
    /// `Subject`, RFC 2047 encoded words decoded.
    pub subject: String,
    /// `From`, encoded words decoded (e.g. `sitewatch <sw@example.org>`).
    pub from: String,
    /// `To` mailboxes, encoded words decoded, as written (see `addr_of`).
    pub to: Vec<String>,
    /// `Message-ID` as sent (with the angle brackets).
    pub message_id: Option<String>,
    /// Envelope sender (MAIL FROM).
    pub mail_from: String,
    /// Envelope recipients (RCPT TO), in order.
    pub rcpt_tos: Vec<String>,
    /// Delivered over TLS (STARTTLS or implicit).
    pub tls: bool,
    /// The session had authenticated, and as whom.
    pub authenticated: bool,
    pub auth_user: Option<String>,
    /// The text/plain body (first text/plain part of a multipart message),
    /// transfer encoding (quoted-printable / base64) decoded, LF line ends,
    /// trailing line ends removed. A missing charset is taken as UTF-8.
    pub body: String,
    /// The first text/html part, decoded the same way, if any.
    pub html: Option<String>,
    /// Content-Type of the whole message (`text/plain` if absent).
    pub content_type: String,
    /// The .eml file.
    pub path: PathBuf,
}

impl Received {
    /// First header `name` (case-insensitive), raw value.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }

    /// Every header `name` (case-insensitive), raw values.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The bare address of `From`.
    pub fn sender_addr(&self) -> String {
        addr_of(&self.from).to_string()
    }

    /// The bare addresses of `To`.
    pub fn to_addrs(&self) -> Vec<String> {
        self.to.iter().map(|m| addr_of(m).to_string()).collect()
    }
}

/// Reads every complete message in `dir`, ordered by file name.
pub fn read_maildir(dir: &Path) -> Vec<Received> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut emls: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    emls.sort();
    emls.into_iter()
        .map(|eml| {
            let raw = std::fs::read(&eml).unwrap_or_else(|e| panic!("read {eml:?}: {e}"));
            let meta_path = eml.with_extension("json");
            let meta: serde_json::Value = serde_json::from_slice(
                &std::fs::read(&meta_path).unwrap_or_else(|e| panic!("read {meta_path:?}: {e}")),
            )
            .unwrap_or_else(|e| panic!("parse {meta_path:?}: {e}"));
            received_from(&raw, &meta, eml)
        })
        .collect()
}

fn received_from(raw: &[u8], meta: &serde_json::Value, path: PathBuf) -> Received {
    let msg = parse_message(raw);
    let auth_user = meta["authenticated"].as_str().map(str::to_string);
    let authenticated = auth_user.is_some() || meta["authenticated"].as_bool() == Some(true);
    let decoded = |name: &str| {
        header_in(&msg.headers, name)
            .map(decode_rfc2047)
            .unwrap_or_default()
    };
    let to = header_in(&msg.headers, "To")
        .map(|v| {
            split_mailboxes(v)
                .iter()
                .map(|m| decode_rfc2047(m))
                .collect()
        })
        .unwrap_or_default();
    Received {
        raw: String::from_utf8_lossy(raw).into_owned(),
        subject: decoded("Subject"),
        from: decoded("From"),
        to,
        message_id: header_in(&msg.headers, "Message-ID").map(str::to_string),
        mail_from: meta["mail_from"].as_str().unwrap_or_default().to_string(),
        rcpt_tos: str_array(&meta["rcpt_tos"]),
        tls: meta["tls"].as_bool().unwrap_or(false),
        authenticated,
        auth_user,
        body: msg.text.unwrap_or_default(),
        html: msg.html,
        content_type: msg.content_type,
        headers: msg.headers,
        path,
    }
}

fn header_in<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A parsed message or MIME part.
#[derive(Debug, Clone, Default)]
pub struct ParsedMessage {
    pub headers: Vec<(String, String)>,
    /// Lower-case media type without parameters (`text/plain` by default).
    pub content_type: String,
    /// First text/plain leaf (or the only leaf, if it is text), decoded.
    pub text: Option<String>,
    /// First text/html leaf, decoded.
    pub html: Option<String>,
}

/// Parses an RFC 5322 message: unfolded headers, then the body, walking
/// multipart/* parts and decoding quoted-printable / base64 text leaves.
/// Minimal on purpose: enough for what lettre sends.
pub fn parse_message(raw: &[u8]) -> ParsedMessage {
    let (head, body) = split_head_body(raw);
    let headers = parse_headers(&String::from_utf8_lossy(head));
    let ctype = header_in(&headers, "Content-Type").unwrap_or("text/plain");
    let (media, params) = parse_content_type(ctype);
    let mut out = ParsedMessage {
        content_type: media.clone(),
        ..Default::default()
    };
    if media.starts_with("multipart/") {
        if let Some(boundary) = params.iter().find(|(k, _)| k == "boundary").map(|p| &p.1) {
            for part in split_multipart(body, boundary) {
                let p = parse_message(part);
                if out.text.is_none() {
                    out.text = p.text;
                }
                if out.html.is_none() {
                    out.html = p.html;
                }
            }
        }
    } else if media.starts_with("text/") || media.is_empty() {
        let cte = header_in(&headers, "Content-Transfer-Encoding")
            .unwrap_or("7bit")
            .trim()
            .to_ascii_lowercase();
        let bytes = match cte.as_str() {
            "quoted-printable" => qp_decode(body, false),
            "base64" => base64_decode(&String::from_utf8_lossy(body))
                .unwrap_or_else(|| panic!("bad base64 body: {:?}", String::from_utf8_lossy(body))),
            _ => body.to_vec(),
        };
        let charset = params
            .iter()
            .find(|(k, _)| k == "charset")
            .map(|p| p.1.as_str())
            .unwrap_or("utf-8");
        let text = decode_charset(charset, &bytes).replace("\r\n", "\n");
        // SMTP senders (lettre included) end the data with a line end of
        // their own; trailing line ends carry no meaning, so drop them all.
        let text = text.trim_end_matches('\n').to_string();
        if media == "text/html" {
            out.html = Some(text);
        } else {
            out.text = Some(text);
        }
    }
    out.headers = headers;
    out
}

fn split_head_body(raw: &[u8]) -> (&[u8], &[u8]) {
    if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
        return (&raw[..i + 2], &raw[i + 4..]);
    }
    if let Some(i) = raw.windows(2).position(|w| w == b"\n\n") {
        return (&raw[..i + 1], &raw[i + 2..]);
    }
    (raw, &[])
}

/// Unfolds continuation lines (RFC 5322 2.2.3: a line starting with space
/// or tab continues the previous field) and splits `Name: value`.
pub fn parse_headers(head: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push_str(line);
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_string(), value.trim_start().to_string()));
        }
    }
    for h in &mut out {
        h.1 = h.1.trim().to_string();
    }
    out
}

/// `text/plain; charset="utf-8"` -> ("text/plain", [("charset", "utf-8")]).
/// Parameter names are lower-cased; values keep their case.
pub fn parse_content_type(value: &str) -> (String, Vec<(String, String)>) {
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            Some((k.trim().to_ascii_lowercase(), v.to_string()))
        })
        .collect();
    (media, params)
}

/// The parts between `--boundary` lines (up to `--boundary--`).
fn split_multipart<'a>(body: &'a [u8], boundary: &str) -> Vec<&'a [u8]> {
    let delim = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut start: Option<usize> = None;
    let mut pos = 0;
    while pos < body.len() {
        let end = body[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(body.len(), |i| pos + i + 1);
        let line = &body[pos..end];
        let trimmed = trim_eol(line);
        if trimmed.starts_with(delim.as_bytes()) {
            let rest = &trimmed[delim.len()..];
            if let Some(s) = start {
                // The CRLF before the delimiter belongs to the delimiter.
                let mut part_end = pos;
                if body[..part_end].ends_with(b"\r\n") {
                    part_end -= 2;
                } else if body[..part_end].ends_with(b"\n") {
                    part_end -= 1;
                }
                parts.push(&body[s..part_end.max(s)]);
            }
            if rest.starts_with(b"--") {
                break;
            }
            start = Some(end);
        }
        pos = end;
    }
    parts
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Splits an address list on commas outside quotes and angle brackets.
pub fn split_mailboxes(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut angle) = (false, false);
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            escaped = false;
            cur.push(c);
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_string());
                }
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// `Name <a@b>` -> `a@b`; a bare address is returned as is.
pub fn addr_of(mailbox: &str) -> &str {
    match (mailbox.rfind('<'), mailbox.rfind('>')) {
        (Some(l), Some(r)) if l < r => &mailbox[l + 1..r],
        _ => mailbox.trim(),
    }
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?...?=`, `=?utf-8?q?...?=`,
/// any case) in a header value. Whitespace between two adjacent encoded
/// words is dropped (RFC 2047 6.2), and their bytes are joined before the
/// charset is applied, so a character split across two words survives.
pub fn decode_rfc2047(value: &str) -> String {
    let mut out = String::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut pending_charset = String::new();
    let mut rest = value;
    let mut after_word = false;
    loop {
        let Some((start, len, charset, bytes)) = next_encoded_word(rest) else {
            flush_pending(&mut out, &mut pending, &pending_charset);
            out.push_str(rest);
            return out;
        };
        let before = &rest[..start];
        let only_space = before.chars().all(|c| c.is_ascii_whitespace());
        if !(after_word && only_space) {
            flush_pending(&mut out, &mut pending, &pending_charset);
            out.push_str(before);
        }
        if charset != pending_charset {
            flush_pending(&mut out, &mut pending, &pending_charset);
            pending_charset = charset;
        }
        pending.extend_from_slice(&bytes);
        after_word = true;
        rest = &rest[start + len..];
    }
}

fn flush_pending(out: &mut String, pending: &mut Vec<u8>, charset: &str) {
    if !pending.is_empty() {
        out.push_str(&decode_charset(charset, pending));
        pending.clear();
    }
}

/// Finds the next well-formed encoded word: (offset, length, charset, bytes).
fn next_encoded_word(s: &str) -> Option<(usize, usize, String, Vec<u8>)> {
    let mut from = 0;
    while let Some(i) = s[from..].find("=?") {
        let start = from + i;
        if let Some((len, charset, bytes)) = parse_encoded_word(&s[start..]) {
            return Some((start, len, charset, bytes));
        }
        from = start + 2;
    }
    None
}

/// `=?charset?enc?text?=` at the start of `s`.
fn parse_encoded_word(s: &str) -> Option<(usize, String, Vec<u8>)> {
    let inner = s.strip_prefix("=?")?;
    let q1 = inner.find('?')?;
    let charset = inner[..q1].to_ascii_lowercase();
    // RFC 2231 language suffix: utf-8*en
    let charset = charset.split('*').next().unwrap_or_default().to_string();
    let after_cs = &inner[q1 + 1..];
    let mut chars = after_cs.chars();
    let enc = chars.next()?.to_ascii_lowercase();
    if chars.next()? != '?' {
        return None;
    }
    let text_start = &after_cs[2..];
    let end = text_start.find("?=")?;
    let text = &text_start[..end];
    if text.contains([' ', '\t', '\r', '\n']) || charset.is_empty() {
        return None;
    }
    let bytes = match enc {
        'b' => base64_decode(text)?,
        'q' => qp_decode(text.as_bytes(), true),
        _ => return None,
    };
    let len = 2 + q1 + 1 + 2 + end + 2;
    Some((len, charset, bytes))
}

fn decode_charset(charset: &str, bytes: &[u8]) -> String {
    match charset.to_ascii_lowercase().as_str() {
        "iso-8859-1" | "latin1" | "latin-1" => bytes.iter().map(|&b| b as char).collect(),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Quoted-printable (RFC 2045 6.7) decoding; with `q_encoding`, the RFC 2047
/// "Q" variant (`_` is a space, no soft line breaks).
pub fn qp_decode(input: &[u8], q_encoding: bool) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'=' {
            if input[i + 1..].starts_with(b"\r\n") {
                i += 3; // soft line break
                continue;
            }
            if input[i + 1..].starts_with(b"\n") {
                i += 2;
                continue;
            }
            if let (Some(&h), Some(&l)) = (input.get(i + 1), input.get(i + 2))
                && let (Some(h), Some(l)) = (hex(h), hex(l))
            {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
            out.push(b'=');
        } else if q_encoding && b == b'_' {
            out.push(b' ');
        } else {
            out.push(b);
        }
        i += 1;
    }
    out
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (RFC 4648, with padding) decoding; whitespace is
/// skipped; `None` on any other non-alphabet byte.
pub fn base64_decode(input: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in input.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Standard base64 encoding with padding (for AUTH in hand-written clients).
pub fn base64_encode(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
