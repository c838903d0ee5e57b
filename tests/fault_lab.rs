//! The fault lab: every cause code of the diagnosis contract produced end to
//! end by `sitewatch check --json`, run as a process inside a network
//! namespace this test creates (only `lo`, no route out). Inside it run real
//! servers: a DNS server, TLS servers with generated certificates, HTTP
//! servers that misbehave in every way, and nftables rules that drop, reset
//! and answer with ICMP. Needs root: skips loudly without it, fails under CI.

mod common;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use common::dns::{Answer, TestDns};
use common::netns::NetNs;
use common::tls::{After, CertKind, TestCa, TlsServer, garbage_server, silent_server};
use serde_json::Value;
use sitewatch::diagnosis::{Cause, Layer};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const WP_DB_ERROR: &str = "<!DOCTYPE html><html><head><title>Database Error</title></head><body><h1>Error establishing a database connection</h1></body></html>";
const WP_CRITICAL: &str = "<!DOCTYPE html><html><body><div class=\"wp-die-message\"><p>There has been a critical error on this website.</p></div></body></html>";
const PHP_FATAL: &str = "<br />\n<b>Fatal error</b>:  Uncaught Error: Call to undefined function wp_head() in /var/www/html/wp-content/themes/x/header.php:12\n";
const PHP_PARSE: &str =
    "PHP Parse error:  syntax error, unexpected '}' in /var/www/html/index.php on line 7\n";
const WP_MAINTENANCE: &str = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Maintenance</title></head><body><h1>Briefly unavailable for scheduled maintenance. Check back in a minute.</h1></body></html>";
const WP_CONFIG_SOURCE: &str = "<?php\n/**\n * The base configuration for WordPress\n */\ndefine( 'DB_NAME', 'wordpress' );\ndefine( 'DB_PASSWORD', 'hunter2' );\n";
const NGINX_DEFAULT: &str = "<!DOCTYPE html><html><head><title>Welcome to nginx!</title></head><body><h1>Welcome to nginx!</h1><p>If you see this page, the nginx web server is successfully installed and working.</p></body></html>";
const CLOUDFRONT_502: &str = "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01 Transitional//EN\"><HTML><HEAD><TITLE>ERROR: The request could not be satisfied</TITLE></HEAD><BODY><H1>502 ERROR</H1><H2>The request could not be satisfied.</H2><HR noshade size=\"1px\">CloudFront wasn't able to connect to the origin.</BODY></HTML>";
const SPA: &str = "<!DOCTYPE html><html><head><script src=\"/app.js\"></script></head><body><div id=\"root\"></div></body></html>";

fn html(status: u16, body: &'static str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
        body,
    )
        .into_response()
}

fn redirect(to: String) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

/// A redirect to `/ok` on `host`, at the port the request came to.
fn to_host(host: &str, headers: &HeaderMap) -> Response {
    let port = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.rsplit(':').next())
        .unwrap_or("80");
    redirect(format!("http://{host}:{port}/ok"))
}

