//! The reference probers ("the floor"): the least a prober built on the
//! same stack (tokio, hyper, rustls) can spend on the same work, measured
//! the same way as sitewatch.
//!
//! The bench re-executes itself with `--reference tcp|http|https --targets
//! FILE --interval DUR --timeout DUR [--ca FILE]`, pinned to the daemon's
//! CPU. The child runs a current-thread tokio runtime (like sitewatch's
//! default `worker_threads = 1`) with exactly one scheduling loop: it wakes
//! at most every [`SLICE`] (10 ms, like sitewatch), spawns one task per
//! probe due, and places each site at the same offset in its interval as
//! sitewatch does (FNV-1a of the site's name), so both see the same load
//! pattern. A probe is:
//!
//! - `tcp`: a tokio connect with a timeout, then close;
//! - `http`: a tokio connect, hyper's `client::conn::http1` handshake over
//!   hyper-util's `TokioIo`, one `GET /` with the headers sitewatch sends
//!   (`Host`, `User-Agent`, `Accept`, `Connection: close`), the whole body
//!   read; a new connection per probe, all under the timeout;
//! - `https`: the same through a tokio-rustls client (ring provider, ALPN
//!   http/1.1, the webpki verifier trusting `--ca`).
//!
//! It counts successes (connected; or status 2xx and the body read) and
//! failures, and the lag from planned to task start, and prints one JSON
//! line on stdout about once a second (`probes`, `ok`, `failed`, `skipped`,
//! `in_flight`, `lag_ms`) and a last one with `"done": true` when SIGTERM
//! ends it (after the probes in flight, at most one timeout + 1 s).
//! The harness takes its window readings on those lines, as it does on the
//! daemon's `/healthz` publications.

use super::farm::Kind;
use super::sys::{self, Pinning};
use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

/// The scheduling slice: probes due within one start together.
const SLICE: Duration = Duration::from_millis(10);
/// How often a line of figures is printed.
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// Most targets a file may hold.
const MAX_TARGETS: usize = 1_000_000;

