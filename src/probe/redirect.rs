//! Following redirects: each hop is walked layer by layer
//! ([`super::walk::hop`]) until one is done, loops, or exceeds the site's
//! `max_redirects`; then the findings of every hop make the report.
//!
//! Also owns where a site's configured headers may go: only to the site's
//! own origin (scheme, host and port, as browsers define it). Once the
//! chain leaves it (another host or port, or https → http on the same
//! host), they are not sent again for the rest of the chain.

use super::text::{self, MAX_URL, cap};
use super::walk::{self, Hop, Walk};
use super::{ProbeDeps, ProbeError, ProbeReport};
use crate::config::{Host, Method, SiteSpec, Target};
use crate::diagnosis::{Cause, Status};
use std::borrow::Cow;
use std::hash::{DefaultHasher, Hash, Hasher};
use tokio::time::Instant;

/// Whether two targets share an origin: scheme, host and port.
pub(super) fn same_origin(a: &Target, b: &Target) -> bool {
    a.scheme == b.scheme && a.host == b.host && a.port == b.port
}

/// The URLs walked so far: a hash of each (a redirect may be hundreds of
/// KiB long; loops are found by comparing hashes) and the text shown.
#[derive(Default)]
struct Chain {
    hashes: Vec<u64>,
    shown: Vec<String>,
}

fn hash(url: &str) -> u64 {
    let mut h = DefaultHasher::new();
    url.hash(&mut h);
    h.finish()
}

impl Chain {
    fn push(&mut self, url: &str) {
        self.hashes.push(hash(url));
        self.shown.push(cap(url, MAX_URL));
    }

    fn holds(&self, url: &str) -> bool {
        self.hashes.contains(&hash(url))
    }

    fn len(&self) -> usize {
        self.shown.len()
    }

    /// The chain and then `last`, as bounded text.
    fn path_to(&self, last: &str) -> String {
        let mut urls: Vec<&str> = self.shown.iter().map(String::as_str).collect();
        let last = cap(last, MAX_URL);
        urls.push(&last);
        text::path(&urls)
    }
}

/// Walks `site` from its URL through its redirects, giving up at `deadline`.
pub(super) async fn walk(
    site: &SiteSpec,
    deps: &ProbeDeps,
    deadline: Instant,
) -> Result<ProbeReport, ProbeError> {
    let mut walk = Walk::new(site);
    let mut target = Cow::Borrowed(&site.target);
    let mut chain = Chain::default();
    let (cause, detail) = loop {
        let (next, status) = match walk::hop(&mut walk, &target, deps, deadline).await? {
            Hop::Done(cause, detail) => break (cause, detail),
            Hop::Redirect(next, status) => (next, status),
            Hop::AgainWithGet => {
                walk.method = Method::Get;
                continue;
            }
        };
        chain.push(&target.url);
        if chain.holds(&next) {
            break (
                Some(Cause::HttpRedirects),
                format!("redirect loop: {}", chain.path_to(&next)),
            );
        }
        if walk.hop >= site.http.max_redirects {
            break (
                Some(Cause::HttpRedirects),
                format!(
                    "more than {} redirects: {}",
                    site.http.max_redirects,
                    chain.path_to(&next)
                ),
            );
        }
        match crate::config::parse_target(&next) {
            Ok(t) if t.scheme.uses_http() => {
                if !same_origin(&site.target, &t) {
                    walk.on_origin = false;
                }
                if target.scheme.uses_tls() && !t.scheme.uses_tls() && walk.insecure.is_none() {
                    walk.insecure = Some(format!(
                        "{} → {}",
                        cap(&target.url, MAX_URL),
                        cap(&t.url, MAX_URL)
                    ));
                }
                target = Cow::Owned(t);
                walk.hop += 1;
            }
            Ok(_) | Err(_) => {
                break (
                    Some(Cause::HttpRedirects),
                    format!(
                        "{} redirects ({status}) to {}, which is not an http(s) URL",
                        chain.shown.last().map_or("", String::as_str),
                        cap(&next, MAX_URL)
                    ),
                );
            }
        }
    };
    Ok(report(walk, &target, &chain, cause, detail))
}

/// Whether `host` is one `allowed` accepts: a name written as is, or any
/// name under `*.domain`.
fn allowed(host: &str, allowed: &[String]) -> bool {
    allowed
        .iter()
        .any(|pattern| match pattern.strip_prefix("*.") {
            Some(domain) => host
                .strip_suffix(domain)
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            None => host == pattern,
        })
}

