//! The verdict from canary outcomes, table-tested.

use super::*;

fn tcp(a: &str, ok: bool) -> (SocketAddr, Result<Duration, String>) {
    (
        a.parse().unwrap(),
        if ok {
            Ok(Duration::from_millis(3))
        } else {
            Err("no answer".into())
        },
    )
}

#[test]
fn verdicts_from_canaries() {
    let ok_dns = vec![("example.com".to_string(), Ok(vec![]))];
    let bad_dns = vec![("example.com".to_string(), Err("timeout".to_string()))];
    let cases: Vec<(&str, Outcomes, NetState)> = vec![
        (
            "every canary answers",
            Outcomes {
                tcp: vec![tcp("192.0.2.1:443", true), tcp("[2001:db8::1]:443", true)],
                dns: ok_dns.clone(),
                https: vec![],
            },
            NetState::Ok,
        ),
        (
            "no canary answers",
            Outcomes {
                tcp: vec![tcp("192.0.2.1:443", false), tcp("[2001:db8::1]:443", false)],
                dns: bad_dns.clone(),
                https: vec![],
            },
            NetState::Offline,
        ),
        (
            "one of two IPv4 canaries is enough",
            Outcomes {
                tcp: vec![tcp("192.0.2.1:443", false), tcp("192.0.2.2:443", true)],
                dns: vec![],
                https: vec![],
            },
            NetState::Ok,
        ),
        (
            "resolvers fail, addresses answer",
            Outcomes {
                tcp: vec![tcp("192.0.2.1:443", true)],
                dns: bad_dns.clone(),
                https: vec![],
            },
            NetState::DnsBroken,
        ),
        (
            "IPv6 fails, IPv4 works",
            Outcomes {
                tcp: vec![tcp("192.0.2.1:443", true), tcp("[2001:db8::1]:443", false)],
                dns: ok_dns.clone(),
                https: vec![],
            },
            NetState::Ipv6Broken,
        ),
        (
            "only IPv6 canaries, and they answer",
            Outcomes {
                tcp: vec![tcp("[2001:db8::1]:443", true)],
                dns: vec![],
                https: vec![],
            },
            NetState::Ok,
        ),
        (
            "a captive portal: TCP works, https does not",
            Outcomes {
                tcp: vec![tcp("192.0.2.1:443", true)],
                dns: ok_dns,
                https: vec![("https://example.com/".into(), Err("untrusted".into()))],
            },
            NetState::Offline,
        ),
    ];
    assert!(!cases.is_empty());
    for (what, o, want) in cases {
        assert_eq!(decide(&o), want, "{what}");
    }
}

#[test]
fn handle_without_a_self_check_always_trusts() {
    let h = Handle::none();
    assert!(h.trusted());
    h.unverified("a");
    assert!(h.trusted());
}
