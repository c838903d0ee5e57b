//! Down for everyone, or just me? Three vantages, each a real `sitewatch
//! run` in its own network namespace, linked through a router namespace to
//! a target namespace with a real HTTP server, and to each other over TLS
//! (a test CA) with a shared token. No route leads anywhere else.
//!
//! Scenarios: nftables at the target drops (then rejects) only one
//! vantage's address → that vantage says `vantage.partial` with the
//! blocked-address hint and pages nobody, the others stay up; the target's
//! server stops → every vantage agrees it is down and says who saw what.

mod common;

use common::daemon::{spawn_daemon_in, wait_for, write_config};
use common::netns::{NetNs, Served};
use common::receiver::{Receiver, ReceiverView};
use common::tls::{CertKind, TestCa};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::TcpListener;

const TOKEN: &str = "a-long-cluster-token-for-the-test-0123456789";
const PEER_PORT: u16 = 9899;
const TARGET: &str = "10.9.0.2";
const HOOKS: &str = "10.99.0.1";
const VANTAGES: [(&str, &str, &str); 3] = [
    ("fra1", "10.1.0.2", "10.1.0.1"),
    ("ams1", "10.2.0.2", "10.2.0.1"),
    ("nyc1", "10.3.0.2", "10.3.0.1"),
];

struct Vantage {
    name: &'static str,
    addr: &'static str,
    ns: NetNs,
    api: String,
    _child: tokio::process::Child,
}

struct Lab {
    router: NetNs,
    target: NetNs,
    vantages: Vec<Vantage>,
    hooks: ReceiverView,
    _hook: Served<ReceiverView>,
    _web: Option<Served<SocketAddr>>,
    _dir: tempfile::TempDir,
}

fn serve_web(target: &NetNs) -> Served<SocketAddr> {
    target.serve(|| async {
        let l = TcpListener::bind((TARGET, 80)).await.unwrap();
        let addr = l.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = [0u8; 2048];
                    let _ = s.read(&mut buf).await;
                    let _ = s
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        )
                        .await;
                });
            }
        });
        (addr, task)
    })
}

fn config(dir: &Path, ca: &Path, name: &str, addr: &str, hooks: &ReceiverView) -> PathBuf {
    let vdir = dir.join(name);
    std::fs::create_dir_all(&vdir).unwrap();
    let peers: String = VANTAGES
        .iter()
        .filter(|(n, _, _)| *n != name)
        .map(|(n, a, _)| {
            format!("\n[[cluster.peer]]\nname = \"{n}\"\nurl = \"https://{a}:{PEER_PORT}\"\n")
        })
        .collect();
    let text = format!(
        r#"[daemon]
listen = "127.0.0.1:0"
state_dir = "{state}"

[cluster]
vantage = "{name}"
listen = "{addr}:{PEER_PORT}"
tls_cert = "{cert}"
tls_key = "{key}"
ca_file = "{ca}"
token = "{TOKEN}"
peer_timeout = "2s"
{peers}
[defaults]
interval = "1s"
timeout = "800ms"
confirm_down = 2
confirm_up = 2

[alert.hook]
type = "webhook"
url = "{hook}"
storm_hold = "0s"

[[site]]
name = "web"
url = "http://{TARGET}/"
"#,
        state = vdir.join("state").display(),
        cert = vdir.join("peer.crt").display(),
        key = vdir.join("peer.key").display(),
        ca = ca.display(),
        hook = hooks.url(&format!("/{name}")),
    );
    write_config(&vdir, &text)
}

async fn lab(test: &str) -> Option<Lab> {
    let router = NetNs::new(test)?;
    let target = NetNs::new(test)?;
    router
        .command("sysctl")
        .args(["-qw", "net.ipv4.ip_forward=1"])
        .status()
        .unwrap();
    target.link(
        "eth0",
        &[&format!("{TARGET}/24")],
        &router,
        "t0",
        &["10.9.0.1/24"],
    );
    target.ip(&["route", "add", "default", "via", "10.9.0.1"]);
    router.add_addr(&format!("{HOOKS}/32"));
    let hook = router.serve(|| async {
        let l = Receiver::start_on(HOOKS.parse().unwrap()).await;
        (l.view(), l)
    });
    let hooks = hook.info.clone();
    let web = serve_web(&target);
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let ca_file = ca.write_root(dir.path());
    let mut vantages = Vec::new();
    for (i, (name, addr, gw)) in VANTAGES.iter().enumerate() {
        let ns = NetNs::new(test)?;
        ns.link(
            "eth0",
            &[&format!("{addr}/24")],
            &router,
            &format!("v{i}"),
            &[&format!("{gw}/24")],
        );
        ns.ip(&["route", "add", "default", "via", gw]);
        let path = config(dir.path(), &ca_file, name, addr, &hooks);
        let cert = ca.leaf(CertKind::Valid, &[addr]);
        let vdir = path.parent().unwrap();
        std::fs::write(vdir.join("peer.crt"), &cert.chain_pem).unwrap();
        std::fs::write(vdir.join("peer.key"), &cert.key_pem).unwrap();
        let (child, api, _logs) = spawn_daemon_in(&ns.name, &path, &[]).await;
        vantages.push(Vantage {
            name,
            addr,
            ns,
            api,
            _child: child,
        });
    }
    Some(Lab {
        router,
        target,
        vantages,
        hooks,
        _hook: hook,
        _web: Some(web),
        _dir: dir,
    })
}

