//! Self-tests of the alerting fixtures: the aiosmtpd SMTP server
//! (tests/common/smtp.rs + smtp_server.py) and the HTTP receiver with the
//! Slack payload checker (tests/common/receiver.rs).
//!
//! The SMTP side is driven by a tiny hand-written SMTP client (tokio +
//! tokio-rustls, trusting only the test CA), so these tests depend on nothing
//! in sitewatch itself. Everything stays on 127.0.0.1.
//!
//! Needs Debian's `python3-aiosmtpd` (installed by .ci/run).

use crate::common::{receiver, smtp, tls};

use std::sync::Arc;
use std::time::Duration;

use receiver::{Receiver, Reply, check_slack_payload};
use serde_json::json;
use smtp::{FailStage, SmtpMode, TestSmtp, base64_decode, base64_encode, decode_rfc2047};
use tls::{CertKind, TestCa};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const IO_LIMIT: Duration = Duration::from_secs(10);
const ARRIVAL: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// A minimal SMTP client
// ---------------------------------------------------------------------------

/// One SMTP reply (possibly multi-line).
#[derive(Debug, Clone)]
struct SmtpReply {
    code: u16,
    lines: Vec<String>,
}

impl SmtpReply {
    fn text(&self) -> String {
        self.lines.join("\n")
    }
    fn has_line(&self, want: &str) -> bool {
        self.lines.iter().any(|l| l.eq_ignore_ascii_case(want))
    }
}

enum Conn {
    Plain(BufReader<TcpStream>),
    Tls(Box<BufReader<tokio_rustls::client::TlsStream<TcpStream>>>),
    Gone,
}

struct SmtpClient {
    conn: Conn,
}

async fn read_reply<R: AsyncBufReadExt + Unpin>(r: &mut R) -> SmtpReply {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(IO_LIMIT, r.read_line(&mut line))
            .await
            .expect("SMTP reply within 10 s")
            .expect("read SMTP reply");
        assert!(n > 0, "server closed the connection; got so far: {lines:?}");
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        assert!(line.len() >= 3, "short SMTP reply line {line:?}");
        let code: u16 = line[..3]
            .parse()
            .unwrap_or_else(|_| panic!("bad reply {line:?}"));
        let more = line.as_bytes().get(3) == Some(&b'-');
        lines.push(line.get(4..).unwrap_or("").to_string());
        if !more {
            return SmtpReply { code, lines };
        }
    }
}

async fn write_all<W: AsyncWrite + Unpin>(w: &mut W, data: &[u8]) {
    tokio::time::timeout(IO_LIMIT, async {
        w.write_all(data).await?;
        w.flush().await
    })
    .await
    .expect("SMTP write within 10 s")
    .expect("SMTP write");
}

async fn tls_connect<S: AsyncRead + AsyncWrite + Unpin>(
    ca: &TestCa,
    io: S,
) -> tokio_rustls::client::TlsStream<S> {
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("server name");
    let connector = tokio_rustls::TlsConnector::from(Arc::new(ca.client_config()));
    tokio::time::timeout(IO_LIMIT, connector.connect(name, io))
        .await
        .expect("TLS handshake within 10 s")
        .expect("TLS handshake with the test CA")
}

impl SmtpClient {
    /// Connects; with `tls`, TLS from the first byte (implicit TLS).
    async fn connect(port: u16, implicit_tls: Option<&TestCa>) -> (SmtpClient, SmtpReply) {
        let tcp = tokio::time::timeout(IO_LIMIT, TcpStream::connect(("127.0.0.1", port)))
            .await
            .expect("connect within 10 s")
            .expect("connect to the SMTP server");
        let conn = match implicit_tls {
            None => Conn::Plain(BufReader::new(tcp)),
            Some(ca) => Conn::Tls(Box::new(BufReader::new(tls_connect(ca, tcp).await))),
        };
        let mut c = SmtpClient { conn };
        let greeting = c.read().await;
        (c, greeting)
    }

    async fn read(&mut self) -> SmtpReply {
        match &mut self.conn {
            Conn::Plain(r) => read_reply(r).await,
            Conn::Tls(r) => read_reply(r.as_mut()).await,
            Conn::Gone => unreachable!("connection consumed"),
        }
    }

    async fn write(&mut self, data: &[u8]) {
        match &mut self.conn {
            Conn::Plain(r) => write_all(r, data).await,
            Conn::Tls(r) => write_all(r.as_mut(), data).await,
            Conn::Gone => unreachable!("connection consumed"),
        }
    }

    async fn cmd(&mut self, line: &str) -> SmtpReply {
        self.write(format!("{line}\r\n").as_bytes()).await;
        self.read().await
    }

    fn is_tls(&self) -> bool {
        matches!(self.conn, Conn::Tls(_))
    }

