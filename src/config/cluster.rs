//! The `[cluster]` table: raw form and validation into [`Cluster`]: this
//! instance's name (`vantage`), its peers (`[[cluster.peer]]`), the token
//! they share, and the peer API's listener and TLS.
//! Builds on [`super::context`] only. The one thing read from outside the
//! file is the host's name, the default vantage.

use super::context::{Cx, Dur, duration_in, list_len, secret, text_len};
use super::defaults;
use super::diagnostic::quote;
use super::model::{Cluster, ClusterPeer};
use super::target::shown_url;
use std::net::SocketAddr;
use toml::Spanned;

/// The `[cluster]` table before validation.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    vantage: Option<Spanned<String>>,
    listen: Option<Spanned<String>>,
    tls_cert: Option<Spanned<String>>,
    tls_key: Option<Spanned<String>>,
    ca_file: Option<Spanned<String>>,
    token: Option<Spanned<String>>,
    token_file: Option<Spanned<String>>,
    token_env: Option<Spanned<String>>,
    token_credential: Option<Spanned<String>>,
    peer_timeout: Option<Spanned<Dur>>,
    peer_interval: Option<Spanned<Dur>>,
    peer: Option<Spanned<Vec<Spanned<RawPeer>>>>,
}

/// A `[[cluster.peer]]` before validation.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPeer {
    name: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
}

/// Checks `[cluster]` and fills in its defaults; `daemon` is the checked
/// `[daemon]` (the peer listener must not take its ping listener's address).
pub(super) fn validate(
    cx: &mut Cx<'_>,
    raw: Option<(std::ops::Range<usize>, RawCluster)>,
    daemon: &super::model::Daemon,
) -> Cluster {
    let mut cluster = Cluster {
        vantage: host_vantage(),
        listen: None,
        tls_cert: None,
        tls_key: None,
        ca_file: None,
        token: None,
        peer_timeout: defaults::PEER_TIMEOUT,
        peer_interval: defaults::PEER_INTERVAL,
        peers: Vec::new(),
    };
    let Some((at, raw)) = raw else {
        return cluster;
    };
    if let Some(v) = &raw.vantage {
        match check_vantage(v.get_ref()) {
            Ok(()) => cluster.vantage = v.get_ref().clone(),
            Err(msg) => cx.error(v.span(), msg),
        }
    }
    if let Some(listen) = &raw.listen {
        match listen.get_ref().parse::<SocketAddr>() {
            Ok(addr) if addr.port() != 0 && Some(addr) == daemon.ping_listen => cx.error(
                listen.span(),
                format!(
                    "`listen` is {addr}, the address of `[daemon] ping_listen` too: give the peer API and the ping listener different ports"
                ),
            ),
            Ok(addr) => cluster.listen = Some(addr),
            Err(_) => cx.error(
                listen.span(),
                format!(
                    "`listen` must be an address and port like \"0.0.0.0:9899\", not \"{}\"",
                    quote(listen.get_ref())
                ),
            ),
        }
    }
    for (key, value, slot) in [
        ("tls_cert", &raw.tls_cert, &mut cluster.tls_cert),
        ("tls_key", &raw.tls_key, &mut cluster.tls_key),
        ("ca_file", &raw.ca_file, &mut cluster.ca_file),
    ] {
        if let Some(v) = value
            && text_len(cx, key, v, 4096)
        {
            *slot = Some(cx.relative(v.get_ref()));
        }
    }
    cluster.token = secret(
        cx,
        "token",
        defaults::MAX_SECRET_BYTES,
        [
            &raw.token,
            &raw.token_file,
            &raw.token_env,
            &raw.token_credential,
        ],
    );
    if let Some(t) = &raw.peer_timeout {
        cluster.peer_timeout = duration_in(
            cx,
            "peer_timeout",
            t,
            defaults::MIN_PEER_TIMEOUT,
            defaults::MAX_PEER_TIMEOUT,
        )
        .unwrap_or(defaults::PEER_TIMEOUT);
    }
    if let Some(t) = &raw.peer_interval {
        cluster.peer_interval = duration_in(
            cx,
            "peer_interval",
            t,
            defaults::MIN_PEER_INTERVAL,
            defaults::MAX_PEER_INTERVAL,
        )
        .unwrap_or(defaults::PEER_INTERVAL);
    }
    if let Some(list) = &raw.peer
        && list_len(cx, "peer", "peers", list, defaults::MAX_PEERS)
    {
        for p in list.get_ref() {
            if let Some(peer) = peer(cx, p, &cluster.vantage, &cluster.peers) {
                cluster.peers.push(peer);
            }
        }
    }
    let needs_token = cluster.listen.is_some() || !cluster.peers.is_empty();
    if needs_token && cluster.token.is_none() {
        cx.error(
            at.clone(),
            "[cluster] with peers or a `listen` address needs the token the vantages share: `token_file`, `token_env` or `token_credential` (at least 16 characters)",
        );
    }
    if let Some(addr) = cluster.listen
        && !addr.ip().is_loopback()
        && (cluster.tls_cert.is_none() || cluster.tls_key.is_none())
    {
        cx.error(
            raw.listen.as_ref().map_or(at, |l| l.span()),
            format!(
                "the peer API on {addr} needs `tls_cert` and `tls_key`: peers talk over TLS (plain HTTP only on a loopback address)"
            ),
        );
    }
    cluster
}

