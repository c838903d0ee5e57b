//! Scale benchmark: what the real `sitewatch` daemon costs, and how well it
//! keeps its schedule, with thousands of sites.
//!
//! # What it measures
//!
//! For each scenario and run it starts the release `sitewatch` binary
//! (`CARGO_BIN_EXE_sitewatch`) as a child process, lets it probe a farm of
//! loopback TCP targets, and prints:
//!
//! - probes per second achieved (Δ`probes` of `/healthz` over the measured
//!   window) against the plan (sites / interval);
//! - CPU microseconds per probe of the daemon process alone
//!   (Δ(utime + stime) of `/proc/PID/stat`, in clock ticks of
//!   `sysconf(_SC_CLK_TCK)`, divided by Δprobes), and the daemon's CPU use
//!   as a share of one CPU;
//! - peak RSS (`VmHWM` of `/proc/PID/status`) and peak RSS per site;
//! - scheduling lag p50 / p99 / max in ms, from `/healthz`. These are
//!   cumulative since the daemon started (warm-up included), read at the end
//!   of the window;
//! - the Δ of `skipped` and `probe_errors` over the window (both should be 0;
//!   anything else is a finding).
//!
//! Then a Markdown table with the median of each figure over the runs (each
//! column's median on its own), ready to paste into docs/performance.md.
//!
//! # How
//!
//! - The target farm runs in this process, on its own one-worker tokio
//!   runtime, only on loopback: 16 accept-and-close listeners on 127.0.0.1 …
//!   127.0.0.16, each on an ephemeral port (sites are spread round-robin over
//!   them so that no single 4-tuple set runs out of ephemeral ports). For
//!   scenarios with dead targets, one more listener per address is created
//!   with `listen(1)` and never accepted; the bench fills its accept queue
//!   itself before the daemon starts (and checks that a further connect then
//!   times out), so the kernel drops every later SYN and the daemon's
//!   connects time out (`tcp.timeout`).
//! - With at least two CPUs the daemon is pinned to the first allowed CPU and
//!   the whole bench process (farm included) to the second, with
//!   `sched_setaffinity`; with one CPU nothing is pinned and the output says so.
//! - Each run writes a config to a temporary directory, starts the daemon with
//!   `SITEWATCH_LOG=info`, finds the API address in the `api listening` log
//!   line, waits one interval + 2 s of warm-up, then reads `/healthz` and
//!   `/proc` at the start and the end of the window. Each read is taken just
//!   after the scheduler published new figures (they are published about once
//!   a second), so the window's length matches the counters'.
//! - The daemon is stopped with SIGTERM to its own PID, and SIGKILL only if it
//!   has not exited 10 s later.
//!
//! # Run it
//!
//! ```sh
//! cargo bench --bench scale                          # 3 scenarios × 3 runs × 30 s (~6 min)
//! cargo bench --bench scale -- --quick --scenario 1k-1s
//! cargo bench --bench scale -- --scenario 10k-10s --runs 5 --duration 60s
//! ```
//!
//! Options: `--scenario NAME` (repeatable; `1k-1s`, `10k-10s`,
//! `1k-2s-10pct-dead`), `--runs N` (default 3), `--duration DUR` (measured
//! window, default 30s), `--quick` (1 run of 10 s unless `--runs` /
//! `--duration` say otherwise), `--help`.
//!
//! Scenario `1k-2s-10pct-dead` was specified as "1,000 sites every 1 s, 10 %
//! dead, timeout 2 s", but sitewatch rejects a timeout above the interval, so
//! it runs every 2 s with a 2 s timeout (`1k-1s-10pct-dead` is accepted as an
//! alias).

use anyhow::{Context, bail};
use serde_json::Value;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