    /// STARTTLS, then the handshake; returns the 220 reply.
    async fn starttls(&mut self, ca: &TestCa) -> SmtpReply {
        let reply = self.cmd("STARTTLS").await;
        assert_eq!(reply.code, 220, "STARTTLS: {reply:?}");
        let Conn::Plain(reader) = std::mem::replace(&mut self.conn, Conn::Gone) else {
            panic!("STARTTLS on a TLS connection");
        };
        assert!(
            reader.buffer().is_empty(),
            "server sent data after 220 (STARTTLS injection?)"
        );
        let tls = tls_connect(ca, reader.into_inner()).await;
        self.conn = Conn::Tls(Box::new(BufReader::new(tls)));
        reply
    }

    async fn auth_plain(&mut self, user: &str, pass: &str) -> SmtpReply {
        let token = base64_encode(format!("\0{user}\0{pass}").as_bytes());
        self.cmd(&format!("AUTH PLAIN {token}")).await
    }

    async fn auth_login(&mut self, user: &str, pass: &str) -> SmtpReply {
        let r = self.cmd("AUTH LOGIN").await;
        assert_eq!(r.code, 334, "AUTH LOGIN: {r:?}");
        let prompt = base64_decode(&r.lines[0]).expect("base64 prompt");
        // aiosmtpd 1.4.3 sends "User Name\0" (base64 VXNlciBOYW1lAA==).
        assert!(
            prompt.starts_with(b"User Name"),
            "first AUTH LOGIN prompt {prompt:?}"
        );
        let r = self.cmd(&base64_encode(user.as_bytes())).await;
        assert_eq!(r.code, 334, "AUTH LOGIN user: {r:?}");
        self.cmd(&base64_encode(pass.as_bytes())).await
    }

    /// MAIL, RCPT for each recipient (asserting 250), DATA; returns the
    /// reply to the final dot.
    async fn send(&mut self, from: &str, to: &[&str], message: &str) -> SmtpReply {
        let r = self.cmd(&format!("MAIL FROM:<{from}>")).await;
        assert_eq!(r.code, 250, "MAIL FROM: {r:?}");
        for rcpt in to {
            let r = self.cmd(&format!("RCPT TO:<{rcpt}>")).await;
            assert_eq!(r.code, 250, "RCPT TO:<{rcpt}>: {r:?}");
        }
        self.data(message).await
    }

    /// DATA with dot-stuffing; returns the reply to the final dot.
    async fn data(&mut self, message: &str) -> SmtpReply {
        let r = self.cmd("DATA").await;
        assert_eq!(r.code, 354, "DATA: {r:?}");
        let mut wire = String::new();
        for line in message.split("\r\n") {
            if line.starts_with('.') {
                wire.push('.');
            }
            wire.push_str(line);
            wire.push_str("\r\n");
        }
        wire.push_str(".\r\n");
        self.write(wire.as_bytes()).await;
        self.read().await
    }

    async fn quit(mut self) {
        let r = self.cmd("QUIT").await;
        assert_eq!(r.code, 221, "QUIT: {r:?}");
    }
}

/// A message shaped like lettre's output: RFC 2047 subject (split over two
/// folded encoded words), quoted-printable UTF-8 body.
fn alert_message(to: &[&str]) -> String {
    // "[sitewatch] DOWN: shop — tls.expired ✗" as lettre would fold it.
    [
        "From: sitewatch <sitewatch@example.org>".to_string(),
        format!("To: {}", to.join(", ")),
        "Subject: =?utf-8?b?W3NpdGV3YXRjaF0gRE9XTjogc2hvcCDigJQg?=".to_string(),
        " =?utf-8?q?tls=2Eexpired_=E2=9C=97?=".to_string(),
        "Message-ID: <alert-1@sitewatch.test>".to_string(),
        "Date: Tue, 03 Nov 2026 10:00:00 +0000".to_string(),
        "MIME-Version: 1.0".to_string(),
        "Content-Type: text/plain; charset=utf-8".to_string(),
        "Content-Transfer-Encoding: quoted-printable".to_string(),
        String::new(),
        "shop is DOWN: the certificate expired 3 days ago =E2=80=94 renew it.=".to_string(),
        "..dot-stuffed line follows".to_string(),
        ".leading dot".to_string(),
    ]
    .join("\r\n")
}

const ALERT_SUBJECT: &str = "[sitewatch] DOWN: shop — tls.expired ✗";

fn test_cert(ca: &TestCa) -> tls::ServerCert {
    ca.leaf(CertKind::Valid, &["localhost", "127.0.0.1"])
}

// ---------------------------------------------------------------------------
// SMTP fixture
// ---------------------------------------------------------------------------

