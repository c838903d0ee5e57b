//! The target farm: loopback listeners in the bench process, on their own
//! one-worker tokio runtime (pinned to the bench's CPU).
//!
//! - `tcp`: accept-and-close listeners.
//! - `http`: HTTP/1.1 servers (hyper's, one connection per task) that read
//!   the request head and answer every request with a small HTML page
//!   (`200 OK`, `Content-Type`, `Content-Length`, a 200-byte body); a
//!   request with `Connection: close` (what sitewatch and the floor send)
//!   gets its answer and then the close, as any HTTP/1.1 server does.
//! - `https`: the same behind TLS (rustls, ring), with a certificate for
//!   127.0.0.1 … 127.0.0.16 issued by a CA generated for the run (rcgen).
//!   The server keeps no sessions and sends no tickets, so every probe
//!   pays a full handshake.
//! - Optionally dead targets: one more listener per address with
//!   `listen(1)`, never accepted, whose queue the bench fills itself, so
//!   the kernel drops every later SYN and connects time out.
//!
//! Each live kind binds 127.0.0.1 … 127.0.0.[`FARM_ADDRS`] on ephemeral
//! ports; sites are spread round-robin over them so that no single
//! address/port pair runs out of ephemeral ports.

use super::sys::{Pinning, pin_current_thread};
use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;

/// How many loopback addresses the farm listens on (127.0.0.1 … 127.0.0.N).
pub const FARM_ADDRS: u8 = 16;
/// Connect attempts to fill one dead listener's accept queue.
const PRIME_MAX_ATTEMPTS: usize = 8;
/// A connect to a full listener must not succeed within this.
pub const PRIME_TIMEOUT: Duration = Duration::from_millis(300);
/// The longest one HTTP(S) connection may live in the farm.
const CONN_LIMIT: Duration = Duration::from_secs(10);

/// The page every HTTP(S) target answers with: 200 bytes of HTML.
pub const PAGE: &[u8; 200] = b"<!doctype html>\n<html><head><title>farm</title></head>\n\
<body><h1>It works</h1><p>A small page from the sitewatch scale benchmark's target farm, \
answered to every request, always.</p></body></html>\n\n\n\n";

/// What the live targets speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Tcp,
    Http,
    Https,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Tcp => "tcp",
            Kind::Http => "http",
            Kind::Https => "https",
        }
    }
}

/// Counters of the farm, shared with its tasks.
#[derive(Default)]
pub struct Counters {
    /// Connections accepted by the live listeners.
    pub accepted: AtomicU64,
    /// accept(2) errors (out of descriptors or similar).
    pub accept_errors: AtomicU64,
    /// HTTP responses sent.
    pub served: AtomicU64,
    /// HTTP(S) connections that ended in an error (TLS or HTTP) or ran
    /// past [`CONN_LIMIT`].
    pub conn_errors: AtomicU64,
}

/// A CA and the farm's certificate, for the https kind.
pub struct Pki {
    /// The CA certificate, PEM: the sites' `ca_file`.
    pub ca_pem: String,
    server: Arc<rustls::ServerConfig>,
}

impl Pki {
    /// A fresh CA (ECDSA P-256) and a leaf for 127.0.0.1 … 127.0.0.N signed
    /// by it.
    pub fn generate() -> anyhow::Result<Pki> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().context("CA key")?;
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name.remove(DnType::CommonName);
        ca_params.distinguished_name.push(
            DnType::CommonName,
            format!("sitewatch scale bench CA {}", std::process::id()),
        );
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).context("CA certificate")?;
        let issuer = Issuer::new(ca_params, ca_key);

        let names: Vec<String> = (1..=FARM_ADDRS).map(|n| format!("127.0.0.{n}")).collect();
        let leaf_key = KeyPair::generate().context("leaf key")?;
        // IP-looking names become IP SANs.
        let mut params = CertificateParams::new(names).context("leaf names")?;
        params.distinguished_name.remove(DnType::CommonName);
        params
            .distinguished_name
            .push(DnType::CommonName, "sitewatch scale farm");
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = params
            .signed_by(&leaf_key, &issuer)
            .context("leaf certificate")?;

        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
            rustls::pki_types::PrivatePkcs8KeyDer::from(leaf_key.serialize_der()),
        );
        let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca_cert.der().clone()], key)
        .context("the farm's certificate")?;
        // A full handshake per probe: no session cache, no tickets.
        server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        server.send_tls13_tickets = 0;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Pki {
            ca_pem: ca_cert.pem(),
            server: Arc::new(server),
        })
    }

    /// Writes the CA to `dir/farm-ca.pem`.
    pub fn write_ca(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        let path = dir.join("farm-ca.pem");
        std::fs::write(&path, &self.ca_pem)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

pub struct Farm {
    runtime: tokio::runtime::Runtime,
    stop: watch::Sender<bool>,
    pub kind: Kind,
    pub live: Vec<SocketAddr>,
    pub dead: Vec<SocketAddr>,
    pub counters: Arc<Counters>,
    /// Connections each dead listener took before it dropped SYNs.
    pub primed: Vec<usize>,
}

async fn accept_loop(
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
    counters: Arc<Counters>,
    kind: Kind,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    // Ends when the farm stops (the stop flag changes or its sender drops).
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    counters.accepted.fetch_add(1, Ordering::Relaxed);
                    match kind {
                        Kind::Tcp => drop(stream),
                        Kind::Http | Kind::Https => {
                            tokio::spawn(serve_conn(stream, tls.clone(), Arc::clone(&counters)));
                        }
                    }
                }
                Err(_) => {
                    // Out of descriptors or similar: back off, don't spin.
                    counters.accept_errors.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            },
        }
    }
}

