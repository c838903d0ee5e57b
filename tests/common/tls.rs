//! TLS test fixture: a throw-away PKI (root CA -> intermediate CA -> leaf)
//! generated with rcgen, real TLS servers on 127.0.0.1 built with
//! tokio-rustls (ring provider only), and plain-TCP servers that break TLS
//! on purpose.
//!
//! Everything listens on `127.0.0.1:0`; nothing talks to the network.
//!
//! Not every test binary uses every helper, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Upper bound on how long any fixture connection task lives.
const CONN_LIFETIME: Duration = Duration::from_secs(30);
/// How long a server waits for the peer (handshake, request head, peer close).
const PEER_WAIT: Duration = Duration::from_secs(10);

/// The ring crypto provider, shared by every config the fixture builds.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// `SystemTime::now()` truncated to whole seconds (X.509 times have second
/// precision, so `ServerCert::not_after` is exactly what is in the cert).
fn now_secs() -> SystemTime {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock before 1970")
        .as_secs();
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// `now + days` (negative `days` go into the past).
fn days_from(now: SystemTime, days: i64) -> SystemTime {
    let d = DAY * u32::try_from(days.unsigned_abs()).expect("day count too large");
    if days >= 0 { now + d } else { now - d }
}

/// Which kind of leaf certificate to issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    /// Issued by the intermediate, valid from yesterday for ~1 year.
    Valid,
    /// notBefore 30 days ago, notAfter 10 days ago.
    Expired,
    /// notBefore 10 days in the future.
    NotYetValid,
    /// Valid since yesterday, notAfter `now + N days` (N may be 0 or negative).
    ExpiresInDays(i64),
    /// Self-signed leaf (not from the CA); chain is just the leaf.
    SelfSigned,
    /// Valid leaf from the intermediate, but the server sends only the leaf.
    MissingIntermediate,
}

/// A leaf certificate plus key, ready to be served.
#[derive(Debug)]
pub struct ServerCert {
    /// The chain the server sends, PEM, leaf first (leaf + intermediate, or
    /// just the leaf for `SelfSigned` / `MissingIntermediate`).
    pub chain_pem: String,
    /// The leaf certificate alone, PEM.
    pub leaf_pem: String,
    /// The leaf's private key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub key_pem: String,
    /// Same chain as `chain_pem`, DER.
    pub chain_der: Vec<CertificateDer<'static>>,
    /// Same key as `key_pem`, PKCS#8 DER.
    pub key_der: PrivatePkcs8KeyDer<'static>,
    /// The leaf's notBefore / notAfter, exactly as encoded in the certificate.
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl ServerCert {
    /// The key as the `PrivateKeyDer` rustls wants.
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key_der.clone_key())
    }

    /// A rustls `ServerConfig` (ring provider, TLS 1.2 + 1.3, no client
    /// auth) serving this chain. Use it with `TlsServer::start_with_config`
    /// after tweaking, or build your own for unusual protocol setups.
    pub fn server_config(&self) -> rustls::ServerConfig {
        rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_single_cert(self.chain_der.clone(), self.private_key())
            .expect("valid cert/key pair")
    }
}

/// A root CA and an intermediate CA signed by it. Leaves are signed by the
/// intermediate.
pub struct TestCa {
    root_der: CertificateDer<'static>,
    root_pem: String,
    intermediate_der: CertificateDer<'static>,
    intermediate_pem: String,
    intermediate: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

fn ca_params(
    common_name: &str,
    constraints: BasicConstraints,
    now: SystemTime,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.remove(DnType::CommonName);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "sitewatch tests");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(constraints);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.use_authority_key_identifier_extension = true;
    params.not_before = days_from(now, -1).into();
    params.not_after = days_from(now, 3650).into();
    params
}