#[tokio::test]
async fn smtp_starttls_with_auth_delivers_over_tls() {
    let ca = TestCa::new();
    let cert = test_cert(&ca);
    let smtp = TestSmtp::options(SmtpMode::starttls(&cert.chain_pem, &cert.key_pem))
        .auth("alerts", "s3cret")
        .start()
        .await;

    let (mut c, greeting) = SmtpClient::connect(smtp.port, None).await;
    assert_eq!(greeting.code, 220, "{greeting:?}");
    let ehlo = c.cmd("EHLO client.test").await;
    assert_eq!(ehlo.code, 250);
    assert!(ehlo.has_line("STARTTLS"), "STARTTLS offered: {ehlo:?}");
    assert!(
        !ehlo.lines.iter().any(|l| l.starts_with("AUTH")),
        "no AUTH before TLS: {ehlo:?}"
    );
    let early = c.cmd("MAIL FROM:<sitewatch@example.org>").await;
    assert_eq!(early.code, 530, "mail before STARTTLS: {early:?}");
    assert!(early.text().contains("STARTTLS"), "{early:?}");

    c.starttls(&ca).await;
    assert!(c.is_tls());
    let ehlo = c.cmd("EHLO client.test").await;
    assert!(
        !ehlo.has_line("STARTTLS"),
        "no STARTTLS after TLS: {ehlo:?}"
    );
    assert!(
        ehlo.has_line("AUTH LOGIN PLAIN"),
        "AUTH after TLS: {ehlo:?}"
    );
    let unauth = c.cmd("MAIL FROM:<sitewatch@example.org>").await;
    assert_eq!(unauth.code, 530, "mail before AUTH: {unauth:?}");
    assert!(unauth.text().contains("5.7.0"), "{unauth:?}");
    let auth = c.auth_plain("alerts", "s3cret").await;
    assert_eq!(auth.code, 235, "{auth:?}");

    let to = ["ops@example.org", "Oncall Person <oncall@example.org>"];
    let done = c
        .send(
            "bounce@example.org",
            &["ops@example.org", "oncall@example.org"],
            &alert_message(&to),
        )
        .await;
    assert_eq!(done.code, 250, "{done:?}");
    c.quit().await;

    let msgs = smtp.wait_for_messages(1, ARRIVAL).await;
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(m.subject, ALERT_SUBJECT);
    assert_eq!(m.from, "sitewatch <sitewatch@example.org>");
    assert_eq!(m.sender_addr(), "sitewatch@example.org");
    assert_eq!(
        m.to,
        ["ops@example.org", "Oncall Person <oncall@example.org>"]
    );
    assert_eq!(m.to_addrs(), ["ops@example.org", "oncall@example.org"]);
    assert_eq!(m.mail_from, "bounce@example.org");
    assert_eq!(m.rcpt_tos, ["ops@example.org", "oncall@example.org"]);
    assert!(m.tls, "delivered over TLS");
    assert!(m.authenticated);
    assert_eq!(m.auth_user.as_deref(), Some("alerts"));
    assert_eq!(m.message_id.as_deref(), Some("<alert-1@sitewatch.test>"));
    assert_eq!(m.content_type, "text/plain");
    assert_eq!(
        m.body,
        "shop is DOWN: the certificate expired 3 days ago — renew it...dot-stuffed line follows\n.leading dot"
    );
    assert!(smtp.rejections().is_empty());
}

#[tokio::test]
async fn smtp_implicit_tls_with_auth_login_delivers() {
    let ca = TestCa::new();
    let cert = test_cert(&ca);
    let smtp = TestSmtp::options(SmtpMode::implicit_tls(&cert.chain_pem, &cert.key_pem))
        .auth("alerts", "s3cret")
        .start()
        .await;

    let (mut c, greeting) = SmtpClient::connect(smtp.port, Some(&ca)).await;
    assert_eq!(greeting.code, 220);
    let ehlo = c.cmd("EHLO client.test").await;
    assert!(!ehlo.has_line("STARTTLS"), "implicit TLS: {ehlo:?}");
    assert!(ehlo.has_line("AUTH LOGIN PLAIN"), "{ehlo:?}");
    let auth = c.auth_login("alerts", "s3cret").await;
    assert_eq!(auth.code, 235, "{auth:?}");
    let done = c
        .send(
            "sitewatch@example.org",
            &["ops@example.org"],
            &alert_message(&["ops@example.org"]),
        )
        .await;
    assert_eq!(done.code, 250, "{done:?}");
    c.quit().await;

    let m = &smtp.wait_for_messages(1, ARRIVAL).await[0];
    assert_eq!(m.subject, ALERT_SUBJECT);
    assert!(m.tls);
    assert_eq!(m.auth_user.as_deref(), Some("alerts"));
    assert_eq!(m.rcpt_tos, ["ops@example.org"]);

    // A plain-text client gets nothing it can read: the server waits for a
    // ClientHello. (Bounded: we only check that no "220" greeting arrives.)
    let mut tcp = TcpStream::connect(("127.0.0.1", smtp.port)).await.unwrap();
    let mut buf = [0u8; 64];
    let got = tokio::time::timeout(
        Duration::from_millis(500),
        tokio::io::AsyncReadExt::read(&mut tcp, &mut buf),
    )
    .await;
    if let Ok(Ok(n)) = got {
        assert!(
            !buf[..n].starts_with(b"220"),
            "plain greeting on SMTPS port"
        );
    }
}