/// How many loopback addresses the farm listens on (127.0.0.1 … 127.0.0.N).
const FARM_ADDRS: u8 = 16;
/// The daemon's probe cap.
const MAX_CONCURRENT_PROBES: usize = 4096;
/// Warm-up beyond one interval.
const WARMUP_EXTRA: Duration = Duration::from_secs(2);
/// How long to wait for the daemon's `api listening` line.
const STARTUP_LIMIT: Duration = Duration::from_secs(30);
/// Most stderr lines read while waiting for `api listening`.
const STARTUP_MAX_LINES: usize = 10_000;
/// How long SIGTERM may take before SIGKILL.
const STOP_LIMIT: Duration = Duration::from_secs(10);
/// How long to wait for a fresh publication of the scheduler's figures.
const PUBLISH_WAIT: Duration = Duration::from_secs(3);
/// Poll period while waiting for that publication.
const PUBLISH_POLL: Duration = Duration::from_millis(20);
/// Connect attempts to fill one dead listener's accept queue.
const PRIME_MAX_ATTEMPTS: usize = 8;
/// A connect to a full listener must not succeed within this.
const PRIME_TIMEOUT: Duration = Duration::from_millis(300);

/// One benchmark scenario.
struct Scenario {
    name: &'static str,
    sites: usize,
    interval: Duration,
    timeout: Duration,
    /// Every `dead_every`-th site (1-based) points at a target that never
    /// answers the SYN; 0: none.
    dead_every: usize,
    note: Option<&'static str>,
}

const SCENARIOS: [Scenario; 3] = [
    Scenario {
        name: "1k-1s",
        sites: 1_000,
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        dead_every: 0,
        note: None,
    },
    Scenario {
        name: "10k-10s",
        sites: 10_000,
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(2),
        dead_every: 0,
        note: None,
    },
    Scenario {
        name: "1k-2s-10pct-dead",
        sites: 1_000,
        interval: Duration::from_secs(2),
        timeout: Duration::from_secs(2),
        dead_every: 10,
        note: Some(
            "specified as 1,000 sites every 1s with a 2s timeout and 10 % dead targets; \
             sitewatch rejects timeout > interval, so it runs every 2s with a 2s timeout",
        ),
    },
];

/// The command line.
struct Options {
    scenarios: Vec<&'static Scenario>,
    runs: usize,
    duration: Duration,
}

const USAGE: &str =
    "usage: cargo bench --bench scale -- [--scenario NAME]... [--runs N] [--duration DUR] [--quick]
  --scenario NAME  1k-1s | 10k-10s | 1k-2s-10pct-dead (repeatable; default: all three)
  --runs N         runs per scenario (default 3)
  --duration DUR   measured window per run, e.g. 30s (default 30s)
  --quick          1 run of 10s (explicit --runs / --duration still win)";

fn find_scenario(name: &str) -> Option<&'static Scenario> {
    let name = if name == "1k-1s-10pct-dead" {
        eprintln!(
            "note: scenario 1k-1s-10pct-dead runs as 1k-2s-10pct-dead (timeout must be <= interval)"
        );
        "1k-2s-10pct-dead"
    } else {
        name
    };
    SCENARIOS.iter().find(|s| s.name == name)
}

fn parse_args(args: impl IntoIterator<Item = String>) -> anyhow::Result<Option<Options>> {
    let mut scenarios = Vec::new();
    let mut runs = None;
    let mut duration = None;
    let mut quick = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |what: &str| {
            args.next()
                .with_context(|| format!("{arg} needs {what}\n{USAGE}"))
        };
        match arg.as_str() {
            // `cargo bench` passes `--bench` to every bench binary.
            "--bench" => {}
            "--help" | "-h" => return Ok(None),
            "--quick" => quick = true,
            "--scenario" => {
                let name = value("a scenario name")?;
                let s = find_scenario(&name)
                    .with_context(|| format!("unknown scenario {name:?}\n{USAGE}"))?;
                if !scenarios.iter().any(|x: &&Scenario| x.name == s.name) {
                    scenarios.push(s);
                }
            }
            "--runs" => {
                let v = value("a number")?;
                let n: usize = v.parse().with_context(|| format!("bad --runs {v:?}"))?;
                if !(1..=100).contains(&n) {
                    bail!("--runs must be between 1 and 100");
                }
                runs = Some(n);
            }
            "--duration" => {
                let v = value("a duration")?;
                let d = humantime::parse_duration(&v)
                    .with_context(|| format!("bad --duration {v:?}"))?;
                if d < Duration::from_secs(2) || d > Duration::from_secs(3600) {
                    bail!("--duration must be between 2s and 1h");
                }
                duration = Some(d);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if scenarios.is_empty() {
        scenarios = SCENARIOS.iter().collect();
    }
    let (default_runs, default_duration) = if quick {
        (1, Duration::from_secs(10))
    } else {
        (3, Duration::from_secs(30))
    };
    Ok(Some(Options {
        scenarios,
        runs: runs.unwrap_or(default_runs),
        duration: duration.unwrap_or(default_duration),
    }))
}

// ---------------------------------------------------------------------------
// CPU pinning and limits

/// Which CPUs the daemon and the bench (farm) run on, if pinned.
#[derive(Clone, Copy)]
struct Pinning {
    daemon_cpu: usize,
    farm_cpu: usize,
}

fn cpu_set_of(cpu: usize) -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is a plain bit array for which all-zero is valid;
    // CPU_ZERO/CPU_SET only write inside it (cpu < CPU_SETSIZE is checked
    // by the callers, which take CPUs from sched_getaffinity).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        set
    }
}

