//! "Is it me?" end to end: a real `sitewatch run` inside a monitor network
//! namespace linked by a veth pair to a network namespace that holds the
//! canaries (TCP listeners, a DNS server) and the watched site (an HTTP
//! server), with no route anywhere else. The test breaks the monitor's own
//! network (link down, nftables dropping DNS or IPv6) and checks that no
//! site alert goes out, that exactly one "lost" and one "back" event do,
//! and what /healthz, /status and /metrics say; and that a real outage seen
//! by a working network still alerts.

mod common;

use common::daemon::{spawn_daemon_in, wait_for, write_config};
use common::dns::{Answer, TestDns};
use common::netns::{NetNs, Served};
use common::receiver::{Receiver, ReceiverView};
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpListener;

/// The monitor's side of the link, the network's side, and the "internet"
/// addresses the network namespace answers on.
const MON_V4: &str = "10.20.0.2/24";
const NET_V4: &str = "10.20.0.1/24";
const MON_V6: &str = "fd20::2/64";
const NET_V6: &str = "fd20::1/64";
const CANARY_V4: &str = "198.51.100.1";
const CANARY_V6: &str = "2001:db8::1";
const DNS_IP: &str = "198.51.100.53";
const SITE_IP: &str = "198.51.100.10";

/// What the network namespace serves: a canary port on both families, the
/// DNS server, and the site.
struct Internet {
    canary_port: u16,
    dns: SocketAddr,
    site: SocketAddr,
}

struct Lab {
    mon: NetNs,
    net: NetNs,
    _served: Served<Internet>,
    hooks: ReceiverView,
    _hook_thread: Served<ReceiverView>,
    internet: (u16, SocketAddr, SocketAddr),
}

fn lab(test: &str) -> Option<Lab> {
    let mon = NetNs::new(test)?;
    let net = NetNs::new(test)?;
    mon.link("eth0", &[MON_V4, MON_V6], &net, "eth0", &[NET_V4, NET_V6]);
    for a in [
        format!("{CANARY_V4}/32"),
        format!("{DNS_IP}/32"),
        format!("{SITE_IP}/32"),
        format!("{CANARY_V6}/128"),
    ] {
        net.add_addr(&a);
    }
    mon.ip(&["route", "add", "default", "via", "10.20.0.1"]);
    mon.ip(&["-6", "route", "add", "default", "via", "fd20::1"]);
    let served = net.serve(|| async {
        let v4 = TcpListener::bind((CANARY_V4.parse::<IpAddr>().unwrap(), 0))
            .await
            .unwrap();
        let port = v4.local_addr().unwrap().port();
        let v6 = TcpListener::bind((CANARY_V6.parse::<IpAddr>().unwrap(), port))
            .await
            .unwrap();
        let dns = TestDns::start_on(DNS_IP.parse().unwrap()).await;
        dns.set(
            "canary.test",
            Answer::Addrs(vec![CANARY_V4.parse().unwrap()]),
        );
        let site = TcpListener::bind((SITE_IP.parse::<IpAddr>().unwrap(), 0))
            .await
            .unwrap();
        let site_addr = site.local_addr().unwrap();
        let accept = |l: TcpListener| {
            tokio::spawn(async move {
                while let Ok((mut s, _)) = l.accept().await {
                    tokio::spawn(async move {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        let mut buf = [0u8; 2048];
                        let _ = s.read(&mut buf).await;
                        let _ = s
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                            .await;
                    });
                }
            })
        };
        let tasks = vec![accept(v4), accept(v6), accept(site)];
        let info = Internet {
            canary_port: port,
            dns: dns.addr,
            site: site_addr,
        };
        (info, (tasks, dns))
    });
    let internet = (served.info.canary_port, served.info.dns, served.info.site);
    let hook_thread = mon.serve(|| async {
        let r = Receiver::start_ok().await;
        (r.view(), r)
    });
    let hooks = hook_thread.info.clone();
    Some(Lab {
        mon,
        net,
        _served: served,
        hooks,
        _hook_thread: hook_thread,
        internet,
    })
}

