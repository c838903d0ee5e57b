//! Scale benchmark: what the real `sitewatch` daemon costs, and how well it
//! keeps its schedule, with thousands of sites; and what the least prober
//! on the same stack ("the floor") costs for the same work, in the same run.
//!
//! # What it measures
//!
//! For each scenario and run it starts the release `sitewatch` binary
//! (`CARGO_BIN_EXE_sitewatch`) as a child process, lets it probe a farm of
//! loopback targets, and prints:
//!
//! - probes per second achieved (Δ`probes` of `/healthz` over the measured
//!   window) against the plan (sites / interval);
//! - CPU microseconds per probe of the daemon process alone (Δ CPU time
//!   over the window divided by Δprobes), and the daemon's CPU use as a
//!   share of one CPU. The CPU time is the process's CPU-time clock
//!   (`clock_getcpuclockid`, ns; the same sum as utime + stime, every
//!   thread, exited ones included); Δ(utime + stime) of `/proc/PID/stat`
//!   in clock ticks is printed beside it as a cross-check, and used if the
//!   clock cannot be read;
//! - peak RSS (`VmHWM` of `/proc/PID/status`) and peak RSS per site;
//! - scheduling lag p50 / p99 / max in ms, from `/healthz`. These are
//!   cumulative since the daemon started (warm-up included), read at the end
//!   of the window: /healthz has no windowed figure;
//! - the Δ of `skipped` and `probe_errors` over the window (both should be 0;
//!   anything else is a finding);
//! - start-up: time from spawning the daemon to its `api listening` log
//!   line (the configuration is loaded by then) and to its first completed
//!   probe (the first `site is …` log line: every site logs its first
//!   result, a change from unknown).
//!
//! Then, in the same run, the **reference prober** of the scenario's kind
//! ("the floor", benches/scale/reference.rs: a minimal tokio/hyper/rustls
//! prober with one scheduling loop and a task per probe) against the same
//! farm and the same site list, pinned to the same CPU, for a window of the
//! same length, measured the same way (CPU clock, `VmHWM`; probes from the
//! JSON line it prints about once a second). Runs alternate which of the
//! two goes first. The summary gives sitewatch's µs/probe, the floor's, and
//! their ratio (the median of each run's ratio, with the lowest and highest
//! run's: both were measured minutes apart at most, under much the same
//! background load).
//!
//! Scenario `100k-60s` adds, in each run: a `GET /metrics` scrape after the
//! window (three, one second apart: wall time, size), then a reload —
//! the file rewritten with every site renamed, SIGHUP — timed to the
//! `configuration reloaded` log line, with `/healthz` read just before the
//! SIGHUP and [`RELOAD_SETTLE`] after the reload applied (lag figures are
//! cumulative: a change of p99 or max between the two is the reload's).
//!
//! Then Markdown tables with the median of each figure over the runs (each
//! column's median on its own), ready to paste into docs/performance.md.
//!
//! # How
//!
//! - The target farm (benches/scale/farm.rs) runs in this process, on its
//!   own one-worker tokio runtime, only on loopback: 16 listeners on
//!   127.0.0.1 … 127.0.0.16, each on an ephemeral port (sites are spread
//!   round-robin over them so that no single 4-tuple set runs out of
//!   ephemeral ports). `tcp` targets accept and close; `http` targets are
//!   hyper HTTP/1.1 servers answering a 200-byte HTML page (`200 OK`,
//!   `Content-Type`, `Content-Length`; the close follows the answer, as
//!   sitewatch asks with `Connection: close`); `https` ones the same behind
//!   rustls with a certificate from a CA generated for the run (the sites'
//!   `ca_file`), no session resumption. For scenarios with dead targets,
//!   one more listener per address is created with `listen(1)` and never
//!   accepted; the bench fills its accept queue itself before the daemon
//!   starts (and checks that a further connect then times out), so the
//!   kernel drops every later SYN and the daemon's connects time out
//!   (`tcp.timeout`).
//! - With at least two CPUs the daemon (and the floor) is pinned to the
//!   first allowed CPU and the whole bench process (farm included) to the
//!   second, with `sched_setaffinity`; with one CPU nothing is pinned and
//!   the output says so. Other load on the machine is not controlled: that
//!   is why the floor runs in the same run and the ratio is the figure.
//! - Each run writes a config to a temporary directory, starts the daemon
//!   with `SITEWATCH_LOG=info`, finds the API address in the `api
//!   listening` log line, waits one interval + 2 s of warm-up, then reads
//!   `/healthz` and the CPU time at the start and the end of the window.
//!   Each read is taken just after the scheduler published new figures
//!   (they are published about once a second), so the window's length
//!   matches the counters'. The floor's readings are taken the same way on
//!   its lines (which cost it nothing to watch). The wait for the last
//!   publication of a window starts 250 ms before it is due, polling
//!   `/healthz` every 20 ms: the dozen or so polls inside the window are
//!   charged to the daemon (each `/healthz` counts every site's status:
//!   about 3 ms of CPU at 100,000 sites, so about 1 µs per probe there,
//!   far less with fewer sites).
//! - The daemon and the floor are stopped with SIGTERM to their own PID, and
//!   SIGKILL only if they have not exited 10 s later.
//!
//! # Run it
//!
//! ```sh
//! cargo bench --bench scale                          # the 4 default scenarios × 3 runs × 30 s, with floors (~16 min)
//! cargo bench --bench scale -- --quick --scenario 1k-1s
//! cargo bench --bench scale -- --scenario 1k-5s-http --runs 3 --duration 20s
//! cargo bench --bench scale -- --scenario 100k-60s --runs 3 --duration 20s   # opt-in (~11 min)
//! cargo bench --bench scale -- --scenario 1k-5s-https-w1 --scenario 1k-5s-https-w2
//! ```
//!
//! Options: `--scenario NAME` (repeatable; `all` for every scenario;
//! default: `1k-1s`, `10k-10s`, `1k-2s-10pct-dead`, `1k-5s-http`),
//! `--runs N` (default 3), `--duration DUR` (measured window, default 30s),
//! `--quick` (1 run of 10 s unless `--runs` / `--duration` say otherwise),
//! `--no-floor` (sitewatch only), `--help`. Opt-in scenarios: `100k-60s`
//! (a 62 s warm-up per process), `1k-5s-https-w1` and `1k-5s-https-w2`
//! (`[daemon] worker_threads = 1` / `2`, the daemon still pinned to one CPU).
//!
//! Scenario `1k-2s-10pct-dead` was specified as "1,000 sites every 1 s, 10 %
//! dead, timeout 2 s", but sitewatch rejects a timeout above the interval, so
//! it runs every 2 s with a 2 s timeout (`1k-1s-10pct-dead` is accepted as an
//! alias).
//!
//! The bench binary also runs the floor itself when started with
//! `--reference tcp|http|https --targets FILE --interval DUR --timeout DUR
//! [--ca FILE]` (see benches/scale/reference.rs).

