//! Real Alertmanagers for the tests: Debian's `prometheus-alertmanager`
//! on loopback (free ports, storage in a temp dir, killed on drop), alone
//! or clustered over loopback gossip, ready once its API says so; and what
//! they hold and send.

use crate::common::daemon::{get_json, wait_for};
use crate::common::http::closed_addr;
use crate::common::receiver::Receiver;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// Debian's package `prometheus-alertmanager` (.ci/run installs it).
const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";
/// How long the second node waits for the first to notify (it then reads
/// the replicated notification log): small, so the tests are quick.
const PEER_TIMEOUT: Duration = Duration::from_secs(1);
/// Alertmanager's `group_interval`. Above the second node's wait: a node
/// restarts its group timer before it waits, so both nodes then flush in
/// step, each from the same alerts (a node whose wait outlasts the
/// interval drifts, and may notify from a view older than the other's).
const GROUP_INTERVAL: Duration = Duration::from_secs(3);
/// Long enough for a duplicate notification to have arrived, had one been
/// sent: a group interval, the second node's wait, and a margin.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(5);

/// One Alertmanager process; killed when dropped.
pub struct Am {
    /// The process (a test may kill it).
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Where it gossips, for the next node's `--cluster.peer`.
    gossip: SocketAddr,
    log: PathBuf,
}

/// Alertmanager's routing: site alerts grouped by site to `/am`, the
/// watchdog of each vantage to `/deadman` (the docs' example, with quick
/// timings).
fn routing(hook: &Receiver) -> String {
    format!(
        r#"route:
  receiver: sites
  group_by: [site]
  group_wait: 1s
  group_interval: {}s
  repeat_interval: 1h
  routes:
    - matchers: ['alertname="SitewatchWatchdog"']
      receiver: deadman
      group_by: [vantage]
receivers:
  - name: sites
    webhook_configs:
      - url: {}
  - name: deadman
    webhook_configs:
      - url: {}
"#,
        GROUP_INTERVAL.as_secs(),
        hook.url("/am"),
        hook.url("/deadman")
    )
}

/// Starts Alertmanager in `dir` (its own storage), gossiping with `peer`
/// if given; without `cluster` it runs alone, with clustering off.
fn start_am(dir: &Path, config: &Path, cluster: bool, peer: Option<SocketAddr>) -> Am {
    assert!(
        Path::new(ALERTMANAGER).exists(),
        "{ALERTMANAGER} is missing: apt-get install prometheus-alertmanager (.ci/run does)"
    );
    std::fs::create_dir_all(dir).unwrap();
    let web = closed_addr();
    let gossip = closed_addr();
    let log = dir.join("alertmanager.log");
    let mut cmd = Command::new(ALERTMANAGER);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.display()))
        .arg(format!("--web.listen-address={web}"))
        .arg(format!(
            "--cluster.listen-address={}",
            if cluster {
                gossip.to_string()
            } else {
                String::new()
            }
        ))
        .arg(format!(
            "--cluster.peer-timeout={}s",
            PEER_TIMEOUT.as_secs()
        ))
        .arg("--cluster.gossip-interval=100ms")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true);
    if let Some(p) = peer {
        cmd.arg(format!("--cluster.peer={p}"));
    }
    Am {
        child: cmd.spawn().unwrap(),
        url: format!("http://{web}"),
        gossip,
        log,
    }
}

/// GET that tolerates a server not listening yet: the body of a 2xx.
async fn try_get(url: &str) -> Option<Vec<u8>> {
    let resp = reqwest::get(url).await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.bytes().await.ok().map(|b| b.to_vec())
}

/// Polls `/-/ready`, then the cluster status, until every node is ready
/// and (clustered) sees all the others; panics with a node's log if it
/// exits.
async fn wait_ready(nodes: &mut [Am], clustered: bool) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let count = nodes.len();
    for node in nodes.iter_mut() {
        let (url, log) = (node.url.clone(), node.log.clone());
        wait_for("alertmanager to be ready", Duration::from_secs(30), || {
            let exited = node.child.try_wait().unwrap();
            let (url, log) = (url.clone(), log.clone());
            async move {
                if let Some(status) = exited {
                    panic!(
                        "alertmanager exited ({status}): {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                try_get(&format!("{url}/-/ready")).await?;
                let s: Value =
                    serde_json::from_slice(&try_get(&format!("{url}/api/v2/status")).await?)
                        .ok()?;
                let peers = s["cluster"]["peers"].as_array().map_or(0, Vec::len);
                let ok = if clustered {
                    s["cluster"]["status"] == "ready" && peers == count
                } else {
                    s["cluster"]["status"] == "disabled"
                };
                ok.then_some(())
            }
        })
        .await;
    }
}

/// `n` Alertmanagers routing to `hook`, clustered when `n` > 1.
pub async fn alertmanagers(dir: &Path, hook: &Receiver, n: usize) -> Vec<Am> {
    let config = dir.join("am.yml");
    std::fs::write(&config, routing(hook)).unwrap();
    let mut nodes: Vec<Am> = Vec::new();
    for i in 0..n {
        let peer = nodes.first().map(|a| a.gossip);
        nodes.push(start_am(&dir.join(format!("am{i}")), &config, n > 1, peer));
    }
    wait_ready(&mut nodes, n > 1).await;
    nodes
}

/// The notifications Alertmanager sent to `path` with `status` (of the
/// group of `site`, if given).
pub fn notifications_of(
    hook: &Receiver,
    path: &str,
    status: &str,
    site: Option<&str>,
) -> Vec<Value> {
    hook.requests()
        .iter()
        .filter(|r| r.path == path)
        .map(|r| r.json())
        .filter(|j| j["status"] == status && site.is_none_or(|s| j["groupLabels"]["site"] == s))
        .collect()
}

pub fn notifications(hook: &Receiver, path: &str, status: &str) -> Vec<Value> {
    notifications_of(hook, path, status, None)
}

pub async fn wait_notifications_of(
    hook: &Receiver,
    path: &str,
    status: &str,
    site: Option<&str>,
    n: usize,
) -> Vec<Value> {
    wait_for(
        &format!("{n} {status} notification(s) on {path} of {site:?}"),
        Duration::from_secs(20),
        || {
            let got = notifications_of(hook, path, status, site);
            async move { (got.len() >= n).then_some(got) }
        },
    )
    .await
}

pub async fn wait_notifications(hook: &Receiver, path: &str, status: &str, n: usize) -> Vec<Value> {
    wait_notifications_of(hook, path, status, None, n).await
}

/// The alerts named `alertname` that an Alertmanager holds (active ones).
pub async fn held(node: &str, alertname: &str) -> Vec<Value> {
    let url = url::Url::parse_with_params(
        &format!("{node}/api/v2/alerts"),
        &[("filter", format!("alertname=\"{alertname}\""))],
    )
    .unwrap();
    let (code, j) = get_json(url.as_str()).await;
    assert_eq!(code, 200, "{j}");
    j.as_array().cloned().unwrap_or_default()
}
