//! The registration of each site's domain, as the scheduler sees it: what
//! RDAP last said of it, looked up in the background so that a probe never
//! waits for a registry, and what that makes of a probe's result
//! (`domain.expired`, `domain.expiring`). A lookup that fails never makes a
//! site down: its expiry is shown as unknown.

use super::rdap::{self, Expiry, Rdap, RdapConfig, Verdict};
use crate::config::SiteSpec;
use crate::diagnosis::{Cause, HintFacts, Status, hint};
use crate::probe::ProbeReport;
use crate::probe::text::{MAX_DETAIL, cap_owned};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// How often what is known of a domain is asked again (the client keeps
/// each answer a day and each failure an hour, so this costs nothing in
/// between).
const REFRESH: Duration = Duration::from_secs(3600);

/// Domains reserved for documentation (RFC 2606): no registration to watch.
const RESERVED: &[&str] = &["example.com", "example.net", "example.org"];

/// What `/status` shows of a site's domain.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DomainFacts {
    /// The registrable domain asked about.
    pub name: String,
    /// When its registration expires, when known.
    #[serde(with = "crate::timefmt::option")]
    pub expires: Option<SystemTime>,
    /// Whole days left (negative once expired), when known.
    pub days_left: Option<i64>,
    /// Why the expiry is not known, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
}

struct Known {
    expiry: Expiry,
    asked: SystemTime,
}

/// What is known of every watched domain, and the client that asks.
pub struct DomainWatch {
    rdap: Rdap,
    /// The bootstrap is IANA's: only names under suffixes the Public
    /// Suffix List knows have a registry to ask.
    public: bool,
    known: Mutex<HashMap<String, Known>>,
    asking: Mutex<HashSet<String>>,
}

impl DomainWatch {
    /// A watch that asks through the bootstrap registry at `bootstrap`
    /// (an http(s) URL or a file).
    pub fn new(bootstrap: &str) -> Result<DomainWatch, String> {
        Ok(DomainWatch {
            rdap: Rdap::new(RdapConfig {
                bootstrap: bootstrap.to_string(),
                ca_file: None,
            })?,
            public: bootstrap == rdap::IANA_BOOTSTRAP,
            known: Mutex::new(HashMap::new()),
            asking: Mutex::new(HashSet::new()),
        })
    }

    /// The registrable domain of `site` worth asking about, if any.
    pub fn domain_of(&self, site: &SiteSpec) -> Option<String> {
        if site.expect.domain_warn_days == 0 || site.heartbeat.is_some() {
            return None;
        }
        let domain = super::registrable(&site.target.host_str)?;
        if RESERVED.contains(&domain.as_str()) || (self.public && !super::has_known_suffix(&domain))
        {
            return None;
        }
        Some(domain)
    }

    /// What is known of `domain` now, without waiting; asks the registry
    /// in the background when nothing is known yet or it is time to ask
    /// again.
    pub fn known(self: &Arc<Self>, domain: &str, now: SystemTime) -> Option<Expiry> {
        let (known, stale) = {
            let map = self.known.lock().unwrap_or_else(|e| e.into_inner());
            match map.get(domain) {
                Some(k) => (
                    Some(k.expiry.clone()),
                    now.duration_since(k.asked)
                        .map_or(true, |age| age >= REFRESH),
                ),
                None => (None, true),
            }
        };
        if stale
            && self
                .asking
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(domain.to_string())
        {
            let watch = Arc::clone(self);
            let domain = domain.to_string();
            tokio::spawn(async move {
                let expiry = watch.rdap.expiry(&domain, now).await;
                if let Expiry::Unknown(why) = &expiry {
                    tracing::info!(domain = %domain, reason = %why, "domain expiry unknown");
                }
                watch
                    .known
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(domain.clone(), Known { expiry, asked: now });
                watch
                    .asking
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&domain);
            });
        }
        known
    }

    /// Adds what is known of `site`'s domain to `report`, and what it
    /// means: an expired registration is down whatever the probe saw (it
    /// explains a failing DNS); one expiring soon degrades a site that is
    /// otherwise up.
    pub fn apply(self: &Arc<Self>, site: &SiteSpec, report: &mut ProbeReport, now: SystemTime) {
        let Some(domain) = self.domain_of(site) else {
            return;
        };
        let Some(expiry) = self.known(&domain, now) else {
            return;
        };
        judge(site, report, &domain, &expiry, now);
    }
}