#[path = "scale/farm.rs"]
mod farm;
#[path = "scale/reference.rs"]
mod reference;
#[path = "scale/report.rs"]
mod report;
#[path = "scale/sys.rs"]
mod sys;

use anyhow::{Context, bail};
use farm::{Farm, Kind, Pki};
use report::{BigResult, Pair, RunResult};
use serde_json::Value;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use sys::{CpuTime, Pinning};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// The daemon's probe cap.
const MAX_CONCURRENT_PROBES: usize = 4096;
/// Warm-up beyond one interval.
const WARMUP_EXTRA: Duration = Duration::from_secs(2);
/// How long to wait for the daemon's `api listening` line.
const STARTUP_LIMIT: Duration = Duration::from_secs(60);
/// Most stderr lines read while waiting for `api listening`.
const STARTUP_MAX_LINES: usize = 10_000;
/// How long to wait for a fresh publication of the scheduler's figures.
const PUBLISH_WAIT: Duration = Duration::from_secs(3);
/// How long before the end of a window the wait for the last publication
/// starts (publications drift by a few ms per second from the first one).
const PUBLISH_LEAD: Duration = Duration::from_millis(250);
/// Poll period while waiting for that publication.
const PUBLISH_POLL: Duration = Duration::from_millis(20);
/// Attempts of one `GET /healthz`.
const GET_TRIES: usize = 3;
/// How long a reload may take before the run gives up on it.
const RELOAD_LIMIT: Duration = Duration::from_secs(120);
/// How long after a reload applied `/healthz` is read again.
const RELOAD_SETTLE: Duration = Duration::from_secs(10);
/// `GET /metrics` scrapes per run of a scenario with extras.
const METRICS_SCRAPES: usize = 3;
/// The longest one `GET /metrics` may take.
const METRICS_LIMIT: Duration = Duration::from_secs(60);

/// One benchmark scenario.
pub struct Scenario {
    pub name: &'static str,
    pub kind: Kind,
    pub sites: usize,
    pub interval: Duration,
    pub timeout: Duration,
    /// Every `dead_every`-th site (1-based) points at a target that never
    /// answers the SYN; 0: none.
    pub dead_every: usize,
    /// `[daemon] worker_threads`.
    pub worker_threads: usize,
    /// Part of a run without `--scenario`.
    pub default: bool,
    /// Start-up, `/metrics` and reload figures after the window.
    pub extras: bool,
    /// The issue's ceiling for sitewatch / floor, if it gives one.
    pub target_ratio: Option<f64>,
    pub note: Option<&'static str>,
}

