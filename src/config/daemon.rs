//! The `[daemon]` table: raw form and validation into [`Daemon`].

use super::context::{Cx, Dur, duration_in, int_in, show_limit, text_len};
use super::defaults;
use super::diagnostic::quote;
use super::model::Daemon;
use super::target::shown_url;
use std::net::SocketAddr;
use std::time::Duration;
use toml::Spanned;

/// The `[daemon]` table before validation.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDaemon {
    listen: Option<Spanned<String>>,
    state_dir: Option<Spanned<String>>,
    max_concurrent_probes: Option<Spanned<i64>>,
    heartbeat_url: Option<Spanned<String>>,
    heartbeat_every: Option<Spanned<Dur>>,
    api_token_file: Option<Spanned<String>>,
    public_page: Option<Spanned<bool>>,
    ping_listen: Option<Spanned<String>>,
    rdap_bootstrap: Option<Spanned<String>>,
    worker_threads: Option<Spanned<i64>>,
    history: Option<Spanned<RawHistory>>,
}

/// `history = { raw = "48h", hourly = "90d", daily = "400d" }`: how long
/// each resolution of the history is kept.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHistory {
    raw: Option<Spanned<Dur>>,
    hourly: Option<Spanned<Dur>>,
    daily: Option<Spanned<Dur>>,
}

/// [`defaults::MAX_CONCURRENT_PROBES_LIMIT`] as the integer TOML reads.
const MAX_CONCURRENT_PROBES_LIMIT: i64 = defaults::MAX_CONCURRENT_PROBES_LIMIT as i64;

/// Checks `[daemon]` and fills in its defaults.
pub(super) fn validate(cx: &mut Cx<'_>, raw: Option<RawDaemon>) -> Daemon {
    let mut daemon = Daemon {
        listen: defaults::LISTEN,
        state_dir: None,
        max_concurrent_probes: defaults::MAX_CONCURRENT_PROBES,
        heartbeat_url: None,
        heartbeat_every: defaults::HEARTBEAT_EVERY,
        api_token_file: None,
        public_page: false,
        ping_listen: None,
        rdap_bootstrap: Some(crate::domain::rdap::IANA_BOOTSTRAP.to_string()),
        worker_threads: defaults::WORKER_THREADS,
        history: crate::history::Retention::default(),
    };
    let Some(raw) = raw else { return daemon };
    if let Some(n) = &raw.worker_threads
        && let Some(n) = int_in(
            cx,
            "worker_threads",
            n,
            1,
            defaults::MAX_WORKER_THREADS as i64,
        )
    {
        daemon.worker_threads = n;
    }
    if let Some(listen) = &raw.listen {
        match listen.get_ref().parse::<SocketAddr>() {
            Ok(addr) => daemon.listen = addr,
            Err(_) => cx.error(
                listen.span(),
                format!(
                    "`listen` must be an address and port like \"127.0.0.1:9898\", not \"{}\"",
                    quote(listen.get_ref())
                ),
            ),
        }
    }
    if let Some(dir) = &raw.state_dir {
        if dir.get_ref().is_empty() {
            cx.error(dir.span(), "`state_dir` must not be empty");
        } else {
            daemon.state_dir = Some(cx.relative(dir.get_ref()));
        }
    }
    if let Some(max) = &raw.max_concurrent_probes
        && let Some(n) = int_in(
            cx,
            "max_concurrent_probes",
            max,
            1,
            MAX_CONCURRENT_PROBES_LIMIT,
        )
    {
        daemon.max_concurrent_probes = n;
    }
    if let Some(url) = &raw.heartbeat_url
        && text_len(cx, "heartbeat_url", url, defaults::MAX_URL_BYTES)
    {
        let u = url.get_ref();
        if url::Url::parse(u).is_ok_and(|p| matches!(p.scheme(), "http" | "https")) {
            daemon.heartbeat_url = Some(u.clone());
        } else {
            cx.error(
                url.span(),
                format!(
                    "`heartbeat_url` must be an http:// or https:// URL, not \"{}\"",
                    shown_url(u)
                ),
            );
        }
    }
    if let Some(f) = &raw.api_token_file {
        if f.get_ref().is_empty() {
            cx.error(f.span(), "`api_token_file` must not be empty");
        } else {
            daemon.api_token_file = Some(cx.relative(f.get_ref()));
        }
    }
    if let Some(listen) = &raw.ping_listen {
        match listen.get_ref().parse::<SocketAddr>() {
            Ok(addr) if addr == daemon.listen && addr.port() != 0 => cx.error(
                listen.span(),
                "`ping_listen` is the same address as `listen`: pings are served on `listen` anyway; give another address or leave it out",
            ),
            Ok(addr) => daemon.ping_listen = Some(addr),
            Err(_) => cx.error(
                listen.span(),
                format!(
                    "`ping_listen` must be an address and port like \"0.0.0.0:9899\", not \"{}\"",
                    quote(listen.get_ref())
                ),
            ),
        }
    }
    if let Some(b) = &raw.rdap_bootstrap
        && text_len(cx, "rdap_bootstrap", b, defaults::MAX_URL_BYTES)
    {
        let v = b.get_ref();
        daemon.rdap_bootstrap = if v == "off" {
            None
        } else if v.starts_with("http://") || v.starts_with("https://") {
            if url::Url::parse(v).is_err() {
                cx.error(
                    b.span(),
                    format!(
                        "`rdap_bootstrap` must be \"off\", an http(s) URL or a file, not \"{}\"",
                        shown_url(v)
                    ),
                );
            }
            Some(v.clone())
        } else {
            Some(cx.relative(v).to_string_lossy().into_owned())
        };
    }
    if let Some(p) = &raw.public_page {
        daemon.public_page = *p.get_ref();
    }
    if let Some(every) = &raw.heartbeat_every
        && let Some(d) = duration_in(
            cx,
            "heartbeat_every",
            every,
            defaults::MIN_HEARTBEAT_EVERY,
            defaults::MAX_HEARTBEAT_EVERY,
        )
    {
        daemon.heartbeat_every = d;
    }
    if let Some(h) = &raw.history {
        daemon.history = history(cx, h.get_ref());
    }
    daemon
}