#[tokio::test]
async fn smtp_plain_multipart_without_auth() {
    let smtp = TestSmtp::start(SmtpMode::Plain).await;
    let (mut c, _) = SmtpClient::connect(smtp.port, None).await;
    let ehlo = c.cmd("EHLO client.test").await;
    assert!(!ehlo.has_line("STARTTLS"), "{ehlo:?}");
    let message = [
        "From: =?utf-8?q?S=C3=AFtewatch?= <sw@example.org>",
        "To: a@example.org",
        "Subject: plain ASCII subject",
        "MIME-Version: 1.0",
        "Content-Type: multipart/alternative;",
        " boundary=\"XyZ\"",
        "",
        "--XyZ",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: base64",
        "",
        "aGVsbG8g4pyTCnNlY29uZCBsaW5l",
        "--XyZ",
        "Content-Type: text/html; charset=utf-8",
        "Content-Transfer-Encoding: 7bit",
        "",
        "<p>hello</p>",
        "--XyZ--",
        "",
    ]
    .join("\r\n");
    let done = c.send("sw@example.org", &["a@example.org"], &message).await;
    assert_eq!(done.code, 250, "{done:?}");
    c.quit().await;

    let m = &smtp.wait_for_messages(1, ARRIVAL).await[0];
    assert_eq!(m.subject, "plain ASCII subject");
    assert_eq!(m.from, "Sïtewatch <sw@example.org>");
    assert!(!m.tls);
    assert!(!m.authenticated);
    assert_eq!(m.auth_user, None);
    assert_eq!(m.message_id, None);
    assert_eq!(m.content_type, "multipart/alternative");
    assert_eq!(m.body, "hello ✓\nsecond line");
    assert_eq!(m.html.as_deref(), Some("<p>hello</p>"));
}

#[tokio::test]
async fn smtp_wrong_password_gets_535_and_session_survives() {
    let ca = TestCa::new();
    let cert = test_cert(&ca);
    let smtp = TestSmtp::options(SmtpMode::starttls(&cert.chain_pem, &cert.key_pem))
        .auth("alerts", "s3cret")
        .start()
        .await;
    let (mut c, _) = SmtpClient::connect(smtp.port, None).await;
    c.cmd("EHLO client.test").await;
    c.starttls(&ca).await;
    c.cmd("EHLO client.test").await;

    let bad = c.auth_plain("alerts", "wrong").await;
    assert_eq!(bad.code, 535, "{bad:?}");
    assert_eq!(bad.text(), "5.7.8 Authentication credentials invalid");
    let bad = c.auth_login("alerts", "wrong").await;
    assert_eq!(bad.code, 535, "AUTH LOGIN too: {bad:?}");
    // The connection is still usable (the handled=False gotcha).
    assert_eq!(c.cmd("NOOP").await.code, 250);
    assert_eq!(c.auth_plain("alerts", "s3cret").await.code, 235);
    c.quit().await;

    let rej = smtp.rejections();
    assert_eq!(rej.len(), 2, "{rej:?}");
    assert!(rej.iter().all(|r| r.stage == "auth" && r.code == 535));
    assert_eq!(rej[0].user.as_deref(), Some("alerts"));
    assert!(smtp.messages().is_empty());
}

#[tokio::test]
async fn smtp_fail_first_451_then_accepts() {
    let smtp = TestSmtp::options(SmtpMode::Plain)
        .fail_first(2, 451)
        .start()
        .await;
    let msg = alert_message(&["ops@example.org"]);
    for attempt in 1..=3 {
        // A fresh connection per attempt, like a sender's retry.
        let (mut c, _) = SmtpClient::connect(smtp.port, None).await;
        c.cmd("EHLO client.test").await;
        let r = c
            .send("sitewatch@example.org", &["ops@example.org"], &msg)
            .await;
        if attempt <= 2 {
            assert_eq!(r.code, 451, "attempt {attempt}: {r:?}");
            assert_eq!(
                r.text(),
                format!("4.0.0 sitewatch test: fail-first {attempt}/2")
            );
        } else {
            assert_eq!(r.code, 250, "attempt {attempt}: {r:?}");
        }
        c.quit().await;
    }
    let msgs = smtp.wait_for_messages(1, ARRIVAL).await;
    assert_eq!(msgs.len(), 1);
    let rej = smtp.rejections();
    assert_eq!(rej.len(), 2);
    assert!(rej.iter().all(|r| r.stage == "data" && r.code == 451));
    assert_eq!(rej[0].rcpt_tos, ["ops@example.org"]);
}