impl TestCa {
    /// Generates a fresh root + intermediate (ECDSA P-256, in memory).
    pub fn new() -> TestCa {
        // Unique subject names per TestCa: webpki builds paths by subject
        // name, so two CAs with identical names would make a leaf from the
        // "other" CA fail with BadSignature instead of UnknownIssuer.
        static NEXT_ID: AtomicUsize = AtomicUsize::new(1);
        let id = format!(
            "{}-{}",
            std::process::id(),
            NEXT_ID.fetch_add(1, Ordering::Relaxed)
        );
        let now = now_secs();

        let root_key = KeyPair::generate().expect("generate root key");
        let root_params = ca_params(
            &format!("sitewatch test root CA {id}"),
            BasicConstraints::Unconstrained,
            now,
        );
        let root_cert = root_params.self_signed(&root_key).expect("self-sign root");
        let root = Issuer::new(root_params, root_key);

        let int_key = KeyPair::generate().expect("generate intermediate key");
        let int_params = ca_params(
            &format!("sitewatch test intermediate CA {id}"),
            BasicConstraints::Constrained(0),
            now,
        );
        let int_cert = int_params
            .signed_by(&int_key, &root)
            .expect("sign intermediate");

        TestCa {
            root_pem: root_cert.pem(),
            root_der: root_cert.der().clone(),
            intermediate_pem: int_cert.pem(),
            intermediate_der: int_cert.der().clone(),
            intermediate: Issuer::new(int_params, int_key),
        }
    }

    /// PEM of the root certificate, e.g. for a `ca_file`.
    pub fn root_pem(&self) -> String {
        self.root_pem.clone()
    }

    /// DER of the root certificate.
    pub fn root_der(&self) -> CertificateDer<'static> {
        self.root_der.clone()
    }

    /// PEM of the intermediate certificate.
    pub fn intermediate_pem(&self) -> String {
        self.intermediate_pem.clone()
    }

    /// Writes the root PEM to `dir/test-root-ca.pem` and returns that path.
    pub fn write_root(&self, dir: &Path) -> PathBuf {
        let path = dir.join("test-root-ca.pem");
        std::fs::write(&path, &self.root_pem).expect("write root CA PEM");
        path
    }

    /// A `RootCertStore` that trusts only this CA's root.
    pub fn root_store(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.root_der()).expect("add test root");
        roots
    }

    /// A client config (ring provider, TLS 1.2 + 1.3) trusting only this root.
    pub fn client_config(&self) -> rustls::ClientConfig {
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(self.root_store())
            .with_no_client_auth()
    }

    /// Issues a leaf for `names` (DNS SANs; names that parse as an IP
    /// address become IP SANs). The first name is also the subject CN.
    pub fn leaf(&self, kind: CertKind, names: &[&str]) -> ServerCert {
        assert!(!names.is_empty(), "a leaf needs at least one name");
        let now = now_secs();
        let (not_before, not_after) = match kind {
            CertKind::Valid | CertKind::SelfSigned | CertKind::MissingIntermediate => {
                (days_from(now, -1), days_from(now, 365))
            }
            CertKind::Expired => (days_from(now, -30), days_from(now, -10)),
            CertKind::NotYetValid => (days_from(now, 10), days_from(now, 375)),
            CertKind::ExpiresInDays(n) => (days_from(now, (n - 1).min(-1)), days_from(now, n)),
        };

        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        // `CertificateParams::new` already maps IP-looking names to IP SANs.
        let mut params = CertificateParams::new(names.clone()).expect("valid SAN names");
        params.distinguished_name.remove(DnType::CommonName);
        params
            .distinguished_name
            .push(DnType::CommonName, names[0].as_str());
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = not_before.into();
        params.not_after = not_after.into();

        let key = KeyPair::generate().expect("generate leaf key");
        let (leaf_der, leaf_pem, with_intermediate) = match kind {
            CertKind::SelfSigned => {
                let cert = params.self_signed(&key).expect("self-sign leaf");
                (cert.der().clone(), cert.pem(), false)
            }
            _ => {
                params.use_authority_key_identifier_extension = true;
                let cert = params
                    .signed_by(&key, &self.intermediate)
                    .expect("sign leaf");
                let send_intermediate = kind != CertKind::MissingIntermediate;
                (cert.der().clone(), cert.pem(), send_intermediate)
            }
        };

        let (chain_der, chain_pem) = if with_intermediate {
            (
                vec![leaf_der, self.intermediate_der.clone()],
                format!("{leaf_pem}{}", self.intermediate_pem),
            )
        } else {
            (vec![leaf_der], leaf_pem.clone())
        };

        ServerCert {
            chain_pem,
            leaf_pem,
            key_pem: key.serialize_pem(),
            chain_der,
            key_der: PrivatePkcs8KeyDer::from(key.serialize_der()),
            not_before,
            not_after,
        }
    }
}