/// Where a chain that left the site's registrable domain ended, as
/// "from → to" (`None` when it stayed, or when the site is an address:
/// then no domain is the site's own).
fn offsite(site: &SiteSpec, last: &Target) -> Option<String> {
    if !matches!(site.target.host, Host::Name(_)) {
        return None;
    }
    let home = crate::domain::registrable(&site.target.host_str)?;
    let host = last.host_str.trim_end_matches('.').to_ascii_lowercase();
    if crate::domain::registrable(&host).as_deref() == Some(home.as_str())
        || allowed(&host, &site.http.allow_redirects_to)
    {
        return None;
    }
    Some(format!(
        "{} → {}",
        cap(&site.target.host_str, MAX_URL),
        cap(&host, MAX_URL)
    ))
}

/// The report of a finished walk: a down cause explains more than any
/// degraded finding on the way; of those, where the chain led (another
/// domain, plain http) comes first; otherwise the hop's own finding, or up.
fn report(
    mut walk: Walk<'_>,
    target: &Target,
    chain: &Chain,
    cause: Option<Cause>,
    detail: String,
) -> ProbeReport {
    let away = if chain.len() == 0 {
        None
    } else {
        offsite(walk.site, target)
    };
    let (cause, mut detail) = if cause.is_some_and(|c| c.status() == Status::Down) {
        (cause, detail)
    } else if let Some(away) = away {
        (
            Some(Cause::HttpOffsiteRedirect),
            format!(
                "{detail} after {} ({}); but it ends on another domain: {away}",
                redirects(chain.len()),
                chain.path_to(&target.url)
            ),
        )
    } else if let Some(insecure) = walk.insecure.take() {
        (
            Some(Cause::HttpInsecureRedirect),
            format!(
                "{detail} after {} ({}); but it leaves https: {insecure}",
                redirects(chain.len()),
                chain.path_to(&target.url)
            ),
        )
    } else if let Some(partial) = walk.partial.take() {
        (Some(Cause::TcpPartial), format!("{detail}; but {partial}"))
    } else if let Some(expiring) = walk.expiring.take() {
        (
            Some(Cause::TlsExpiring),
            format!("{detail}; but {expiring}"),
        )
    } else if chain.len() == 0 {
        (cause, detail)
    } else {
        (
            cause,
            format!(
                "{detail} after {} ({})",
                redirects(chain.len()),
                chain.path_to(&target.url)
            ),
        )
    };
    if let Some(untried) = walk.untried.take() {
        detail = format!("{detail}; {untried}");
    }
    if let Some(status) = walk.head_refused {
        detail = format!("{detail}; HEAD was refused ({status}), so GET was used");
    }
    walk.finish(target, cause, detail)
}

fn redirects(n: usize) -> String {
    format!("{n} redirect{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_destinations_are_names_or_wildcards() {
        let list = ["example.org".to_string(), "*.example.net".to_string()];
        for (host, ok) in [
            ("example.org", true),
            ("www.example.org", false),
            ("a.example.net", true),
            ("a.b.example.net", true),
            ("example.net", false),
            ("badexample.net", false),
            ("example.com", false),
        ] {
            assert_eq!(allowed(host, &list), ok, "{host}");
        }
    }

    #[test]
    fn origins_are_scheme_host_and_port() {
        let t = |u: &str| crate::config::parse_target(u).unwrap();
        let site = t("https://a.test/login");
        let table = [
            ("https://a.test/other?x=1", true),
            ("https://A.test:443/", true),
            ("https://a.test./", true),
            ("http://a.test/", false),
            ("https://a.test:8443/", false),
            ("https://b.a.test/", false),
            ("https://127.0.0.1/", false),
        ];
        for (url, same) in table {
            assert_eq!(same_origin(&site, &t(url)), same, "{url}");
        }
        assert!(same_origin(
            &t("http://[::1]:8080/a"),
            &t("http://[0:0::1]:8080/b")
        ));
    }

    #[test]
    fn a_chain_finds_loops_and_shows_bounded_text() {
        let mut chain = Chain::default();
        let long = format!("http://a.test/{}", "x".repeat(380_000));
        chain.push("http://a.test/");
        chain.push(&long);
        assert!(chain.holds(&long));
        assert!(chain.holds("http://a.test/"));
        assert!(!chain.holds("http://a.test/x"));
        let path = chain.path_to("http://a.test/");
        assert!(path.len() <= text::MAX_PATH, "{}", path.len());
        assert!(
            path.starts_with("http://a.test/ → http://a.test/xxx"),
            "{path}"
        );
        assert!(path.ends_with(" → http://a.test/"), "{path}");
    }
}