#[tokio::test]
async fn smtp_fail_first_at_rcpt_with_permanent_code() {
    let smtp = TestSmtp::options(SmtpMode::Plain)
        .fail_first(1, 550)
        .fail_stage(FailStage::Rcpt)
        .start()
        .await;
    let (mut c, _) = SmtpClient::connect(smtp.port, None).await;
    c.cmd("EHLO client.test").await;
    assert_eq!(c.cmd("MAIL FROM:<sw@example.org>").await.code, 250);
    let r = c.cmd("RCPT TO:<a@example.org>").await;
    assert_eq!(r.code, 550, "{r:?}");
    assert!(r.text().starts_with("5.0.0 "), "{r:?}");
    assert_eq!(c.cmd("RCPT TO:<b@example.org>").await.code, 250);
    let done = c.data(&alert_message(&["b@example.org"])).await;
    assert_eq!(done.code, 250);
    c.quit().await;
    let m = &smtp.wait_for_messages(1, ARRIVAL).await[0];
    assert_eq!(m.rcpt_tos, ["b@example.org"]);
    let rej = smtp.rejections();
    assert_eq!(rej.len(), 1);
    assert_eq!((rej[0].stage.as_str(), rej[0].code), ("rcpt", 550));
    assert_eq!(rej[0].rcpt_tos, ["a@example.org"]);
}

#[tokio::test]
async fn smtp_stop_then_restart_on_same_port() {
    let smtp = TestSmtp::start(SmtpMode::Plain).await;
    let pid = smtp.pid().expect("running");
    let port = smtp.stop().await;
    // The process is gone (reaped) and the port refuses connections.
    // SAFETY: signal 0 only checks for existence.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, 0) }, -1);
    let refused = TcpStream::connect(("127.0.0.1", port)).await;
    assert!(refused.is_err(), "port {port} still accepts after stop");

    let again = TestSmtp::start_on(port, SmtpMode::Plain).await;
    assert_eq!(again.port, port);
    let (mut c, _) = SmtpClient::connect(port, None).await;
    c.cmd("EHLO client.test").await;
    let r = c
        .send(
            "sw@example.org",
            &["ops@example.org"],
            &alert_message(&["ops@example.org"]),
        )
        .await;
    assert_eq!(r.code, 250);
    c.quit().await;
    again.wait_for_messages(1, ARRIVAL).await;
}

#[tokio::test]
async fn smtp_start_on_a_taken_port_fails_loudly() {
    let holder = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = holder.local_addr().unwrap().port();
    let err = TestSmtp::options(SmtpMode::Plain)
        .port(port)
        .try_start()
        .await
        .expect_err("port is taken");
    assert!(err.contains("cannot bind 127.0.0.1"), "{err}");
    assert!(err.contains("Address already in use"), "{err}");
}

// ---------------------------------------------------------------------------
// The same fixture driven by lettre (the crate sitewatch sends mail with):
// what lettre encodes, the fixture must decode.
// ---------------------------------------------------------------------------

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

const LETTRE_SUBJECT: &str = "[sitewatch] DOWN: boutique-ünïcødé.example.org — tls.expired: the certificate expired 3 days ago ✗";
const LETTRE_BODY: &str = "boutique-ünïcødé.example.org is DOWN since 10:00 UTC.\nCause: tls.expired — the certificate expired 3 days ago; renew it and reload the web server, then check the chain with openssl s_client.\n.a line with a leading dot\n";

fn lettre_tls(ca: &TestCa) -> TlsParameters {
    TlsParameters::builder("localhost".to_string())
        .certificate_store(CertificateStore::None)
        .add_root_certificate(Certificate::from_pem(ca.root_pem().as_bytes()).expect("root PEM"))
        .build_rustls()
        .expect("rustls parameters")
}

fn lettre_transport(
    port: u16,
    tls: Tls,
    creds: Option<(&str, &str)>,
) -> AsyncSmtpTransport<Tokio1Executor> {
    install_ring();
    // Connect to 127.0.0.1 (the server is IPv4-only); TLS checks "localhost".
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .tls(tls)
        .timeout(Some(IO_LIMIT));
    if let Some((u, p)) = creds {
        b = b.credentials(Credentials::new(u.to_string(), p.to_string()));
    }
    b.build()
}

fn lettre_message(multipart: bool) -> lettre::Message {
    let builder = lettre::Message::builder()
        .from(
            "sitewatch <sitewatch@example.org>"
                .parse::<Mailbox>()
                .unwrap(),
        )
        .to("ops@example.org".parse::<Mailbox>().unwrap())
        .to("Ünïcødé Oncall <oncall@example.org>"
            .parse::<Mailbox>()
            .unwrap())
        .subject(LETTRE_SUBJECT)
        .message_id(Some("<lettre-1@sitewatch.test>".to_string()));
    if multipart {
        builder
            .multipart(MultiPart::alternative_plain_html(
                LETTRE_BODY.to_string(),
                "<p>DOWN ✗</p>".to_string(),
            ))
            .unwrap()
    } else {
        builder.body(LETTRE_BODY.to_string()).unwrap()
    }
}