/// The CPUs this process may run on.
fn allowed_cpus() -> anyhow::Result<Vec<usize>> {
    // SAFETY: all-zero is a valid cpu_set_t; sched_getaffinity writes at most
    // size_of::<cpu_set_t>() bytes into it; CPU_ISSET only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(std::io::Error::last_os_error()).context("sched_getaffinity");
        }
        let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
        Ok((0..max).filter(|&c| libc::CPU_ISSET(c, &set)).collect())
    }
}

/// Pins the calling thread (and every thread it creates later) to `cpu`.
fn pin_current_thread(cpu: usize) -> anyhow::Result<()> {
    let set = cpu_set_of(cpu);
    // SAFETY: `set` is a valid, initialised cpu_set_t of the size passed;
    // pid 0 means the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("sched_setaffinity(CPU {cpu})"));
    }
    Ok(())
}

/// Raises this process's open-files soft limit to the hard limit.
fn raise_nofile() -> anyhow::Result<u64> {
    // SAFETY: getrlimit/setrlimit read/write exactly one rlimit struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(std::io::Error::last_os_error()).context("getrlimit(RLIMIT_NOFILE)");
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error()).context("setrlimit(RLIMIT_NOFILE)");
            }
        }
        Ok(lim.rlim_cur)
    }
}

fn clock_ticks_per_second() -> anyhow::Result<u64> {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t <= 0 {
        bail!("sysconf(_SC_CLK_TCK) failed");
    }
    Ok(t as u64)
}

// ---------------------------------------------------------------------------
// /proc

/// utime + stime of `pid`, in clock ticks (every thread of the process).
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) may hold spaces: split after its ')'.
    let rest = &stat[stat.rfind(')').context("no ')' in /proc/PID/stat")? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime is field 14, stime field 15.
    let field = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .with_context(|| format!("{path} is too short"))?
            .parse()
            .with_context(|| format!("bad field in {path}"))
    };
    Ok(field(11)? + field(12)?)
}

/// A `kB` field of /proc/PID/status, in KiB.
fn status_kib(pid: u32, key: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .with_context(|| format!("no {key} in {path}"))?;
    line.trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("bad {key} in {path}: {line:?}"))
}

// ---------------------------------------------------------------------------
// The target farm

/// Loopback targets: accept-and-close listeners and, optionally, listeners
/// whose full accept queue makes every connect time out.
struct Farm {
    runtime: tokio::runtime::Runtime,
    stop: watch::Sender<bool>,
    live: Vec<SocketAddr>,
    dead: Vec<SocketAddr>,
    accepted: Arc<AtomicU64>,
    accept_errors: Arc<AtomicU64>,
    /// Connections each dead listener took before it dropped SYNs.
    primed: Vec<usize>,
}

