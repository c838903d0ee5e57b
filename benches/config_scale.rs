//! Configuration at scale: how long `sitewatch validate` takes and how much
//! memory it uses for thousands of sites, and how long the daemon takes from
//! its start to its first probe. Both should grow linearly with the sites.
//!
//! # What it measures
//!
//! - `validate`: for each size, a generated sites.toml
//!   (tests/common/sites_gen.rs: http, https and tcp targets on 127.0.0.1,
//!   tags, `[defaults]`, a webhook channel, one maintenance window) is
//!   checked by the release binary; wall time from spawn to exit and peak
//!   RSS (`ru_maxrss` of `wait4`), median of the runs. Then the same with
//!   one maintenance window per 100 sites, each listing its sites by name.
//! - start-up: `sitewatch run` on such a file (a fresh state directory,
//!   `listen = "127.0.0.1:0"`), time from spawn to the `api listening` log
//!   line, and to the first probe recorded: `/status/NAME` of the site whose
//!   offset in its interval is the smallest shows a `last_probe`. Then the
//!   file is rewritten with every site renamed and the daemon reloaded
//!   (SIGHUP): time to the `configuration reloaded` log line. Every
//!   target is a closed port on 127.0.0.1 (the bench binds one and lets it
//!   go), so probes fail at once with tcp.refused; alerts go to
//!   127.0.0.1:9. Nothing leaves the machine.
//!
//! # Run it
//!
//! ```sh
//! cargo bench --bench config_scale                       # 2k,10k,20k,100k × 3; daemon 10k,100k × 3
//! cargo bench --bench config_scale -- --sizes 5000 --runs 1 --startup none
//! cargo bench --bench config_scale -- --bin /tmp/sitewatch-old   # another build of the binary
//! cargo bench --bench config_scale -- --write 100000 /tmp/sites.toml
//! cargo bench --bench config_scale -- --windows 1000 --write 100000 /tmp/sites.toml
//! ```
//!
//! With `--write N FILE` it only writes the file (for `/usr/bin/time -v
//! sitewatch validate --config FILE`, a profiler, ...).

#[path = "../tests/common/sites_gen.rs"]
mod sites_gen;

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The longest a daemon gets to probe its first site.
const STARTUP_LIMIT: Duration = Duration::from_secs(600);
/// How often `/status/NAME` is asked while waiting for the first probe.
const POLL_EVERY: Duration = Duration::from_millis(2);

struct Options {
    bin: PathBuf,
    sizes: Vec<usize>,
    startup: Vec<usize>,
    runs: usize,
    /// Maintenance windows in a file written with `--write`.
    windows: usize,
}

fn sizes(arg: &str) -> anyhow::Result<Vec<usize>> {
    if arg == "none" {
        return Ok(Vec::new());
    }
    arg.split(',')
        .map(|s| s.trim().parse().with_context(|| format!("bad size {s:?}")))
        .collect()
}

fn parse_args() -> anyhow::Result<Option<Options>> {
    let mut o = Options {
        bin: PathBuf::from(env!("CARGO_BIN_EXE_sitewatch")),
        sizes: vec![2_000, 10_000, 20_000, 100_000],
        startup: vec![10_000, 100_000],
        runs: 3,
        windows: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            // Passed by `cargo bench` to every bench target.
            "--bench" => {}
            "--bin" => o.bin = PathBuf::from(value()?),
            "--sizes" => o.sizes = sizes(&value()?)?,
            "--startup" => o.startup = sizes(&value()?)?,
            "--runs" => o.runs = value()?.parse().context("--runs")?,
            "--windows" => o.windows = value()?.parse().context("--windows")?,
            "--write" => {
                let n: usize = value()?.parse().context("--write N FILE")?;
                let path = value()?;
                let text = sites_gen::sites_toml_with_windows(n, closed_port()?, "", o.windows);
                std::fs::write(&path, text)?;
                println!("wrote {n} sites to {path}");
                return Ok(None);
            }
            "--help" | "-h" => {
                println!(
                    "config_scale [--bin PATH] [--sizes N,N|none] [--startup N,N|none] [--runs N] | [--windows N] --write N FILE"
                );
                return Ok(None);
            }
            other => bail!("unknown argument {other:?} (see --help)"),
        }
    }
    Ok(Some(o))
}

