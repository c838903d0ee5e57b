//! What a reload (or a restart with an edited file) changes, site by site:
//! a pure function from the old configuration to the new one, after
//! rathole's `calculate_events`.
//!
//! Every setting of a site belongs to exactly one of three kinds, and the
//! kind decides what happens to the site's state:
//!
//! | kind | settings | the site's state |
//! |---|---|---|
//! | probe | `url`, `interval`, `timeout`, `expect_status`, `expect_body`, `forbid_body`, `expect_ips`, `resolvers`, `ca_file`, `addresses`, `banner`, `method`, `headers`, `max_redirects`, `app_errors` | starts over (unknown); an open outage is closed as *forgotten* |
//! | policy | `confirm_down`, `confirm_up`, `slow`, `cert_warn_days`, `network`, `vantages`, `quorum`; a heartbeat's `key`, `period`, `schedule`, `timezone`, `grace`, `max_runtime`, `min_runtime`, `late` | kept: the next probe is judged by the new thresholds |
//! | routing | `notify`, `remind_every`, `tags` | kept: the next alert and reminder follow the new routing |
//!
//! Probe settings decide *what* is observed: an outage seen through the old
//! ones says nothing about the new target. Policy settings only grade what
//! is observed (how many failures confirm, how slow is slow), and routing
//! only says who hears of it, so neither invalidates what is known.
//!
//! [`SiteSpec`] is destructured without `..` below: a new setting does not
//! compile until it is sorted into one of the three kinds.

use super::model::{Config, Expect, SiteSpec};
use super::options::HttpOptions;

/// The kinds of change to one site, as flags (a reload may change several).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SiteChange {
    /// What is probed changed: the state starts over.
    pub probe: bool,
    /// How results are judged changed: the state is kept.
    pub policy: bool,
    /// Who hears of changes changed: the state is kept.
    pub routing: bool,
}

impl SiteChange {
    /// Whether nothing changed.
    pub fn is_none(self) -> bool {
        self == SiteChange::default()
    }

    /// Whether the site's state starts over.
    pub fn restarts(self) -> bool {
        self.probe
    }
}

/// Compares two versions of one site (same name).
pub fn site(old: &SiteSpec, new: &SiteSpec) -> SiteChange {
    let SiteSpec {
        name: _,
        target,
        interval,
        timeout,
        confirm_down,
        confirm_up,
        expect,
        http,
        notify,
        remind_every,
        local,
        vantages,
        quorum,
        tags,
        intermittent,
        heartbeat,
    } = old;
    let Expect {
        status,
        body,
        forbid_body,
        ips,
        slow,
        cert_warn_days,
        domain_warn_days,
        resolvers,
        ca_file,
        addresses,
        banner,
    } = expect;
    let HttpOptions {
        method,
        headers,
        max_redirects,
        app_errors,
        allow_redirects_to,
    } = http;
    let probe = *target != new.target
        || *interval != new.interval
        || *timeout != new.timeout
        || *status != new.expect.status
        || *body != new.expect.body
        || *forbid_body != new.expect.forbid_body
        || *ips != new.expect.ips
        || *resolvers != new.expect.resolvers
        || *ca_file != new.expect.ca_file
        || *addresses != new.expect.addresses
        || *banner != new.expect.banner
        || *method != new.http.method
        || *headers != new.http.headers
        || *max_redirects != new.http.max_redirects
        || *app_errors != new.http.app_errors;
    let policy = *confirm_down != new.confirm_down
        || *confirm_up != new.confirm_up
        || *local != new.local
        || *vantages != new.vantages
        || *quorum != new.quorum
        || *heartbeat != new.heartbeat
        || *slow != new.expect.slow
        || *cert_warn_days != new.expect.cert_warn_days
        || *domain_warn_days != new.expect.domain_warn_days
        || *allow_redirects_to != new.http.allow_redirects_to
        || *intermittent != new.intermittent;
    let routing = *notify != new.notify || *remind_every != new.remind_every || *tags != new.tags;
    SiteChange {
        probe,
        policy,
        routing,
    }
}

