//! The validated, immutable configuration that the rest of sitewatch reads.
//!
//! Built only by [`super::validate`] (and the table checks it calls); every
//! value here has passed its checks and carries its inherited default, so
//! consumers never re-check or re-default.

pub use super::channels::{HookSpec, PerEvent, SecretRef, ServiceSpec};
use super::options::HttpOptions;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The whole configuration of one sitewatch instance.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it was read from (for messages).
    pub path: PathBuf,
    /// Settings of the daemon itself.
    pub daemon: Daemon,
    /// The monitored sites, in file order.
    pub sites: Vec<Arc<SiteSpec>>,
    /// The alert channels, in file order.
    pub channels: Vec<ChannelSpec>,
    /// The monitor's check of its own network, if configured.
    pub self_check: Option<SelfCheckSpec>,
    /// This instance among others (`[cluster]`).
    pub cluster: Cluster,
    /// Planned maintenance windows (`[[maintenance]]`), in file order.
    pub maintenance: Vec<Arc<MaintenanceSpec>>,
}

/// A `[[maintenance]]` window: planned work during which the sites it
/// covers page nobody.
#[derive(Clone, Debug, PartialEq)]
pub struct MaintenanceSpec {
    /// A short id (`[a-zA-Z0-9_.-]`), shown in alerts and the API.
    pub id: String,
    /// What the work is, in words.
    pub title: String,
    /// Sites and heartbeats it covers, by name.
    pub sites: Vec<String>,
    /// Sites and heartbeats it covers, by tag.
    pub tags: Vec<String>,
    /// When it is in force.
    pub when: When,
    /// Whether its time is left out of uptime (`uptime = "exclude"`).
    pub exclude_uptime: bool,
    /// How long before it begins the page announces it.
    pub announce: Duration,
}

/// When a maintenance window is in force.
#[derive(Clone, Debug, PartialEq)]
pub enum When {
    /// Once, from `start` to `end`.
    Once {
        /// Its start.
        start: std::time::SystemTime,
        /// Its end (exclusive).
        end: std::time::SystemTime,
    },
    /// At each time of a crontab line, for `duration`.
    Every {
        /// When each occurrence begins.
        schedule: Box<crate::heartbeat::cron::CronSchedule>,
        /// How long each lasts.
        duration: Duration,
    },
}

impl Config {
    /// This configuration as this vantage runs it: the sites whose
    /// `vantages` include it (or that name none).
    pub fn for_this_vantage(&self) -> Config {
        let vantage = &self.cluster.vantage;
        // Field by field: the whole list of sites is not copied twice.
        Config {
            path: self.path.clone(),
            daemon: self.daemon.clone(),
            sites: self
                .sites
                .iter()
                .filter(|s| s.vantages.is_empty() || s.vantages.contains(vantage))
                .cloned()
                .collect(),
            channels: self.channels.clone(),
            self_check: self.self_check.clone(),
            cluster: self.cluster.clone(),
            maintenance: self.maintenance.clone(),
        }
    }
}

/// The `[self_check]` table: how sitewatch tells "the site is down" from
/// "my own network is down".
#[derive(Clone, Debug, PartialEq)]
pub struct SelfCheckSpec {
    /// Time between two checks while the network is fine.
    pub interval: Duration,
    /// Budget of each canary.
    pub timeout: Duration,
    /// Addresses that should always accept a TCP connection.
    pub tcp: Vec<SocketAddr>,
    /// Names that should always resolve.
    pub dns: Vec<String>,
    /// DNS servers for the `dns` canaries (empty: the system's).
    pub resolvers: Vec<SocketAddr>,
    /// https URLs that should answer with a valid certificate (a captive
    /// portal or TLS interception fails them).
    pub https: Vec<Target>,
    /// The share of recent results failing at the network layers that runs
    /// a check at once.
    pub trigger: f64,
}

/// The `[cluster]` table: this instance's place among several sitewatch
/// instances (vantages) watching the same sites from different networks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    /// This instance's name (`[a-zA-Z0-9_.-]`, at most 64 characters;
    /// default: the host's name). Alertmanager alerts say who saw them
    /// with it, and the watchdog alert carries it as a label.
    pub vantage: String,
    /// Where the peer API listens (unset: this vantage answers no peer).
    pub listen: Option<SocketAddr>,
    /// The peer API's certificate chain (PEM).
    pub tls_cert: Option<PathBuf>,
    /// Its key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Extra roots trusted for the peers' certificates.
    pub ca_file: Option<PathBuf>,
    /// The token the vantages share.
    pub token: Option<SecretRef>,
    /// How long a peer gets to answer.
    pub peer_timeout: Duration,
    /// How often each peer is asked whether it is there.
    pub peer_interval: Duration,
    /// The other vantages.
    pub peers: Vec<ClusterPeer>,
}