const SCENARIOS: [Scenario; 7] = [
    Scenario {
        name: "1k-1s",
        kind: Kind::Tcp,
        sites: 1_000,
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        dead_every: 0,
        worker_threads: 1,
        default: true,
        extras: false,
        target_ratio: Some(1.2),
        note: None,
    },
    Scenario {
        name: "10k-10s",
        kind: Kind::Tcp,
        sites: 10_000,
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(2),
        dead_every: 0,
        worker_threads: 1,
        default: true,
        extras: false,
        target_ratio: Some(1.2),
        note: None,
    },
    Scenario {
        name: "1k-2s-10pct-dead",
        kind: Kind::Tcp,
        sites: 1_000,
        interval: Duration::from_secs(2),
        timeout: Duration::from_secs(2),
        dead_every: 10,
        worker_threads: 1,
        default: true,
        extras: false,
        target_ratio: Some(1.2),
        note: Some(
            "specified as 1,000 sites every 1s with a 2s timeout and 10 % dead targets; \
             sitewatch rejects timeout > interval, so it runs every 2s with a 2s timeout",
        ),
    },
    Scenario {
        name: "1k-5s-http",
        kind: Kind::Http,
        sites: 1_000,
        interval: Duration::from_secs(5),
        timeout: Duration::from_secs(2),
        dead_every: 0,
        worker_threads: 1,
        default: true,
        extras: false,
        target_ratio: Some(1.3),
        note: None,
    },
    Scenario {
        name: "100k-60s",
        kind: Kind::Tcp,
        sites: 100_000,
        interval: Duration::from_secs(60),
        timeout: Duration::from_secs(2),
        dead_every: 0,
        worker_threads: 1,
        default: false,
        extras: true,
        target_ratio: Some(1.2),
        note: None,
    },
    Scenario {
        name: "1k-5s-https-w1",
        kind: Kind::Https,
        sites: 1_000,
        interval: Duration::from_secs(5),
        timeout: Duration::from_secs(2),
        dead_every: 0,
        worker_threads: 1,
        default: false,
        extras: false,
        target_ratio: None,
        note: None,
    },
    Scenario {
        name: "1k-5s-https-w2",
        kind: Kind::Https,
        sites: 1_000,
        interval: Duration::from_secs(5),
        timeout: Duration::from_secs(2),
        dead_every: 0,
        worker_threads: 2,
        default: false,
        extras: false,
        target_ratio: None,
        note: Some("worker_threads = 2 with the daemon pinned to one CPU: two threads share it"),
    },
];

/// The command line.
struct Options {
    scenarios: Vec<&'static Scenario>,
    runs: usize,
    duration: Duration,
    floor: bool,
}

const USAGE: &str = "usage: cargo bench --bench scale -- [--scenario NAME]... [--runs N] [--duration DUR] [--quick] [--no-floor]
  --scenario NAME  1k-1s | 10k-10s | 1k-2s-10pct-dead | 1k-5s-http (the default set)
                   | 100k-60s | 1k-5s-https-w1 | 1k-5s-https-w2 (opt-in) | all (repeatable)
  --runs N         runs per scenario (default 3)
  --duration DUR   measured window per run and process, e.g. 30s (default 30s)
  --quick          1 run of 10s (explicit --runs / --duration still win)
  --no-floor       do not run the reference probers";

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
    let mut scenarios: Vec<&'static Scenario> = Vec::new();
    let mut runs = None;
    let mut duration = None;
    let mut quick = false;
    let mut floor = true;
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
            "--no-floor" => floor = false,
            "--scenario" => {
                let name = value("a scenario name")?;
                let chosen: Vec<&'static Scenario> = if name == "all" {
                    SCENARIOS.iter().collect()
                } else {
                    vec![
                        find_scenario(&name)
                            .with_context(|| format!("unknown scenario {name:?}\n{USAGE}"))?,
                    ]
                };
                for s in chosen {
                    if !scenarios.iter().any(|x| x.name == s.name) {
                        scenarios.push(s);
                    }
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
        scenarios = SCENARIOS.iter().filter(|s| s.default).collect();
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
        floor,
    }))
}

// ---------------------------------------------------------------------------
// The daemon's configuration

/// Site `i`'s name; `generation` tells a file from the one renaming every
/// site (the reload).
fn site_name(i: usize, generation: char) -> String {
    format!("t{:06}-{generation}", i + 1)
}

/// The sites of a run: name and target, in file order.
fn site_list(sc: &Scenario, farm: &Farm, generation: char) -> Vec<(String, SocketAddr)> {
    (0..sc.sites)
        .map(|i| (site_name(i, generation), farm.target(i, sc.dead_every)))
        .collect()
}