/// What a `TlsServer` does once the TLS handshake has completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum After {
    /// Read the HTTP/1.1 request head (up to `\r\n\r\n`), answer with this
    /// status and body (`Content-Length`, `Connection: close`), send
    /// close_notify and close.
    Http { status: u16, body: String },
    /// Read the request head and answer `301 Moved Permanently` to this
    /// `Location`, then close as `Http` does.
    Redirect { location: String },
    /// Close the TCP connection right after the handshake *without* sending a
    /// TLS close_notify (an abrupt close, like a crashing backend).
    Close,
    /// Send a TLS close_notify right after the handshake, then close (a
    /// clean, but empty, TLS session).
    CloseNotify,
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// A TLS server on `127.0.0.1:<random port>`. Every connection does the
/// handshake and then runs the `After` behaviour. Dropping the server aborts
/// the accept loop and every connection still in progress.
pub struct TlsServer {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    handshakes: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsServer {
    /// Serves `cert` (TLS 1.2 and 1.3, ring provider).
    pub async fn start(cert: &ServerCert, behaviour: After) -> TlsServer {
        Self::start_with_config(Arc::new(cert.server_config()), behaviour).await
    }

    /// Serves with a caller-built `ServerConfig`.
    pub async fn start_with_config(
        config: Arc<rustls::ServerConfig>,
        behaviour: After,
    ) -> TlsServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let accepted = Arc::new(AtomicUsize::new(0));
        let handshakes = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));

        let (acc, hs, reqs) = (accepted.clone(), handshakes.clone(), requests.clone());
        let behaviour = Arc::new(behaviour);
        let task = tokio::spawn(async move {
            // Owned by the accept task: aborting it drops the set, which
            // aborts every connection task.
            let mut conns = JoinSet::new();
            loop {
                while conns.try_join_next().is_some() {}
                let Ok((tcp, _peer)) = listener.accept().await else {
                    continue;
                };
                acc.fetch_add(1, Ordering::SeqCst);
                let (acceptor, behaviour, hs, reqs) = (
                    acceptor.clone(),
                    behaviour.clone(),
                    hs.clone(),
                    reqs.clone(),
                );
                conns.spawn(async move {
                    let conn = serve_tls(acceptor, tcp, &behaviour, &hs, &reqs);
                    let _ = tokio::time::timeout(CONN_LIFETIME, conn).await;
                });
            }
        });

        TlsServer {
            addr,
            accepted,
            handshakes,
            requests,
            task,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `https://{host}:{port}/` for this server, e.g. `url("localhost")`.
    pub fn url(&self, host: &str) -> String {
        format!("https://{host}:{}/", self.addr.port())
    }

    /// TCP connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// TLS handshakes completed so far (server side).
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }

    /// HTTP request heads received so far (`After::Http` only), lossy UTF-8.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("requests lock").clone()
    }
}