/// A stable fingerprint of a site's probe settings, saved with its state so
/// that a restart on an edited file treats the edit as a reload would.
/// Written out field by field (not `Debug`), so a new release that adds a
/// setting keeps the fingerprints of sites that do not use it.
pub fn probe_key(spec: &SiteSpec) -> String {
    use std::fmt::Write;
    let e = &spec.expect;
    let h = &spec.http;
    let mut s = String::with_capacity(128);
    let _ = write!(
        s,
        "url={}|interval_us={}|timeout_us={}|status={}",
        spec.target.url,
        spec.interval.as_micros(),
        spec.timeout.as_micros(),
        e.status
    );
    if let Some(b) = &e.body {
        let _ = write!(s, "|body={b}");
    }
    if let Some(b) = &e.forbid_body {
        let _ = write!(s, "|forbid={b}");
    }
    for ip in &e.ips {
        let _ = write!(s, "|ip={ip}");
    }
    for r in &e.resolvers {
        let _ = write!(s, "|resolver={r}");
    }
    if let Some(ca) = &e.ca_file {
        let _ = write!(s, "|ca={}", ca.display());
    }
    let _ = write!(s, "|addresses={:?}", e.addresses);
    if let Some(b) = &e.banner {
        let _ = write!(s, "|banner={b}");
    }
    let _ = write!(
        s,
        "|method={:?}|redirects={}|app_errors={}",
        h.method, h.max_redirects, h.app_errors
    );
    for (name, value) in &h.headers {
        // A header value may be a secret: only its digest is kept.
        let digest = ring::digest::digest(&ring::digest::SHA256, value.as_bytes());
        let _ = write!(s, "|header={name}:");
        hex(&digest.as_ref()[..8], &mut s);
    }
    // Fixed-size and free of secrets: a SHA-256 digest of the whole text.
    let digest = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    let mut out = String::with_capacity(32);
    hex(&digest.as_ref()[..16], &mut out);
    out
}

/// Appends `bytes` in lowercase hex (as `{:02x}` each, without the
/// formatting machinery: it runs for every site at start and reload).
fn hex(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

/// What a new configuration changes, by site name (each list in the new
/// file's order, removed ones in the old file's order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Sites left exactly as they were.
    pub unchanged: Vec<String>,
    /// Sites whose probe settings changed: their state starts over.
    pub restarted: Vec<String>,
    /// Sites whose policy or routing changed, and nothing that restarts them.
    pub kept: Vec<String>,
    /// New sites.
    pub added: Vec<String>,
    /// Sites no longer configured.
    pub removed: Vec<String>,
    /// Whether any alert channel was added, removed or changed.
    pub channels: bool,
    /// Whether `[daemon]` changed (it takes effect at the next restart).
    pub daemon: bool,
}