fn write_config(
    path: &Path,
    state_dir: &Path,
    sc: &Scenario,
    farm: &Farm,
    generation: char,
    ca_file: Option<&Path>,
) -> anyhow::Result<()> {
    let mut text = String::with_capacity(72 * sc.sites + 512);
    let _ = write!(
        text,
        "version = 1\n\n[daemon]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n\
         max_concurrent_probes = {MAX_CONCURRENT_PROBES}\nworker_threads = {}\n\n\
         [defaults]\ninterval = \"{}\"\ntimeout = \"{}\"\n",
        state_dir.display(),
        sc.worker_threads,
        humantime::format_duration(sc.interval),
        humantime::format_duration(sc.timeout),
    );
    if let Some(ca) = ca_file {
        let _ = writeln!(text, "ca_file = \"{}\"", ca.display());
    }
    for i in 0..sc.sites {
        let _ = write!(
            text,
            "\n[[site]]\nname = \"{}\"\nurl = \"{}\"\n",
            site_name(i, generation),
            farm.url(i, sc.dead_every)
        );
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

// ---------------------------------------------------------------------------
// The daemon's log

/// What the daemon wrote to stderr after start-up.
#[derive(Default)]
struct LogTally {
    lines: u64,
    warnings: u64,
    errors: u64,
    samples: Vec<String>,
}

/// A log line the run waits for.
#[derive(Debug)]
enum Event {
    /// The first `site is …` / `site recovered` line: a probe completed.
    FirstProbe,
    /// `configuration reloaded`.
    Reloaded,
    /// `reload failed`.
    ReloadFailed,
}

fn is_probe_line(line: &str) -> bool {
    line.contains(" site is ") || line.contains(" site recovered")
}

/// Reads stderr until EOF (the daemon exits), counting warnings and errors
/// and telling `events` of the lines a run waits for.
async fn drain_stderr(
    mut lines: tokio::io::Lines<BufReader<tokio::process::ChildStderr>>,
    events: mpsc::UnboundedSender<(Instant, Event)>,
    mut first_probe_seen: bool,
) -> LogTally {
    let mut tally = LogTally::default();
    // Bounded: ends at EOF, and the daemon is always stopped at the end of a run.
    while let Ok(Some(line)) = lines.next_line().await {
        let now = Instant::now();
        tally.lines += 1;
        let warn = line.contains(" WARN ");
        let error = line.contains(" ERROR ");
        tally.warnings += u64::from(warn);
        tally.errors += u64::from(error);
        if (warn || error) && tally.samples.len() < 5 {
            tally.samples.push(line.clone());
        }
        if !first_probe_seen && is_probe_line(&line) {
            first_probe_seen = true;
            let _ = events.send((now, Event::FirstProbe));
        } else if line.contains("configuration reloaded") {
            let _ = events.send((now, Event::Reloaded));
        } else if line.contains("reload failed") {
            let _ = events.send((now, Event::ReloadFailed));
        }
    }
    tally
}

/// A running daemon.
struct Daemon {
    child: tokio::process::Child,
    pid: u32,
    spawned: Instant,
    /// When `api listening` was read.
    api_at: Instant,
    api: SocketAddr,
    /// When the first probe was logged, if seen yet.
    first_probe_at: Option<Instant>,
    events: mpsc::UnboundedReceiver<(Instant, Event)>,
    drain: tokio::task::JoinHandle<LogTally>,
}

async fn start_daemon(config: &Path, pin: Option<Pinning>) -> anyhow::Result<Daemon> {
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
    if let Some(p) = pin {
        sys::pin_command(&mut cmd, p.daemon_cpu);
    }
    let spawned = Instant::now();
    let mut child = cmd.spawn().context("cannot start sitewatch")?;
    let pid = child.id().context("the daemon has no PID")?;
    let stderr = child.stderr.take().context("no stderr pipe")?;
    let mut lines = BufReader::new(stderr).lines();

    // Find the API address in the start-up log.
    let deadline = Instant::now() + STARTUP_LIMIT;
    let mut seen = Vec::new();
    let mut api = None;
    let mut first_probe_at = None;
    for _ in 0..STARTUP_MAX_LINES {
        let line = match tokio::time::timeout_at(deadline, lines.next_line()).await {
            Err(_) => break,
            Ok(r) => match r? {
                Some(l) => l,
                None => break,
            },
        };
        if first_probe_at.is_none() && is_probe_line(&line) {
            first_probe_at = Some(Instant::now());
        }
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
        let _ = sys::stop_child(&mut child, pid).await;
        bail!(
            "sitewatch did not log `api listening` within {}s; its stderr:\n{}",
            STARTUP_LIMIT.as_secs(),
            seen.join("\n")
        );
    };
    let api_at = Instant::now();
    let (tx, events) = mpsc::unbounded_channel();
    let drain = tokio::spawn(drain_stderr(lines, tx, first_probe_at.is_some()));
    Ok(Daemon {
        child,
        pid,
        spawned,
        api_at,
        api,
        first_probe_at,
        events,
        drain,
    })
}

impl Daemon {
    /// Waits (at most `limit`) for an event; other events are dropped,
    /// except that a first probe is noted.
    async fn wait_for(
        &mut self,
        limit: Duration,
        want: impl Fn(&Event) -> bool,
    ) -> anyhow::Result<(Instant, Event)> {
        let deadline = Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Err(_) => bail!("no such log line within {} s", limit.as_secs()),
                Ok(None) => bail!("the daemon's log ended"),
                Ok(Some((at, ev))) => {
                    if matches!(ev, Event::FirstProbe) {
                        self.first_probe_at.get_or_insert(at);
                    }
                    if want(&ev) {
                        return Ok((at, ev));
                    }
                }
            }
        }
    }

    async fn stop(mut self) -> (anyhow::Result<String>, LogTally) {
        let stopped = sys::stop_child(&mut self.child, self.pid).await;
        let tally = tokio::time::timeout(Duration::from_secs(5), self.drain)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        (stopped, tally)
    }
}

// ---------------------------------------------------------------------------
// Readings

/// One reading of a measured process's figures.
struct Reading {
    at: Instant,
    cpu: CpuTime,
    probes: u64,
    errors: u64,
    skipped: u64,
    in_flight: u64,
    lag: [f64; 3],
    /// The daemon's `/healthz`.
    health: Option<Value>,
    /// The floor's line.
    line: Option<reference::Line>,
}

impl Reading {
    fn count(&self, key: &str) -> u64 {
        self.health
            .as_ref()
            .and_then(|h| h[key].as_u64())
            .unwrap_or(0)
    }
}

/// Where a reading comes from.
enum Source<'a> {
    Daemon {
        client: &'a reqwest::Client,
        url: String,
    },
    Floor {
        lines: &'a mut watch::Receiver<Option<reference::Line>>,
    },
}

