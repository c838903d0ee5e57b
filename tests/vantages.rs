//! Down for everyone, or just me? Three vantages, each a real `sitewatch
//! run` in its own network namespace, linked through a router namespace to
//! a target namespace with a real HTTP server and a real DNS server, and to
//! each other over TLS (a test CA) with a shared token. No route leads
//! anywhere else. Every vantage has a self-check (a canary in the router
//! namespace, a name on the target's DNS server), a webhook (every vantage
//! sends to it) and a Slack-shaped chat channel (one vantage sends), all to
//! one receiver that tells the senders apart by path.
//!
//! Scenarios:
//! - nftables at the target drops (then rejects) only one vantage's
//!   address → it says `vantage.partial` with the blocked-address hint and
//!   pages nobody; the others stay up;
//! - the target's server stops → every vantage agrees it is down; exactly
//!   one chat message (from the site's owner) lists the three vantages,
//!   every vantage tells the webhook; the recovery likewise;
//! - a vantage stops answering mid-outage (SIGSTOP) → the vote completes
//!   without it, one of the others reports it unreachable, once, and back;
//! - a vantage's link goes down → its self-check says offline and it pages
//!   nothing; the others report it unreachable; when the link returns it
//!   delivers its own offline/back pair, once;
//! - a vantage's resolver is cut off while its IP canaries answer →
//!   `dns_broken`.

mod common;

use common::daemon::{spawn_daemon_in, wait_for, write_config};
use common::dns::{Answer, TestDns};
use common::netns::{NetNs, Served};
use common::receiver::{Receiver, ReceiverView, check_slack_payload};
use common::tls::{CertKind, TestCa};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::TcpListener;

const TOKEN: &str = "a-long-cluster-token-for-the-test-0123456789";
const PEER_PORT: u16 = 9899;
const TARGET: &str = "10.9.0.2";
const RESOLVER: &str = "10.9.0.53";
const HOOKS: &str = "10.99.0.1";
const VANTAGES: [(&str, &str, &str); 3] = [
    ("fra1", "10.1.0.2", "10.1.0.1"),
    ("ams1", "10.2.0.2", "10.2.0.1"),
    ("nyc1", "10.3.0.2", "10.3.0.1"),
];
const NAMES: [&str; 3] = ["fra1", "ams1", "nyc1"];

struct Vantage {
    name: &'static str,
    addr: &'static str,
    config: PathBuf,
    ns: NetNs,
    api: String,
    child: tokio::process::Child,
}