/// Sorts every change between `old` and `new`.
pub fn diff(old: &Config, new: &Config) -> Diff {
    let before: std::collections::HashMap<&str, &SiteSpec> = old
        .sites
        .iter()
        .map(|s| (s.name.as_str(), s.as_ref()))
        .collect();
    let after: std::collections::HashSet<&str> =
        new.sites.iter().map(|s| s.name.as_str()).collect();
    let mut d = Diff {
        channels: old.channels != new.channels,
        daemon: old.daemon != new.daemon,
        ..Diff::default()
    };
    for spec in &new.sites {
        let name = spec.name.clone();
        match before.get(spec.name.as_str()) {
            None => d.added.push(name),
            Some(old) => {
                let change = site(old, spec);
                if change.is_none() {
                    d.unchanged.push(name);
                } else if change.restarts() {
                    d.restarted.push(name);
                } else {
                    d.kept.push(name);
                }
            }
        }
    }
    d.removed = old
        .sites
        .iter()
        .filter(|s| !after.contains(s.name.as_str()))
        .map(|s| s.name.clone())
        .collect();
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Config {
        super::super::parse(Path::new("t.toml"), text).unwrap_or_else(|e| panic!("{e:?}"))
    }

    const BASE: &str = "[alert.mail]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:1/x\"\n\n[alert.chat]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:1/y\"\n\n[[site]]\nname = \"a\"\nurl = \"https://a.test/\"\n";

    /// One line added to site `a` and the kind it must be sorted into.
    #[test]
    fn every_setting_is_sorted_into_its_kind() {
        let probe = SiteChange {
            probe: true,
            ..SiteChange::default()
        };
        let policy = SiteChange {
            policy: true,
            ..SiteChange::default()
        };
        let routing = SiteChange {
            routing: true,
            ..SiteChange::default()
        };
        let table: &[(&str, SiteChange)] = &[
            ("interval = \"30s\"", probe),
            ("timeout = \"3s\"", probe),
            ("expect_status = [200]", probe),
            ("expect_body = \"ok\"", probe),
            ("forbid_body = \"error\"", probe),
            ("expect_ips = [\"192.0.2.1\"]", probe),
            ("resolvers = [\"127.0.0.1:53\"]", probe),
            ("addresses = \"any\"", probe),
            ("method = \"HEAD\"", probe),
            ("headers = { X-Probe = \"1\" }", probe),
            ("max_redirects = 0", probe),
            ("app_errors = false", probe),
            ("confirm_down = 5", policy),
            ("confirm_up = 5", policy),
            ("slow = \"1s\"", policy),
            ("cert_warn_days = 3", policy),
            ("network = \"local\"", policy),
            ("notify = [\"chat\"]", routing),
            ("remind_every = \"1h\"", routing),
        ];
        assert!(!table.is_empty());
        let old = parse(BASE);
        let moved = parse(&BASE.replace("a.test", "b.test"));
        assert_eq!(site(&old.sites[0], &moved.sites[0]), probe, "url");
        assert_ne!(probe_key(&old.sites[0]), probe_key(&moved.sites[0]));
        for (line, want) in table {
            let new = parse(&format!("{BASE}{line}\n"));
            let got = site(&old.sites[0], &new.sites[0]);
            assert_eq!(got, *want, "{line}");
            let key_changed = probe_key(&old.sites[0]) != probe_key(&new.sites[0]);
            assert_eq!(key_changed, want.probe, "probe_key for {line}");
        }
    }

    #[test]
    fn sites_are_listed_by_what_happens_to_them() {
        let old = parse(
            "[[site]]\nname = \"same\"\nurl = \"tcp://127.0.0.1:1\"\n\n[[site]]\nname = \"moved\"\nurl = \"tcp://127.0.0.1:2\"\n\n[[site]]\nname = \"calmer\"\nurl = \"tcp://127.0.0.1:3\"\n\n[[site]]\nname = \"gone\"\nurl = \"tcp://127.0.0.1:4\"\n",
        );
        let new = parse(
            "[[site]]\nname = \"new\"\nurl = \"tcp://127.0.0.1:5\"\n\n[[site]]\nname = \"calmer\"\nurl = \"tcp://127.0.0.1:3\"\nconfirm_down = 4\n\n[[site]]\nname = \"moved\"\nurl = \"tcp://127.0.0.1:22\"\n\n[[site]]\nname = \"same\"\nurl = \"tcp://127.0.0.1:1\"\n",
        );
        let d = diff(&old, &new);
        assert_eq!(
            d,
            Diff {
                unchanged: vec!["same".into()],
                restarted: vec!["moved".into()],
                kept: vec!["calmer".into()],
                added: vec!["new".into()],
                removed: vec!["gone".into()],
                channels: false,
                daemon: false,
            }
        );
        assert_eq!(diff(&new, &new).unchanged.len(), 4);
    }

    #[test]
    fn channel_and_daemon_edits_are_noticed() {
        let old = parse(BASE);
        let new = parse(&BASE.replace("127.0.0.1:1", "127.0.0.1:2"));
        assert!(diff(&old, &new).channels);
        let new = parse(&format!("[daemon]\nlisten = \"127.0.0.1:1\"\n\n{BASE}"));
        assert!(diff(&old, &new).daemon);
        assert!(!diff(&old, &old).channels);
    }

    #[test]
    fn probe_keys_are_stable_and_hide_header_values() {
        let a = parse(&format!(
            "{BASE}headers = {{ Authorization = \"Bearer hunter2\" }}\n"
        ));
        let key = probe_key(&a.sites[0]);
        assert_eq!(key, probe_key(&a.sites[0]));
        assert_eq!(key.len(), 32);
        assert!(!key.contains("hunter2"));
    }

    #[test]
    fn keys_are_spelt_as_before_in_hex() {
        // Saved keys must still match after an upgrade: the same digits as `{:02x}`.
        let bytes: Vec<u8> = (0..=255).collect();
        let mut out = String::new();
        hex(&bytes, &mut out);
        let want: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(out, want);
    }
}