/// `GET url` as JSON; a request that fails before any answer is tried
/// again (at most [`GET_TRIES`] times in all), saying so.
async fn get_health(client: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let mut tries = 0;
    let resp = loop {
        tries += 1;
        let t = Instant::now();
        match client.get(url).send().await {
            Ok(resp) => break resp,
            Err(e) if tries < GET_TRIES => println!(
                "  GET {url} failed after {:.0} ms ({:#}); trying again",
                t.elapsed().as_secs_f64() * 1e3,
                anyhow::Error::from(e)
            ),
            Err(e) => return Err(e).with_context(|| format!("GET {url}")),
        }
    };
    let status = resp.status();
    if !status.is_success() {
        bail!("GET {url}: HTTP {status}");
    }
    resp.json()
        .await
        .with_context(|| format!("GET {url}: bad JSON"))
}

fn health_reading(h: Value, cpu: CpuTime) -> Reading {
    let s = &h["scheduler"];
    let u = |k: &str| s[k].as_u64().unwrap_or(0);
    let lag = |k: &str| s["lag_ms"][k].as_f64().unwrap_or(f64::NAN);
    Reading {
        at: Instant::now(),
        cpu,
        probes: u("probes"),
        errors: u("probe_errors"),
        skipped: u("skipped"),
        in_flight: u("in_flight"),
        lag: [lag("p50"), lag("p99"), lag("max")],
        health: Some(h),
        line: None,
    }
}

impl Source<'_> {
    /// Reads the figures just after the process published new ones (about
    /// once a second), and its CPU time at that moment.
    async fn read(&mut self, pid: u32) -> anyhow::Result<Reading> {
        match self {
            Source::Daemon { client, url } => {
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
                let cpu = CpuTime::read(pid)?;
                Ok(health_reading(last, cpu))
            }
            Source::Floor { lines } => {
                lines.borrow_and_update();
                tokio::time::timeout(PUBLISH_WAIT, lines.changed())
                    .await
                    .context("the floor printed no line in time")?
                    .context("the floor's output ended")?;
                let cpu = CpuTime::read(pid)?;
                let l = lines
                    .borrow_and_update()
                    .clone()
                    .context("the floor printed nothing")?;
                Ok(Reading {
                    at: Instant::now(),
                    cpu,
                    probes: l.probes,
                    errors: 0,
                    skipped: l.skipped,
                    in_flight: l.in_flight,
                    lag: [l.lag_ms.p50, l.lag_ms.p99, l.lag_ms.max],
                    health: None,
                    line: Some(l),
                })
            }
        }
    }
}

/// Common settings of a run.
struct RunEnv<'a> {
    duration: Duration,
    pin: Option<Pinning>,
    clk_tck: u64,
    client: &'a reqwest::Client,
}

/// What a window gave.
struct Window {
    a: Reading,
    b: Reading,
    /// Peak RSS at the end, KiB.
    hwm: u64,
    /// Connections the farm accepted between the two readings.
    farm_accepted: u64,
    /// HTTP answers the farm sent between the two readings.
    farm_served: u64,
}

/// The window: from one interval + [`WARMUP_EXTRA`] after `ready`, two
/// readings `duration` apart, and the peak RSS at the end.
async fn window(
    source: &mut Source<'_>,
    pid: u32,
    ready: Instant,
    sc: &Scenario,
    env: &RunEnv<'_>,
    farm: &Farm,
) -> anyhow::Result<Window> {
    tokio::time::sleep_until(ready + sc.interval + WARMUP_EXTRA).await;
    let a = source.read(pid).await?;
    let (accepted_0, served_0) = (farm.accepted(), farm.served());
    // Start asking a little before the publication expected at the end, so
    // that few of the daemon's /healthz answers (each counts every site's
    // status) fall in the window.
    tokio::time::sleep_until(a.at + env.duration.saturating_sub(PUBLISH_LEAD)).await;
    let b = source.read(pid).await?;
    let farm_accepted = farm.accepted() - accepted_0;
    let farm_served = farm.served() - served_0;
    let hwm = sys::status_kib(pid, "VmHWM")?;
    Ok(Window {
        a,
        b,
        hwm,
        farm_accepted,
        farm_served,
    })
}

fn result_of(sc: &Scenario, env: &RunEnv<'_>, a: &Reading, b: &Reading, hwm: u64) -> RunResult {
    let window = (b.at - a.at).as_secs_f64();
    let probes = b.probes.saturating_sub(a.probes);
    let errors = b.errors.saturating_sub(a.errors);
    let attempts = (probes + errors).max(1) as f64;
    let cpu_s = a.cpu.seconds_until(&b.cpu, env.clk_tck);
    let tick_s = a.cpu.tick_seconds_until(&b.cpu, env.clk_tck);
    RunResult {
        window_s: window,
        planned_per_s: sc.sites as f64 / sc.interval.as_secs_f64(),
        achieved_per_s: probes as f64 / window,
        cpu_us_per_probe: cpu_s * 1e6 / attempts,
        tick_us_per_probe: tick_s * 1e6 / attempts,
        cpu_pct: 100.0 * cpu_s / window,
        peak_rss_kib: hwm as f64,
        rss_per_site_kib: hwm as f64 / sc.sites as f64,
        lag_p50: b.lag[0],
        lag_p99: b.lag[1],
        lag_max: b.lag[2],
        skipped: b.skipped.saturating_sub(a.skipped) as f64,
        probe_errors: errors as f64,
        ..RunResult::default()
    }
}