struct Lab {
    _router: NetNs,
    target: NetNs,
    vantages: Vec<Vantage>,
    hooks: ReceiverView,
    _hook: Served<ReceiverView>,
    web: Option<Served<SocketAddr>>,
    dns: Served<SocketAddr>,
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

fn config(
    dir: &Path,
    ca: &Path,
    name: &str,
    addr: &str,
    hooks: &ReceiverView,
    resolver: SocketAddr,
) -> PathBuf {
    let vdir = dir.join(name);
    std::fs::create_dir_all(&vdir).unwrap();
    std::fs::write(vdir.join("chat-url"), hooks.url(&format!("/{name}/chat"))).unwrap();
    let peers: String = VANTAGES
        .iter()
        .filter(|(n, _, _)| *n != name)
        .map(|(n, a, _)| {
            format!("\n[[cluster.peer]]\nname = \"{n}\"\nurl = \"https://{a}:{PEER_PORT}\"\n")
        })
        .collect();
    let canary = hooks.addr;
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
peer_interval = "1s"
{peers}
[self_check]
tcp = ["{canary}"]
dns = ["canary.test"]
resolvers = ["{resolver}"]
interval = "5s"
timeout = "1s"

[defaults]
interval = "1s"
timeout = "800ms"
confirm_down = 2
confirm_up = 2

[alert.hook]
type = "webhook"
url = "{hook}"
storm_hold = "0s"

[alert.chat]
type = "slack"
webhook_url_file = "chat-url"
storm_hold = "0s"

[[site]]
name = "web"
url = "http://{TARGET}/"
"#,
        state = vdir.join("state").display(),
        cert = vdir.join("peer.crt").display(),
        key = vdir.join("peer.key").display(),
        ca = ca.display(),
        hook = hooks.url(&format!("/{name}/hook")),
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
    target.add_addr(&format!("{RESOLVER}/32"));
    target.ip(&["route", "add", "default", "via", "10.9.0.1"]);
    router.add_addr(&format!("{HOOKS}/32"));
    let hook = router.serve(|| async {
        let l = Receiver::start_on(HOOKS.parse().unwrap()).await;
        (l.view(), l)
    });
    let hooks = hook.info.clone();
    let web = serve_web(&target);
    let canary = hooks.addr.ip();
    let dns = target.serve(move || async move {
        let dns = TestDns::start_on(RESOLVER.parse().unwrap()).await;
        dns.set("canary.test", Answer::Addrs(vec![canary]));
        (dns.addr, dns)
    });
    let resolver = dns.info;
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
        let path = config(dir.path(), &ca_file, name, addr, &hooks, resolver);
        let cert = ca.leaf(CertKind::Valid, &[addr]);
        let vdir = path.parent().unwrap();
        std::fs::write(vdir.join("peer.crt"), &cert.chain_pem).unwrap();
        std::fs::write(vdir.join("peer.key"), &cert.key_pem).unwrap();
        let (child, api, _logs) = spawn_daemon_in(&ns.name, &path, &[]).await;
        vantages.push(Vantage {
            name,
            addr,
            config: path.clone(),
            ns,
            api,
            child,
        });
    }
    Some(Lab {
        _router: router,
        target,
        vantages,
        hooks,
        _hook: hook,
        web: Some(web),
        dns,
        _dir: dir,
    })
}

/// One message a vantage sent: who, through which channel, and its JSON.
struct Message {
    from: String,
    channel: String,
    json: Value,
}

impl Message {
    /// The webhook's event, or the chat message's fallback text.
    fn says(&self, what: &str) -> bool {
        match self.channel.as_str() {
            "hook" => self.json["event"] == what,
            _ => self.json["text"].as_str().is_some_and(|t| t.contains(what)),
        }
    }
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

    fn vantage(&self, name: &str) -> &Vantage {
        self.vantages.iter().find(|v| v.name == name).unwrap()
    }

