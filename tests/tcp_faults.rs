//! The three TCP failure causes, produced by real firewall rules (nftables)
//! inside a network namespace the test creates, through `sitewatch check`
//! run in that namespace. Needs root: skips loudly without it, fails under CI.

mod common;

use common::netns::NetNs;
use serde_json::Value;

fn check_in(ns: &NetNs, url: &str) -> (i32, Value) {
    let out = ns
        .command(env!("CARGO_BIN_EXE_sitewatch"))
        .args(["check", url, "--timeout", "1s", "--json"])
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), json)
}

#[test]
fn refused_timeout_and_unreachable_are_told_apart() {
    let Some(ns) = NetNs::new("refused_timeout_and_unreachable_are_told_apart") else {
        return;
    };
    ns.nft(
        "table inet lab {
            chain out {
                type filter hook output priority 0;
                ip daddr 127.0.0.2 tcp dport 80 reject with tcp reset
                ip daddr 127.0.0.3 tcp dport 80 drop
                ip daddr 127.0.0.4 tcp dport 80 reject with icmp type host-unreachable
                ip daddr 127.0.0.5 tcp dport 80 reject with icmp type admin-prohibited
            }
        }",
    );
    let table = [
        ("tcp://127.0.0.1:80", "tcp.refused", "nothing listens"),
        (
            "tcp://127.0.0.2:80",
            "tcp.refused",
            "a firewall rejects with a reset",
        ),
        ("tcp://127.0.0.3:80", "tcp.timeout", "a firewall drops"),
        (
            "tcp://127.0.0.4:80",
            "tcp.unreachable",
            "ICMP host-unreachable",
        ),
        (
            "tcp://127.0.0.5:80",
            "tcp.unreachable",
            "ICMP admin-prohibited",
        ),
        ("tcp://10.255.0.1:80", "tcp.unreachable", "no route at all"),
        (
            "http://127.0.0.3/",
            "tcp.timeout",
            "the same for an http:// site",
        ),
    ];
    for (url, cause, why) in table {
        let (code, j) = check_in(&ns, url);
        assert_eq!(
            (code, j["cause"].as_str()),
            (2, Some(cause)),
            "{url} ({why}): {j}"
        );
        assert_eq!(j["layers"][0]["layer"], "tcp", "{j}");
    }
    // A drop costs the whole budget; the others answer at once.
    let (_, j) = check_in(&ns, "tcp://127.0.0.3:80");
    assert!(j["ms"].as_f64().unwrap() >= 990.0, "{j}");
    let (_, j) = check_in(&ns, "tcp://127.0.0.4:80");
    assert!(j["ms"].as_f64().unwrap() < 500.0, "{j}");
}
