//! The API on a thread of its own: `sitewatch-api`, at a lower priority
//! than the probes, and a flood of `/status` requests does not move the
//! probe schedule of the daemon run in-process on a current-thread runtime,
//! as `sitewatch run` does.

mod common;

use common::daemon::{get_json, wait_for, write_config};
use common::http::http_get;
use sitewatch::api::{Access, Limits};
use sitewatch::store::StatusStore;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Taken for writing by the test that measures the probe lag, for reading
/// by the other: the lag is measured with nothing else of this file
/// running.
static TIMING: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// sites.toml with `n` sites on `target` (a closed port: each probe is a
/// quick refusal), probed every second.
fn sites_config(dir: &std::path::Path, n: usize, target: SocketAddr) -> String {
    let mut text = format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n\n[defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\n",
        dir.join("state").display()
    );
    for i in 0..n {
        text.push_str(&format!(
            "\n[[site]]\nname = \"site-{i:04}\"\nurl = \"tcp://{target}\"\n"
        ));
    }
    text
}

/// Clients asking for `/status` back to back on `clients` connections at
/// once, from a thread and runtime of their own, until stopped.
struct Hammer {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
    thread: std::thread::JoinHandle<()>,
}

impl Hammer {
    fn start(addr: SocketAddr, clients: usize) -> Hammer {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let (s, d) = (Arc::clone(&stop), Arc::clone(&done));
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let deadline = Instant::now() + Duration::from_secs(60);
                let tasks: Vec<_> = (0..clients)
                    .map(|_| {
                        let (s, d) = (Arc::clone(&s), Arc::clone(&d));
                        tokio::spawn(async move {
                            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                                let (code, _) = http_get(addr, "/status").await;
                                assert_eq!(code, 200);
                                d.fetch_add(1, Ordering::Relaxed);
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            });
        });
        Hammer { stop, done, thread }
    }

    /// Stops and returns how many answers came back.
    fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
        self.done.load(Ordering::Relaxed)
    }
}

/// Runs the daemon in-process, on this test's current-thread runtime as
/// `sitewatch run` does, with 500 sites every second, for 2,000 probes
/// (about 4 s), with `/status` hammered meanwhile if `hammer`; returns the
/// scheduling lag's p99 in ms and the answers the hammer got.
async fn probe_lag(hammer: bool) -> (f64, usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &sites_config(dir.path(), 500, common::http::closed_addr()),
    );
    let config = sitewatch::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = sitewatch::app::start(&config, listener).unwrap();
    let api = format!("http://{}", running.addr);
    let hammer = hammer.then(|| Hammer::start(running.addr, 4));
    // Read in-process, not over HTTP: the wait must not load the thread it measures.
    let store = running.store.clone();
    wait_for("2,000 probes", Duration::from_secs(30), || {
        std::future::ready((store.health().scheduler.probes >= 2000).then_some(()))
    })
    .await;
    let (_, health) = get_json(&format!("{api}/healthz")).await;
    // Joined off this runtime, which may be serving the hammer's last requests.
    let answers = match hammer {
        Some(h) => tokio::task::spawn_blocking(move || h.stop()).await.unwrap(),
        None => 0,
    };
    running.stop();
    running.wait().await.unwrap();
    let p99 = health["scheduler"]["lag_ms"]["p99"].as_f64().unwrap();
    (p99, answers)
}

#[tokio::test]
async fn the_api_runs_on_a_thread_of_its_own_at_a_lower_priority() {
    let _shared = TIMING.read().await;
    let stop = CancellationToken::new();
    let (addr, api) = spawn_api(&stop);
    let (code, _) = http_get(addr, "/healthz").await;
    assert_eq!(code, 200);
    // (name, nice) of every thread of this process.
    let threads: Vec<(String, i64)> = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| {
            let dir = t.ok()?.path();
            let name = std::fs::read_to_string(dir.join("comm")).ok()?;
            let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
            // Fields after the parenthesised name start at field 3; nice is field 19.
            let nice = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(16)?
                .parse()
                .ok()?;
            Some((name.trim().to_string(), nice))
        })
        .collect();
    let named: Vec<_> = threads
        .iter()
        .filter(|(n, _)| n == "sitewatch-api")
        .collect();
    assert!(!named.is_empty(), "no sitewatch-api thread in {threads:?}");
    assert!(named.iter().all(|(_, nice)| *nice == 10), "{threads:?}");
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), api.wait())
        .await
        .expect("the API stops within its grace period")
        .unwrap();
}

/// The API on its own thread over an empty store, on a port of its own.
fn spawn_api(stop: &CancellationToken) -> (SocketAddr, sitewatch::api::ApiThread) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let store = StatusStore::new(&[], SystemTime::now(), &HashMap::new(), None);
    let api = sitewatch::api::spawn(
        listener,
        store,
        Access::default(),
        Limits::default(),
        stop.clone(),
    )
    .unwrap();
    (addr, api)
}

#[tokio::test]
async fn the_server_stops_with_its_token_or_its_handle() {
    let _shared = TIMING.read().await;
    // Cancelled, then joined from a blocking thread.
    let stop = CancellationToken::new();
    let (addr, api) = spawn_api(&stop);
    assert_eq!(http_get(addr, "/healthz").await.0, 200);
    stop.cancel();
    tokio::task::spawn_blocking(move || api.join())
        .await
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "still listening");
    // Dropped without being waited for: the server stops all the same.
    let stop = CancellationToken::new();
    let (addr, api) = spawn_api(&stop);
    assert_eq!(http_get(addr, "/healthz").await.0, 200);
    drop(api);
    wait_for("the listener to close", Duration::from_secs(10), || async {
        TcpStream::connect(addr).await.is_err().then_some(())
    })
    .await;
    assert!(
        !stop.is_cancelled(),
        "only the server's own token is cancelled"
    );
}

#[tokio::test]
async fn hammering_status_does_not_move_the_probe_schedule() {
    let _alone = TIMING.write().await;
    let (quiet, _) = probe_lag(false).await;
    let (loaded, answers) = probe_lag(true).await;
    eprintln!("probe lag p99: {quiet:.1} ms quiet, {loaded:.1} ms under {answers} /status answers");
    assert!(answers >= 20, "only {answers} /status answers: no load");
    assert!(
        loaded < 50.0 && loaded < 3.0 * quiet + 10.0,
        "probe lag p99 {loaded:.1} ms under load, {quiet:.1} ms without"
    );
}