fn check_lettre_message(m: &smtp::Received) {
    assert_eq!(m.subject, LETTRE_SUBJECT, "raw:\n{}", m.raw);
    assert_eq!(m.sender_addr(), "sitewatch@example.org");
    assert_eq!(m.to_addrs(), ["ops@example.org", "oncall@example.org"]);
    assert_eq!(
        m.to[1], "Ünïcødé Oncall <oncall@example.org>",
        "raw:\n{}",
        m.raw
    );
    assert_eq!(m.rcpt_tos, ["ops@example.org", "oncall@example.org"]);
    assert_eq!(m.mail_from, "sitewatch@example.org");
    assert_eq!(m.message_id.as_deref(), Some("<lettre-1@sitewatch.test>"));
    assert_eq!(m.body, LETTRE_BODY.trim_end(), "raw:\n{}", m.raw);
}

#[tokio::test]
async fn lettre_through_every_mode() {
    let ca = TestCa::new();
    let cert = test_cert(&ca);
    let cases = [
        (
            SmtpMode::starttls(&cert.chain_pem, &cert.key_pem),
            Tls::Required(lettre_tls(&ca)),
            false,
        ),
        (
            SmtpMode::implicit_tls(&cert.chain_pem, &cert.key_pem),
            Tls::Wrapper(lettre_tls(&ca)),
            true,
        ),
        (SmtpMode::Plain, Tls::None, false),
    ];
    for (mode, tls, multipart) in cases {
        let tls_mode = mode.is_tls();
        let smtp = TestSmtp::options(mode.clone())
            .auth("alerts", "s3cret")
            .start()
            .await;
        let transport = lettre_transport(smtp.port, tls, Some(("alerts", "s3cret")));
        let resp = transport
            .send(lettre_message(multipart))
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: lettre send: {e}; server log:\n{}", smtp.log()));
        assert_eq!(u16::from(resp.code()), 250);
        let msgs = smtp.wait_for_messages(1, ARRIVAL).await;
        let m = &msgs[0];
        check_lettre_message(m);
        assert_eq!(m.tls, tls_mode, "{mode:?}");
        assert_eq!(m.auth_user.as_deref(), Some("alerts"), "{mode:?}");
        if multipart {
            assert_eq!(m.content_type, "multipart/alternative");
            assert_eq!(m.html.as_deref(), Some("<p>DOWN ✗</p>"));
        }
    }
}

#[tokio::test]
async fn lettre_sees_535_as_permanent_and_451_as_transient() {
    let ca = TestCa::new();
    let cert = test_cert(&ca);
    let smtp = TestSmtp::options(SmtpMode::starttls(&cert.chain_pem, &cert.key_pem))
        .auth("alerts", "s3cret")
        .fail_first(1, 451)
        .start()
        .await;

    let bad = lettre_transport(
        smtp.port,
        Tls::Required(lettre_tls(&ca)),
        Some(("alerts", "wrong")),
    );
    let err = bad
        .send(lettre_message(false))
        .await
        .expect_err("wrong password");
    assert!(err.is_permanent(), "{err:?}");
    assert_eq!(err.status().map(u16::from), Some(535), "{err:?}");

    let good = lettre_transport(
        smtp.port,
        Tls::Required(lettre_tls(&ca)),
        Some(("alerts", "s3cret")),
    );
    let err = good
        .send(lettre_message(false))
        .await
        .expect_err("fail-first");
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(err.status().map(u16::from), Some(451), "{err:?}");
    good.send(lettre_message(false)).await.expect("second try");
    let msgs = smtp.wait_for_messages(1, ARRIVAL).await;
    check_lettre_message(&msgs[0]);
    let stages: Vec<_> = smtp
        .rejections()
        .iter()
        .map(|r| (r.stage.clone(), r.code))
        .collect();
    assert!(stages.contains(&("data".to_string(), 451)), "{stages:?}");
    assert!(stages.contains(&("auth".to_string(), 535)), "{stages:?}");

    // A client that does not upgrade (Tls::None) against require_starttls:
    // EHLO offers no AUTH before TLS, so lettre (with credentials) gives up
    // on its own with a client error, before MAIL.
    let plain = lettre_transport(smtp.port, Tls::None, Some(("alerts", "s3cret")));
    let err = plain
        .send(lettre_message(false))
        .await
        .expect_err("needs TLS");
    assert!(err.is_client(), "{err:?}");
    assert!(
        err.to_string()
            .contains("No compatible authentication mechanism"),
        "{err}"
    );
    // And without credentials the server refuses MAIL: 530 (permanent).
    let anon = lettre_transport(smtp.port, Tls::None, None);
    let err = anon
        .send(lettre_message(false))
        .await
        .expect_err("needs TLS");
    assert!(err.is_permanent(), "{err:?}");
    assert_eq!(err.status().map(u16::from), Some(530), "{err:?}");
    assert_eq!(smtp.messages().len(), 1);
}