impl Cluster {
    /// A lone instance named `vantage`: no peers, no peer API.
    pub fn named(vantage: &str) -> Cluster {
        Cluster {
            vantage: vantage.to_string(),
            listen: None,
            tls_cert: None,
            tls_key: None,
            ca_file: None,
            token: None,
            peer_timeout: super::defaults::PEER_TIMEOUT,
            peer_interval: super::defaults::PEER_INTERVAL,
            peers: Vec::new(),
        }
    }

    /// Every vantage's name: this one, then the peers.
    pub fn vantages(&self) -> Vec<String> {
        std::iter::once(self.vantage.clone())
            .chain(self.peers.iter().map(|p| p.name.clone()))
            .collect()
    }
}

/// A `[[cluster.peer]]`: another vantage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterPeer {
    /// Its vantage name.
    pub name: String,
    /// The base URL of its peer API.
    pub url: String,
}

/// The `[daemon]` table.
#[derive(Clone, Debug, PartialEq)]
pub struct Daemon {
    /// Address of the HTTP API.
    pub listen: SocketAddr,
    /// Where state is kept; `None` means `$STATE_DIRECTORY` or the default.
    pub state_dir: Option<PathBuf>,
    /// Global cap on probes in flight.
    pub max_concurrent_probes: usize,
    /// Threads that run probes (`worker_threads`): 1 is one thread for the
    /// scheduler and every probe; more spread probes (TLS handshakes) over
    /// that many threads, the scheduler still one loop.
    pub worker_threads: usize,
    /// A dead man's switch URL requested while the scheduler is healthy.
    pub heartbeat_url: Option<String>,
    /// How often the heartbeat URL is requested.
    pub heartbeat_every: Duration,
    /// Bearer token for the JSON API and `/metrics`, read from this file.
    pub api_token_file: Option<PathBuf>,
    /// Whether the page and badges hide targets, addresses and details.
    pub public_page: bool,
    /// A second listener that serves only heartbeat pings, so that jobs on
    /// other hosts can reach them while the API stays on loopback.
    pub ping_listen: Option<SocketAddr>,
    /// Where the RDAP bootstrap registry is read from (IANA's by default, or
    /// a file); `None` (`"off"`) asks no registry.
    pub rdap_bootstrap: Option<String>,
    /// How long the history keeps raw samples, hourly and daily rows.
    pub history: crate::history::Retention,
}

/// One monitored site with every default applied.
#[derive(Clone, Debug, PartialEq)]
pub struct SiteSpec {
    /// Unique name, used in URLs, logs and alerts.
    pub name: String,
    /// What to probe.
    pub target: Target,
    /// Time between two probe starts.
    pub interval: Duration,
    /// Budget of one whole probe.
    pub timeout: Duration,
    /// Consecutive failures before down.
    pub confirm_down: u32,
    /// Consecutive successes before up again.
    pub confirm_up: u32,
    /// What the probe expects to find.
    pub expect: Expect,
    /// How the HTTP layer asks (http and https only).
    pub http: HttpOptions,
    /// The alert channels this site's changes go to.
    pub notify: Vec<String>,
    /// Repeat a down alert this often while the site stays down (off if `None`).
    pub remind_every: Option<Duration>,
    /// A LAN target (`network = "local"`): judged even while the monitor's
    /// own network is down.
    pub local: bool,
    /// The vantages that watch it (`vantages`; empty: every vantage).
    pub vantages: Vec<String>,
    /// How many vantages must agree before it is down (or up again).
    pub quorum: Quorum,
    /// Labels for maintenance windows and silences (`tags`).
    pub tags: Vec<String>,
    /// When scattered failures make it degraded (`None`: never).
    pub intermittent: Option<Intermittent>,
    /// Set for a `[[heartbeat]]`: a job that pings sitewatch, judged from
    /// its pings instead of probed (its target is `heartbeat:NAME`).
    pub heartbeat: Option<Arc<HeartbeatSpec>>,
}

/// `intermittent_failures` of the last `intermittent_window` probes failed
/// without a confirmed outage: the site is degraded (`site.intermittent`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Intermittent {
    /// Failures that make it degraded.
    pub failures: u8,
    /// Among this many recent probes (at most 32).
    pub window: u8,
}

/// A `[[heartbeat]]`: a job (cron, timer, backup) that must ping on time.
#[derive(Clone, Debug, PartialEq)]
pub struct HeartbeatSpec {
    /// The secret in its ping URL (`/ping/KEY`).
    pub key: SecretRef,
    /// When a run is expected.
    pub due: Due,
    /// How late a ping may come after the expected time.
    pub grace: Duration,
    /// A run (start → end) longer than this is an overrun.
    pub max_runtime: Option<Duration>,
    /// A run shorter than this is suspicious.
    pub min_runtime: Option<Duration>,
    /// Whether a ping overdue but inside its grace degrades it (`late`).
    pub late: bool,
}