fn print_result(who: &str, r: &RunResult) {
    println!(
        "  {who}: window {:.2} s: {:.1} probes/s of {:.1} planned ({:.1} %) | CPU {:.1} µs/probe \
         (ticks: {:.1}) ({:.1} % of a CPU) | peak RSS {:.1} MiB ({:.2} KiB/site) | \
         lag p50 {:.2} / p99 {:.2} / max {:.2} ms (cumulative) | skipped +{} | probe_errors +{}",
        r.window_s,
        r.achieved_per_s,
        r.planned_per_s,
        100.0 * r.achieved_per_s / r.planned_per_s,
        r.cpu_us_per_probe,
        r.tick_us_per_probe,
        r.cpu_pct,
        r.peak_rss_kib / 1024.0,
        r.rss_per_site_kib,
        r.lag_p50,
        r.lag_p99,
        r.lag_max,
        r.skipped,
        r.probe_errors,
    );
}

// ---------------------------------------------------------------------------
// One run of sitewatch

/// What a run of the daemon needs besides the scenario.
struct DaemonRun<'a> {
    config: &'a Path,
    state_dir: &'a Path,
    ca_file: Option<&'a Path>,
    farm: &'a Farm,
}

async fn run_daemon(
    sc: &Scenario,
    env: &RunEnv<'_>,
    run: &DaemonRun<'_>,
) -> anyhow::Result<(RunResult, Option<BigResult>)> {
    let mut daemon = start_daemon(run.config, env.pin).await?;
    let pid = daemon.pid;
    let url = format!("http://{}/healthz", daemon.api);
    let api_s = (daemon.api_at - daemon.spawned).as_secs_f64();
    let measured = async {
        let mut source = Source::Daemon {
            client: env.client,
            url: url.clone(),
        };
        let Window {
            a,
            b,
            hwm,
            farm_accepted,
            farm_served,
        } = window(&mut source, pid, daemon.api_at, sc, env, run.farm).await?;
        // The first probe was logged long before the end of the warm-up.
        if daemon.first_probe_at.is_none() {
            let _ = daemon
                .wait_for(Duration::from_millis(1), |e| matches!(e, Event::FirstProbe))
                .await;
        }
        let big = if sc.extras {
            Some(extras(sc, env, run, &mut daemon, &mut source, &b, hwm).await?)
        } else {
            None
        };
        anyhow::Ok((a, b, hwm, (farm_accepted, farm_served), big))
    }
    .await;
    let first_s = daemon
        .first_probe_at
        .map(|t| (t - daemon.spawned).as_secs_f64());
    let (stopped, tally) = daemon.stop().await;
    let (a, b, hwm, (farm_accepted, farm_served), big) = measured?;
    let stopped = stopped?;
    let mut r = result_of(sc, env, &a, &b, hwm);
    r.api_s = api_s;
    r.first_probe_s = first_s.unwrap_or(f64::NAN);
    print_result("sitewatch", &r);
    let window = r.window_s;
    println!(
        "  sitewatch: start-up: `api listening` {api_s:.3} s, first probe {} after spawn; \
         sites up {} / down {} / degraded {} / unknown {}; in flight at end {}; \
         farm in window: {farm_accepted} accepts ({:.1}/s), {farm_served} HTTP answers; farm \
         accept errors {}, connection errors {} (whole run); daemon log: {} lines after start-up, {} WARN, {} ERROR; {stopped}",
        first_s.map_or("not seen".to_string(), |s| format!("{s:.3} s")),
        b.count("up"),
        b.count("down"),
        b.count("degraded"),
        b.count("unknown"),
        b.in_flight,
        farm_accepted as f64 / window,
        run.farm
            .counters
            .accept_errors
            .load(std::sync::atomic::Ordering::Relaxed),
        run.farm
            .counters
            .conn_errors
            .load(std::sync::atomic::Ordering::Relaxed),
        tally.lines,
        tally.warnings,
        tally.errors,
    );
    for s in &tally.samples {
        println!("    log: {s}");
    }
    Ok((r, big))
}