#[test]
fn mime_helpers() {
    assert_eq!(base64_encode(b""), "");
    assert_eq!(base64_encode(b"f"), "Zg==");
    assert_eq!(base64_encode(b"fo"), "Zm8=");
    assert_eq!(base64_encode(b"foo"), "Zm9v");
    assert_eq!(base64_encode(b"\0u\0p"), "AHUAcA==");
    for s in ["", "f", "fo", "foo", "foob", "fooba", "foobar", "ünïcödé ✓"] {
        assert_eq!(
            base64_decode(&base64_encode(s.as_bytes())).unwrap(),
            s.as_bytes()
        );
    }
    assert_eq!(base64_decode("Zm9v\r\nYmFy").unwrap(), b"foobar");
    assert_eq!(base64_decode("Zm9v!"), None);

    assert_eq!(decode_rfc2047("plain"), "plain");
    assert_eq!(decode_rfc2047("=?UTF-8?B?4pyT?= done"), "✓ done");
    assert_eq!(decode_rfc2047("=?utf-8?q?a_b=3Dc?="), "a b=c");
    // Adjacent words: the whitespace between them goes.
    assert_eq!(decode_rfc2047("=?utf-8?q?a?= =?utf-8?q?b?="), "ab");
    // A character split across two words ("✓" = E2 9C 93).
    assert_eq!(decode_rfc2047("=?utf-8?q?=E2=9C?=\t=?utf-8?q?=93?="), "✓");
    assert_eq!(decode_rfc2047("x =?iso-8859-1?q?caf=E9?= y"), "x café y");
    // Not encoded words: left alone.
    assert_eq!(decode_rfc2047("=?broken"), "=?broken");
    assert_eq!(decode_rfc2047("a =? b ?= c"), "a =? b ?= c");

    assert_eq!(
        smtp::qp_decode(b"caf=C3=A9 soft=\r\nbreak = x=3D", false),
        "café softbreak = x=".as_bytes()
    );
    assert_eq!(
        smtp::split_mailboxes(r#""Doe, Jane" <j@x.org>, b@x.org"#),
        [r#""Doe, Jane" <j@x.org>"#, "b@x.org"]
    );
    let headers = smtp::parse_headers("Subject: a\r\n b\r\n\tc\r\nX-Y:z\r\n");
    assert_eq!(
        headers,
        [
            ("Subject".to_string(), "a b\tc".to_string()),
            ("X-Y".to_string(), "z".to_string())
        ]
    );
}

// ---------------------------------------------------------------------------
// HTTP receiver
// ---------------------------------------------------------------------------

/// reqwest is built with `rustls-no-provider` (the main crate's features),
/// so a client needs a process-wide provider: ring, as everywhere else.
fn install_ring() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn http_client() -> reqwest::Client {
    install_ring();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(IO_LIMIT)
        .build()
        .expect("reqwest client")
}

#[tokio::test]
async fn receiver_scripted_replies_repeat_the_last() {
    let rx = Receiver::start(vec![
        Reply::new(500).body("boom"),
        Reply::new(429).header("Retry-After", "1"),
        Reply::ok(),
    ])
    .await;
    let client = http_client();
    let mut seen = Vec::new();
    for i in 0..5 {
        let resp = client
            .post(rx.url("/hooks/slack?x=1"))
            .header("X-Test", i.to_string())
            .json(&json!({"text": format!("n{i}")}))
            .send()
            .await
            .expect("POST to the receiver");
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        seen.push((status, retry_after, resp.text().await.unwrap()));
    }
    assert_eq!(
        seen,
        [
            (500, None, "boom".to_string()),
            (429, Some("1".to_string()), String::new()),
            (200, None, "ok".to_string()),
            (200, None, "ok".to_string()),
            (200, None, "ok".to_string()),
        ]
    );
    let reqs = rx.wait_for(5, Duration::from_secs(5)).await;
    assert_eq!(reqs.len(), 5);
    for (i, r) in reqs.iter().enumerate() {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/hooks/slack?x=1");
        assert_eq!(r.header("x-test"), Some(i.to_string().as_str()));
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        assert_eq!(r.json(), json!({"text": format!("n{i}")}));
    }
    assert_eq!(
        reqs.iter().map(|r| r.status).collect::<Vec<_>>(),
        [500, 429, 200, 200, 200]
    );
    assert!(reqs.windows(2).all(|w| w[0].at <= w[1].at));

    // Reprogram mid-test; an empty script answers 200 ok.
    rx.set_script(vec![Reply::new(204)]);
    let r = client.get(rx.url("/")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    rx.set_script(Vec::new());
    let r = client.get(rx.url("/other")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(rx.requests().len(), 7);
}

#[tokio::test]
async fn receiver_delay_holds_the_reply() {
    let rx = Receiver::start(vec![Reply::ok().delay(Duration::from_millis(400))]).await;
    install_ring();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let err = client
        .post(rx.url("/slow"))
        .body("x")
        .send()
        .await
        .expect_err("times out");
    assert!(err.is_timeout(), "{err}");
    // Recorded at once, before the delay.
    let reqs = rx.wait_for(1, Duration::from_secs(2)).await;
    assert_eq!(reqs[0].body_str(), "x");
}

// ---------------------------------------------------------------------------
// Slack payload checker
// ---------------------------------------------------------------------------

fn valid_slack() -> serde_json::Value {
    json!({
        "text": "DOWN: shop &amp; cart — tls.expired",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "🔴 shop is DOWN"}},
            {"type": "section", "text": {"type": "mrkdwn",
                "text": "*<https://shop.example.org/?a=1&b=2|shop.example.org>* &lt;tls.expired&gt;"}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": "*Cause*\ntls.expired"},
                {"type": "plain_text", "text": "since 10:00 <UTC> & counting"}
            ]},
            {"type": "divider"},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "sitewatch on host-1"}]}
        ]
    })
}