/// What `expiry` makes of `report` (pure: see [`DomainWatch::apply`]).
pub fn judge(
    site: &SiteSpec,
    report: &mut ProbeReport,
    domain: &str,
    expiry: &Expiry,
    now: SystemTime,
) {
    let verdict = rdap::judge(expiry, now, site.expect.domain_warn_days);
    let expires = match expiry {
        Expiry::At(at) => Some(*at),
        Expiry::Unknown(_) => None,
    };
    let (days_left, unknown) = match &verdict {
        Verdict::Expired { days_ago } => (Some(-days_ago), None),
        Verdict::Expiring { days_left } | Verdict::Fine { days_left } => (Some(*days_left), None),
        Verdict::Unknown(why) => (None, Some(why.clone())),
    };
    report.domain = Some(DomainFacts {
        name: domain.to_string(),
        expires,
        days_left,
        unknown,
    });
    let (cause, said) = match verdict {
        Verdict::Expired { days_ago } => (
            Cause::DomainExpired,
            format!(
                "the registration of {domain} expired {} (RDAP)",
                match days_ago {
                    0 => "today".to_string(),
                    1 => "1 day ago".to_string(),
                    n => format!("{n} days ago"),
                }
            ),
        ),
        Verdict::Expiring { days_left } if report.status == Status::Up => (
            Cause::DomainExpiring,
            format!(
                "the registration of {domain} expires in {days_left} day{} (RDAP; warning at {})",
                if days_left == 1 { "" } else { "s" },
                site.expect.domain_warn_days
            ),
        ),
        Verdict::Expiring { .. } | Verdict::Fine { .. } | Verdict::Unknown(_) => return,
    };
    report.status = cause.status();
    report.cause = Some(cause);
    report.detail = cap_owned(format!("{said}; the probe: {}", report.detail), MAX_DETAIL);
    report.hint = Some(cap_owned(
        hint(
            cause,
            &HintFacts {
                host: &site.target.host_str,
                port: site.target.port,
                addr: report.addr,
                http_status: report.http_status,
                source: None,
                sign: None,
            },
        ),
        MAX_DETAIL,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(url: &str, warn: u32) -> SiteSpec {
        let mut s = SiteSpec::with_defaults(
            "s",
            crate::config::parse_target(url).unwrap(),
            Duration::from_secs(5),
        );
        s.expect.domain_warn_days = warn;
        s
    }

    fn up() -> ProbeReport {
        ProbeReport {
            status: Status::Up,
            cause: None,
            detail: "HTTP 200 from 192.0.2.1:443 in 12 ms".into(),
            hint: None,
            layers: Vec::new(),
            started_at: SystemTime::UNIX_EPOCH,
            ms: 12.0,
            addr: None,
            http_status: Some(200),
            cert: None,
            domain: None,
        }
    }

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn expiry_makes_the_site_down_degraded_or_nothing() {
        let now = SystemTime::UNIX_EPOCH + 1000 * DAY;
        let s = site("https://shop.example.co.uk/", 30);
        let mut r = up();
        judge(&s, &mut r, "example.co.uk", &Expiry::At(now - 3 * DAY), now);
        assert_eq!(
            (r.status, r.cause),
            (Status::Down, Some(Cause::DomainExpired))
        );
        assert!(
            r.detail.starts_with(
                "the registration of example.co.uk expired 3 days ago (RDAP); the probe: HTTP 200"
            ),
            "{}",
            r.detail
        );
        assert!(
            r.hint
                .unwrap()
                .contains("renew it at the registrar at once")
        );
        assert_eq!(r.domain.unwrap().days_left, Some(-3));

        let mut r = up();
        judge(
            &s,
            &mut r,
            "example.co.uk",
            &Expiry::At(now + 10 * DAY),
            now,
        );
        assert_eq!(
            (r.status, r.cause),
            (Status::Degraded, Some(Cause::DomainExpiring))
        );
        assert!(
            r.detail
                .contains("expires in 10 days (RDAP; warning at 30)"),
            "{}",
            r.detail
        );

        // Expiring soon does not hide a worse finding.
        let mut r = up();
        r.status = Status::Down;
        r.cause = Some(Cause::TcpRefused);
        judge(
            &s,
            &mut r,
            "example.co.uk",
            &Expiry::At(now + 10 * DAY),
            now,
        );
        assert_eq!(r.cause, Some(Cause::TcpRefused));
        assert_eq!(r.domain.as_ref().unwrap().days_left, Some(10));

        // Far away, or unknown: only shown.
        for expiry in [
            Expiry::At(now + 400 * DAY),
            Expiry::Unknown("the registry failed (HTTP 500)".into()),
        ] {
            let mut r = up();
            judge(&s, &mut r, "example.co.uk", &expiry, now);
            assert_eq!((r.status, r.cause), (Status::Up, None));
            assert!(r.domain.is_some());
        }
    }

    #[test]
    fn only_registered_domains_are_watched() {
        let public = DomainWatch::new(rdap::IANA_BOOTSTRAP).unwrap();
        assert_eq!(
            public
                .domain_of(&site("https://shop.example.co.uk/", 30))
                .as_deref(),
            Some("example.co.uk")
        );
        for url in [
            "https://www.example.com/",
            "https://www.lab.test/",
            "http://192.0.2.1/",
            "http://nas.lan/",
        ] {
            assert_eq!(public.domain_of(&site(url, 30)), None, "{url}");
        }
        assert_eq!(
            public.domain_of(&site("https://shop.example.co.uk/", 0)),
            None
        );
        // With a bootstrap of one's own, the bootstrap decides.
        let own = DomainWatch::new("/nonexistent/dns.json").unwrap();
        assert_eq!(
            own.domain_of(&site("https://www.lab.test/", 30)).as_deref(),
            Some("lab.test")
        );
    }
}