/// `GET /metrics` ([`METRICS_SCRAPES`] times), then a reload onto the file
/// with every site renamed.
async fn extras(
    sc: &Scenario,
    env: &RunEnv<'_>,
    run: &DaemonRun<'_>,
    daemon: &mut Daemon,
    source: &mut Source<'_>,
    end: &Reading,
    hwm: u64,
) -> anyhow::Result<BigResult> {
    let mut big = BigResult {
        lag_window: end.lag,
        peak_rss_kib: hwm as f64,
        ..BigResult::default()
    };
    let metrics_url = format!("http://{}/metrics", daemon.api);
    let mut times = Vec::new();
    for i in 0..METRICS_SCRAPES {
        if i > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let cpu0 = CpuTime::read(daemon.pid)?;
        let t = Instant::now();
        let resp = env
            .client
            .get(&metrics_url)
            .timeout(METRICS_LIMIT)
            .send()
            .await
            .context("GET /metrics")?;
        if !resp.status().is_success() {
            bail!("GET /metrics: HTTP {}", resp.status());
        }
        let body = resp.bytes().await.context("GET /metrics: body")?;
        let took = t.elapsed().as_secs_f64();
        let cpu_ms = cpu0.seconds_until(&CpuTime::read(daemon.pid)?, env.clk_tck) * 1e3;
        let series = body.iter().filter(|&&b| b == b'\n').count();
        println!(
            "  sitewatch: GET /metrics {}: {:.1} ms, {:.2} MiB, {series} lines; daemon CPU meanwhile {cpu_ms:.1} ms (probes included)",
            i + 1,
            took * 1e3,
            body.len() as f64 / 1048576.0,
        );
        times.push(took);
        big.metrics_bytes = body.len() as f64;
    }
    big.metrics_ms = report::median(times) * 1e3;

    // The reload: every site renamed (removed and added).
    let before = source.read(daemon.pid).await?;
    big.lag_before_reload = before.lag;
    let generation = 'b';
    write_config(
        run.config,
        run.state_dir,
        sc,
        run.farm,
        generation,
        run.ca_file,
    )?;
    let t = Instant::now();
    sys::signal(daemon.pid, libc::SIGHUP)?;
    let (at, ev) = daemon
        .wait_for(RELOAD_LIMIT, |e| {
            matches!(e, Event::Reloaded | Event::ReloadFailed)
        })
        .await?;
    if matches!(ev, Event::ReloadFailed) {
        bail!("the reload failed (see the daemon's log)");
    }
    big.reload_s = (at - t).as_secs_f64();
    tokio::time::sleep_until(at + RELOAD_SETTLE).await;
    let after = source.read(daemon.pid).await?;
    big.lag_after_reload = after.lag;
    let span = (after.at - before.at).as_secs_f64();
    big.reload_probes_per_s = after.probes.saturating_sub(before.probes) as f64 / span;
    big.reload_skipped = after.skipped.saturating_sub(before.skipped) as f64;
    big.reload_errors = after.errors.saturating_sub(before.errors) as f64;
    big.peak_rss_after_reload_kib = sys::status_kib(daemon.pid, "VmHWM")? as f64;
    println!(
        "  sitewatch: reload, {} sites renamed: applied {:.3} s after SIGHUP; over {span:.1} s around it \
         {:.1} probes/s, skipped +{}, probe_errors +{}; lag p99 {:.2} → {:.2} ms, max {:.2} → {:.2} ms \
         (cumulative); peak RSS {:.1} → {:.1} MiB; sites up {} / unknown {} {:.0} s after",
        sc.sites,
        big.reload_s,
        big.reload_probes_per_s,
        big.reload_skipped,
        big.reload_errors,
        before.lag[1],
        after.lag[1],
        before.lag[2],
        after.lag[2],
        hwm as f64 / 1024.0,
        big.peak_rss_after_reload_kib / 1024.0,
        after.count("up"),
        after.count("unknown"),
        RELOAD_SETTLE.as_secs_f64(),
    );
    Ok(big)
}

// ---------------------------------------------------------------------------
// One run of the floor

async fn run_floor(
    sc: &Scenario,
    env: &RunEnv<'_>,
    args: &reference::FloorArgs<'_>,
    farm: &Farm,
) -> anyhow::Result<RunResult> {
    let mut floor = reference::Floor::spawn(args, env.pin)?;
    let pid = floor.pid;
    let measured = async {
        // Ready at its first line (printed as its loop starts).
        tokio::time::timeout(Duration::from_secs(30), floor.lines.changed())
            .await
            .context("the floor printed no line within 30 s")?
            .context("the floor's output ended")?;
        let ready = Instant::now();
        let mut source = Source::Floor {
            lines: &mut floor.lines,
        };
        let w = window(&mut source, pid, ready, sc, env, farm).await?;
        anyhow::Ok((w.a, w.b, w.hwm, (w.farm_accepted, w.farm_served)))
    }
    .await;
    let (stopped, last) = floor.stop().await;
    let (a, b, hwm, (accepted, served)) = measured?;
    let stopped = stopped?;
    let r = result_of(sc, env, &a, &b, hwm);
    print_result("floor", &r);
    let (la, lb) = (a.line.unwrap_or_default(), b.line.unwrap_or_default());
    let last = last.unwrap_or_default();
    println!(
        "  floor: in window ok +{} / failed +{}; farm in window: {accepted} accepts ({:.1}/s), {served} HTTP answers; \
         at exit: {} probes, {} ok, {} failed, {} skipped, in flight {} (done: {}); {stopped}",
        lb.ok.saturating_sub(la.ok),
        lb.failed.saturating_sub(la.failed),
        accepted as f64 / r.window_s,
        last.probes,
        last.ok,
        last.failed,
        last.skipped,
        last.in_flight,
        last.done,
    );
    Ok(RunResult {
        floor_failed: lb.failed.saturating_sub(la.failed) as f64,
        ..r
    })
}

// ---------------------------------------------------------------------------
// A run: sitewatch and the floor against one farm