/// The lab's web application: one path per behaviour.
fn app() -> Router {
    Router::new()
        .route(
            "/ok",
            get(|| async { html(200, "<html><body>all systems go</body></html>") }),
        )
        .route(
            "/status/{code}",
            get(|Path(code): Path<u16>| async move {
                html(code, "<html><body>status page</body></html>")
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                html(200, "<html><body>slow but fine</body></html>")
            }),
        )
        .route("/wp-db", get(|| async { html(200, WP_DB_ERROR) }))
        .route("/wp-critical", get(|| async { html(200, WP_CRITICAL) }))
        .route("/php-fatal", get(|| async { html(200, PHP_FATAL) }))
        .route(
            "/php-parse",
            get(|| async { (StatusCode::OK, PHP_PARSE).into_response() }),
        )
        .route("/blank", get(|| async { html(200, "") }))
        .route(
            "/blank-body",
            get(|| async {
                html(
                    200,
                    "<html><head><title>x</title></head><body>\n  \n</body></html>",
                )
            }),
        )
        .route("/spa", get(|| async { html(200, SPA) }))
        // WordPress and the web server, broken in the ways they break.
        .route(
            "/wp-maintenance",
            get(|| async {
                let mut r = html(503, WP_MAINTENANCE);
                r.headers_mut()
                    .insert(header::RETRY_AFTER, "600".parse().unwrap());
                r
            }),
        )
        .route(
            "/maintenance-plugin",
            get(|| async {
                html(
                    503,
                    "<html><body><h1>This site is under maintenance</h1></body></html>",
                )
            }),
        )
        .route(
            "/busy",
            get(|| async {
                let mut r = html(503, "<html><body>busy</body></html>");
                r.headers_mut()
                    .insert(header::RETRY_AFTER, "30".parse().unwrap());
                r
            }),
        )
        .route(
            "/wp-config.php",
            get(|| async {
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/x-httpd-php")],
                    WP_CONFIG_SOURCE,
                )
                    .into_response()
            }),
        )
        .route(
            "/wp-emptied",
            get(|| async { redirect("/wp-admin/install.php".into()) }),
        )
        .route("/nginx-default", get(|| async { html(200, NGINX_DEFAULT) }))
        .route(
            "/apache-default",
            get(|| async { html(200, "<html><body><h1>It works!</h1></body></html>") }),
        )
        .route(
            "/cdn-502",
            get(|| async {
                let mut r = html(502, CLOUDFRONT_502);
                r.headers_mut().insert(
                    "via",
                    "1.1 3f2a.cloudfront.net (CloudFront)".parse().unwrap(),
                );
                r.headers_mut()
                    .insert("x-amz-cf-pop", "FRA56-P1".parse().unwrap());
                r
            }),
        )
        .route(
            "/stall",
            get(|| async {
                use futures_util::StreamExt;
                let first = futures_util::stream::once(async {
                    Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'a'; 212]))
                });
                let body =
                    axum::body::Body::from_stream(first.chain(futures_util::stream::pending()));
                (StatusCode::OK, [(header::CONTENT_TYPE, "text/html")], body).into_response()
            }),
        )
        .route(
            "/no-head",
            any(|method: axum::http::Method| async move {
                if method == axum::http::Method::HEAD {
                    StatusCode::METHOD_NOT_ALLOWED.into_response()
                } else {
                    html(200, "<html><body>GET only</body></html>")
                }
            }),
        )
        .route(
            "/to-other",
            get(|headers: HeaderMap| async move { to_host("www.other.test", &headers) }),
        )
        .route(
            "/hops/{n}",
            get(|Path(n): Path<u32>| async move {
                if n == 0 {
                    html(200, "<html><body>arrived</body></html>")
                } else {
                    redirect(format!("/hops/{}", n - 1))
                }
            }),
        )
        .route("/loop-a", get(|| async { redirect("/loop-b".into()) }))
        .route("/loop-b", get(|| async { redirect("/loop-a".into()) }))
        .route(
            "/to-www",
            get(|headers: HeaderMap| async move { to_host("www.lab.test", &headers) }),
        )
        .route(
            "/ua",
            get(|headers: HeaderMap| async move {
                let ua = headers
                    .get(header::USER_AGENT)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let probe = headers
                    .get("x-probe")
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                (
                    StatusCode::OK,
                    format!("<html><body>ua={ua} x-probe={probe}</body></html>"),
                )
                    .into_response()
            }),
        )
}

/// What the lab's CDN edge stands in front of.
#[derive(Clone)]
enum Origin {
    /// A plain HTTP origin at this address.
    Tcp(SocketAddr),
    /// An HTTPS origin, verified against the lab's CA as www.lab.test.
    Tls(SocketAddr, std::sync::Arc<rustls::ClientConfig>),
}

/// A page the way Cloudflare's edge answers for an origin it cannot use.
fn cloudflare(status: u16, title: &str) -> Response {
    let body = format!(
        "<!DOCTYPE html><html><head><title>www.lab.test | {status}: {title}</title></head><body><h1>{title}</h1><span>Error code {status}</span><p>Cloudflare Ray ID: 8c1f2a3b4c5d6e7f</p></body></html>"
    );
    (
        StatusCode::from_u16(status).unwrap(),
        [
            (header::CONTENT_TYPE, "text/html; charset=UTF-8"),
            (header::SERVER, "cloudflare"),
            (
                header::HeaderName::from_static("cf-ray"),
                "8c1f2a3b4c5d6e7f-AMS",
            ),
        ],
        body,
    )
        .into_response()
}

/// The edge's answer: it really connects to the origin (and, for HTTPS,
/// really verifies its certificate), as a CDN does.
async fn through_edge(origin: Origin) -> Response {
    let wait = Duration::from_millis(500);
    let addr = match &origin {
        Origin::Tcp(a) | Origin::Tls(a, _) => *a,
    };
    let tcp = match tokio::time::timeout(wait, tokio::net::TcpStream::connect(addr)).await {
        Err(_) => return cloudflare(522, "Connection timed out"),
        Ok(Err(_)) => return cloudflare(521, "Web server is down"),
        Ok(Ok(tcp)) => tcp,
    };
    if let Origin::Tls(_, config) = origin {
        let connector = tokio_rustls::TlsConnector::from(config);
        let name = rustls::pki_types::ServerName::try_from("www.lab.test").unwrap();
        match tokio::time::timeout(wait, connector.connect(name, tcp)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e))
                if common::tls::rustls_error(&e)
                    .is_some_and(|r| matches!(r, rustls::Error::InvalidCertificate(_))) =>
            {
                return cloudflare(526, "Invalid SSL certificate");
            }
            _ => return cloudflare(525, "SSL handshake failed"),
        }
    }
    let mut ok = html(200, "<html><body>served through the edge</body></html>");
    ok.headers_mut()
        .insert(header::SERVER, "cloudflare".parse().unwrap());
    ok
}