async fn accept_and_close(
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
    accepted: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
) {
    // Ends when the farm stops (the stop flag changes or its sender drops).
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    drop(stream);
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    // Out of descriptors or similar: back off, don't spin.
                    errors.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            },
        }
    }
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
    fn start(with_dead: bool, pin: Option<Pinning>) -> anyhow::Result<Farm> {
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
        let accepted = Arc::new(AtomicU64::new(0));
        let accept_errors = Arc::new(AtomicU64::new(0));
        let (live, dead, primed) = runtime.block_on(async {
            let mut live = Vec::new();
            for n in 1..=FARM_ADDRS {
                let listener = TcpListener::bind((std::net::Ipv4Addr::new(127, 0, 0, n), 0))
                    .await
                    .with_context(|| format!("cannot bind 127.0.0.{n}:0"))?;
                live.push(listener.local_addr()?);
                tokio::spawn(accept_and_close(
                    listener,
                    stop_rx.clone(),
                    Arc::clone(&accepted),
                    Arc::clone(&accept_errors),
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
            live,
            dead,
            accepted,
            accept_errors,
            primed,
        })
    }

    /// The target of site `i` (0-based).
    fn target(&self, i: usize, dead_every: usize) -> SocketAddr {
        let a = i % self.live.len();
        if dead_every > 0 && (i + 1).is_multiple_of(dead_every) && !self.dead.is_empty() {
            self.dead[a]
        } else {
            self.live[a]
        }
    }

    fn shutdown(self) {
        let _ = self.stop.send(true);
        self.runtime.shutdown_timeout(Duration::from_secs(2));
    }
}

// ---------------------------------------------------------------------------
// The daemon

fn write_config(
    dir: &Path,
    scenario: &Scenario,
    farm: &Farm,
) -> anyhow::Result<std::path::PathBuf> {
    let mut text = String::with_capacity(64 * scenario.sites + 512);
    let _ = write!(
        text,
        "version = 1\n\n[daemon]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n\
         max_concurrent_probes = {MAX_CONCURRENT_PROBES}\n\n[defaults]\ninterval = \"{}\"\ntimeout = \"{}\"\n",
        dir.join("state").display(),
        humantime::format_duration(scenario.interval),
        humantime::format_duration(scenario.timeout),
    );
    for i in 0..scenario.sites {
        let _ = write!(
            text,
            "\n[[site]]\nname = \"t{:05}\"\nurl = \"tcp://{}\"\n",
            i + 1,
            farm.target(i, scenario.dead_every)
        );
    }
    let path = dir.join("sites.toml");
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// What the daemon wrote to stderr after start-up.
#[derive(Default)]
struct LogTally {
    lines: u64,
    warnings: u64,
    errors: u64,
    samples: Vec<String>,
}

/// Reads stderr until EOF (the daemon exits), counting warnings and errors.
async fn drain_stderr(
    mut lines: tokio::io::Lines<BufReader<tokio::process::ChildStderr>>,
) -> LogTally {
    let mut tally = LogTally::default();
    // Bounded: ends at EOF, and the daemon is always stopped at the end of a run.
    while let Ok(Some(line)) = lines.next_line().await {
        tally.lines += 1;
        let warn = line.contains(" WARN ");
        let error = line.contains(" ERROR ");
        tally.warnings += u64::from(warn);
        tally.errors += u64::from(error);
        if (warn || error) && tally.samples.len() < 5 {
            tally.samples.push(line);
        }
    }
    tally
}

/// One reading of the daemon's figures.
struct Snapshot {
    at: Instant,
    health: Value,
    cpu_ticks: u64,
}

impl Snapshot {
    fn sched(&self, key: &str) -> u64 {
        self.health["scheduler"][key].as_u64().unwrap_or(0)
    }
    fn lag(&self, key: &str) -> f64 {
        self.health["scheduler"]["lag_ms"][key]
            .as_f64()
            .unwrap_or(f64::NAN)
    }
    fn count(&self, key: &str) -> u64 {
        self.health[key].as_u64().unwrap_or(0)
    }
}

async fn get_health(client: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let resp = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    if !status.is_success() {
        bail!("GET {url}: HTTP {status}");
    }
    resp.json()
        .await
        .with_context(|| format!("GET {url}: bad JSON"))
}

/// Reads `/healthz` just after the scheduler publishes new figures (about
/// once a second), and the daemon's CPU time at that moment.
async fn snapshot(client: &reqwest::Client, url: &str, pid: u32) -> anyhow::Result<Snapshot> {
    let first = get_health(client, url).await?;
    let probes = |h: &Value| h["scheduler"]["probes"].as_u64();
    let before = probes(&first).context("/healthz has no scheduler.probes")?;
    let deadline = Instant::now() + PUBLISH_WAIT;
    let mut last = first;
    while Instant::now() < deadline {
        tokio::time::sleep(PUBLISH_POLL).await;
        let h = get_health(client, url).await?;
        let changed = probes(&h) != Some(before);
        last = h;
        if changed {
            break;
        }
    }
    Ok(Snapshot {
        at: Instant::now(),
        cpu_ticks: cpu_ticks(pid)?,
        health: last,
    })
}

/// The figures of one run.
#[derive(Clone, Default)]
struct RunResult {
    window_s: f64,
    planned_per_s: f64,
    achieved_per_s: f64,
    cpu_us_per_probe: f64,
    cpu_pct: f64,
    peak_rss_kib: f64,
    rss_per_site_kib: f64,
    lag_p50: f64,
    lag_p99: f64,
    lag_max: f64,
    skipped: f64,
    probe_errors: f64,
}

/// Sends SIGTERM to the child, waits up to [`STOP_LIMIT`], then SIGKILL.
async fn stop_daemon(child: &mut tokio::process::Child, pid: u32) -> anyhow::Result<String> {
    let t = Instant::now();
    // SAFETY: kill(2) with the PID of our own child, which has not been
    // reaped yet (we still hold it and have not waited on it), so the PID
    // cannot have been reused.
    let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("kill(SIGTERM)");
    }
    match tokio::time::timeout(STOP_LIMIT, child.wait()).await {
        Ok(status) => Ok(format!(
            "stopped by SIGTERM in {:.3} s ({})",
            t.elapsed().as_secs_f64(),
            status?
        )),
        Err(_) => {
            child.start_kill()?;
            let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
                .await
                .context("the daemon did not die after SIGKILL")??;
            Ok(format!(
                "did NOT stop within {}s of SIGTERM; killed ({status})",
                STOP_LIMIT.as_secs()
            ))
        }
    }
}

struct RunEnv<'a> {
    scenario: &'a Scenario,
    duration: Duration,
    pin: Option<Pinning>,
    clk_tck: u64,
    client: &'a reqwest::Client,
}

async fn run_daemon(env: &RunEnv<'_>, config: &Path, farm: &Farm) -> anyhow::Result<RunResult> {
    let sc = env.scenario;
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sitewatch"));
    cmd.arg("run")
        .arg("--config")
        .arg(config)
        .env("SITEWATCH_LOG", "info")
        .env_remove("JOURNAL_STREAM")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let Some(p) = env.pin {
        let set = cpu_set_of(p.daemon_cpu);
        // SAFETY: the closure runs in the forked child before exec, where only
        // async-signal-safe calls are allowed: it makes one raw syscall
        // (sched_setaffinity on the child itself, pid 0) on a cpu_set_t that
        // was built before the fork and is copied into the closure; it does
        // not allocate or take locks.
        unsafe {
            cmd.pre_exec(move || {
                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().context("cannot start sitewatch")?;
    let pid = child.id().context("the daemon has no PID")?;
    let stderr = child.stderr.take().context("no stderr pipe")?;
    let mut lines = BufReader::new(stderr).lines();

    // Find the API address in the start-up log.
    let deadline = Instant::now() + STARTUP_LIMIT;
    let mut seen = Vec::new();
    let mut api = None;
    for _ in 0..STARTUP_MAX_LINES {
        let line = match tokio::time::timeout_at(deadline, lines.next_line()).await {
            Err(_) => break,
            Ok(r) => match r? {
                Some(l) => l,
                None => break,
            },
        };
        if line.contains("api listening") {
            api = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("addr="))
                .and_then(|a| a.parse::<SocketAddr>().ok());
            if api.is_none() {
                bail!("cannot parse the API address from {line:?}");
            }
            break;
        }
        if seen.len() < 20 {
            seen.push(line);
        }
    }
    let Some(api) = api else {
        let _ = stop_daemon(&mut child, pid).await;
        bail!(
            "sitewatch did not log `api listening` within {}s; its stderr:\n{}",
            STARTUP_LIMIT.as_secs(),
            seen.join("\n")
        );
    };
    let started = Instant::now();
    let drain = tokio::spawn(drain_stderr(lines));
    let url = format!("http://{api}/healthz");

    let measured = async {
        tokio::time::sleep_until(started + sc.interval + WARMUP_EXTRA).await;
        let farm_accepted_0 = farm.accepted.load(Ordering::Relaxed);
        let a = snapshot(env.client, &url, pid).await?;
        tokio::time::sleep_until(a.at + env.duration).await;
        let b = snapshot(env.client, &url, pid).await?;
        let farm_accepted = farm.accepted.load(Ordering::Relaxed) - farm_accepted_0;
        let hwm = status_kib(pid, "VmHWM")?;
        anyhow::Ok((a, b, hwm, farm_accepted))
    }
    .await;
    let stopped = stop_daemon(&mut child, pid).await;
    let tally = tokio::time::timeout(Duration::from_secs(5), drain)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let (a, b, hwm, farm_accepted) = measured?;
    let stopped = stopped?;

    let window = (b.at - a.at).as_secs_f64();
    let probes = b.sched("probes").saturating_sub(a.sched("probes"));
    let errors = b
        .sched("probe_errors")
        .saturating_sub(a.sched("probe_errors"));
    let skipped = b.sched("skipped").saturating_sub(a.sched("skipped"));
    let cpu_s = (b.cpu_ticks - a.cpu_ticks) as f64 / env.clk_tck as f64;
    let attempts = (probes + errors).max(1) as f64;
    let r = RunResult {
        window_s: window,
        planned_per_s: sc.sites as f64 / sc.interval.as_secs_f64(),
        achieved_per_s: probes as f64 / window,
        cpu_us_per_probe: cpu_s * 1e6 / attempts,
        cpu_pct: 100.0 * cpu_s / window,
        peak_rss_kib: hwm as f64,
        rss_per_site_kib: hwm as f64 / sc.sites as f64,
        lag_p50: b.lag("p50"),
        lag_p99: b.lag("p99"),
        lag_max: b.lag("max"),
        skipped: skipped as f64,
        probe_errors: errors as f64,
    };
    println!(
        "  window {:.2} s: {:.1} probes/s of {:.1} planned ({:.1} %) | CPU {:.1} µs/probe ({:.1} % of a CPU) | \
         peak RSS {:.1} MiB ({:.2} KiB/site) | lag p50 {:.2} / p99 {:.2} / max {:.2} ms (cumulative) | \
         skipped +{skipped} | probe_errors +{errors}",
        r.window_s,
        r.achieved_per_s,
        r.planned_per_s,
        100.0 * r.achieved_per_s / r.planned_per_s,
        r.cpu_us_per_probe,
        r.cpu_pct,
        r.peak_rss_kib / 1024.0,
        r.rss_per_site_kib,
        r.lag_p50,
        r.lag_p99,
        r.lag_max,
    );
    println!(
        "  sites up {} / down {} / degraded {} / unknown {}; in flight at end {}; farm accepts in window {} ({:.1}/s, accept errors {}); \
         daemon log: {} lines after start-up, {} WARN, {} ERROR; {}",
        b.count("up"),
        b.count("down"),
        b.count("degraded"),
        b.count("unknown"),
        b.sched("in_flight"),
        farm_accepted,
        farm_accepted as f64 / window,
        farm.accept_errors.load(Ordering::Relaxed),
        tally.lines,
        tally.warnings,
        tally.errors,
        stopped,
    );
    for s in &tally.samples {
        println!("    log: {s}");
    }
    Ok(r)
}

// ---------------------------------------------------------------------------
// Report

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| !x.is_nan());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn summary_row(sc: &Scenario, runs: &[RunResult]) -> String {
    let m = |f: fn(&RunResult) -> f64| median(runs.iter().map(f).collect());
    format!(
        "| {} | {} | {} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {:.0} |",
        sc.name,
        sc.sites,
        humantime::format_duration(sc.interval),
        humantime::format_duration(sc.timeout),
        runs.len(),
        m(|r| r.planned_per_s),
        m(|r| r.achieved_per_s),
        m(|r| r.cpu_us_per_probe),
        m(|r| r.cpu_pct),
        m(|r| r.peak_rss_kib) / 1024.0,
        m(|r| r.rss_per_site_kib),
        m(|r| r.lag_p50),
        m(|r| r.lag_p99),
        m(|r| r.lag_max),
        m(|r| r.skipped),
        m(|r| r.probe_errors),
    )
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string())
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

fn main() -> anyhow::Result<()> {
    // reqwest is built without a default crypto provider (sitewatch uses ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(opts) = parse_args(std::env::args().skip(1))? else {
        println!("{USAGE}");
        return Ok(());
    };
    let clk_tck = clock_ticks_per_second()?;
    let nofile = raise_nofile()?;
    let cpus = allowed_cpus()?;
    // Pin before any other thread exists, so every bench thread inherits it.
    let pin = if cpus.len() >= 2 {
        let p = Pinning {
            daemon_cpu: cpus[0],
            farm_cpu: cpus[1],
        };
        pin_current_thread(p.farm_cpu)?;
        Some(p)
    } else {
        None
    };

    println!("# sitewatch scale benchmark");
    println!(
        "binary {}; {} ({} CPU(s) allowed), Linux {}; clock ticks {clk_tck}/s; open-files limit {nofile}",
        env!("CARGO_BIN_EXE_sitewatch"),
        cpu_model(),
        cpus.len(),
        kernel()
    );
    match pin {
        Some(p) => println!(
            "pinning: daemon on CPU {}, bench process and target farm on CPU {}",
            p.daemon_cpu, p.farm_cpu
        ),
        None => println!("pinning: skipped (only one CPU); daemon and farm share it"),
    }
    println!(
        "{} run(s) per scenario, {} measured after a warm-up of one interval + {}s; \
         lag percentiles are cumulative since the daemon started, read at the end of the window",
        opts.runs,
        humantime::format_duration(opts.duration),
        WARMUP_EXTRA.as_secs()
    );

    let main_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot build the bench runtime")?;
    let client = main_rt.block_on(async {
        reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .context("cannot build the HTTP client")
    })?;

    let mut results: Vec<(&Scenario, Vec<RunResult>)> = Vec::new();
    for sc in &opts.scenarios {
        println!(
            "\n## {}: {} tcp:// sites every {}, timeout {}{}",
            sc.name,
            sc.sites,
            humantime::format_duration(sc.interval),
            humantime::format_duration(sc.timeout),
            if sc.dead_every > 0 {
                format!(
                    ", every {}th site's target never answers the SYN",
                    sc.dead_every
                )
            } else {
                String::new()
            }
        );
        if let Some(note) = sc.note {
            println!("NOTE: {note}");
        }
        let mut runs = Vec::new();
        for run in 1..=opts.runs {
            println!("run {run}/{}:", opts.runs);
            let farm = Farm::start(sc.dead_every > 0, pin)?;
            if !farm.primed.is_empty() {
                println!(
                    "  dead targets: {} listeners with listen(1), queues filled by {:?} connections each; \
                     a further connect timed out after {} ms on every one",
                    farm.dead.len(),
                    farm.primed,
                    PRIME_TIMEOUT.as_millis()
                );
            }
            let dir = tempfile::Builder::new()
                .prefix("sitewatch-scale-")
                .tempdir()
                .context("cannot create a temporary directory")?;
            let config = write_config(dir.path(), sc, &farm)?;
            let env = RunEnv {
                scenario: sc,
                duration: opts.duration,
                pin,
                clk_tck,
                client: &client,
            };
            let result = main_rt.block_on(run_daemon(&env, &config, &farm));
            farm.shutdown();
            runs.push(result.with_context(|| format!("{} run {run}", sc.name))?);
        }
        results.push((sc, runs));
    }

    println!("\n## Summary (median over runs)\n");
    println!(
        "| scenario | sites | interval | timeout | runs | planned probes/s | achieved probes/s | CPU µs/probe | daemon CPU % | peak RSS MiB | RSS KiB/site | lag p50 ms | lag p99 ms | lag max ms | skipped | probe errors |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for (sc, runs) in &results {
        println!("{}", summary_row(sc, runs));
    }
    println!(
        "\nEach column is the median of that figure over the runs. Lag is cumulative since the \
         daemon started (warm-up included), as /healthz reports it at the end of the window; \
         skipped and probe errors are counted over the window only."
    );
    if results.iter().any(|(sc, _)| sc.note.is_some()) {
        println!(
            "1k-2s-10pct-dead: specified as every 1s with a 2s timeout; runs every 2s because \
             sitewatch requires timeout <= interval."
        );
    }
    Ok(())
}