impl Lab {
    fn config(&self, dir: &Path, self_check: &str) -> std::path::PathBuf {
        let (port, dns, site) = self.internet;
        let text = format!(
            r#"[daemon]
listen = "127.0.0.1:0"
state_dir = "{state}"

[self_check]
interval = "{self_check}"
timeout = "2500ms"
tcp = ["{CANARY_V4}:{port}", "[{CANARY_V6}]:{port}"]
dns = ["canary.test"]
resolvers = ["{dns}"]

[defaults]
interval = "1s"
timeout = "800ms"
confirm_down = 2

[alert.hook]
type = "webhook"
url = "{hook}"
storm_hold = "0s"

[[site]]
name = "web"
url = "http://{site}/"

[[site]]
name = "lan"
url = "tcp://127.0.0.1:{closed}"
network = "local"
"#,
            state = dir.join("state").display(),
            hook = self.hooks.url("/h"),
            closed = common::http::closed_addr().port(),
        );
        write_config(dir, &text)
    }

    fn json(&self, api: &str, path: &str) -> Value {
        let addr: SocketAddr = api.trim_start_matches("http://").parse().unwrap();
        let (_, body) = self.mon.get(addr, path);
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    }

    fn events(&self, event: &str) -> Vec<Value> {
        self.hooks
            .requests()
            .iter()
            .map(|r| r.json())
            .filter(|j| j["event"] == event)
            .collect()
    }

    async fn network_is(&self, api: &str, state: &str, limit: Duration) -> Value {
        wait_for(&format!("the self-check to say {state}"), limit, || {
            let h = self.json(api, "/healthz");
            async move { (h["network"]["state"] == state).then_some(h) }
        })
        .await
    }
}