impl Lab {
    fn json(&self, v: &Vantage, path: &str) -> Value {
        let addr: SocketAddr = v.api.trim_start_matches("http://").parse().unwrap();
        let (_, body) = v.ns.get(addr, path);
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{}{path}: {e}: {body}", v.name))
    }

    fn site(&self, v: &Vantage) -> Value {
        self.json(v, "/status/web")
    }

    fn downs(&self) -> Vec<Value> {
        self.hooks
            .requests()
            .iter()
            .map(|r| r.json())
            .filter(|j| j["event"] == "down")
            .collect()
    }

    async fn every_vantage(&self, what: &str, limit: Duration, ok: impl Fn(&Value) -> bool) {
        for v in &self.vantages {
            wait_for(&format!("{} to see {what}", v.name), limit, || {
                let j = self.site(v);
                let good = ok(&j);
                async move { good.then_some(()) }
            })
            .await;
        }
    }
}

#[tokio::test]
async fn only_this_monitor_blocked_is_partial_and_pages_nobody() {
    let Some(lab) = lab("only_this_monitor_blocked_is_partial_and_pages_nobody").await else {
        return;
    };
    lab.every_vantage("web up", Duration::from_secs(20), |j| j["status"] == "up")
        .await;
    let fra = &lab.vantages[0];
    // The site's firewall drops the first vantage's address.
    lab.target.nft(&format!(
        "table inet lab {{\n chain input {{\n  type filter hook input priority 0;\n  ip saddr {} tcp dport 80 drop\n }}\n}}\n",
        fra.addr
    ));
    let j = wait_for(
        "fra1 to say vantage.partial",
        Duration::from_secs(30),
        || {
            let j = lab.site(fra);
            async move { (j["cause"] == "vantage.partial").then_some(j) }
        },
    )
    .await;
    assert_eq!(j["status"], "degraded", "{j}");
    assert_eq!(j["scope"], "partial", "{j}");
    let hint = j["hint"].as_str().unwrap();
    assert!(
        hint.contains("blocked") && hint.contains("fail2ban"),
        "{hint}"
    );
    let detail = j["detail"].as_str().unwrap();
    assert!(
        detail.contains("ams1: up") && detail.contains("nyc1: up"),
        "{detail}"
    );
    assert!(detail.contains("fra1: connection timed out"), "{detail}");
    // Now it rejects instead: the same verdict, another cause here.
    lab.target.nft("flush ruleset");
    lab.target.nft(&format!(
        "table inet lab {{\n chain input {{\n  type filter hook input priority 0;\n  ip saddr {} tcp dport 80 reject with tcp reset\n }}\n}}\n",
        fra.addr
    ));
    tokio::time::sleep(Duration::from_secs(4)).await;
    for v in &lab.vantages[1..] {
        let j = lab.site(v);
        assert_eq!(j["status"], "up", "{}: {j}", v.name);
    }
    let j = lab.site(fra);
    assert_eq!(j["cause"], "vantage.partial", "{j}");
    assert!(
        lab.downs().is_empty(),
        "no down alert anywhere: {:?}",
        lab.downs()
    );
    let _ = &lab.router;
}

#[tokio::test]
async fn a_site_down_for_everyone_is_down_and_says_who_saw_what() {
    let Some(mut lab) = lab("a_site_down_for_everyone_is_down_and_says_who_saw_what").await else {
        return;
    };
    lab.every_vantage("web up", Duration::from_secs(20), |j| j["status"] == "up")
        .await;
    // The server stops: connections are refused for everyone.
    lab._web = None;
    lab.every_vantage("web down", Duration::from_secs(30), |j| {
        j["status"] == "down" && j["cause"] == "tcp.refused"
    })
    .await;
    for v in &lab.vantages {
        let j = lab.site(v);
        assert_eq!(j["scope"], "all", "{}: {j}", v.name);
        let seen = j["vantages"].as_array().unwrap();
        assert_eq!(seen.len(), 3, "{j}");
        assert!(seen.iter().all(|s| s["verdict"] == "down"), "{j}");
    }
    let downs = wait_for("the down alerts", Duration::from_secs(10), || {
        let d = lab.downs();
        async move { (!d.is_empty()).then_some(d) }
    })
    .await;
    let seen = downs[0]["vantages"].as_array().unwrap();
    assert_eq!(seen.len(), 3, "{:?}", downs[0]);
}
