//! "Is it me?": sitewatch's check of its own network, so that a broken
//! uplink, resolver or IPv6 route never pages anyone about sites that are
//! fine.
//!
//! A check asks the kernel for a route to each canary (no route: offline,
//! at once), then, all at once and within the canary budget, connects to
//! the operator's TCP canaries, resolves the DNS canaries through the
//! configured resolvers and fetches the https canaries with certificate
//! checks. Nothing is sent to a host the operator did not name. The verdict
//! ([`NetState`]) is shared through a [`Handle`]: while it is not `ok` (or
//! a check triggered by many failures at once is still running), the
//! scheduler records failed probes of internet sites as unverifiable
//! instead of feeding them to the state machine. Losing and regaining the
//! network are each one durable event (through the history, like any
//! alert).

pub mod kernel;

use crate::alert::{self, Alert, AlertKind};
use crate::config::{SelfCheckSpec, SiteSpec};
use crate::history::{History, NetChange};
use crate::probe::{self, ProbeDeps};
use crate::state::Level;
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

/// What sitewatch believes about its own network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetState {
    /// The canaries answer: results are believed.
    Ok,
    /// The network is gone (no route, no canary answers, or a captive portal).
    Offline,
    /// Resolvers fail while IP canaries answer.
    DnsBroken,
    /// IPv6 canaries fail while IPv4 ones answer.
    Ipv6Broken,
}

impl NetState {
    /// The word in /healthz, /metrics and alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            NetState::Ok => "ok",
            NetState::Offline => "offline",
            NetState::DnsBroken => "dns_broken",
            NetState::Ipv6Broken => "ipv6_broken",
        }
    }

    /// What it means, in words.
    pub fn words(self) -> &'static str {
        match self {
            NetState::Ok => "the network works",
            NetState::Offline => "the network is gone",
            NetState::DnsBroken => "DNS resolution fails while IP addresses answer",
            NetState::Ipv6Broken => "IPv6 fails while IPv4 works",
        }
    }
}

/// The self-check's latest verdict, as `/healthz` and `/status` show it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct NetView {
    /// ok, offline, dns_broken or ipv6_broken.
    pub state: NetState,
    /// When this state began.
    #[serde(with = "crate::timefmt")]
    pub since: SystemTime,
    /// When the last check ended (`null` before the first).
    #[serde(with = "crate::timefmt::option")]
    pub checked_at: Option<SystemTime>,
    /// What each canary did in the last check.
    pub evidence: Vec<String>,
    /// Why the last check ran: start, interval or correlated (many sites
    /// failed at the network layers at once).
    pub trigger: &'static str,
}

/// What the scheduler sees of the self-check.
#[derive(Clone)]
pub struct Handle {
    view: watch::Receiver<NetView>,
    trigger: Arc<Notify>,
    checking: Arc<AtomicBool>,
    unverified: Arc<Mutex<HashSet<String>>>,
    /// Share of failing results that runs a check at once.
    pub trigger_share: f64,
}

impl Handle {
    /// No self-check configured: the network is always believed.
    pub fn none() -> Handle {
        let (_tx, view) = watch::channel(NetView {
            state: NetState::Ok,
            since: SystemTime::now(),
            checked_at: None,
            evidence: Vec::new(),
            trigger: "start",
        });
        Handle {
            view,
            trigger: Arc::new(Notify::new()),
            checking: Arc::new(AtomicBool::new(false)),
            unverified: Arc::default(),
            trigger_share: 2.0,
        }
    }

    /// Whether results can be believed now: the network is ok and no check
    /// triggered by many failures at once is still running.
    pub fn trusted(&self) -> bool {
        self.view.borrow().state == NetState::Ok && !self.checking.load(Ordering::Relaxed)
    }

    /// The latest verdict.
    pub fn view(&self) -> NetView {
        self.view.borrow().clone()
    }

    /// Runs a check now: many sites failed at the network layers at once.
    /// Until it ends, failures are not believed.
    pub fn check_now(&self) {
        if !self.checking.swap(true, Ordering::Relaxed) {
            self.trigger.notify_one();
        }
    }

