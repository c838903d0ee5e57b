//! The kernel's view of this host's network: its routing tables, read from
//! `/proc/net/route` and `/proc/net/ipv6_route`. When no canary address has
//! a route, the host is offline, whatever a connect attempt would say (and
//! without waiting for one to time out).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const RTF_UP: u32 = 0x0001;
const RTF_REJECT: u32 = 0x0200;

/// One usable route: a destination prefix and the interface it leaves by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Destination network.
    pub dest: IpAddr,
    /// Prefix length.
    pub prefix: u8,
    /// Interface.
    pub iface: String,
}

/// The routing tables (main table, both families).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Routes {
    /// Usable routes (up, not reject).
    pub routes: Vec<Route>,
    /// Whether the tables could be read at all.
    pub readable: bool,
}

impl Routes {
    /// Reads the tables of this process's network namespace.
    pub fn read() -> Routes {
        let v4 = std::fs::read_to_string("/proc/net/route");
        let v6 = std::fs::read_to_string("/proc/net/ipv6_route");
        let mut routes = Vec::new();
        if let Ok(t) = &v4 {
            routes.extend(parse_v4(t));
        }
        if let Ok(t) = &v6 {
            routes.extend(parse_v6(t));
        }
        Routes {
            routes,
            readable: v4.is_ok() || v6.is_ok(),
        }
    }

    /// The interface a packet to `ip` would leave by, if any route covers it.
    pub fn route_to(&self, ip: IpAddr) -> Option<&Route> {
        self.routes
            .iter()
            .filter(|r| covers(r, ip))
            .max_by_key(|r| r.prefix)
    }
}

fn covers(r: &Route, ip: IpAddr) -> bool {
    match (r.dest, ip) {
        (IpAddr::V4(d), IpAddr::V4(a)) => {
            let bits = u32::from(r.prefix.min(32));
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(d) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(d), IpAddr::V6(a)) => {
            let bits = u32::from(r.prefix.min(128));
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(d) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// `/proc/net/route`: addresses and masks are the in-memory (network byte
/// order) words printed as native integers.
fn parse_v4(text: &str) -> Vec<Route> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let iface = f.first()?;
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let flags = u32::from_str_radix(f.get(3)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            if flags & RTF_UP == 0 || flags & RTF_REJECT != 0 {
                return None;
            }
            let mask = u32::from_be_bytes(mask.to_ne_bytes());
            Some(Route {
                dest: IpAddr::V4(Ipv4Addr::from(dest.to_ne_bytes())),
                prefix: u8::try_from(mask.leading_ones()).unwrap_or(32),
                iface: (*iface).to_string(),
            })
        })
        .collect()
}

/// `/proc/net/ipv6_route`: destination (32 hex digits, network order),
/// prefix length, source, source prefix, next hop, metric, refcnt, use,
/// flags, interface.
fn parse_v6(text: &str) -> Vec<Route> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 {
                return None;
            }
            let dest = u128::from_str_radix(f[0], 16).ok()?;
            let prefix = u8::from_str_radix(f[1], 16).ok()?;
            let flags = u32::from_str_radix(f[8], 16).ok()?;
            if flags & RTF_UP == 0 || flags & RTF_REJECT != 0 {
                return None;
            }
            Some(Route {
                dest: IpAddr::V6(Ipv6Addr::from(dest)),
                prefix,
                iface: f[9].to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
eth1\t0000000A\t00000000\t0201\t0\t0\t0\t000000FF\t0\t0\t0
";
    const V6: &str = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth0
20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
";

    fn routes() -> Routes {
        let mut routes = parse_v4(V4);
        routes.extend(parse_v6(V6));
        Routes {
            routes,
            readable: true,
        }
    }

    #[test]
    fn the_longest_usable_prefix_wins_and_reject_routes_do_not_count() {
        let r = routes();
        let to = |ip: &str| {
            r.route_to(ip.parse().unwrap())
                .map(|r| (r.prefix, r.iface.clone()))
        };
        assert_eq!(to("192.168.1.7"), Some((24, "eth0".into())));
        assert_eq!(to("203.0.113.1"), Some((0, "eth0".into())));
        // 10.0.0.0/8 is a reject route (flags 0x0201): it does not count.
        assert_eq!(to("10.1.2.3"), Some((0, "eth0".into())));
        assert_eq!(to("2001:db8::1"), Some((64, "eth0".into())));
        assert_eq!(to("2606:4700::1"), Some((0, "eth0".into())));
    }

    #[test]
    fn without_a_default_route_only_connected_networks_are_reachable() {
        let v4_no_default = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\neth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n";
        let r = Routes {
            routes: parse_v4(v4_no_default),
            readable: true,
        };
        assert!(r.route_to("203.0.113.1".parse().unwrap()).is_none());
        assert!(r.route_to("192.168.1.9".parse().unwrap()).is_some());
        assert!(r.route_to("2001:db8::1".parse().unwrap()).is_none());
    }

    #[test]
    fn this_hosts_tables_can_be_read() {
        assert!(Routes::read().readable);
    }
}
