//! The DNS layer: resolvers built once from the configuration, lookups of A
//! and AAAA, and the table from hickory's errors to cause codes.

use crate::diagnosis::Cause;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
    ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Per-query timeout of one attempt against one server; the probe's own
/// deadline still bounds the whole lookup.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// The resolvers the probes use: the system's, and one per distinct
/// `resolvers` list in the configuration.
pub struct Resolvers {
    system: Option<TokioResolver>,
    system_error: Option<String>,
    custom: HashMap<Vec<SocketAddr>, TokioResolver>,
}

/// The resolvers could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build a DNS resolver for {which}: {message}")]
pub struct BuildError {
    which: String,
    message: String,
}

fn options(use_hosts: bool) -> ResolverOpts {
    let mut opts = ResolverOpts::default();
    opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    opts.timeout = QUERY_TIMEOUT;
    // One retry (hickory counts retries, not tries).
    opts.attempts = 1;
    // No cache of our own: every probe asks the resolver, which caches no
    // longer than the TTL, so a changed record shows on the next probe.
    opts.cache_size = 0;
    opts.use_hosts_file = if use_hosts {
        ResolveHosts::Auto
    } else {
        ResolveHosts::Never
    };
    opts
}

impl Resolvers {
    /// Builds the resolvers `lists` need; `need_system` says whether any
    /// site resolves through the system configuration.
    pub fn new<'a>(
        need_system: bool,
        lists: impl IntoIterator<Item = &'a [SocketAddr]>,
    ) -> Result<Resolvers, BuildError> {
        let (system, system_error) = if need_system {
            match TokioResolver::builder_tokio() {
                Ok(mut b) => {
                    let use_hosts = true;
                    let sys = b.options_mut().clone();
                    let mut opts = options(use_hosts);
                    opts.ndots = sys.ndots;
                    *b.options_mut() = opts;
                    match b.build() {
                        Ok(r) => (Some(r), None),
                        Err(e) => (None, Some(e.to_string())),
                    }
                }
                Err(e) => (None, Some(e.to_string())),
            }
        } else {
            (None, None)
        };
        let mut custom = HashMap::new();
        for list in lists {
            if list.is_empty() || custom.contains_key(list) {
                continue;
            }
            let servers = list
                .iter()
                .map(|addr| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = addr.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = addr.port();
                    NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
                })
                .collect();
            let config = ResolverConfig::from_parts(None, vec![], servers);
            let resolver =
                TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
                    .with_options(options(false))
                    .build()
                    .map_err(|e| BuildError {
                        which: format!("{list:?}"),
                        message: e.to_string(),
                    })?;
            custom.insert(list.to_vec(), resolver);
        }
        Ok(Resolvers {
            system,
            system_error,
            custom,
        })
    }

    /// The resolver for a site's `resolvers` list (empty: the system's).
    pub fn get(&self, list: &[SocketAddr]) -> Result<&TokioResolver, String> {
        if list.is_empty() {
            self.system.as_ref().ok_or_else(|| {
                format!(
                    "the system resolver configuration (/etc/resolv.conf) is unusable: {}; set `resolvers`",
                    self.system_error.as_deref().unwrap_or("not loaded")
                )
            })
        } else {
            self.custom
                .get(list)
                .ok_or_else(|| format!("no resolver was built for {list:?}"))
        }
    }
}

/// Resolves `host` to its A and AAAA addresses.
pub async fn lookup(resolver: &TokioResolver, host: &str) -> Result<Vec<IpAddr>, NetError> {
    let lookup = resolver.lookup_ip(host).await?;
    Ok(lookup.iter().collect())
}

/// The most addresses of each family (IPv4, IPv6) a probe connects to. A
/// name may resolve to hundreds; connecting to all of them would open that
/// many sockets per probe and bury the report.
pub const MAX_ADDRS_PER_FAMILY: usize = 8;

/// Keeps the first `max` addresses of each family, in the resolver's order;
/// returns them and how many were left out.
pub fn per_family(ips: Vec<IpAddr>, max: usize) -> (Vec<IpAddr>, usize) {
    let (mut v4, mut v6) = (0, 0);
    let total = ips.len();
    let kept: Vec<IpAddr> = ips
        .into_iter()
        .filter(|ip| {
            let n = if ip.is_ipv4() { &mut v4 } else { &mut v6 };
            *n += 1;
            *n <= max
        })
        .collect();
    let left_out = total - kept.len();
    (kept, left_out)
}

/// Maps a lookup error to a cause and a short phrase for `detail`.
pub fn classify(err: &NetError) -> (Cause, String) {
    match err {
        NetError::Dns(DnsError::NoRecordsFound(no)) => match no.response_code {
            ResponseCode::NXDomain => (Cause::DnsNxdomain, "NXDOMAIN".to_string()),
            ResponseCode::NoError => (
                Cause::DnsNoAddress,
                "no A or AAAA record (NODATA)".to_string(),
            ),
            code => (Cause::DnsError, format!("answer {code}")),
        },
        NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => {
            (Cause::DnsServfail, "SERVFAIL".to_string())
        }
        NetError::Dns(DnsError::ResponseCode(code)) => (Cause::DnsError, format!("answer {code}")),
        NetError::Timeout => (Cause::DnsTimeout, "no answer from the resolver".to_string()),
        NetError::NoConnections => (
            Cause::DnsTimeout,
            "no resolver could be reached".to_string(),
        ),
        NetError::Io(e) => (Cause::DnsTimeout, format!("resolver unreachable: {e}")),
        other => (Cause::DnsError, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::net::NoRecords;
    use hickory_resolver::proto::op::Query;

    fn no_records(code: ResponseCode) -> NetError {
        NetError::Dns(DnsError::NoRecordsFound(NoRecords::new(
            Query::default(),
            code,
        )))
    }

    #[test]
    fn at_most_eight_addresses_of_each_family_are_kept() {
        let v4: Vec<IpAddr> = (1..=20).map(|i| IpAddr::from([127, 0, 0, i])).collect();
        let v6: Vec<IpAddr> = (1..=3u16)
            .map(|i| IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, i]))
            .collect();
        let mixed: Vec<IpAddr> = v4.iter().chain(&v6).copied().collect();
        let (kept, left_out) = per_family(mixed, MAX_ADDRS_PER_FAMILY);
        assert_eq!(left_out, 12);
        assert_eq!(kept[..8], v4[..8]);
        assert_eq!(kept[8..], v6[..]);
        let (kept, left_out) = per_family(v4[..3].to_vec(), MAX_ADDRS_PER_FAMILY);
        assert_eq!((kept.len(), left_out), (3, 0));
    }

    #[test]
    fn lookup_errors_map_to_causes() {
        let table: Vec<(NetError, Cause)> = vec![
            (no_records(ResponseCode::NXDomain), Cause::DnsNxdomain),
            (no_records(ResponseCode::NoError), Cause::DnsNoAddress),
            (
                NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)),
                Cause::DnsServfail,
            ),
            (
                NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)),
                Cause::DnsError,
            ),
            (
                NetError::Dns(DnsError::ResponseCode(ResponseCode::FormErr)),
                Cause::DnsError,
            ),
            (
                NetError::Dns(DnsError::ResponseCode(ResponseCode::NotImp)),
                Cause::DnsError,
            ),
            (NetError::Timeout, Cause::DnsTimeout),
            (NetError::NoConnections, Cause::DnsTimeout),
        ];
        for (err, want) in table {
            assert_eq!(classify(&err).0, want, "{err:?}");
        }
    }
}