async fn serve_tls(
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: TcpStream,
    behaviour: &After,
    handshakes: &AtomicUsize,
    requests: &Mutex<Vec<String>>,
) {
    let Ok(Ok(mut tls)) = tokio::time::timeout(PEER_WAIT, acceptor.accept(tcp)).await else {
        return;
    };
    handshakes.fetch_add(1, Ordering::SeqCst);
    match behaviour {
        After::Close => {
            // FIN without close_notify. Half-close and drain instead of just
            // dropping: dropping a socket with unread input sends an RST,
            // which would turn a clean EOF into ECONNRESET at random.
            let (mut tcp, _conn) = tls.into_inner();
            let _ = tcp.shutdown().await;
            drain(&mut tcp).await;
        }
        After::CloseNotify => {
            let _ = tls.shutdown().await; // close_notify + FIN
            drain(&mut tls).await;
        }
        After::Http { .. } | After::Redirect { .. } => {
            let Some(head) = read_head(&mut tls).await else {
                return;
            };
            requests
                .lock()
                .expect("requests lock")
                .push(String::from_utf8_lossy(&head).into_owned());
            let response = match behaviour {
                After::Http { status, body } => format!(
                    "HTTP/1.1 {status} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    reason_phrase(*status),
                    body.len(),
                ),
                After::Redirect { location } => format!(
                    "HTTP/1.1 301 Moved Permanently\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                ),
                After::Close | After::CloseNotify => unreachable!("handled above"),
            };
            if tls.write_all(response.as_bytes()).await.is_err() {
                return;
            }
            let _ = tls.flush().await;
            let _ = tls.shutdown().await; // close_notify + FIN
            drain(&mut tls).await;
        }
    }
}

/// Reads up to and including `\r\n\r\n` (max 64 KiB). `None` on EOF, error,
/// overlong head or timeout.
async fn read_head<R: AsyncRead + Unpin>(r: &mut R) -> Option<Vec<u8>> {
    let read = async {
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = r.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            head.extend_from_slice(&buf[..n]);
            if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                head.truncate(end + 4);
                return Some(head);
            }
            if head.len() > 64 * 1024 {
                return None;
            }
        }
    };
    tokio::time::timeout(PEER_WAIT, read).await.ok().flatten()
}

/// Discards input until the peer closes, errors, or `PEER_WAIT` passes.
async fn drain<R: AsyncRead + Unpin>(r: &mut R) {
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(PEER_WAIT, async {
        while let Ok(n) = r.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// Spawns a plain-TCP accept loop on 127.0.0.1:0 running `per_conn` for each
/// connection (each bounded by `CONN_LIFETIME`). Aborting the returned handle
/// stops the loop and every connection.
async fn tcp_server<F, Fut>(per_conn: F) -> (SocketAddr, JoinHandle<()>)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let task = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            while conns.try_join_next().is_some() {}
            let Ok((tcp, _peer)) = listener.accept().await else {
                continue;
            };
            let conn = per_conn(tcp);
            conns.spawn(async move {
                let _ = tokio::time::timeout(CONN_LIFETIME, conn).await;
            });
        }
    });
    (addr, task)
}

/// Bytes the garbage server sends instead of a TLS ServerHello.
pub const GARBAGE: &[u8] = b"HTTP/1.0 200 OK\r\n\r\nhello";

/// A plain TCP server that, per connection, waits for the client's first
/// bytes (the ClientHello), answers with the non-TLS bytes `GARBAGE`, and
/// closes. Abort the handle (or end the runtime) to stop it.
pub async fn garbage_server() -> (SocketAddr, JoinHandle<()>) {
    tcp_server(|mut tcp| async move {
        let mut buf = [0u8; 4096];
        // Wait for the ClientHello so our close is a FIN, not an RST.
        let _ = tokio::time::timeout(PEER_WAIT, tcp.read(&mut buf)).await;
        if tcp.write_all(GARBAGE).await.is_ok() {
            let _ = tcp.shutdown().await;
            drain(&mut tcp).await;
        }
    })
    .await
}

/// A plain TCP server that accepts and never sends anything; it reads and
/// discards input and holds each socket open until the peer closes or
/// `CONN_LIFETIME` (30 s) passes. Abort the handle (or end the runtime) to
/// stop it.
pub async fn silent_server() -> (SocketAddr, JoinHandle<()>) {
    tcp_server(|mut tcp| async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = tcp.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await
}

/// Connects to `addr` with `config`, sending `server_name` as SNI (and
/// verifying the certificate against it).
pub async fn connect(
    config: Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    server_name: &str,
) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let tcp = TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

/// The `rustls::Error` inside an `io::Error` returned by tokio-rustls, if any
/// (tokio-rustls wraps it as `io::Error::new(ErrorKind::InvalidData, err)`).
pub fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}