    /// Everything the vantages sent so far, in arrival order.
    fn messages(&self) -> Vec<Message> {
        self.hooks
            .requests()
            .iter()
            .map(|r| {
                let mut parts = r.path.trim_start_matches('/').splitn(2, '/');
                let from = parts.next().unwrap_or_default().to_string();
                let channel = parts.next().unwrap_or_default().to_string();
                let json = r.json();
                if channel == "chat" {
                    check_slack_payload(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
                }
                Message {
                    from,
                    channel,
                    json,
                }
            })
            .collect()
    }

    /// The messages on `channel` that say `what` (a webhook event, or words
    /// of a chat message's text).
    fn sent(&self, channel: &str, what: &str) -> Vec<Message> {
        self.messages()
            .into_iter()
            .filter(|m| m.channel == channel && m.says(what))
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

    async fn wait_sent(
        &self,
        channel: &str,
        what: &str,
        n: usize,
        limit: Duration,
    ) -> Vec<Message> {
        wait_for(
            &format!("{n} {channel} message(s) saying {what}"),
            limit,
            || {
                let m = self.sent(channel, what);
                async move { (m.len() >= n).then_some(m) }
            },
        )
        .await
    }

    /// The vantage whose network `/healthz` shows in `state`.
    async fn wait_network(&self, v: &Vantage, state: &str, limit: Duration) {
        wait_for(&format!("{} network {state}", v.name), limit, || {
            let j = self.json(v, "/healthz");
            async move { (j["network"]["state"] == state).then_some(()) }
        })
        .await;
    }
}

/// Sends `sig` to the daemon `v` (this test started it; `ip netns exec`
/// executes it in place, so the PID is the daemon's own).
fn signal(v: &Vantage, sig: i32) {
    let pid = v.child.id().expect("the daemon runs");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sitewatch", "PID {pid} is the daemon");
    // SAFETY: kill(2) on a process this test started.
    let rc = unsafe { libc::kill(pid as i32, sig) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
}

fn owner(site: &str, among: &[&'static str]) -> &'static str {
    sitewatch::cluster::vote::owner(site, among.iter().copied()).unwrap()
}

#[tokio::test]
async fn only_this_monitor_blocked_is_partial_and_pages_nobody() {
    let Some(lab) = lab("only_this_monitor_blocked_is_partial_and_pages_nobody").await else {
        return;
    };
    lab.every_vantage("web up", Duration::from_secs(20), |j| j["status"] == "up")
        .await;
    let fra = lab.vantage("fra1");
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
        hint.contains("blocked") && hint.contains("fail2ban") && hint.contains(fra.addr),
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
    // On demand, from any vantage: who sees what.
    for v in [fra, lab.vantage("nyc1")] {
        let out =
            v.ns.command(env!("CARGO_BIN_EXE_sitewatch"))
                .args(["check", "--from-peers", "web", "--json", "--config"])
                .arg(&v.config)
                .output()
                .unwrap();
        let j: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(out.status.code(), Some(1), "partial is a warning: {j}");
        assert_eq!(j["scope"], "partial", "{j}");
        let seen = j["vantages"].as_array().unwrap();
        assert_eq!(seen.len(), 3, "{j}");
        for s in seen {
            let want = if s["vantage"] == "fra1" { "down" } else { "up" };
            assert_eq!(s["status"], want, "{j}");
            assert_eq!(s["here"], s["vantage"] == v.name, "{j}");
        }
    }
    let downs: Vec<String> = lab
        .messages()
        .iter()
        .filter(|m| m.says("down") || m.says("DOWN"))
        .map(|m| format!("{} {}: {}", m.from, m.channel, m.json))
        .collect();
    assert!(downs.is_empty(), "no down alert anywhere: {downs:?}");
}

#[tokio::test]
async fn a_site_down_for_everyone_is_sent_once_to_chat_and_by_everyone_to_the_webhook() {
    let Some(mut lab) = lab("a_site_down_for_everyone_is_sent_once").await else {
        return;
    };
    lab.every_vantage("web up", Duration::from_secs(20), |j| j["status"] == "up")
        .await;
    // The server stops: connections are refused for everyone.
    lab.web = None;
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
    // Every vantage tells the webhook (it keeps one alert per id)...
    let hooks = lab
        .wait_sent("hook", "down", 3, Duration::from_secs(15))
        .await;
    let mut from: Vec<&str> = hooks.iter().map(|m| m.from.as_str()).collect();
    from.sort();
    assert_eq!(from, ["ams1", "fra1", "nyc1"]);
    for m in &hooks {
        assert_eq!(
            m.json["vantages"].as_array().unwrap().len(),
            3,
            "{}",
            m.json
        );
    }
    // ...and exactly one, the site's owner, tells the chat, listing all three.
    let chat = lab
        .wait_sent("chat", "DOWN web", 1, Duration::from_secs(15))
        .await;
    let owner = owner("web", &NAMES);
    assert_eq!(chat[0].from, owner);
    let text = chat[0].json.to_string();
    for n in NAMES {
        assert!(text.contains(n), "the chat message lists {n}: {text}");
    }
    // The page and the metrics say who saw what.
    let o = lab.vantage(owner);
    let addr: SocketAddr = o.api.trim_start_matches("http://").parse().unwrap();
    let (_, page) = o.ns.get(addr, "/");
    assert!(
        page.contains("Seen from: ")
            && NAMES
                .iter()
                .all(|n| page.contains(&format!("{n} down (connection refused)"))),
        "the page shows who saw what"
    );
    let (_, metrics) = o.ns.get(addr, "/metrics");
    for n in NAMES.iter().filter(|n| **n != owner) {
        assert!(
            metrics.contains(&format!("sitewatch_peer_up{{peer=\"{n}\"}} 1")),
            "{metrics}"
        );
    }
    for n in NAMES {
        assert!(
            metrics.contains(&format!(
                "sitewatch_site_vantage_up{{site=\"web\",vantage=\"{n}\"}} 0"
            )),
            "{metrics}"
        );
    }
    // The others held theirs for the owner, asked it, and dropped them.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let chat = lab.sent("chat", "DOWN web");
    assert_eq!(chat.len(), 1, "one chat message for one outage");
    for v in &lab.vantages {
        let h = lab.json(v, "/healthz");
        let delegated = h["alerts"]["channels"]["chat"]["delegated"]
            .as_u64()
            .unwrap_or(0);
        let sent = h["alerts"]["channels"]["chat"]["sent"]
            .as_u64()
            .unwrap_or(0);
        if v.name == owner {
            assert_eq!((sent, delegated), (1, 0), "{}: {h}", v.name);
        } else {
            assert_eq!((sent, delegated), (0, 1), "{}: {h}", v.name);
        }
    }
    // Back: the recovery, too, once on the chat (from the same owner).
    lab.web = Some(serve_web(&lab.target));
    lab.every_vantage("web up", Duration::from_secs(30), |j| j["status"] == "up")
        .await;
    let back = lab
        .wait_sent("chat", "RECOVERED web", 1, Duration::from_secs(20))
        .await;
    assert_eq!(back[0].from, owner);
    lab.wait_sent("hook", "recovered", 3, Duration::from_secs(20))
        .await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(lab.sent("chat", "RECOVERED web").len(), 1);
}

#[tokio::test]
async fn a_vantage_that_stops_answering_is_voted_without_and_reported_once() {
    let Some(mut lab) = lab("a_vantage_that_stops_answering").await else {
        return;
    };
    lab.every_vantage("web up", Duration::from_secs(20), |j| j["status"] == "up")
        .await;
    // nyc1 freezes: its sockets accept, nothing answers.
    signal(lab.vantage("nyc1"), libc::SIGSTOP);
    lab.web = None;
    for name in ["fra1", "ams1"] {
        let v = lab.vantage(name);
        let j = wait_for(
            &format!("{name} to see web down"),
            Duration::from_secs(40),
            || {
                let j = lab.site(v);
                async move { (j["status"] == "down").then_some(j) }
            },
        )
        .await;
        assert_eq!(j["scope"], "all", "{j}");
        let nyc = j["vantages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["vantage"] == "nyc1")
            .cloned()
            .unwrap();
        assert_eq!(nyc["verdict"], "abstains", "{j}");
    }
    // One chat message, from whichever of the two that voted owns the site.
    let chat = lab
        .wait_sent("chat", "DOWN web", 1, Duration::from_secs(20))
        .await;
    assert_eq!(chat[0].from, owner("web", &["fra1", "ams1"]));
    // nyc1 is reported unreachable: by one of the others to the chat, by
    // both to the webhook.
    let lost = lab
        .wait_sent(
            "chat",
            "VANTAGE nyc1 UNREACHABLE",
            1,
            Duration::from_secs(20),
        )
        .await;
    assert_ne!(lost[0].from, "nyc1");
    let lost_hooks = lab
        .wait_sent("hook", "vantage_lost", 2, Duration::from_secs(10))
        .await;
    assert!(lost_hooks.iter().all(|m| m.json["site"] == "nyc1"));
    // It comes back: told once.
    signal(lab.vantage("nyc1"), libc::SIGCONT);
    lab.wait_sent("chat", "VANTAGE nyc1 BACK", 1, Duration::from_secs(20))
        .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(lab.sent("chat", "VANTAGE nyc1 UNREACHABLE").len(), 1);
    assert_eq!(lab.sent("chat", "VANTAGE nyc1 BACK").len(), 1);
    assert_eq!(lab.sent("chat", "DOWN web").len(), 1, "still one page");
}

#[tokio::test]
async fn a_vantage_that_loses_its_link_pages_nothing_and_tells_its_outage_after() {
    let Some(lab) = lab("a_vantage_that_loses_its_link").await else {
        return;
    };
    lab.every_vantage("web up", Duration::from_secs(20), |j| j["status"] == "up")
        .await;
    let fra = lab.vantage("fra1");
    fra.ns.ip(&["link", "set", "eth0", "down"]);
    lab.wait_network(fra, "offline", Duration::from_secs(20))
        .await;
    // The others notice: one chat message, both webhooks.
    let lost = lab
        .wait_sent(
            "chat",
            "VANTAGE fra1 UNREACHABLE",
            1,
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(lost[0].from, owner("vantage:fra1", &["ams1", "nyc1"]));
    lab.wait_sent("hook", "vantage_lost", 2, Duration::from_secs(10))
        .await;
    // fra1 fails every probe meanwhile, and believes none of them.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let j = lab.site(fra);
    assert_eq!(j["status"], "up", "unverified failures move nothing: {j}");
    // The link returns: fra1 delivers its own lost/back pair, once.
    fra.ns.ip(&["link", "set", "eth0", "up"]);
    fra.ns.ip(&["route", "add", "default", "via", "10.1.0.1"]);
    lab.wait_network(fra, "ok", Duration::from_secs(30)).await;
    let lost = lab
        .wait_sent(
            "chat",
            "MONITOR fra1 LOST ITS NETWORK",
            1,
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(lost[0].from, "fra1");
    lab.wait_sent(
        "chat",
        "MONITOR fra1 NETWORK BACK",
        1,
        Duration::from_secs(30),
    )
    .await;
    lab.wait_sent("chat", "VANTAGE fra1 BACK", 1, Duration::from_secs(20))
        .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    for what in [
        "MONITOR fra1 LOST ITS NETWORK",
        "MONITOR fra1 NETWORK BACK",
        "VANTAGE fra1 UNREACHABLE",
        "VANTAGE fra1 BACK",
    ] {
        assert_eq!(lab.sent("chat", what).len(), 1, "{what} once");
    }
    let site_alerts: Vec<String> = lab
        .messages()
        .iter()
        .filter(|m| m.channel == "hook" && m.json["site"] == "web")
        .map(|m| format!("{}: {}", m.from, m.json["event"]))
        .collect();
    assert!(site_alerts.is_empty(), "no site alert: {site_alerts:?}");
}

#[tokio::test]
async fn a_vantage_whose_resolver_is_cut_off_says_dns_broken() {
    let Some(lab) = lab("a_vantage_whose_resolver_is_cut_off").await else {
        return;
    };
    let ams = lab.vantage("ams1");
    lab.wait_network(ams, "ok", Duration::from_secs(20)).await;
    let port = lab.dns.info.port();
    lab.target.nft(&format!(
        "table inet lab {{\n chain input {{\n  type filter hook input priority 0;\n  ip saddr {a} udp dport {port} drop\n  ip saddr {a} tcp dport {port} drop\n }}\n}}\n",
        a = ams.addr
    ));
    lab.wait_network(ams, "dns_broken", Duration::from_secs(30))
        .await;
    for name in ["fra1", "nyc1"] {
        let h = lab.json(lab.vantage(name), "/healthz");
        assert_eq!(h["network"]["state"], "ok", "{name}: {h}");
    }
    lab.wait_sent(
        "chat",
        "MONITOR ams1 LOST ITS NETWORK",
        1,
        Duration::from_secs(20),
    )
    .await;
    lab.target.nft("flush ruleset");
    lab.wait_network(ams, "ok", Duration::from_secs(30)).await;
    lab.wait_sent(
        "chat",
        "MONITOR ams1 NETWORK BACK",
        1,
        Duration::from_secs(20),
    )
    .await;
}