/// When a heartbeat's job is expected to run.
#[derive(Clone, Debug, PartialEq)]
pub enum Due {
    /// Every so long, counted from the latest ping (`period`).
    Every(Duration),
    /// At the times of a crontab line in a time zone (`schedule`, `timezone`).
    Cron(Box<crate::heartbeat::cron::CronSchedule>),
}

/// How many vantages must agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quorum {
    /// More than half of those that can vote.
    Majority,
    /// At least this many.
    Count(u32),
}

impl Quorum {
    /// The votes needed among `voters`.
    pub fn needed(self, voters: usize) -> usize {
        match self {
            Quorum::Majority => voters / 2 + 1,
            Quorum::Count(n) => n as usize,
        }
    }
}

impl SiteSpec {
    /// A site with every default, probing `target` within `timeout`: for
    /// probes that are not configured sites (the self-check's canaries)
    /// and for records about a site that is no longer configured.
    pub fn with_defaults(name: &str, target: Target, timeout: Duration) -> SiteSpec {
        SiteSpec {
            name: name.to_string(),
            target,
            interval: timeout.max(super::defaults::MIN_INTERVAL),
            timeout,
            confirm_down: super::defaults::CONFIRM_DOWN,
            confirm_up: super::defaults::CONFIRM_UP,
            expect: Expect {
                status: StatusSet(vec![super::defaults::EXPECT_STATUS]),
                body: None,
                forbid_body: None,
                ips: Vec::new(),
                slow: None,
                cert_warn_days: 0,
                domain_warn_days: 0,
                resolvers: Vec::new(),
                ca_file: None,
                addresses: AddressMode::Any,
                banner: None,
            },
            http: HttpOptions::default(),
            notify: Vec::new(),
            remind_every: None,
            local: false,
            vantages: Vec::new(),
            quorum: Quorum::Majority,
            tags: Vec::new(),
            intermittent: None,
            heartbeat: None,
        }
    }
}

/// Expectations a probe checks, layer by layer.
#[derive(Clone, Debug, PartialEq)]
pub struct Expect {
    /// Accepted HTTP statuses.
    pub status: StatusSet,
    /// Text the body must contain.
    pub body: Option<String>,
    /// Text the body must not contain.
    pub forbid_body: Option<String>,
    /// Addresses the name must resolve to (at least one of them).
    pub ips: Vec<IpAddr>,
    /// Response time above which the site is degraded.
    pub slow: Option<Duration>,
    /// Days before certificate expiry that make the site degraded.
    pub cert_warn_days: u32,
    /// Days before the domain's registration expires that make the site
    /// degraded (0: the registry is not asked).
    pub domain_warn_days: u32,
    /// DNS servers to ask instead of the system's.
    pub resolvers: Vec<SocketAddr>,
    /// Extra trusted roots for TLS.
    pub ca_file: Option<PathBuf>,
    /// Whether every address must work or any one is enough.
    pub addresses: AddressMode,
    /// For tcp:// and tls://: text the server's first line must contain.
    pub banner: Option<String>,
}

/// Accepted HTTP statuses as inclusive ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusSet(pub Vec<(u16, u16)>);

impl StatusSet {
    /// Whether `status` is accepted.
    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| (lo..=hi).contains(&status))
    }
}

impl std::fmt::Display for StatusSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, &(lo, hi)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

/// How a name with several addresses is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressMode {
    /// Every address must work; otherwise the site is degraded (`tcp.partial`).
    All,
    /// Browser semantics: the first address that works is enough.
    Any,
}

/// The protocol stack a probe walks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// Not probed: a heartbeat, judged from the pings it receives.
    Heartbeat,
    /// DNS, TCP, HTTP.
    Http,
    /// DNS, TCP, TLS, HTTP.
    Https,
    /// DNS, TCP (and an optional banner).
    Tcp,
    /// DNS, TCP, TLS (and an optional banner).
    Tls,
}

impl Scheme {
    /// Whether the probe makes a TLS handshake.
    pub fn uses_tls(self) -> bool {
        matches!(self, Scheme::Https | Scheme::Tls)
    }

    /// Whether the probe speaks HTTP.
    pub fn uses_http(self) -> bool {
        matches!(self, Scheme::Http | Scheme::Https)
    }
}

/// The host part of a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// A name to resolve (lowercase, without a trailing dot).
    Name(String),
    /// An address literal: no DNS step.
    Ip(IpAddr),
}