/// One line of the floor's figures.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Line {
    pub probes: u64,
    pub ok: u64,
    pub failed: u64,
    pub skipped: u64,
    pub in_flight: u64,
    pub lag_ms: Lag,
    pub done: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Lag {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// sitewatch's offset of a site in its interval (src/schedule/mod.rs):
/// FNV-1a of the name, modulo the interval in µs.
pub fn offset(name: &str, interval: Duration) -> Duration {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let span = interval.as_micros().max(1);
    Duration::from_micros(u64::try_from(u128::from(h) % span).unwrap_or(u64::MAX))
}

/// Writes the floor's target list: `NAME ADDR` per line.
pub fn write_targets(path: &Path, sites: &[(String, SocketAddr)]) -> anyhow::Result<()> {
    let mut text = String::with_capacity(32 * sites.len());
    for (name, addr) in sites {
        text.push_str(name);
        text.push(' ');
        text.push_str(&addr.to_string());
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

// ---------------------------------------------------------------------------
// The child

struct Target {
    name: String,
    addr: SocketAddr,
    host: String,
}

#[derive(Default)]
struct Counters {
    ok: AtomicU64,
    failed: AtomicU64,
    started: AtomicU64,
}

struct Shared {
    targets: Vec<Target>,
    timeout: Duration,
    kind: Kind,
    tls: Option<tokio_rustls::TlsConnector>,
    counters: Counters,
    lag: Mutex<hdrhistogram::Histogram<u64>>,
}

/// `--reference ...`: runs the floor until SIGTERM.
pub fn child_main(args: &[String]) -> anyhow::Result<()> {
    let mut kind = None;
    let mut targets = None;
    let mut interval = None;
    let mut timeout = None;
    let mut ca = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--bench" => {}
            "--reference" => {
                kind = Some(match value()?.as_str() {
                    "tcp" => Kind::Tcp,
                    "http" => Kind::Http,
                    "https" => Kind::Https,
                    other => bail!("unknown reference prober {other:?}"),
                })
            }
            "--targets" => targets = Some(PathBuf::from(value()?)),
            "--interval" => interval = Some(humantime::parse_duration(value()?)?),
            "--timeout" => timeout = Some(humantime::parse_duration(value()?)?),
            "--ca" => ca = Some(PathBuf::from(value()?)),
            other => bail!("unknown argument {other:?} for --reference"),
        }
    }
    let kind = kind.context("--reference needs a kind")?;
    let interval = interval.context("--interval is required")?;
    let timeout = timeout.context("--timeout is required")?;
    if interval.is_zero() || timeout.is_zero() {
        bail!("--interval and --timeout must be positive");
    }
    let path = targets.context("--targets is required")?;
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut list = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (name, addr) = line
            .split_once(' ')
            .with_context(|| format!("bad target line {line:?}"))?;
        let addr: SocketAddr = addr
            .trim()
            .parse()
            .with_context(|| format!("bad address in {line:?}"))?;
        if !addr.ip().is_loopback() {
            bail!("{addr} is not a loopback address");
        }
        list.push(Target {
            name: name.to_string(),
            addr,
            host: addr.to_string(),
        });
        if list.len() > MAX_TARGETS {
            bail!("more than {MAX_TARGETS} targets");
        }
    }
    if list.is_empty() {
        bail!("no targets in {}", path.display());
    }
    let tls = match kind {
        Kind::Https => {
            let ca = ca.context("--reference https needs --ca")?;
            let mut roots = rustls::RootCertStore::empty();
            use rustls::pki_types::pem::PemObject;
            for cert in rustls::pki_types::CertificateDer::pem_file_iter(&ca)
                .with_context(|| format!("reading {}", ca.display()))?
            {
                roots.add(cert?)?;
            }
            let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(tokio_rustls::TlsConnector::from(Arc::new(config)))
        }
        _ => None,
    };
    let shared = Arc::new(Shared {
        targets: list,
        timeout,
        kind,
        tls,
        counters: Counters::default(),
        lag: Mutex::new(
            hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000, 2)
                .context("lag histogram")?,
        ),
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(schedule(shared, interval))
}

fn line(shared: &Shared, skipped: u64, done: bool) -> Line {
    let c = &shared.counters;
    let ok = c.ok.load(Ordering::Relaxed);
    let failed = c.failed.load(Ordering::Relaxed);
    let started = c.started.load(Ordering::Relaxed);
    let lag = match shared.lag.lock() {
        Ok(h) => Lag {
            p50: h.value_at_quantile(0.5) as f64 / 1000.0,
            p99: h.value_at_quantile(0.99) as f64 / 1000.0,
            max: h.max() as f64 / 1000.0,
        },
        Err(_) => Lag::default(),
    };
    Line {
        probes: ok + failed,
        ok,
        failed,
        skipped,
        in_flight: started.saturating_sub(ok + failed),
        lag_ms: lag,
        done,
    }
}

fn print(l: &Line) {
    if let Ok(s) = serde_json::to_string(l) {
        println!("{s}");
    }
}

/// The one scheduling loop.
async fn schedule(shared: Arc<Shared>, interval: Duration) -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut order: Vec<(Duration, usize)> = shared
        .targets
        .iter()
        .enumerate()
        .map(|(i, t)| (offset(&t.name, interval), i))
        .collect();
    order.sort_unstable();
    let n = order.len();
    let start = Instant::now();
    // The k-th site of the order, in round r, is due at start + r·interval + offset.
    let (mut round, mut k) = (0u32, 0usize);
    let due = |round: u32, k: usize| start + interval * round + order[k].0;
    let mut last_wake = start;
    let mut next_report = start;
    let mut skipped = 0u64;
    loop {
        let wake = due(round, k).max(last_wake + SLICE).min(next_report);
        tokio::select! {
            biased;
            _ = term.recv() => break,
            () = tokio::time::sleep_until(wake) => {}
        }
        let now = Instant::now();
        last_wake = now;
        loop {
            let planned = due(round, k);
            if planned > now {
                break;
            }
            if now.duration_since(planned) >= interval {
                // A whole interval behind: skip the slot, as sitewatch does.
                skipped += 1;
            } else {
                spawn_probe(&shared, order[k].1, planned);
            }
            k += 1;
            if k == n {
                k = 0;
                round += 1;
            }
        }
        if now >= next_report {
            next_report = now + REPORT_EVERY;
            print(&line(&shared, skipped, false));
        }
    }
    // Let the probes in flight end (each by its timeout), bounded.
    let until = Instant::now() + shared.timeout + Duration::from_secs(1);
    while Instant::now() < until {
        let l = line(&shared, skipped, false);
        if l.in_flight == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    print(&line(&shared, skipped, true));
    Ok(())
}

fn spawn_probe(shared: &Arc<Shared>, idx: usize, planned: Instant) {
    let shared = Arc::clone(shared);
    shared.counters.started.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        let began = Instant::now();
        let lag_us = u64::try_from(began.duration_since(planned).as_micros()).unwrap_or(u64::MAX);
        if let Ok(mut h) = shared.lag.lock() {
            h.saturating_record(lag_us.max(1));
        }
        let t = &shared.targets[idx];
        let ok = match shared.kind {
            Kind::Tcp => tcp_probe(t.addr, shared.timeout).await,
            Kind::Http | Kind::Https => http_probe(t, shared.tls.as_ref(), shared.timeout).await,
        };
        let counter = if ok {
            &shared.counters.ok
        } else {
            &shared.counters.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    });
}

