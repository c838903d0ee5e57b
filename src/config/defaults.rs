//! Every default of sites.toml in one place, so the docs, the bundled example
//! and the code cannot drift apart (`config/sites.toml` shows each of them).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Where the HTTP API listens: loopback only, port 9898 (unassigned by IANA
/// and not used by common Prometheus exporters).
pub const LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9898);
/// State directory when neither `state_dir` nor `$STATE_DIRECTORY` is set.
pub const STATE_DIR: &str = "/var/lib/sitewatch";
/// How many probes may run at once, across all sites.
pub const MAX_CONCURRENT_PROBES: usize = 1024;
/// Time between two requests of `heartbeat_url`.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(60);
/// Time between two probes of a site.
pub const INTERVAL: Duration = Duration::from_secs(60);
/// Budget for one whole probe (DNS, connect, TLS and HTTP together).
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Consecutive failed probes before a site is declared down.
pub const CONFIRM_DOWN: u32 = 2;
/// Consecutive good probes before a down site is declared up again.
pub const CONFIRM_UP: u32 = 2;
/// Days before certificate expiry that make a site degraded.
pub const CERT_WARN_DAYS: u32 = 14;
/// Accepted HTTP statuses: success and redirects.
pub const EXPECT_STATUS: (u16, u16) = (200, 399);
/// The smallest interval a site may have.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The largest confirmation threshold (beyond it an outage is never confirmed in practice).
pub const MAX_CONFIRM: u32 = 100;
/// Redirects followed before `http.redirects`.
pub const MAX_REDIRECTS: u32 = 5;
/// The most redirects a site may allow.
pub const MAX_REDIRECTS_LIMIT: u32 = 20;
/// The largest configuration file read, in bytes (16 MiB: room for tens of
/// thousands of sites, and a bound on what a stray `--config /dev/zero` reads).
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;
/// Port used for a resolver given without one.
pub const DNS_PORT: u16 = 53;