#[tokio::test]
async fn a_monitor_that_loses_its_network_pages_nobody_about_its_sites() {
    let Some(lab) = lab("a_monitor_that_loses_its_network_pages_nobody_about_its_sites") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = lab.config(dir.path(), "1h");
    let (child, api, _logs) = spawn_daemon_in(&lab.mon.name, &path, &[]).await;
    lab.network_is(&api, "ok", Duration::from_secs(10)).await;
    wait_for("web to be up", Duration::from_secs(10), || {
        let j = lab.json(&api, "/status/web");
        async move { (j["status"] == "up").then_some(()) }
    })
    .await;

    // The monitor's link goes down: its routes go with it.
    let broke = std::time::SystemTime::now();
    lab.mon.ip(&["link", "set", "eth0", "down"]);
    let h = lab
        .network_is(&api, "offline", Duration::from_secs(15))
        .await;
    // The self-check runs every hour here: it ran at once because the
    // site's probes failed at the network layer.
    let since = humantime::parse_rfc3339(h["network"]["since"].as_str().unwrap()).unwrap();
    let after = since.duration_since(broke).unwrap_or_default();
    assert!(
        after < Duration::from_secs(5),
        "offline found {after:?} after the break: {h}"
    );
    assert!(
        h["network"]["evidence"][0]
            .as_str()
            .unwrap()
            .contains("no route to any canary"),
        "{h}"
    );
    // Several failed probes later, web is still up (unverifiable, not down).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let web = lab.json(&api, "/status/web");
    assert_eq!(web["status"], "up", "{web}");
    let metrics = {
        let addr: SocketAddr = api.trim_start_matches("http://").parse().unwrap();
        lab.mon.get(addr, "/metrics").1
    };
    assert!(metrics.contains("sitewatch_self_check_up 0"), "{metrics}");
    // The LAN site is judged all the same: its outage is real.
    wait_for("the lan site's down alert", Duration::from_secs(10), || {
        let n = lab.events("down").len();
        async move { (n > 0).then_some(()) }
    })
    .await;

    // Back: the link comes up, the default routes are put back.
    lab.mon.ip(&["link", "set", "eth0", "up"]);
    // IPv6 addresses go with the link (keep_addr_on_down is off).
    lab.mon
        .ip(&["addr", "replace", MON_V6, "dev", "eth0", "nodad"]);
    lab.mon
        .ip(&["route", "replace", "default", "via", "10.20.0.1"]);
    lab.mon
        .ip(&["-6", "route", "replace", "default", "via", "fd20::1"]);
    lab.network_is(&api, "ok", Duration::from_secs(20)).await;
    wait_for("the back event", Duration::from_secs(10), || {
        let n = lab.events("network_back").len();
        async move { (n > 0).then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let lost = lab.events("network_lost");
    let back = lab.events("network_back");
    assert_eq!((lost.len(), back.len()), (1, 1), "{lost:?} {back:?}");
    assert!(
        back[0]["detail"]
            .as_str()
            .unwrap()
            .contains("1 site could not be verified"),
        "{}",
        back[0]
    );
    let downs: Vec<String> = lab
        .events("down")
        .iter()
        .map(|j| j["site"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(downs, ["lan"], "no alert about web");
    let web = lab.json(&api, "/status/web");
    assert_eq!(web["status"], "up", "{web}");
    let unverified = web["uptime"]["unverified"]["24h"].as_f64().unwrap_or(0.0);
    assert!(unverified > 0.0, "{web}");
    drop(child);
}

#[tokio::test]
async fn broken_dns_and_broken_ipv6_are_named() {
    let Some(lab) = lab("broken_dns_and_broken_ipv6_are_named") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = lab.config(dir.path(), "5s");
    let (child, api, _logs) = spawn_daemon_in(&lab.mon.name, &path, &[]).await;
    lab.network_is(&api, "ok", Duration::from_secs(10)).await;

    // The resolver stops answering; IP canaries still do.
    lab.net.nft(&format!(
        "table inet lab {{\n chain input {{\n  type filter hook input priority 0;\n  ip daddr {DNS_IP} drop\n }}\n}}\n"
    ));
    let h = lab
        .network_is(&api, "dns_broken", Duration::from_secs(20))
        .await;
    let evidence = h["network"]["evidence"].to_string();
    assert!(evidence.contains("dns canary.test"), "{h}");
    lab.net.nft("delete table inet lab");
    lab.network_is(&api, "ok", Duration::from_secs(20)).await;

    // IPv6 is dropped; IPv4 works.
    lab.net.nft(
        "table ip6 lab {\n chain input {\n  type filter hook input priority 0;\n  ip6 daddr 2001:db8::1 drop\n }\n}\n",
    );
    lab.network_is(&api, "ipv6_broken", Duration::from_secs(20))
        .await;
    lab.net.nft("delete table ip6 lab");
    lab.network_is(&api, "ok", Duration::from_secs(20)).await;
    wait_for(
        "two lost and two back events",
        Duration::from_secs(10),
        || {
            let n = (
                lab.events("network_lost").len(),
                lab.events("network_back").len(),
            );
            async move { (n == (2, 2)).then_some(()) }
        },
    )
    .await;
    let lost: Vec<String> = lab
        .events("network_lost")
        .iter()
        .map(|j| j["detail"].as_str().unwrap().to_string())
        .collect();
    assert!(lost[0].starts_with("DNS resolution fails"), "{lost:?}");
    assert!(lost[1].starts_with("IPv6 fails"), "{lost:?}");
    drop(child);
}

#[tokio::test]
async fn a_real_outage_seen_by_a_working_network_still_alerts() {
    let Some(lab) = lab("a_real_outage_seen_by_a_working_network_still_alerts") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = lab.config(dir.path(), "1h");
    let (child, api, _logs) = spawn_daemon_in(&lab.mon.name, &path, &[]).await;
    lab.network_is(&api, "ok", Duration::from_secs(10)).await;
    // Only the site's address is dropped: the canaries answer.
    lab.net.nft(&format!(
        "table inet lab {{\n chain input {{\n  type filter hook input priority 0;\n  ip daddr {SITE_IP} drop\n }}\n}}\n"
    ));
    wait_for("web's down alert", Duration::from_secs(20), || {
        let n = lab
            .events("down")
            .iter()
            .filter(|j| j["site"] == "web")
            .count();
        async move { (n > 0).then_some(()) }
    })
    .await;
    let h = lab.json(&api, "/healthz");
    assert_eq!(h["network"]["state"], "ok", "{h}");
    assert!(
        lab.events("network_lost").is_empty(),
        "{:?}",
        lab.events("network_lost")
    );
    let web = lab.json(&api, "/status/web");
    assert_eq!(web["cause"], "tcp.timeout", "{web}");
    drop(child);
}
