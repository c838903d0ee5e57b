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
/// Redirects followed before `http.redirects`.
pub const MAX_REDIRECTS: u32 = 5;
/// How late a heartbeat's ping may come after the expected time.
pub const GRACE: Duration = Duration::from_secs(5 * 60);
/// How often a heartbeat is judged between pings (a ping is judged at once).
pub const HEARTBEAT_TICK: Duration = Duration::from_secs(5);

// Limits. Every number and size a configuration can set is bounded, so no
// value can overflow the scheduler's arithmetic or stall a probe; each
// message about one names the allowed range (docs/configuration.md lists them).

/// The largest configuration file read, in bytes (16 MiB: room for tens of
/// thousands of sites, and a bound on what a stray `--config /dev/zero` reads).
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;
/// The smallest interval a site may have.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The largest interval a site may have: one probe a day.
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// The shortest probe budget.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(1);
/// The longest probe budget (a timeout must also fit in the interval).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// The allowed `[daemon] history` retentions of raw samples (1 hour to 30
/// days), hourly rows (a day to 400 days) and daily rows (a day to 10 years).
pub const RAW_RETENTION_RANGE: (Duration, Duration) =
    (Duration::from_secs(3600), Duration::from_secs(30 * 86_400));
/// See [`RAW_RETENTION_RANGE`].
pub const HOURLY_RETENTION_RANGE: (Duration, Duration) = (
    Duration::from_secs(86_400),
    Duration::from_secs(400 * 86_400),
);
/// See [`RAW_RETENTION_RANGE`].
pub const DAILY_RETENTION_RANGE: (Duration, Duration) = (
    Duration::from_secs(86_400),
    Duration::from_secs(3650 * 86_400),
);
/// The shortest time between two reminders of an outage.
pub const MIN_REMIND_EVERY: Duration = Duration::from_secs(60);
/// The longest time between two reminders of an outage: a week.
pub const MAX_REMIND_EVERY: Duration = Duration::from_secs(7 * 24 * 3600);
/// The shortest time between two heartbeat requests.
pub const MIN_HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// The longest time between two heartbeat requests: a day.
pub const MAX_HEARTBEAT_EVERY: Duration = Duration::from_secs(24 * 3600);
/// The shortest `period` of a heartbeat.
pub const MIN_PERIOD: Duration = Duration::from_secs(10);
/// The longest `period`, `grace`, `max_runtime` or `min_runtime` of a heartbeat: a year.
pub const MAX_PERIOD: Duration = Duration::from_secs(366 * 24 * 3600);
/// The fewest characters of a heartbeat's ping key (22 URL-safe base64
/// characters carry 132 bits).
pub const MIN_PING_KEY_CHARS: usize = 22;
/// The most characters of a heartbeat's ping key.
pub const MAX_PING_KEY_CHARS: usize = 128;
/// The largest confirmation threshold (beyond it an outage is never confirmed in practice).
pub const MAX_CONFIRM: u32 = 100;
/// The most redirects a site may allow.
pub const MAX_REDIRECTS_LIMIT: u32 = 20;
/// Failures among the last `intermittent_window` probes that make a site
/// degraded (`site.intermittent`) when none was confirmed.
pub const INTERMITTENT_FAILURES: u8 = 3;
/// How many recent probes `intermittent_failures` counts among.
pub const INTERMITTENT_WINDOW: u8 = 20;
/// The largest `intermittent_window`.
pub const MAX_INTERMITTENT_WINDOW: u8 = 32;
/// Days before a domain's registration expires that make its sites degraded.
pub const DOMAIN_WARN_DAYS: u32 = 30;
/// The largest `domain_warn_days`: a year.
pub const MAX_DOMAIN_WARN_DAYS: u32 = 365;
/// The largest `cert_warn_days`: a year.
pub const MAX_CERT_WARN_DAYS: u32 = 365;
/// The largest `max_concurrent_probes` (each probe in flight holds a socket).
pub const MAX_CONCURRENT_PROBES_LIMIT: usize = 100_000;
/// The longest `expect_body` or `forbid_body`, in bytes. Each probe
/// searches the body (up to 1 MiB) for it, so its length multiplies the work.
pub const MAX_BODY_TEXT_BYTES: usize = 4096;
/// The longest `expect_banner`, in bytes: the probe reads at most 1 KiB of
/// the server's first line, so a longer text could never match.
pub const MAX_BANNER_BYTES: usize = 1024;
/// The most entries in `headers`.
pub const MAX_HEADERS: usize = 32;
/// The longest header name in `headers`, in bytes.
pub const MAX_HEADER_NAME_BYTES: usize = 128;
/// The longest header value in `headers`, in bytes.
pub const MAX_HEADER_VALUE_BYTES: usize = 4096;
/// The most DNS servers in `resolvers`.
pub const MAX_RESOLVERS: usize = 8;
/// The most addresses in `expect_ips`.
pub const MAX_EXPECT_IPS: usize = 64;
/// The most entries in `expect_status`.
pub const MAX_STATUS_RANGES: usize = 32;
/// The most recipients (`to`) of an email channel.
pub const MAX_RECIPIENTS: usize = 100;
/// The longest URL (`url`, `heartbeat_url`, a webhook's `url`), in bytes.
pub const MAX_URL_BYTES: usize = 4096;
/// The longest password or webhook signing secret written in sites.toml, in bytes.
pub const MAX_SECRET_BYTES: usize = 4096;
/// The longest site or channel name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Port used for a resolver given without one.
pub const DNS_PORT: u16 = 53;
/// How long a down alert waits for others while a storm is forming.
pub const STORM_HOLD: Duration = Duration::from_secs(10);
/// The longest `storm_hold` a channel may have.
pub const MAX_STORM_HOLD: Duration = Duration::from_secs(300);
/// Time between two self-checks while the network is fine.
pub const SELF_CHECK_INTERVAL: Duration = Duration::from_secs(60);
/// The shortest and longest self-check interval.
pub const MIN_SELF_CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// See [`MIN_SELF_CHECK_INTERVAL`].
pub const MAX_SELF_CHECK_INTERVAL: Duration = Duration::from_secs(3600);
/// Budget of one canary.
pub const SELF_CHECK_TIMEOUT: Duration = Duration::from_secs(3);
/// The longest canary budget.
pub const MAX_SELF_CHECK_TIMEOUT: Duration = Duration::from_secs(30);
/// Canaries of one kind at most.
pub const MAX_CANARIES: usize = 16;
/// The share of recent results failing at the network layers that runs a
/// self-check at once.
pub const SELF_CHECK_TRIGGER: f64 = 0.5;
/// The `storm_hold` of an Alertmanager channel: none, since Alertmanager
/// groups alerts itself (`group_by`, `group_wait`).
pub const ALERTMANAGER_STORM_HOLD: Duration = Duration::ZERO;
/// How often an Alertmanager channel re-posts the alerts that still fire
/// (Alertmanager resolves an alert whose `endsAt` has passed).
pub const RESEND_INTERVAL: Duration = Duration::from_secs(60);
/// The shortest `resend_interval`.
pub const MIN_RESEND_INTERVAL: Duration = Duration::from_secs(10);
/// The longest `resend_interval`: a firing alert then stays in Alertmanager
/// for four hours after sitewatch stops.
pub const MAX_RESEND_INTERVAL: Duration = Duration::from_secs(3600);
/// Firing alerts end this many resend intervals after each post: three
/// posts may be lost before Alertmanager resolves an alert on its own.
pub const RESEND_ENDS_AFTER: u32 = 4;
/// The most Alertmanager instances (`urls`) of one channel.
pub const MAX_ALERTMANAGER_URLS: usize = 8;
/// The most static `labels` of an Alertmanager channel.
pub const MAX_LABELS: usize = 16;
/// The longest label name in `labels`, in bytes.
pub const MAX_LABEL_NAME_BYTES: usize = 128;
/// The longest label value in `labels`, in bytes.
pub const MAX_LABEL_VALUE_BYTES: usize = 1024;
/// The longest `[cluster] vantage`, in characters.
pub const MAX_VANTAGE_CHARS: usize = 64;
/// How long a peer gets to answer "probe this site now".
pub const PEER_TIMEOUT: Duration = Duration::from_secs(5);
/// The shortest and longest peer timeout.
pub const MIN_PEER_TIMEOUT: Duration = Duration::from_millis(100);
/// See [`MIN_PEER_TIMEOUT`].
pub const MAX_PEER_TIMEOUT: Duration = Duration::from_secs(60);
/// Peers of one vantage at most.
pub const MAX_PEERS: usize = 16;
/// How often each peer is asked whether it is there (`[cluster] peer_interval`).
pub const PEER_INTERVAL: Duration = Duration::from_secs(10);
/// See [`PEER_INTERVAL`].
pub const MIN_PEER_INTERVAL: Duration = Duration::from_secs(1);
/// See [`PEER_INTERVAL`].
pub const MAX_PEER_INTERVAL: Duration = Duration::from_secs(300);
/// A peer that has not answered this many times in a row is reported
/// unreachable.
pub const PEER_LOST_AFTER: u32 = 3;

/// Threads that run probes, by default: one (docs/performance.md).
pub const WORKER_THREADS: usize = 1;
/// The most `worker_threads` takes.
pub const MAX_WORKER_THREADS: usize = 64;
