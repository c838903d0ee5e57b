//! The DNS layer of the probe against the in-process DNS server: a name
//! with many addresses is connected to on at most eight of each family,
//! and the report says how many were not tried.

mod common;

use common::dns::{Answer, TestDns};
use common::http::closed_addr;
use sitewatch::diagnosis::{Cause, Layer, Status};
use sitewatch::probe::ProbeDeps;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};

/// 127.0.0.1 … 127.0.0.20: all of them reach this host over `lo`.
fn twenty() -> Vec<IpAddr> {
    (1..=20)
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
        .collect()
}

/// A listener on every one of `ips`, all on the same port.
fn listen_on_all(ips: &[IpAddr]) -> (u16, Vec<TcpListener>) {
    for _ in 0..20 {
        let first = TcpListener::bind(SocketAddr::new(ips[0], 0)).unwrap();
        let port = first.local_addr().unwrap().port();
        let rest: Result<Vec<TcpListener>, _> = ips[1..]
            .iter()
            .map(|&ip| TcpListener::bind(SocketAddr::new(ip, port)))
            .collect();
        if let Ok(rest) = rest {
            let mut all = vec![first];
            all.extend(rest);
            for l in &all {
                l.set_nonblocking(true).unwrap();
            }
            return (port, all);
        }
    }
    panic!("no port free on all of {ips:?}");
}

/// Connections waiting to be accepted: a connect that returned is already
/// queued, so nothing needs to be waited for.
fn pending(listener: &TcpListener) -> usize {
    let mut n = 0;
    while listener.accept().is_ok() {
        n += 1;
    }
    n
}

fn site(url: &str, dns: &TestDns) -> sitewatch::config::SiteSpec {
    let text = format!(
        "[[site]]\nname = \"many\"\nurl = \"{url}\"\nresolvers = [\"{}\"]\n",
        dns.addr
    );
    let config = sitewatch::config::parse(std::path::Path::new("t.toml"), &text).unwrap();
    config.sites[0].as_ref().clone()
}

#[tokio::test]
async fn at_most_eight_addresses_of_a_name_are_connected_to() {
    let dns = TestDns::start().await;
    let ips = twenty();
    dns.set("many.test", Answer::Addrs(ips.clone()));
    let (port, listeners) = listen_on_all(&ips);

    let s = site(&format!("tcp://many.test:{port}"), &dns);
    let deps = ProbeDeps::new([&s]).unwrap();
    let r = sitewatch::probe::run(&s, &deps).await.unwrap();
    assert_eq!(r.status, Status::Up, "{}", r.detail);

    let tried: Vec<IpAddr> = ips
        .iter()
        .zip(&listeners)
        .filter_map(|(ip, l)| match pending(l) {
            0 => None,
            1 => Some(*ip),
            n => panic!("{ip} got {n} connections"),
        })
        .collect();
    assert_eq!(tried.len(), 8, "{tried:?}");
    let dns_layer = &r.layers[0];
    assert_eq!(dns_layer.layer, Layer::Dns);
    for ip in &ips {
        let listed = dns_layer.detail.contains(&format!(" {ip},"))
            || dns_layer.detail.contains(&format!(" {ip} and"));
        assert_eq!(listed, tried.contains(ip), "{ip}: {}", dns_layer.detail);
    }
    assert!(
        dns_layer
            .detail
            .ends_with(" and 12 more addresses not tried"),
        "{}",
        dns_layer.detail
    );
    assert!(
        r.detail
            .contains("12 more addresses of many.test not tried (at most 8 of each family are)"),
        "{}",
        r.detail
    );
}

#[tokio::test]
async fn when_every_tried_address_fails_the_untried_ones_are_still_said() {
    let dns = TestDns::start().await;
    dns.set("many.test", Answer::Addrs(twenty()));
    let port = closed_addr().port();
    let s = site(&format!("tcp://many.test:{port}"), &dns);
    let deps = ProbeDeps::new([&s]).unwrap();
    let r = sitewatch::probe::run(&s, &deps).await.unwrap();
    assert_eq!(r.cause, Some(Cause::TcpRefused), "{}", r.detail);
    assert_eq!(
        r.detail.matches("refused the connection").count(),
        8,
        "{}",
        r.detail
    );
    assert!(
        r.detail
            .contains("; 12 more addresses of many.test not tried"),
        "{}",
        r.detail
    );
}