/// A port on 127.0.0.1 that nothing listens on (bound, then let go).
fn closed_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Waits for a child and returns its exit status and peak RSS in KiB.
fn wait_with_rss(child: std::process::Child) -> anyhow::Result<(i32, u64)> {
    let pid = libc::pid_t::try_from(child.id())?;
    let mut status = 0;
    // SAFETY: `rusage` is plain data that wait4 fills; `status` is a valid
    // int; the child is ours and has not been waited for (std's `Child` is
    // dropped without `wait`, which neither kills nor reaps it).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    drop(child);
    if r != pid {
        bail!("wait4: {}", std::io::Error::last_os_error());
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Ok((code, u64::try_from(usage.ru_maxrss).unwrap_or(0)))
}

fn validate_once(bin: &Path, config: &Path) -> anyhow::Result<(f64, u64)> {
    let t = Instant::now();
    let child = Command::new(bin)
        .args(["validate", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start sitewatch")?;
    let (code, rss) = wait_with_rss(child)?;
    let secs = t.elapsed().as_secs_f64();
    if code != 0 {
        bail!("validate exited with {code} on {}", config.display());
    }
    Ok((secs, rss))
}

/// One `GET` over HTTP/1.1; the body.
fn get(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string()))
}

/// The name of the site probed first: the one with the smallest offset.
fn first_site(n: usize) -> String {
    let interval = Duration::from_secs(60); // [defaults] of the generated file
    (1..=n)
        .map(|i| sites_gen::site_name(i, n))
        .min_by_key(|name| sitewatch::schedule::offset(name, interval))
        .unwrap_or_default()
}

/// What the bench looks for in the daemon's log.
enum Seen {
    Listening(Option<SocketAddr>),
    Reloaded(bool),
}

/// One run of the daemon, in seconds: from spawn to `api listening`, to
/// the first probe, and from SIGHUP to the end of a reload onto a file
/// whose every site was renamed (all removed, all added).
struct DaemonRun {
    listening: f64,
    first_probe: f64,
    reload: f64,
}

fn daemon_once(bin: &Path, n: usize, first: &str) -> anyhow::Result<DaemonRun> {
    let dir = tempfile::tempdir()?;
    let daemon = format!(
        "listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"",
        dir.path().join("state").display()
    );
    let config = dir.path().join("sites.toml");
    let text = sites_gen::sites_toml(n, closed_port()?, &daemon);
    std::fs::write(&config, &text)?;
    let t = Instant::now();
    let mut child = Command::new(bin)
        .args(["run", "--config"])
        .arg(&config)
        .env("SITEWATCH_LOG", "info")
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start sitewatch")?;
    let stderr = child.stderr.take().context("no stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    // Reads the log to its end, so that the daemon never blocks on a full pipe.
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let seen = if line.contains("api listening") {
                Seen::Listening(
                    line.split_whitespace()
                        .find_map(|w| w.strip_prefix("addr="))
                        .and_then(|a| a.parse::<SocketAddr>().ok()),
                )
            } else if line.contains("configuration reloaded") {
                Seen::Reloaded(true)
            } else if line.contains("reload failed") {
                Seen::Reloaded(false)
            } else {
                continue;
            };
            let _ = tx.send(seen);
        }
    });
    let pid = libc::pid_t::try_from(child.id())?;
    let result = (|| {
        let Seen::Listening(addr) = rx
            .recv_timeout(STARTUP_LIMIT)
            .context("no `api listening` line")?
        else {
            bail!("a reload before the start");
        };
        let addr = addr.context("cannot read the API address")?;
        let listening = t.elapsed().as_secs_f64();
        let path = format!("/status/{first}");
        let first_probe = loop {
            let body = get(addr, &path)?;
            let v: serde_json::Value = serde_json::from_str(&body).with_context(|| {
                format!("{path}: {}", body.chars().take(200).collect::<String>())
            })?;
            if !v["last_probe"].is_null() {
                break t.elapsed().as_secs_f64();
            }
            if t.elapsed() > STARTUP_LIMIT {
                bail!("{first} was not probed within {STARTUP_LIMIT:?}");
            }
            std::thread::sleep(POLL_EVERY);
        };
        std::fs::write(&config, text.replace("\"site-", "\"node-"))?;
        let r = Instant::now();
        // SAFETY: kill(2) on the PID of our own child, which is not reaped yet.
        unsafe {
            libc::kill(pid, libc::SIGHUP);
        }
        match rx.recv_timeout(STARTUP_LIMIT).context("no reload logged")? {
            Seen::Reloaded(true) => {}
            _ => bail!("the reload failed"),
        }
        Ok(DaemonRun {
            listening,
            first_probe,
            reload: r.elapsed().as_secs_f64(),
        })
    })();
    // SAFETY: as above.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let _ = child.wait();
    let _ = reader.join();
    result
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() -> anyhow::Result<()> {
    let Some(o) = parse_args()? else {
        return Ok(());
    };
    println!("binary: {}", o.bin.display());
    if !o.sizes.is_empty() {
        println!(
            "\n| sites | validate s | peak RSS MiB | with sites/100 windows: validate s | peak RSS MiB |"
        );
        println!("|------:|------:|------:|------:|------:|");
    }
    for &n in &o.sizes {
        let mut row = format!("| {n} |");
        for windows in [1, n / 100] {
            let dir = tempfile::tempdir()?;
            let config = dir.path().join("sites.toml");
            let text = sites_gen::sites_toml_with_windows(n, closed_port()?, "", windows);
            std::fs::write(&config, text)?;
            let mut secs = Vec::new();
            let mut rss = Vec::new();
            for _ in 0..o.runs {
                let (s, r) = validate_once(&o.bin, &config)?;
                secs.push(s);
                rss.push(r as f64 / 1024.0);
            }
            row.push_str(&format!(" {:.3} | {:.1} |", median(secs), median(rss)));
        }
        println!("{row}");
    }
    if !o.startup.is_empty() {
        println!(
            "\n| sites | to `api listening` s | to first probe s | reload, every site renamed, s |"
        );
        println!("|------:|------:|------:|------:|");
    }
    for &n in &o.startup {
        let first = first_site(n);
        let runs: Vec<DaemonRun> = (0..o.runs)
            .map(|_| daemon_once(&o.bin, n, &first))
            .collect::<anyhow::Result<_>>()?;
        let med = |f: fn(&DaemonRun) -> f64| median(runs.iter().map(f).collect());
        println!(
            "| {n} | {:.3} | {:.3} | {:.3} |",
            med(|r| r.listening),
            med(|r| r.first_probe),
            med(|r| r.reload)
        );
    }
    Ok(())
}