/// Connect, then close.
async fn tcp_probe(addr: SocketAddr, timeout: Duration) -> bool {
    matches!(
        tokio::time::timeout(timeout, TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// `GET /` on a new connection (TLS first with `tls`), the whole body read.
async fn http_probe(
    t: &Target,
    tls: Option<&tokio_rustls::TlsConnector>,
    timeout: Duration,
) -> bool {
    let work = async {
        let tcp = TcpStream::connect(t.addr).await.ok()?;
        match tls {
            None => get(tcp, &t.host).await,
            Some(connector) => {
                let name = rustls::pki_types::ServerName::IpAddress(t.addr.ip().into());
                let stream = connector.connect(name, tcp).await.ok()?;
                get(stream, &t.host).await
            }
        }
    };
    matches!(tokio::time::timeout(timeout, work).await, Ok(Some(true)))
}

async fn get<S>(io: S, host: &str) -> Option<bool>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(io))
            .await
            .ok()?;
    let req = hyper::Request::get("/")
        .header(hyper::header::HOST, host)
        .header(hyper::header::USER_AGENT, "sitewatch-scale-floor")
        .header(hyper::header::ACCEPT, "*/*")
        .header(hyper::header::CONNECTION, "close")
        .body(Empty::new())
        .ok()?;
    let work = async move {
        let resp = sender.send_request(req).await.ok()?;
        let ok = resp.status().is_success();
        let body = resp.into_body().collect().await.ok()?.to_bytes();
        Some(ok && !body.is_empty())
    };
    let mut conn = std::pin::pin!(conn);
    let mut work = std::pin::pin!(work);
    tokio::select! {
        biased;
        r = &mut work => r,
        _ = &mut conn => work.await,
    }
}

// ---------------------------------------------------------------------------
// The harness side

/// A running floor process.
pub struct Floor {
    pub child: tokio::process::Child,
    pub pid: u32,
    /// The latest line (None before the first).
    pub lines: watch::Receiver<Option<Line>>,
    reader: tokio::task::JoinHandle<()>,
}

pub struct FloorArgs<'a> {
    pub kind: Kind,
    pub targets: &'a Path,
    pub interval: Duration,
    pub timeout: Duration,
    pub ca: Option<&'a Path>,
}

impl Floor {
    /// Starts the floor (this very binary, `--reference ...`), pinned like
    /// the daemon.
    pub fn spawn(a: &FloorArgs<'_>, pin: Option<Pinning>) -> anyhow::Result<Floor> {
        let exe = std::env::current_exe().context("the bench's own path")?;
        let mut cmd = tokio::process::Command::new(exe);
        cmd.arg("--reference")
            .arg(a.kind.as_str())
            .arg("--targets")
            .arg(a.targets)
            .arg("--interval")
            .arg(humantime::format_duration(a.interval).to_string())
            .arg("--timeout")
            .arg(humantime::format_duration(a.timeout).to_string());
        if let Some(ca) = a.ca {
            cmd.arg("--ca").arg(ca);
        }
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true);
        if let Some(p) = pin {
            sys::pin_command(&mut cmd, p.daemon_cpu);
        }
        let mut child = cmd.spawn().context("cannot start the reference prober")?;
        let pid = child.id().context("the reference prober has no PID")?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let (tx, rx) = watch::channel(None);
        let reader = tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            // Bounded: ends at EOF, and the child is always stopped.
            while let Ok(Some(l)) = lines.next_line().await {
                if let Ok(parsed) = serde_json::from_str::<Line>(&l) {
                    let _ = tx.send(Some(parsed));
                }
            }
        });
        Ok(Floor {
            child,
            pid,
            lines: rx,
            reader,
        })
    }

    /// Stops the floor; returns how it ended and its last line.
    pub async fn stop(mut self) -> (anyhow::Result<String>, Option<Line>) {
        let stopped = sys::stop_child(&mut self.child, self.pid).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.reader).await;
        let last = self.lines.borrow().clone();
        (stopped, last)
    }
}