/// One HTTP/1.1 connection (TLS first for https), bounded by [`CONN_LIMIT`].
async fn serve_conn(
    stream: TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
    counters: Arc<Counters>,
) {
    let work = async {
        match tls {
            None => serve_http(TokioIo::new(stream), &counters).await,
            Some(acceptor) => match acceptor.accept(stream).await {
                Ok(s) => serve_http(TokioIo::new(s), &counters).await,
                Err(_) => false,
            },
        }
    };
    let ok = tokio::time::timeout(CONN_LIMIT, work)
        .await
        .unwrap_or(false);
    if !ok {
        counters.conn_errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// hyper's HTTP/1.1 server over `io`: reads each request head, answers the
/// page; keep-alive unless the client asks for `Connection: close`.
async fn serve_http<I>(io: I, counters: &Arc<Counters>) -> bool
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let served = Arc::clone(counters);
    let service = service_fn(move |_req: hyper::Request<hyper::body::Incoming>| {
        served.served.fetch_add(1, Ordering::Relaxed);
        async {
            hyper::Response::builder()
                .status(200)
                .header(hyper::header::CONTENT_TYPE, "text/html; charset=utf-8")
                .body(Full::new(Bytes::from_static(PAGE)))
        }
    });
    hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .await
        .is_ok()
}

/// Fills `addr`'s accept queue and checks that one more connect times out.
/// Returns the connections the queue took (kept open by the caller).
async fn prime_dead(addr: SocketAddr) -> anyhow::Result<Vec<TcpStream>> {
    let mut held = Vec::new();
    for _ in 0..PRIME_MAX_ATTEMPTS {
        match tokio::time::timeout(PRIME_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => held.push(stream),
            Ok(Err(e)) => bail!("priming dead listener {addr}: {e}"),
            Err(_) => return Ok(held),
        }
    }
    bail!(
        "dead listener {addr} still accepted connections after {PRIME_MAX_ATTEMPTS} connects: \
         a full accept queue does not drop SYNs here"
    )
}

impl Farm {
    pub fn start(
        kind: Kind,
        with_dead: bool,
        pki: Option<&Pki>,
        pin: Option<Pinning>,
    ) -> anyhow::Result<Farm> {
        let tls = match (kind, pki) {
            (Kind::Https, Some(p)) => Some(tokio_rustls::TlsAcceptor::from(Arc::clone(&p.server))),
            (Kind::Https, None) => bail!("an https farm needs its certificate"),
            _ => None,
        };
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder
            .worker_threads(1)
            .max_blocking_threads(1)
            .thread_name("farm")
            .enable_all();
        if let Some(p) = pin {
            let cpu = p.farm_cpu;
            builder.on_thread_start(move || {
                // The bench process is already pinned; this is belt and braces.
                let _ = pin_current_thread(cpu);
            });
        }
        let runtime = builder.build().context("cannot build the farm runtime")?;
        let (stop, stop_rx) = watch::channel(false);
        let counters = Arc::new(Counters::default());
        let (live, dead, primed) = runtime.block_on(async {
            let mut live = Vec::new();
            for n in 1..=FARM_ADDRS {
                let listener = TcpListener::bind((std::net::Ipv4Addr::new(127, 0, 0, n), 0))
                    .await
                    .with_context(|| format!("cannot bind 127.0.0.{n}:0"))?;
                live.push(listener.local_addr()?);
                tokio::spawn(accept_loop(
                    listener,
                    stop_rx.clone(),
                    Arc::clone(&counters),
                    kind,
                    tls.clone(),
                ));
            }
            let mut dead = Vec::new();
            let mut primed = Vec::new();
            if with_dead {
                let mut listeners = Vec::new();
                for n in 1..=FARM_ADDRS {
                    let socket = TcpSocket::new_v4()?;
                    socket.bind(SocketAddr::from(([127, 0, 0, n], 0)))?;
                    let listener = socket.listen(1)?;
                    dead.push(listener.local_addr()?);
                    listeners.push(listener);
                }
                let tasks: Vec<_> = dead.iter().map(|&a| tokio::spawn(prime_dead(a))).collect();
                let mut held = Vec::new();
                for t in tasks {
                    let streams = t.await.context("a priming task failed")??;
                    primed.push(streams.len());
                    held.push(streams);
                }
                // Keep the never-accepted listeners and the connections that
                // fill their queues until the farm stops.
                let mut stop = stop_rx.clone();
                tokio::spawn(async move {
                    let _keep = (listeners, held);
                    let _ = stop.changed().await;
                });
            }
            anyhow::Ok((live, dead, primed))
        })?;
        Ok(Farm {
            runtime,
            stop,
            kind,
            live,
            dead,
            counters,
            primed,
        })
    }

    /// The target of site `i` (0-based).
    pub fn target(&self, i: usize, dead_every: usize) -> SocketAddr {
        let a = i % self.live.len();
        if dead_every > 0 && (i + 1).is_multiple_of(dead_every) && !self.dead.is_empty() {
            self.dead[a]
        } else {
            self.live[a]
        }
    }

    /// The URL sitewatch probes for site `i` (0-based).
    pub fn url(&self, i: usize, dead_every: usize) -> String {
        let addr = self.target(i, dead_every);
        match self.kind {
            Kind::Tcp => format!("tcp://{addr}"),
            Kind::Http => format!("http://{addr}/"),
            Kind::Https => format!("https://{addr}/"),
        }
    }

    pub fn accepted(&self) -> u64 {
        self.counters.accepted.load(Ordering::Relaxed)
    }

    pub fn served(&self) -> u64 {
        self.counters.served.load(Ordering::Relaxed)
    }

    pub fn shutdown(self) {
        let _ = self.stop.send(true);
        self.runtime.shutdown_timeout(Duration::from_secs(2));
    }
}
