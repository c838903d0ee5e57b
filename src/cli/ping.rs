//! `sitewatch ping NAME -- COMMAND ARGS…`: runs a job under a heartbeat.
//! Sends `start`, runs the command (its output still goes where it went),
//! then sends the exit code with the tail of the output and the run time,
//! paired by a run id. A ping that cannot be sent is reported on stderr
//! and never stops the job: the heartbeat's deadline reports it instead.

use super::ConfigArg;
use super::log;
use clap::Args;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The tail of the job's output sent with its end, in bytes.
const TAIL_BYTES: usize = 10 * 1024;
/// How long one ping may take.
const PING_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per ping.
const ATTEMPTS: u32 = 3;

/// Options of `sitewatch ping`.
#[derive(Args, Debug)]
pub struct PingArgs {
    /// The heartbeat ([[heartbeat]] name); its key and address are read from the sites file
    #[arg(required_unless_present = "url")]
    pub name: Option<String>,
    /// The heartbeat's ping URL instead (http://HOST:PORT/ping/KEY), for hosts without the sites file
    #[arg(long, env = "SITEWATCH_PING_URL", value_name = "URL")]
    pub url: Option<String>,
    /// The sites file.
    #[command(flatten)]
    pub config: ConfigArg,
    /// The command to run, and its arguments
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// The ping URL of heartbeat `name` as the sites file describes it: the
/// ping listener if there is one, else the API's, with its key.
fn url_from_config(args: &PingArgs, name: &str) -> Result<String, String> {
    let path = args.config.path();
    let config = crate::config::load(&path).map_err(|e| e.to_string())?;
    let site = config
        .sites
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| format!("no heartbeat named \"{name}\" in {}", path.display()))?;
    let hb = site
        .heartbeat
        .as_ref()
        .ok_or_else(|| format!("\"{name}\" is a site, not a heartbeat"))?;
    let key = crate::alert::channel::resolve(&hb.key)
        .map_err(|e| format!("heartbeat {name}: ping key: {e}"))?;
    let addr = super::reachable(config.daemon.ping_listen.unwrap_or(config.daemon.listen));
    Ok(format!("http://{addr}/ping/{}", key.expose()))
}

/// The URL without its key, for messages.
fn shown(url: &str) -> String {
    match url.find("/ping/") {
        Some(i) => format!("{}/ping/***", &url[..i]),
        None => "the ping URL".to_string(),
    }
}

async fn send(client: &reqwest::Client, url: &str, body: String) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
        }
        match client.post(url).body(body.clone()).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            // 404: the key is wrong; retrying will not help.
            Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => {
                return Err("the daemon does not know this ping key (404)".to_string());
            }
            Ok(r) => last = format!("the daemon answered {}", r.status()),
            Err(e) => last = e.without_url().to_string(),
        }
    }
    Err(last)
}

/// Copies `from` to `to` and keeps its tail in `tail`.
fn tee(
    mut from: impl Read + Send + 'static,
    mut to: impl Write + Send + 'static,
    tail: Arc<Mutex<Vec<u8>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let _ = to.write_all(&buf[..n]);
            let _ = to.flush();
            let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
            t.extend_from_slice(&buf[..n]);
            if t.len() > 2 * TAIL_BYTES {
                let cut = t.len() - TAIL_BYTES;
                t.drain(..cut);
            }
        }
    })
}

/// Runs `command`, passing its output through; returns its exit code
/// (128 + the signal when killed) and the tail of its output.
fn run_command(command: &[String]) -> Result<(i32, String), String> {
    let (program, rest) = command
        .split_first()
        .ok_or_else(|| "no command given".to_string())?;
    let mut child = Command::new(program)
        .args(rest)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let tail = Arc::new(Mutex::new(Vec::new()));
    let mut copiers = Vec::new();
    if let Some(out) = child.stdout.take() {
        copiers.push(tee(out, std::io::stdout(), Arc::clone(&tail)));
    }
    if let Some(err) = child.stderr.take() {
        copiers.push(tee(err, std::io::stderr(), Arc::clone(&tail)));
    }
    let status = child
        .wait()
        .map_err(|e| format!("cannot wait for {program}: {e}"))?;
    for c in copiers {
        let _ = c.join();
    }
    let code = status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        128 + status.signal().unwrap_or(0)
    });
    let tail = tail.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let tail = String::from_utf8_lossy(&tail);
    Ok((code, crate::heartbeat::ledger::keep_tail(&tail, TAIL_BYTES)))
}

/// `sitewatch ping`: returns the command's exit code (127 when it could
/// not be started, 128 + N when a signal N ended it). The job always runs:
/// a ping URL that cannot be found or reached is reported on stderr, and
/// the heartbeat's deadline reports the silence.
pub fn run(args: &PingArgs) -> i32 {
    let url = match (&args.url, &args.name) {
        (Some(u), _) => Some(u.trim_end_matches('/').to_string()),
        (None, Some(name)) => match url_from_config(args, name) {
            Ok(u) => Some(u),
            Err(e) => {
                log::error(&format!(
                    "sitewatch ping: {e}; running the job without pinging"
                ));
                None
            }
        },
        (None, None) => None,
    };
    // Pinging needs a runtime, a client and a URL; without any of them the
    // job still runs.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"));
    let client = reqwest::Client::builder()
        .timeout(PING_TIMEOUT)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"));
    let pinger = match (runtime, client, url) {
        (Ok(r), Ok(c), Some(u)) => Some((r, c, u)),
        (Err(e), _, Some(_)) | (_, Err(e), Some(_)) => {
            log::error(&format!(
                "sitewatch ping: {e}; running the job without pinging"
            ));
            None
        }
        _ => None,
    };
    // Unique enough to pair this run's start and end.
    let rid = crate::silence::new_id();
    let ping = |what: &str, path: String, body: String| {
        if let Some((runtime, client, url)) = &pinger
            && let Err(e) = runtime.block_on(send(client, &format!("{url}{path}"), body))
        {
            log::error(&format!(
                "sitewatch ping: cannot send the {what} to {}: {e}",
                shown(url)
            ));
        }
    };
    ping("start", format!("/start?rid={rid}"), String::new());
    let began = Instant::now();
    let (code, tail) = match run_command(&args.command) {
        Ok(v) => v,
        Err(e) => {
            log::error(&format!("sitewatch ping: {e}"));
            (127, format!("sitewatch ping: {e}\n"))
        }
    };
    let took = began.elapsed();
    let body = format!(
        "{tail}{}[sitewatch ping] `{}` exited with code {code} after {:.1} s\n",
        if tail.is_empty() || tail.ends_with('\n') {
            ""
        } else {
            "\n"
        },
        args.command.join(" "),
        took.as_secs_f64()
    );
    let exit = code.clamp(0, 255);
    ping("end", format!("/{exit}?rid={rid}"), body);
    code
}