    /// Records that a site's result could not be believed.
    pub fn unverified(&self, site: &str) {
        let mut set = self.unverified.lock().unwrap_or_else(|p| p.into_inner());
        if !set.contains(site) {
            set.insert(site.to_string());
        }
    }
}

/// The self-check task.
pub struct SelfCheck {
    spec: SelfCheckSpec,
    /// The https canaries, ready to probe.
    https: Vec<SiteSpec>,
    /// TLS roots for them.
    deps: ProbeDeps,
    /// The resolvers the DNS canaries ask.
    resolvers: probe::dns::Resolvers,
    vantage: String,
    history: History,
    tx: watch::Sender<NetView>,
    trigger: Arc<Notify>,
    checking: Arc<AtomicBool>,
    unverified: Arc<Mutex<HashSet<String>>>,
}

/// Canaries that have no route, by address.
fn unroutable(routes: &kernel::Routes, tcp: &[SocketAddr]) -> Vec<SocketAddr> {
    if !routes.readable {
        return Vec::new();
    }
    tcp.iter()
        .filter(|a| routes.route_to(a.ip()).is_none())
        .copied()
        .collect()
}

/// Whether at least half of a group of outcomes is good (`None`: no group).
fn half_ok(results: impl Iterator<Item = bool>) -> Option<bool> {
    let (mut ok, mut n) = (0usize, 0usize);
    for r in results {
        n += 1;
        ok += usize::from(r);
    }
    (n > 0).then_some(ok * 2 >= n)
}

/// One check's outcomes.
#[derive(Debug, Default)]
pub struct Outcomes {
    /// Each TCP canary: connected, or why not.
    pub tcp: Vec<(SocketAddr, Result<Duration, String>)>,
    /// Each DNS canary: its addresses, or why not.
    pub dns: Vec<(String, Result<Vec<IpAddr>, String>)>,
    /// Each https canary: fine, or what the probe found.
    pub https: Vec<(String, Result<(), String>)>,
}

/// The verdict from the outcomes (pure): no IP canary answering is
/// offline; https canaries all failing while TCP works is offline too (a
/// captive portal or TLS interception); DNS canaries failing while IP ones
/// answer is `dns_broken`; IPv6 canaries failing while IPv4 ones answer is
/// `ipv6_broken`. A group fails when more than half of it fails.
pub fn decide(o: &Outcomes) -> NetState {
    let family = |v6: bool| {
        half_ok(
            o.tcp
                .iter()
                .filter(|(a, _)| a.is_ipv6() == v6)
                .map(|(_, r)| r.is_ok()),
        )
    };
    let (v4, v6) = (family(false), family(true));
    if v4 != Some(true) && v6 != Some(true) {
        return NetState::Offline;
    }
    if half_ok(o.https.iter().map(|(_, r)| r.is_ok())) == Some(false) {
        return NetState::Offline;
    }
    if half_ok(o.dns.iter().map(|(_, r)| r.is_ok())) == Some(false) {
        return NetState::DnsBroken;
    }
    if v4 == Some(true) && v6 == Some(false) {
        return NetState::Ipv6Broken;
    }
    NetState::Ok
}