fn run_pair(
    rt: &tokio::runtime::Runtime,
    sc: &Scenario,
    env: &RunEnv<'_>,
    pki: Option<&Pki>,
    run: usize,
    with_floor: bool,
) -> anyhow::Result<Pair> {
    let farm = Farm::start(sc.kind, sc.dead_every > 0, pki, env.pin)?;
    let result = (|| {
        if !farm.primed.is_empty() {
            println!(
                "  dead targets: {} listeners with listen(1), queues filled by {:?} connections each; \
                 a further connect timed out after {} ms on every one",
                farm.dead.len(),
                farm.primed,
                farm::PRIME_TIMEOUT.as_millis()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("sitewatch-scale-")
            .tempdir()
            .context("cannot create a temporary directory")?;
        let ca_file: Option<PathBuf> = match pki {
            Some(p) => Some(p.write_ca(dir.path())?),
            None => None,
        };
        let config = dir.path().join("sites.toml");
        let state_dir = dir.path().join("state");
        write_config(&config, &state_dir, sc, &farm, 'a', ca_file.as_deref())?;
        let targets = dir.path().join("targets.txt");
        reference::write_targets(&targets, &site_list(sc, &farm, 'a'))?;
        let daemon_run = DaemonRun {
            config: &config,
            state_dir: &state_dir,
            ca_file: ca_file.as_deref(),
            farm: &farm,
        };
        let floor_args = reference::FloorArgs {
            kind: sc.kind,
            targets: &targets,
            interval: sc.interval,
            timeout: sc.timeout,
            ca: ca_file.as_deref(),
        };
        // Alternate which goes first, so a drift of the machine's load
        // does not always favour the same one.
        let floor_first = with_floor && run.is_multiple_of(2);
        let mut floor = None;
        if floor_first {
            floor = Some(rt.block_on(run_floor(sc, env, &floor_args, &farm))?);
        }
        let (sitewatch, big) = rt.block_on(run_daemon(sc, env, &daemon_run))?;
        if with_floor && !floor_first {
            floor = Some(rt.block_on(run_floor(sc, env, &floor_args, &farm))?);
        }
        if let Some(f) = &floor {
            println!(
                "  ratio sitewatch / floor: {:.2} ({:.1} / {:.1} µs per probe)",
                sitewatch.cpu_us_per_probe / f.cpu_us_per_probe,
                sitewatch.cpu_us_per_probe,
                f.cpu_us_per_probe
            );
        }
        anyhow::Ok(Pair {
            sitewatch,
            floor,
            big,
        })
    })();
    farm.shutdown();
    result
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The floor: this binary re-executed by a run (no pinning of its own:
    // the run pinned it before exec).
    if args.iter().any(|a| a == "--reference") {
        return reference::child_main(&args);
    }
    // reqwest is built without a default crypto provider (sitewatch uses ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(opts) = parse_args(args)? else {
        println!("{USAGE}");
        return Ok(());
    };
    let clk_tck = sys::clock_ticks_per_second()?;
    let nofile = sys::raise_nofile()?;
    let cpus = sys::allowed_cpus()?;
    // Pin before any other thread exists, so every bench thread inherits it.
    let pin = if cpus.len() >= 2 {
        let p = Pinning {
            daemon_cpu: cpus[0],
            farm_cpu: cpus[1],
        };
        sys::pin_current_thread(p.farm_cpu)?;
        Some(p)
    } else {
        None
    };

    println!("# sitewatch scale benchmark");
    println!(
        "binary {}; {} ({} CPU(s) allowed), Linux {}; clock ticks {clk_tck}/s; open-files limit {nofile}; \
         CPU time from {}",
        env!("CARGO_BIN_EXE_sitewatch"),
        sys::cpu_model(),
        cpus.len(),
        sys::kernel(),
        if sys::cpu_clock_ns(std::process::id()).is_some() {
            "the process CPU-time clock (ns)"
        } else {
            "/proc/PID/stat ticks (no CPU-time clock)"
        }
    );
    match pin {
        Some(p) => println!(
            "pinning: daemon and floor on CPU {}, bench process and target farm on CPU {}",
            p.daemon_cpu, p.farm_cpu
        ),
        None => println!("pinning: skipped (only one CPU); daemon and farm share it"),
    }
    println!(
        "{} run(s) per scenario, {} measured per process after a warm-up of one interval + {}s; \
         lag percentiles are cumulative since the process started, read at the end of the window; \
         floor: {}",
        opts.runs,
        humantime::format_duration(opts.duration),
        WARMUP_EXTRA.as_secs(),
        if opts.floor { "yes" } else { "no" },
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
    let env = RunEnv {
        duration: opts.duration,
        pin,
        clk_tck,
        client: &client,
    };

    let mut results: Vec<(&Scenario, Vec<Pair>)> = Vec::new();
    for sc in &opts.scenarios {
        println!(
            "\n## {}: {} {}:// sites every {}, timeout {}, worker_threads {}{}",
            sc.name,
            sc.sites,
            sc.kind.as_str(),
            humantime::format_duration(sc.interval),
            humantime::format_duration(sc.timeout),
            sc.worker_threads,
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
        let pki = match sc.kind {
            Kind::Https => Some(Pki::generate()?),
            _ => None,
        };
        let mut runs = Vec::new();
        for run in 1..=opts.runs {
            println!("run {run}/{}:", opts.runs);
            let pair = run_pair(&main_rt, sc, &env, pki.as_ref(), run, opts.floor)
                .with_context(|| format!("{} run {run}", sc.name))?;
            runs.push(pair);
        }
        results.push((sc, runs));
    }
    report::print_summary(&results);
    Ok(())
}