/// Checks `history`: each retention within its bounds, and each longer
/// than the one before (raw < hourly < daily), since each is made from the
/// one before. A mistake is shown at the key written last of the pair.
fn history(cx: &mut Cx<'_>, raw: &RawHistory) -> crate::history::Retention {
    let mut out = crate::history::Retention::default();
    let mut ok = true;
    let mut check = |key: &str, v: &Option<Spanned<Dur>>, (min, max), slot: &mut Duration| {
        if let Some(v) = v {
            match duration_in(cx, key, v, min, max) {
                Some(d) => *slot = d,
                None => ok = false,
            }
        }
    };
    check(
        "history.raw",
        &raw.raw,
        defaults::RAW_RETENTION_RANGE,
        &mut out.raw,
    );
    check(
        "history.hourly",
        &raw.hourly,
        defaults::HOURLY_RETENTION_RANGE,
        &mut out.hourly,
    );
    check(
        "history.daily",
        &raw.daily,
        defaults::DAILY_RETENTION_RANGE,
        &mut out.daily,
    );
    if !ok {
        return crate::history::Retention::default();
    }
    let pairs = [
        ("raw", out.raw, &raw.raw, "hourly", out.hourly, &raw.hourly),
        (
            "hourly",
            out.hourly,
            &raw.hourly,
            "daily",
            out.daily,
            &raw.daily,
        ),
    ];
    for (short, short_d, short_at, long, long_d, long_at) in pairs {
        if short_d < long_d {
            continue;
        }
        let Some(at) = long_at.as_ref().or(short_at.as_ref()) else {
            continue;
        };
        cx.error(
            at.span(),
            format!(
                "`history.{long}` ({}) must be longer than `history.{short}` ({}): each resolution is made from the one before (raw < hourly < daily)",
                show_limit(long_d),
                show_limit(short_d)
            ),
        );
        return crate::history::Retention::default();
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::history::Retention;
    use std::time::Duration;

    fn retention(daemon: &str) -> Result<Retention, String> {
        let text =
            format!("[daemon]\n{daemon}\n\n[[site]]\nname = \"a\"\nurl = \"tcp://127.0.0.1:1\"\n");
        crate::config::parse(std::path::Path::new("s.toml"), &text)
            .map(|c| c.daemon.history)
            .map_err(|d| {
                d.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            })
    }

    #[test]
    fn history_retentions_default_and_each_can_be_set() {
        assert_eq!(retention("").unwrap(), Retention::default());
        let d = |days: u64| Duration::from_secs(days * 86_400);
        assert_eq!(
            retention("history = { raw = \"24h\", hourly = \"30d\", daily = \"730d\" }").unwrap(),
            Retention {
                raw: d(1),
                hourly: d(30),
                daily: d(730),
            }
        );
        // One given: the others keep their defaults.
        assert_eq!(
            retention("history = { raw = \"12h\" }").unwrap(),
            Retention {
                raw: Duration::from_secs(12 * 3600),
                ..Retention::default()
            }
        );
    }

    #[test]
    fn history_retentions_must_grow_and_name_their_keys() {
        // Hourly longer than the default daily (400 days): shown at `hourly`.
        let e = retention("history = { hourly = \"400d\" }").unwrap_err();
        assert!(
            e.starts_with(
                "s.toml:2:22: `history.daily` (400d) must be longer than `history.hourly` (400d)"
            ),
            "{e}"
        );
        let e = retention("history = { raw = \"3d\", hour = \"20d\" }").unwrap_err();
        assert!(e.contains("unknown field `hour`"), "{e}");
    }
}
