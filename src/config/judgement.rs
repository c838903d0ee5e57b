//! How a site's results are judged beyond one probe: failures scattered
//! over recent probes (`intermittent_failures`, `intermittent_window`), the
//! domain's registration (`domain_warn_days`) and the other domains a
//! redirect may end on (`allow_redirects_to`).

use super::context::{Cx, int_in, list_len};
use super::defaults;
use super::diagnostic::quote;
use super::model::Intermittent;
use toml::Spanned;

/// The most hosts `allow_redirects_to` may list.
const MAX_ALLOWED_HOSTS: usize = 64;

/// The hosts a redirect may end on although they are on another
/// registrable domain: names (`example.org`) or wildcards (`*.example.net`),
/// lowercased, each once.
pub(super) fn allow_redirects_to(
    cx: &mut Cx<'_>,
    list: Option<&Spanned<Vec<Spanned<String>>>>,
) -> Vec<String> {
    let Some(list) = list else {
        return Vec::new();
    };
    if !list_len(cx, "allow_redirects_to", "hosts", list, MAX_ALLOWED_HOSTS) {
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    for item in list.get_ref() {
        let host = item.get_ref().trim_end_matches('.').to_ascii_lowercase();
        let name = host.strip_prefix("*.").unwrap_or(&host);
        let valid = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !valid {
            cx.error(
                item.span(),
                format!(
                    "\"{}\" in `allow_redirects_to` is not a host name: write a name (\"example.org\") or a wildcard for every name under a domain (\"*.example.net\")",
                    quote(item.get_ref())
                ),
            );
        } else if out.contains(&host) {
            cx.error(
                item.span(),
                format!("`allow_redirects_to` lists \"{}\" twice", quote(&host)),
            );
        } else {
            out.push(host);
        }
    }
    out
}

/// When scattered failures make a site degraded: `None` when
/// `intermittent_failures = 0`.
pub(super) fn intermittent(
    cx: &mut Cx<'_>,
    failures_key: Option<&Spanned<i64>>,
    window_key: Option<&Spanned<i64>>,
) -> Option<Intermittent> {
    let most = i64::from(defaults::MAX_INTERMITTENT_WINDOW);
    let failures: u8 = failures_key
        .and_then(|v| int_in(cx, "intermittent_failures", v, 0, most))
        .unwrap_or(defaults::INTERMITTENT_FAILURES);
    let window_value: u8 = window_key
        .and_then(|v| int_in(cx, "intermittent_window", v, 2, most))
        .unwrap_or(defaults::INTERMITTENT_WINDOW);
    if failures == 0 {
        return None;
    }
    if failures > window_value {
        // Said at the later of the two keys: the one a site set over
        // what it inherits from `[defaults]`.
        let span = [failures_key, window_key]
            .into_iter()
            .flatten()
            .map(|v| v.span())
            .max_by_key(|span| span.start);
        if let Some(span) = span {
            cx.error(
                span,
                format!(
                    "`intermittent_failures` ({failures}) cannot be more than `intermittent_window` ({window_value}): it counts failures among that many probes"
                ),
            );
        }
        return None;
    }
    Some(Intermittent {
        failures,
        window: window_value,
    })
}

/// Days before the domain's registration expires that make the site
/// degraded; 0 turns the registry lookup off.
pub(super) fn domain_warn_days(cx: &mut Cx<'_>, v: Option<&Spanned<i64>>) -> u32 {
    v.and_then(|v| {
        int_in(
            cx,
            "domain_warn_days",
            v,
            0,
            defaults::MAX_DOMAIN_WARN_DAYS.into(),
        )
    })
    .unwrap_or(defaults::DOMAIN_WARN_DAYS)
}

/// The keys of this file in a site or `[defaults]`, inherited as usual.
pub(super) struct Keys<'a> {
    pub(super) allow_redirects_to: Option<&'a Spanned<Vec<Spanned<String>>>>,
    pub(super) intermittent_failures: Option<&'a Spanned<i64>>,
    pub(super) intermittent_window: Option<&'a Spanned<i64>>,
    pub(super) domain_warn_days: Option<&'a Spanned<i64>>,
}