/// Each outcome as one line of evidence.
fn evidence(o: &Outcomes) -> Vec<String> {
    let mut out = Vec::new();
    for (a, r) in &o.tcp {
        out.push(match r {
            Ok(d) => format!("tcp {a}: connected in {} ms", d.as_millis()),
            Err(e) => format!("tcp {a}: {e}"),
        });
    }
    for (n, r) in &o.dns {
        out.push(match r {
            Ok(ips) => format!(
                "dns {n}: {}",
                ips.iter()
                    .map(IpAddr::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Err(e) => format!("dns {n}: {e}"),
        });
    }
    for (u, r) in &o.https {
        out.push(match r {
            Ok(()) => format!("https {u}: ok"),
            Err(e) => format!("https {u}: {e}"),
        });
    }
    out
}

impl SelfCheck {
    /// Prepares the self-check (resolvers and TLS roots for its canaries);
    /// `resumed` is the state an earlier run left, if it had lost its network.
    pub fn new(
        spec: SelfCheckSpec,
        vantage: String,
        history: History,
        resumed: Option<(NetState, SystemTime)>,
    ) -> Result<(SelfCheck, Handle), probe::DepsError> {
        let https = canary_specs(&spec);
        let deps = ProbeDeps::new(https.iter())?;
        let resolvers = probe::dns::Resolvers::new(
            spec.resolvers.is_empty() && !spec.dns.is_empty(),
            [spec.resolvers.as_slice()],
        )?;
        let (state, since) = resumed.unwrap_or((NetState::Ok, SystemTime::now()));
        let (tx, view) = watch::channel(NetView {
            state,
            since,
            checked_at: None,
            evidence: Vec::new(),
            trigger: "start",
        });
        let trigger = Arc::new(Notify::new());
        let checking = Arc::new(AtomicBool::new(true));
        let unverified: Arc<Mutex<HashSet<String>>> = Arc::default();
        let handle = Handle {
            view,
            trigger: Arc::clone(&trigger),
            checking: Arc::clone(&checking),
            unverified: Arc::clone(&unverified),
            trigger_share: spec.trigger,
        };
        Ok((
            SelfCheck {
                spec,
                https,
                deps,
                resolvers,
                vantage,
                history,
                tx,
                trigger,
                checking,
                unverified,
            },
            handle,
        ))
    }

    /// One check now.
    pub async fn check(&self) -> (NetState, Vec<String>) {
        let routes = kernel::Routes::read();
        let no_route = unroutable(&routes, &self.spec.tcp);
        if !self.spec.tcp.is_empty() && no_route.len() == self.spec.tcp.len() {
            let list = no_route
                .iter()
                .map(SocketAddr::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            return (
                NetState::Offline,
                vec![format!(
                    "no route to any canary ({list}): the kernel's routing table has no default route or none that reaches them"
                )],
            );
        }
        let outcomes = self.canaries().await;
        (decide(&outcomes), evidence(&outcomes))
    }

    async fn canaries(&self) -> Outcomes {
        let budget = self.spec.timeout;
        let tcp = join_all(self.spec.tcp.iter().map(|&addr| async move {
            let t = tokio::time::Instant::now();
            let r = match tokio::time::timeout(budget, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(_)) => Ok(t.elapsed()),
                Ok(Err(e)) => Err(format!("failed: {e}")),
                Err(_) => Err(format!("no answer within {} ms", budget.as_millis())),
            };
            (addr, r)
        }));
        let resolver = self.resolvers.get(&self.spec.resolvers);
        let dns = join_all(self.spec.dns.iter().map(|name| {
            let resolver = resolver.as_ref().ok();
            async move {
                let r = match resolver {
                    None => Err("no resolver could be prepared".to_string()),
                    Some(res) => {
                        match tokio::time::timeout(budget, probe::dns::lookup(res, name)).await {
                            Ok(Ok(ips)) => Ok(ips),
                            Ok(Err(e)) => Err(probe::dns::classify(&e).1),
                            Err(_) => Err(format!("no answer within {} ms", budget.as_millis())),
                        }
                    }
                };
                (name.clone(), r)
            }
        }));
        let deps = &self.deps;
        let https = join_all(self.https.iter().map(|s| async move {
            let r = match probe::run(s, deps).await {
                Ok(report) if report.status != crate::diagnosis::Status::Down => Ok(()),
                Ok(report) => Err(format!(
                    "{} ({})",
                    report.detail,
                    report.cause.map_or("", |c| c.as_str())
                )),
                Err(e) => Err(e.to_string()),
            };
            (s.target.url.clone(), r)
        }));
        let (tcp, dns, https) = tokio::join!(tcp, dns, https);
        Outcomes { tcp, dns, https }
    }

    /// Checks at start, every `interval` (every 10 s at most while the
    /// network is not ok), and at once when the scheduler asks; publishes
    /// every verdict and journals each loss and return.
    pub async fn run(self, stop: CancellationToken) {
        let mut why = "start";
        loop {
            let (state, evidence) = self.check().await;
            self.publish(state, evidence, why);
            self.checking.store(false, Ordering::Relaxed);
            let wait = if state == NetState::Ok {
                self.spec.interval
            } else {
                self.spec.interval.min(Duration::from_secs(10))
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => why = "interval",
                () = self.trigger.notified() => why = "correlated",
            }
        }
    }

    fn publish(&self, state: NetState, evidence: Vec<String>, why: &'static str) {
        let now = SystemTime::now();
        let prev = self.tx.borrow().clone();
        if state == prev.state {
            if state == NetState::Ok {
                // A triggered check that found nothing: the failures were real.
                self.unverified
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clear();
            }
            self.tx.send_replace(NetView {
                checked_at: Some(now),
                evidence,
                trigger: why,
                ..prev
            });
            return;
        }
        let detail = evidence.join("; ");
        let alert = match (prev.state, state) {
            (NetState::Ok, lost) => {
                tracing::error!(state = lost.as_str(), evidence = %detail, "this monitor lost its network: failed probes are recorded as unverifiable and alert nobody");
                Some(network_lost(&self.vantage, lost, &detail, now))
            }
            (_, NetState::Ok) => {
                let sites =
                    std::mem::take(&mut *self.unverified.lock().unwrap_or_else(|p| p.into_inner()));
                tracing::warn!(
                    was = prev.state.as_str(),
                    sites = sites.len(),
                    "this monitor's network is back"
                );
                Some(network_back(
                    &self.vantage,
                    prev.state,
                    prev.since,
                    now,
                    sites.len(),
                ))
            }
            (from, to) => {
                tracing::warn!(from = from.as_str(), to = to.as_str(), evidence = %detail, "this monitor's network is still not ok");
                None
            }
        };
        self.history.network(NetChange {
            subject: None,
            from: prev.state,
            to: state,
            at: now,
            evidence: detail,
            alert,
        });
        let since = if (prev.state == NetState::Ok) == (state == NetState::Ok) {
            prev.since
        } else {
            now
        };
        self.tx.send_replace(NetView {
            state,
            since,
            checked_at: Some(now),
            evidence,
            trigger: why,
        });
    }
}

/// The https canaries as sites the probe can run.
fn canary_specs(spec: &SelfCheckSpec) -> Vec<SiteSpec> {
    spec.https
        .iter()
        .map(|t| SiteSpec::with_defaults("https", t.clone(), spec.timeout))
        .collect()
}

/// "VANTAGE lost its network at T (state, evidence)".
pub fn network_lost(vantage: &str, state: NetState, evidence: &str, at: SystemTime) -> Alert {
    let mut a = Alert::bare(
        format!("{vantage}-network-lost-{}", crate::history::unix_ms(at)),
        AlertKind::NetworkLost,
        vantage.to_string(),
        Level::Unknown,
        at,
    );
    a.detail = format!("{}: {evidence}", state.words());
    a.hint = Some(format!(
        "nothing is known about the sites while this lasts; their failed probes are recorded as unverifiable and page nobody. Check this host's uplink, its resolver and its routes ({})",
        state.as_str()
    ));
    a.since = at;
    a
}

/// "VANTAGE is back at T2: N sites were not verifiable for D".
pub fn network_back(
    vantage: &str,
    was: NetState,
    since: SystemTime,
    at: SystemTime,
    sites: usize,
) -> Alert {
    let mut a = Alert::bare(
        format!("{vantage}-network-back-{}", crate::history::unix_ms(at)),
        AlertKind::NetworkBack,
        vantage.to_string(),
        Level::Up,
        at,
    );
    let lasted = at.duration_since(since).unwrap_or_default();
    a.outage_s = Some(lasted.as_secs());
    a.detail = format!(
        "the network is back ({} before); {sites} site{} could not be verified for {}",
        was.as_str(),
        if sites == 1 { "" } else { "s" },
        alert::render::human(lasted)
    );
    a.since = since;
    a
}

#[cfg(test)]
mod tests;