/// The lab's CDN edge: one path per state of the origin behind it.
fn edge(origins: Vec<(&'static str, Origin)>) -> Router {
    let mut router = Router::new();
    for (path, origin) in origins {
        router = router.route(path, get(move || through_edge(origin.clone())));
    }
    router
}

/// A TCP server that runs `behave` on every connection.
async fn raw(
    bind: &str,
    behave: fn(tokio::net::TcpStream) -> JoinHandle<()>,
) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            behave(s);
        }
    });
    (addr, task)
}

fn hang(mut s: tokio::net::TcpStream) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
}

fn close_at_once(s: tokio::net::TcpStream) -> JoinHandle<()> {
    tokio::spawn(async move {
        drop(s);
    })
}

fn speak_ssh(mut s: tokio::net::TcpStream) -> JoinHandle<()> {
    tokio::spawn(async move {
        let _ = s.write_all(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n").await;
        let mut buf = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
    })
}

fn smtp_ok(mut s: tokio::net::TcpStream) -> JoinHandle<()> {
    tokio::spawn(async move {
        let _ = s.write_all(b"220 mail.lab.test ESMTP ready\r\n").await;
        let mut buf = [0u8; 256];
        let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
    })
}

fn smtp_refusing(mut s: tokio::net::TcpStream) -> JoinHandle<()> {
    tokio::spawn(async move {
        let _ = s
            .write_all(b"554 mail.lab.test no service for you\r\n")
            .await;
        let mut buf = [0u8; 256];
        let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
    })
}

/// Where the lab's servers listen.
struct Lab {
    dns: SocketAddr,
    web: u16,
    ca_file: String,
    tls: Vec<(&'static str, u16)>,
    hang: SocketAddr,
    close: SocketAddr,
    ssh: SocketAddr,
    smtp: SocketAddr,
    smtp_refusing: SocketAddr,
    tls_garbage: SocketAddr,
    tls_silent: SocketAddr,
    edge: u16,
}

impl Lab {
    fn tls_port(&self, name: &str) -> u16 {
        self.tls.iter().find(|(n, _)| *n == name).unwrap().1
    }
}

async fn start_lab(dir: std::path::PathBuf) -> (Lab, Box<dyn std::any::Any>) {
    let dns = TestDns::start().await;
    let lo =
        |s: &str| -> Vec<std::net::IpAddr> { s.split(',').map(|a| a.parse().unwrap()).collect() };
    dns.set("www.lab.test", Answer::Addrs(lo("127.0.0.1")));
    dns.set("www.other.test", Answer::Addrs(lo("127.0.0.1")));
    dns.set("alias.lab.test", Answer::Cname("www.lab.test".into()));
    dns.set(
        "dangling.lab.test",
        Answer::Cname("missing.lab.test".into()),
    );
    dns.set("gone.lab.test", Answer::NxDomain);
    dns.set("noaddr.lab.test", Answer::NoData);
    dns.set("servfail.lab.test", Answer::ServFail);
    dns.set("refused.lab.test", Answer::Refused);
    dns.set("silent.lab.test", Answer::Silent);
    // IPv6 published but nothing listens on it: some visitors fail.
    dns.set("dual.lab.test", Answer::Addrs(lo("127.0.0.1,::1")));
    // Round robin with a dead backend (firewall drops 127.0.0.3).
    dns.set("rr.lab.test", Answer::Addrs(lo("127.0.0.1,127.0.0.3")));
    // An IPv6 address this namespace has no route to: skipped, not counted.
    dns.set(
        "norout6.lab.test",
        Answer::Addrs(lo("127.0.0.1,2001:db8::1")),
    );
    // Every address dead, in different ways.
    dns.set(
        "alldead.lab.test",
        Answer::Addrs(lo("127.0.0.3,127.0.0.4,127.0.0.2")),
    );

    let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let web = listener.local_addr().unwrap().port();
    let listener6 = TcpListener::bind("127.0.0.1:0").await;
    drop(listener6);
    let web_task = tokio::spawn(async move {
        let _ = axum::serve(listener, app()).await;
    });

    let ca = TestCa::new();
    let ca_file = ca.write_root(&dir).to_str().unwrap().to_string();
    let names = ["www.lab.test", "127.0.0.1"];
    let ok = After::Http {
        status: 200,
        body: "<html><body>secure</body></html>".into(),
    };
    let mut tls_servers = Vec::new();
    let mut tls = Vec::new();
    for (label, kind, names) in [
        ("valid", CertKind::Valid, &names[..]),
        ("expired", CertKind::Expired, &names[..]),
        ("not-yet-valid", CertKind::NotYetValid, &names[..]),
        ("wrong-name", CertKind::Valid, &["other.lab.test"][..]),
        ("self-signed", CertKind::SelfSigned, &names[..]),
        ("no-intermediate", CertKind::MissingIntermediate, &names[..]),
        ("expiring", CertKind::ExpiresInDays(5), &names[..]),
        ("to-plain-http", CertKind::Valid, &names[..]),
    ] {
        let after = if label == "to-plain-http" {
            After::Redirect {
                location: format!("http://www.lab.test:{web}/ok"),
            }
        } else {
            ok.clone()
        };
        let server = TlsServer::start(&ca.leaf(kind, names), after).await;
        tls.push((label, server.port()));
        tls_servers.push(server);
    }
    let (tls_garbage, g) = garbage_server().await;
    let (tls_silent, s) = silent_server().await;
    let (hang, h1) = raw("127.0.0.1:0", hang).await;
    let (close, h2) = raw("127.0.0.1:0", close_at_once).await;
    let (ssh, h3) = raw("127.0.0.1:0", speak_ssh).await;
    let (smtp, h4) = raw("127.0.0.1:0", smtp_ok).await;
    let (smtp_refusing, h5) = raw("127.0.0.1:0", smtp_refusing).await;
    let tls_port = |name: &str| tls.iter().find(|(n, _)| *n == name).unwrap().1;
    let verified = std::sync::Arc::new(ca.client_config());
    let origins = vec![
        ("/up", Origin::Tcp(SocketAddr::from(([127, 0, 0, 1], web)))),
        ("/stopped", Origin::Tcp("127.0.0.1:1".parse().unwrap())),
        ("/dropped", Origin::Tcp("127.0.0.3:80".parse().unwrap())),
        (
            "/tls-valid",
            Origin::Tls(
                SocketAddr::from(([127, 0, 0, 1], tls_port("valid"))),
                verified.clone(),
            ),
        ),
        (
            "/tls-expired",
            Origin::Tls(
                SocketAddr::from(([127, 0, 0, 1], tls_port("expired"))),
                verified.clone(),
            ),
        ),
        ("/tls-garbage", Origin::Tls(tls_garbage, verified)),
    ];
    let edge_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let edge_port = edge_listener.local_addr().unwrap().port();
    let edge_task = tokio::spawn(async move {
        let _ = axum::serve(edge_listener, edge(origins)).await;
    });
    let lab = Lab {
        dns: dns.addr,
        web,
        ca_file,
        tls,
        hang,
        close,
        ssh,
        smtp,
        smtp_refusing,
        tls_garbage,
        tls_silent,
        edge: edge_port,
    };
    (
        lab,
        Box::new((
            dns,
            web_task,
            tls_servers,
            g,
            s,
            h1,
            h2,
            h3,
            h4,
            h5,
            ca,
            edge_task,
        )),
    )
}

/// One scenario: what to check, and the code it must give (None: up).
struct Case {
    what: &'static str,
    url: String,
    args: Vec<String>,
    want: Option<Cause>,
    detail_has: &'static str,
}

fn case(
    what: &'static str,
    url: String,
    args: &[&str],
    want: Option<Cause>,
    detail_has: &'static str,
) -> Case {
    Case {
        what,
        url,
        args: args.iter().map(|s| s.to_string()).collect(),
        want,
        detail_has,
    }
}

fn scenarios(lab: &Lab) -> Vec<Case> {
    use Cause::*;
    let w = lab.web;
    let web = |path: &str| format!("http://www.lab.test:{w}{path}");
    let tls = |name: &str| format!("https://www.lab.test:{}/", lab.tls_port(name));
    let edge = |path: &str| format!("http://www.lab.test:{}{path}", lab.edge);
    vec![
        // DNS
        case("a name that resolves", web("/ok"), &[], None, "HTTP 200"),
        case(
            "a CNAME chain",
            format!("http://alias.lab.test:{w}/ok"),
            &[],
            None,
            "127.0.0.1",
        ),
        case(
            "NXDOMAIN",
            format!("http://gone.lab.test:{w}/"),
            &[],
            Some(DnsNxdomain),
            "NXDOMAIN",
        ),
        case(
            "a dangling CNAME is NXDOMAIN",
            format!("http://dangling.lab.test:{w}/"),
            &[],
            Some(DnsNxdomain),
            "NXDOMAIN",
        ),
        case(
            "NODATA",
            format!("http://noaddr.lab.test:{w}/"),
            &[],
            Some(DnsNoAddress),
            "no A or AAAA",
        ),
        case(
            "SERVFAIL",
            format!("http://servfail.lab.test:{w}/"),
            &[],
            Some(DnsServfail),
            "SERVFAIL",
        ),
        case(
            "REFUSED",
            format!("http://refused.lab.test:{w}/"),
            &[],
            Some(DnsError),
            "Refused",
        ),
        case(
            "a resolver that never answers",
            format!("http://silent.lab.test:{w}/"),
            &["--timeout", "1s"],
            Some(DnsTimeout),
            "no DNS answer",
        ),
        case(
            "DNS points at the wrong server",
            web("/ok"),
            &["--expect-ip", "203.0.113.7"],
            Some(DnsUnexpectedAddress),
            "resolves to 127.0.0.1, none of the expected 203.0.113.7",
        ),
        case(
            "DNS points at the expected server",
            web("/ok"),
            &["--expect-ip", "127.0.0.1"],
            None,
            "",
        ),
        // TCP
        case(
            "nothing listens",
            "tcp://127.0.0.1:1".into(),
            &[],
            Some(TcpRefused),
            "refused",
        ),
        case(
            "a firewall resets",
            "tcp://127.0.0.2:80".into(),
            &[],
            Some(TcpRefused),
            "refused",
        ),
        case(
            "a firewall drops",
            "tcp://127.0.0.3:80".into(),
            &["--timeout", "1s"],
            Some(TcpTimeout),
            "did not answer",
        ),
        case(
            "ICMP host-unreachable",
            "tcp://127.0.0.4:80".into(),
            &[],
            Some(TcpUnreachable),
            "unreachable",
        ),
        case(
            "ICMP admin-prohibited",
            "tcp://127.0.0.5:80".into(),
            &[],
            Some(TcpUnreachable),
            "unreachable",
        ),
        case(
            "no route",
            "tcp://10.255.0.1:80".into(),
            &[],
            Some(TcpUnreachable),
            "Network is unreachable",
        ),
        case(
            "IPv6 published but refusing",
            format!("http://dual.lab.test:{w}/ok"),
            &[],
            Some(TcpPartial),
            "[::1]",
        ),
        case(
            "a dead round-robin backend",
            format!("http://rr.lab.test:{w}/ok"),
            &["--timeout", "1s"],
            Some(TcpPartial),
            "127.0.0.3",
        ),
        case(
            "browser semantics ignore the dead backend",
            format!("http://rr.lab.test:{w}/ok"),
            &["--addresses", "any"],
            None,
            "",
        ),
        case(
            "an unroutable family is skipped",
            format!("http://norout6.lab.test:{w}/ok"),
            &[],
            None,
            "skipped 2001:db8::1",
        ),
        case(
            "every address dead: the best explanation wins",
            "tcp://alldead.lab.test:80".into(),
            &["--timeout", "1s"],
            Some(TcpRefused),
            "every address failed",
        ),
        case(
            "the banner is right",
            format!("tcp://{}", lab.smtp),
            &["--expect-banner", "220"],
            None,
            "220 mail.lab.test",
        ),
        case(
            "the banner is wrong",
            format!("tcp://{}", lab.smtp_refusing),
            &["--expect-banner", "220"],
            Some(TcpBanner),
            "554",
        ),
        // TLS
        case(
            "a valid certificate",
            tls("valid"),
            &["--ca-file", &lab.ca_file],
            None,
            "HTTP 200",
        ),
        case(
            "the handshake hangs",
            format!("https://127.0.0.1:{}/", lab.tls_silent.port()),
            &["--timeout", "1s"],
            Some(TlsTimeout),
            "did not finish",
        ),
        case(
            "not TLS at all",
            format!("https://127.0.0.1:{}/", lab.tls_garbage.port()),
            &[],
            Some(TlsHandshake),
            "handshake",
        ),
        case(
            "expired",
            tls("expired"),
            &["--ca-file", &lab.ca_file],
            Some(TlsExpired),
            "expired on",
        ),
        case(
            "not yet valid",
            tls("not-yet-valid"),
            &["--ca-file", &lab.ca_file],
            Some(TlsNotYetValid),
            "valid only from",
        ),
        case(
            "wrong name",
            tls("wrong-name"),
            &["--ca-file", &lab.ca_file],
            Some(TlsHostname),
            "other.lab.test",
        ),
        case(
            "self-signed",
            tls("self-signed"),
            &["--ca-file", &lab.ca_file],
            Some(TlsUntrusted),
            "self-signed",
        ),
        case(
            "missing intermediate",
            tls("no-intermediate"),
            &["--ca-file", &lab.ca_file],
            Some(TlsUntrusted),
            "not trusted",
        ),
        case(
            "unknown CA (no ca_file)",
            tls("valid"),
            &[],
            Some(TlsUntrusted),
            "not trusted",
        ),
        case(
            "expires in 5 days",
            tls("expiring"),
            &["--ca-file", &lab.ca_file],
            Some(TlsExpiring),
            "expires in",
        ),
        case(
            "expires in 5 days, warning at 3",
            tls("expiring"),
            &["--ca-file", &lab.ca_file, "--cert-warn-days", "3"],
            None,
            "",
        ),
        // HTTP
        case(
            "the server hangs",
            format!("http://{}/", lab.hang),
            &["--timeout", "1s"],
            Some(HttpTimeout),
            "no complete response",
        ),
        case(
            "the server closes at once",
            format!("http://{}/", lab.close),
            &[],
            Some(HttpEmpty),
            "",
        ),
        case(
            "the server speaks SSH",
            format!("http://{}/", lab.ssh),
            &[],
            Some(HttpProtocol),
            "",
        ),
        case("502", web("/status/502"), &[], Some(HttpBadGateway), "502"),
        case("503", web("/status/503"), &[], Some(HttpUnavailable), "503"),
        case(
            "504",
            web("/status/504"),
            &[],
            Some(HttpGatewayTimeout),
            "504",
        ),
        case("403", web("/status/403"), &[], Some(HttpBlocked), "403"),
        case("429", web("/status/429"), &[], Some(HttpBlocked), "429"),
        case("404", web("/status/404"), &[], Some(HttpStatus), "404"),
        case("500", web("/status/500"), &[], Some(HttpStatus), "500"),
        case(
            "expected 404",
            web("/status/404"),
            &["--expect-status", "404"],
            None,
            "",
        ),
        case(
            "a redirect loop",
            web("/loop-a"),
            &[],
            Some(HttpRedirects),
            "redirect loop",
        ),
        case(
            "too many redirects",
            web("/hops/7"),
            &[],
            Some(HttpRedirects),
            "more than 5 redirects",
        ),
        case(
            "redirects followed",
            web("/hops/3"),
            &[],
            None,
            "after 3 redirects",
        ),
        case(
            "a redirect to another host is walked again",
            web("/to-www"),
            &[],
            None,
            "after 1 redirect",
        ),
        case(
            "redirects not followed",
            web("/hops/3"),
            &["--max-redirects", "0"],
            None,
            "HTTP 302",
        ),
        case(
            "the expected text is missing",
            web("/ok"),
            &["--expect-body", "welcome"],
            Some(HttpContent),
            "lacks \"welcome\"",
        ),
        case(
            "the forbidden text is present",
            web("/ok"),
            &["--forbid-body", "systems go"],
            Some(HttpContent),
            "forbidden",
        ),
        case(
            "the expected text is there",
            web("/ok"),
            &["--expect-body", "systems go"],
            None,
            "",
        ),
        case(
            "WordPress database error",
            web("/wp-db"),
            &[],
            Some(HttpAppError),
            "database",
        ),
        case(
            "WordPress critical error",
            web("/wp-critical"),
            &[],
            Some(HttpAppError),
            "critical error",
        ),
        case(
            "PHP fatal error",
            web("/php-fatal"),
            &[],
            Some(HttpAppError),
            "PHP fatal error",
        ),
        case(
            "PHP parse error",
            web("/php-parse"),
            &[],
            Some(HttpAppError),
            "PHP parse error",
        ),
        case(
            "a blank page",
            web("/blank"),
            &[],
            Some(HttpAppError),
            "blank page",
        ),
        case(
            "an HTML page with an empty body",
            web("/blank-body"),
            &[],
            Some(HttpAppError),
            "blank page",
        ),
        case(
            "a script-rendered page is not blank",
            web("/spa"),
            &[],
            None,
            "",
        ),
        case(
            "application errors can be ignored",
            web("/wp-db"),
            &["--no-app-errors"],
            None,
            "",
        ),
        case(
            "a deeper failure beats the body check",
            web("/status/503"),
            &["--expect-body", "x"],
            Some(HttpUnavailable),
            "",
        ),
        case(
            "slow",
            web("/slow"),
            &["--slow", "100ms"],
            Some(HttpSlow),
            "slower than 100 ms",
        ),
        case("HEAD", web("/ok"), &["--method", "HEAD"], None, ""),
        case(
            "headers and User-Agent are sent",
            web("/ua"),
            &["--header", "X-Probe: lab", "--expect-body", "x-probe=lab"],
            None,
            "",
        ),
        case(
            "User-Agent names sitewatch",
            web("/ua"),
            &["--expect-body", "ua=sitewatch/"],
            None,
            "",
        ),
        // A CDN in front of an origin.
        case(
            "the edge reaches the origin",
            edge("/up"),
            &[],
            None,
            "HTTP 200",
        ),
        case(
            "the origin refuses the edge",
            edge("/stopped"),
            &[],
            Some(HttpOriginDown),
            "Cloudflare (CF-Ray 8c1f2a3b4c5d6e7f-AMS) says the origin refused the connection",
        ),
        case(
            "the origin drops the edge's packets",
            edge("/dropped"),
            &[],
            Some(HttpOriginDown),
            "the connection to the origin timed out (522)",
        ),
        case(
            "the origin's certificate has expired",
            edge("/tls-expired"),
            &[],
            Some(HttpOriginTls),
            "the origin's certificate is not valid (526)",
        ),
        case(
            "the origin does not speak TLS",
            edge("/tls-garbage"),
            &[],
            Some(HttpOriginTls),
            "the TLS handshake with the origin failed (525)",
        ),
        case(
            "the edge reaches a valid HTTPS origin",
            edge("/tls-valid"),
            &[],
            None,
            "",
        ),
        case(
            "a CDN page that says it cannot reach the origin",
            web("/cdn-502"),
            &[],
            Some(HttpOriginDown),
            "CloudFront (FRA56-P1) cannot reach the origin",
        ),
        // The application says it is down while answering.
        case(
            "WordPress stuck in maintenance",
            web("/wp-maintenance"),
            &[],
            Some(HttpMaintenance),
            "Retry-After: 600 s (10 min)",
        ),
        case(
            "a maintenance page",
            web("/maintenance-plugin"),
            &[],
            Some(HttpMaintenance),
            "under maintenance",
        ),
        case(
            "a 503 names its Retry-After",
            web("/busy"),
            &[],
            Some(HttpUnavailable),
            "Retry-After: 30 s",
        ),
        case(
            "PHP source served as text",
            web("/wp-config.php"),
            &[],
            Some(HttpPhpSource),
            "PHP source code",
        ),
        case(
            "WordPress sends visitors to its installer",
            web("/wp-emptied"),
            &[],
            Some(HttpAppError),
            "WordPress's installer",
        ),
        case(
            "nginx's default page",
            web("/nginx-default"),
            &[],
            Some(HttpAppError),
            "Welcome to nginx!",
        ),
        case(
            "Apache's default page",
            web("/apache-default"),
            &[],
            Some(HttpAppError),
            "It works!",
        ),
        // Redirects that lead somewhere else.
        case(
            "https redirects to plain http",
            tls("to-plain-http"),
            &["--ca-file", &lab.ca_file],
            Some(HttpInsecureRedirect),
            "leaves https",
        ),
        case(
            "a redirect to another domain",
            web("/to-other"),
            &[],
            Some(HttpOffsiteRedirect),
            "another domain: www.lab.test → www.other.test",
        ),
        case(
            "a redirect to an allowed domain",
            web("/to-other"),
            &["--allow-redirect-to", "www.other.test"],
            None,
            "after 1 redirect",
        ),
        case(
            "a redirect to an allowed wildcard",
            web("/to-other"),
            &["--allow-redirect-to", "*.other.test"],
            None,
            "after 1 redirect",
        ),
        // Words that match what happened.
        case(
            "the body stalls after the head",
            web("/stall"),
            &["--timeout", "1s"],
            Some(HttpTimeout),
            "then the body stalled after 212 bytes",
        ),
        case(
            "HEAD refused, GET works",
            web("/no-head"),
            &["--method", "HEAD"],
            None,
            "HEAD was refused (405), so GET was used",
        ),
    ]
}

fn run_check(ns: &NetNs, lab: &Lab, c: &Case) -> (i32, Value) {
    let resolver = lab.dns.to_string();
    let mut cmd = ns.command(env!("CARGO_BIN_EXE_sitewatch"));
    cmd.args(["check", &c.url, "--json", "--resolver", &resolver]);
    if !c.args.iter().any(|a| a == "--timeout") {
        cmd.args(["--timeout", "3s"]);
    }
    cmd.args(&c.args);
    let out = cmd.output().unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: not JSON ({e}): {}{}",
            c.what,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

fn lab_namespace(test: &str) -> Option<NetNs> {
    let ns = NetNs::new(test)?;
    ns.nft(
        "table inet lab {
            chain out {
                type filter hook output priority 0;
                ip daddr 127.0.0.2 tcp dport 80 reject with tcp reset
                ip daddr 127.0.0.3 drop
                ip daddr 127.0.0.4 tcp dport 80 reject with icmp type host-unreachable
                ip daddr 127.0.0.5 tcp dport 80 reject with icmp type admin-prohibited
            }
        }",
    );
    Some(ns)
}

#[test]
fn every_cause_end_to_end() {
    let Some(ns) = lab_namespace("every_cause_end_to_end") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().to_path_buf();
    let served = ns.serve(move || start_lab(dir_path));
    let lab = &served.info;
    let cases = scenarios(lab);

    // The table covers the whole contract: a code without a scenario fails here.
    let covered: BTreeSet<&str> = cases
        .iter()
        .filter_map(|c| c.want.map(Cause::as_str))
        .collect();
    // A vantage-layer cause comes from a vote between several daemons, not
    // from one probe: tests/vantages.rs covers it end to end. Heartbeat
    // causes come from a job's pings, not from a probe: tests/heartbeats.rs
    // covers each of them end to end. A site-layer cause comes from many
    // probes of a running daemon (tests/intermittent.rs), and a domain-layer
    // cause from the registry (tests/domain_expiry.rs).
    let all: BTreeSet<&str> = Cause::ALL
        .iter()
        .filter(|c| {
            !matches!(
                c.layer(),
                Layer::Vantage | Layer::Heartbeat | Layer::Site | Layer::Domain
            )
        })
        .map(|c| c.as_str())
        .collect();
    let missing: Vec<_> = all.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "cause codes with no end-to-end scenario: {missing:?}"
    );

    let mut failures = Vec::new();
    for c in &cases {
        let (code, j) = run_check(&ns, lab, c);
        let want_code = c.want.map_or(0, |w| w.status().nagios_code());
        let got_cause = j["cause"].as_str();
        let detail = j["detail"].as_str().unwrap_or_default();
        let hint = j["hint"].as_str();
        let ok = code == want_code
            && got_cause == c.want.map(Cause::as_str)
            && detail.contains(c.detail_has)
            && hint.is_some() == c.want.is_some()
            && !j["layers"].as_array().unwrap().is_empty();
        if !ok {
            failures.push(format!(
                "{}: {} {:?}\n  want {:?} (exit {want_code}, detail containing {:?})\n  got  {got_cause:?} (exit {code}): {detail}",
                c.what, c.url, c.args, c.want.map(Cause::as_str), c.detail_has
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn evidence_timings_and_certificate_facts() {
    let Some(ns) = lab_namespace("evidence_timings_and_certificate_facts") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().to_path_buf();
    let served = ns.serve(move || start_lab(dir_path));
    let lab = &served.info;

    let url = format!("https://www.lab.test:{}/", lab.tls_port("valid"));
    let c = case("valid", url, &["--ca-file", &lab.ca_file], None, "");
    let (code, j) = run_check(&ns, lab, &c);
    assert_eq!(code, 0, "{j}");
    let layers: Vec<&str> = j["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["layer"].as_str().unwrap())
        .collect();
    assert_eq!(layers, ["dns", "tcp", "tls", "http"]);
    for l in j["layers"].as_array().unwrap() {
        assert!(l["ms"].as_f64().unwrap() > 0.0 && l["ok"] == true, "{l}");
    }
    let tls_detail = j["layers"][2]["detail"].as_str().unwrap();
    assert!(
        tls_detail.contains("www.lab.test") && tls_detail.contains("expires"),
        "{tls_detail}"
    );
    assert!(j["cert"]["days_left"].as_i64().unwrap() > 300, "{j}");
    assert!(
        j["cert"]["names"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "www.lab.test"),
        "{j}"
    );
    assert!(j["cert"]["issuer"].as_str().unwrap().contains("CN="), "{j}");

    // Nagios perfdata carries every layer and the certificate's days.
    let out = ns
        .command(env!("CARGO_BIN_EXE_sitewatch"))
        .args([
            "check",
            &c.url,
            "--format",
            "nagios",
            "--resolver",
            &lab.dns.to_string(),
            "--ca-file",
            &lab.ca_file,
        ])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout);
    let perf = line.split_once(" | ").unwrap().1.trim();
    for label in ["time=", "dns=", "connect=", "tls=", "ttfb=", "cert_days="] {
        assert!(perf.contains(label), "{label} missing in {perf}");
    }

    // The expired certificate's detail names the date and the issuer.
    let url = format!("https://www.lab.test:{}/", lab.tls_port("expired"));
    let (_, j) = run_check(
        &ns,
        lab,
        &case("expired", url, &["--ca-file", &lab.ca_file], None, ""),
    );
    assert!(j["cert"]["days_left"].as_i64().unwrap() < 0, "{j}");
    assert!(
        j["detail"].as_str().unwrap().contains("ago); issuer"),
        "{j}"
    );

    // A blocked monitor is told which address to allowlist.
    let url = format!("http://www.lab.test:{}/status/403", lab.web);
    let (_, j) = run_check(&ns, lab, &case("blocked", url, &[], None, ""));
    assert!(
        j["hint"].as_str().unwrap().contains("allowlist")
            && j["hint"].as_str().unwrap().contains("127.0.0.1"),
        "{j}"
    );
}

#[test]
fn each_face_of_a_cause_has_its_own_first_check() {
    let Some(ns) = lab_namespace("each_face_of_a_cause_has_its_own_first_check") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().to_path_buf();
    let served = ns.serve(move || start_lab(dir_path));
    let lab = &served.info;
    let web = |path: &str| format!("http://www.lab.test:{}{path}", lab.web);
    let table: &[(&str, &[&str], &str)] = &[
        ("/wp-maintenance", &[], "delete `.maintenance`"),
        ("/wp-emptied", &[], "anyone who opens the installer"),
        ("/nginx-default", &[], "virtual host is not served"),
        ("/wp-db", &[], "cannot reach its database"),
        ("/php-fatal", &[], "file and line"),
        ("/blank", &[], "white screen"),
        ("/stall", &["--timeout", "1s"], "the body stopped coming"),
        ("/wp-config.php", &[], "wp-config.php"),
    ];
    let mut wrong = Vec::new();
    for (path, args, want) in table {
        let (_, j) = run_check(&ns, lab, &case("sign", web(path), args, None, ""));
        let hint = j["hint"].as_str().unwrap_or_default();
        if !hint.contains(want) {
            wrong.push(format!("{path}: hint lacks {want:?}: {hint}"));
        }
    }
    // A plain timeout keeps the words of a server that sent nothing.
    let (_, j) = run_check(
        &ns,
        lab,
        &case(
            "hang",
            format!("http://{}/", lab.hang),
            &["--timeout", "1s"],
            None,
            "",
        ),
    );
    let hint = j["hint"].as_str().unwrap_or_default();
    if !hint.contains("sent no response in time") {
        wrong.push(format!("a server that hangs: {hint}"));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