/// A parsed `url` of a site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The URL as the operator wrote it.
    pub url: String,
    /// Which layers the probe walks.
    pub scheme: Scheme,
    /// Where to connect.
    pub host: Host,
    /// The host as text, for SNI, the Host header and messages.
    pub host_str: String,
    /// The TCP port.
    pub port: u16,
    /// Path and query for HTTP (always starts with `/`).
    pub path: String,
}

/// A named alert channel (`[alert.NAME]`).
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelSpec {
    /// Its name, as sites' `notify` lists it.
    pub name: String,
    /// Where and how it delivers.
    pub kind: ChannelKind,
    /// How long a down alert waits while a storm is forming, so that many
    /// sites down together reach this channel as one message (0: never).
    pub storm_hold: std::time::Duration,
    /// The events it takes (`events`; empty: every event). `test` always
    /// goes; a channel that takes `down` takes `storm` too.
    pub events: Vec<String>,
    /// The sites and heartbeats it hears of, by name (`sites`) or tag
    /// (`tags`); both empty: every one whose `notify` lists it. Applied to
    /// each site's `notify` when the file is validated.
    pub sites: Vec<String>,
    /// See `sites`.
    pub tags: Vec<String>,
}

impl ChannelSpec {
    /// Whether the channel hears of `site` (its `sites` and `tags`).
    pub fn hears(&self, site: &SiteSpec) -> bool {
        (self.sites.is_empty() && self.tags.is_empty())
            || self.sites.contains(&site.name)
            || site.tags.iter().any(|t| self.tags.contains(t))
    }
}

/// The kinds of alert channel.
#[derive(Clone, Debug, PartialEq)]
pub enum ChannelKind {
    /// Email over SMTP.
    Email(EmailSpec),
    /// A Slack incoming webhook.
    Slack(SlackSpec),
    /// A generic JSON webhook.
    Webhook(WebhookSpec),
    /// Every instance of a Prometheus Alertmanager cluster (API v2).
    Alertmanager(AlertmanagerSpec),
    /// A program run for each alert.
    Exec(super::options::ExecSpec),
    /// A chat, paging or push service over HTTP (PagerDuty, Discord, …).
    Hook(HookSpec),
}

impl ChannelKind {
    /// The `type` word of this kind.
    pub fn as_str(&self) -> &'static str {
        match self {
            ChannelKind::Email(_) => "email",
            ChannelKind::Slack(_) => "slack",
            ChannelKind::Webhook(_) => "webhook",
            ChannelKind::Alertmanager(_) => "alertmanager",
            ChannelKind::Exec(_) => "exec",
            ChannelKind::Hook(h) => h.service.as_str(),
        }
    }
}

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only with `allow_plain = true`.
    None,
}

/// An email channel.
#[derive(Clone, Debug, PartialEq)]
pub struct EmailSpec {
    /// SMTP server.
    pub host: String,
    /// SMTP port.
    pub port: u16,
    /// Transport security.
    pub tls: SmtpTls,
    /// AUTH user, if the server requires it.
    pub username: Option<String>,
    /// AUTH password.
    pub password: Option<SecretRef>,
    /// The From mailbox.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Extra trusted roots for the SMTP server's certificate.
    pub ca_file: Option<PathBuf>,
}

/// A Slack channel.
#[derive(Clone, Debug, PartialEq)]
pub struct SlackSpec {
    /// The incoming-webhook URL (a secret: it lets anyone post).
    pub url: SecretRef,
}

/// A generic webhook channel.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookSpec {
    /// Where to POST.
    pub url: SecretRef,
    /// Key of the HMAC-SHA256 signature header, if any.
    pub secret: Option<SecretRef>,
    /// Extra trusted roots for the receiver's certificate.
    pub ca_file: Option<PathBuf>,
}

/// An Alertmanager channel: alerts are posted to every instance of the
/// cluster, and those still firing are re-posted every `resend_interval`.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertmanagerSpec {
    /// Base URLs of every instance (`http(s)://host:port[/prefix]`, no
    /// trailing `/`), in file order: 1 to [`super::defaults::MAX_ALERTMANAGER_URLS`].
    pub urls: Vec<String>,
    /// How often the alerts that still fire are posted again.
    pub resend_interval: Duration,
    /// Extra trusted roots for the instances' certificates.
    pub ca_file: Option<PathBuf>,
    /// Sent as `Authorization: Bearer` (an authenticating proxy in front).
    pub bearer_token: Option<SecretRef>,
    /// Static labels added to every alert (never one of [`RESERVED_LABELS`]).
    pub labels: std::collections::BTreeMap<String, String>,
}

/// The labels sitewatch sets on Alertmanager alerts itself; `labels` cannot
/// set them.
pub const RESERVED_LABELS: &[&str] = &["alertname", "site", "cause", "severity", "vantage"];

/// Whether `name` is a label name Alertmanager accepts in every mode:
/// `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