/// Checks one `[[cluster.peer]]`.
fn peer(
    cx: &mut Cx<'_>,
    p: &Spanned<RawPeer>,
    vantage: &str,
    known: &[ClusterPeer],
) -> Option<ClusterPeer> {
    let raw = p.get_ref();
    let (Some(name), Some(url)) = (&raw.name, &raw.url) else {
        cx.error(p.span(), "each [[cluster.peer]] needs a `name` and a `url`");
        return None;
    };
    if let Err(msg) = check_vantage(name.get_ref()) {
        cx.error(name.span(), msg.replace("`vantage`", "a peer's `name`"));
        return None;
    }
    if name.get_ref() == vantage || known.iter().any(|k| k.name == *name.get_ref()) {
        cx.error(
            name.span(),
            format!(
                "the vantage \"{}\" is named twice (this instance and its peers need distinct names)",
                quote(name.get_ref())
            ),
        );
        return None;
    }
    if !text_len(cx, "url", url, defaults::MAX_URL_BYTES) {
        return None;
    }
    let parsed = url::Url::parse(url.get_ref()).ok();
    let loopback = parsed
        .as_ref()
        .and_then(|u| u.host())
        .is_some_and(|h| match h {
            url::Host::Ipv4(a) => a.is_loopback(),
            url::Host::Ipv6(a) => a.is_loopback(),
            url::Host::Domain(d) => d == "localhost",
        });
    match parsed.as_ref().map(url::Url::scheme) {
        Some("https") => {}
        Some("http") if loopback => {}
        _ => {
            cx.error(
                url.span(),
                format!(
                    "a peer's `url` is the https:// address of its peer API (http:// only on loopback), not \"{}\"",
                    shown_url(url.get_ref())
                ),
            );
            return None;
        }
    }
    Some(ClusterPeer {
        name: name.get_ref().clone(),
        url: url.get_ref().trim_end_matches('/').to_string(),
    })
}

fn vantage_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Checks a vantage name: `[a-zA-Z0-9_.-]`, 1 to
/// [`defaults::MAX_VANTAGE_CHARS`] characters.
fn check_vantage(name: &str) -> Result<(), String> {
    if !name.is_empty()
        && name.chars().count() <= defaults::MAX_VANTAGE_CHARS
        && name.chars().all(vantage_char)
    {
        Ok(())
    } else {
        Err(format!(
            "`vantage` \"{}\" must be 1 to {} letters, digits, '_', '.' or '-'",
            quote(name),
            defaults::MAX_VANTAGE_CHARS
        ))
    }
}

/// The host's name (gethostname(2)) as a vantage: other characters become
/// `_`, it is cut to [`defaults::MAX_VANTAGE_CHARS`], and a host without a
/// name is `sitewatch`.
pub(super) fn host_vantage() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname(2) writes at most `buf.len()` bytes into `buf`,
    // which outlives the call.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let len = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name: String = if rc == 0 {
        String::from_utf8_lossy(&buf[..len])
            .chars()
            .map(|c| if vantage_char(c) { c } else { '_' })
            .take(defaults::MAX_VANTAGE_CHARS)
            .collect()
    } else {
        String::new()
    };
    if name.is_empty() {
        "sitewatch".to_string()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_vantage_is_the_host_name() {
        let v = host_vantage();
        assert!(check_vantage(&v).is_ok(), "{v}");
        if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
            let h = h.trim();
            if !h.is_empty() && h.chars().all(vantage_char) && h.len() <= 64 {
                assert_eq!(v, h);
            }
        }
    }

    #[test]
    fn vantage_names_are_checked() {
        assert!(check_vantage("fra1").is_ok());
        assert!(check_vantage("eu-west_2.b").is_ok());
        assert!(check_vantage(&"v".repeat(64)).is_ok());
        assert!(check_vantage(&"v".repeat(65)).is_err());
        assert!(check_vantage("").is_err());
        assert!(check_vantage("fra 1").is_err());
        assert!(check_vantage("frä").is_err());
    }
}