fn slack_err(v: serde_json::Value) -> String {
    check_slack_payload(&v).expect_err("should be refused")
}

#[test]
fn slack_payload_accepts_valid_shapes() {
    check_slack_payload(&valid_slack()).unwrap();
    check_slack_payload(&json!({"text": "just text"})).unwrap();
    let header150 = "h".repeat(150);
    check_slack_payload(&json!({"text": "t", "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": header150}}
    ]}))
    .unwrap();
}

#[test]
fn slack_payload_refuses_mentions_and_raw_control_chars() {
    for bad in [
        "<!channel> down",
        "<!here>",
        "hey <!everyone>",
        "ping <@U123ABC>",
    ] {
        let mut v = valid_slack();
        v["blocks"][1]["text"]["text"] = json!(bad);
        let e = slack_err(v);
        assert!(e.contains("would notify people"), "{bad}: {e}");
        assert!(
            slack_err(json!({"text": bad})).contains("would notify"),
            "top-level text {bad}"
        );
    }
    let e = slack_err(json!({"text": "a & b"}));
    assert!(e.contains("raw `&`"), "{e}");
    let e = slack_err(json!({"text": "a < b"}));
    assert!(e.contains("raw `<`"), "{e}");
    let e = slack_err(json!({"text": "a > b"}));
    assert!(e.contains("raw `>`"), "{e}");
    let e = slack_err(json!({"text": "<ftp://x|y>"}));
    assert!(e.contains("raw `<`"), "{e}");
    let e = slack_err(json!({"text": "<https://x|a <!here> b>"}));
    assert!(!e.is_empty(), "{e}");
    let e = slack_err(json!({"text": "see <https://x|a & b>"}));
    assert!(e.contains("link label"), "{e}");
}

#[test]
fn slack_payload_refuses_limits_and_shapes() {
    let mut v = valid_slack();
    v["blocks"][0]["text"]["text"] = json!("h".repeat(151));
    let e = slack_err(v);
    assert!(e.contains("151 characters, Slack allows 150"), "{e}");

    let mut v = valid_slack();
    v["blocks"][0]["text"]["type"] = json!("mrkdwn");
    assert!(slack_err(v).contains("plain_text"));

    let mut v = valid_slack();
    v["blocks"][1]["text"]["text"] = json!("s".repeat(3001));
    assert!(slack_err(v).contains("3001 characters, Slack allows 3000"));

    let mut v = valid_slack();
    v["blocks"][2]["fields"] = json!(vec![json!({"type": "mrkdwn", "text": "f"}); 11]);
    assert!(slack_err(v).contains("11 items, Slack allows 10"));

    let mut v = valid_slack();
    v["blocks"][2]["fields"][0]["text"] = json!("f".repeat(2001));
    assert!(slack_err(v).contains("2001 characters, Slack allows 2000"));

    let mut v = valid_slack();
    v["blocks"][4]["elements"] = json!(vec![json!({"type": "plain_text", "text": "c"}); 11]);
    assert!(slack_err(v).contains("11 items, Slack allows 10"));

    assert!(slack_err(json!({"blocks": []})).contains("text: missing"));
    assert!(slack_err(json!({"text": " "})).contains("text: empty"));
    assert!(slack_err(json!({"text": 3})).contains("not a string"));
    assert!(
        slack_err(json!({"text": "t", "blocks": [{"type": "actions", "elements": []}]}))
            .contains("block type \"actions\"")
    );
    assert!(slack_err(json!({"text": "t", "blocks": [{"type": "section"}]})).contains("needs"));
    assert!(slack_err(json!(["not", "an", "object"])).contains("not a JSON object"));
}
