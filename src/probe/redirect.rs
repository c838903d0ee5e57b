//! Following redirects: each hop is walked layer by layer
//! ([`super::walk::hop`]) until one is done, loops, or exceeds the site's
//! `max_redirects`; then the findings of every hop make the report.

use super::walk::{self, Hop, Walk};
use super::{ProbeDeps, ProbeError, ProbeReport};
use crate::config::{SiteSpec, Target};
use crate::diagnosis::{Cause, Status};
use std::borrow::Cow;
use tokio::time::Instant;

/// Walks `site` from its URL through its redirects, giving up at `deadline`.
pub(super) async fn walk(
    site: &SiteSpec,
    deps: &ProbeDeps,
    deadline: Instant,
) -> Result<ProbeReport, ProbeError> {
    let mut walk = Walk::new(site);
    let mut target = Cow::Borrowed(&site.target);
    let mut chain: Vec<String> = Vec::new();
    let (cause, detail) = loop {
        let (next, status) = match walk::hop(&mut walk, &target, deps, deadline).await? {
            Hop::Done(cause, detail) => break (cause, detail),
            Hop::Redirect(next, status) => (next, status),
        };
        chain.push(target.url.clone());
        let path = || format!("{} → {next}", chain.join(" → "));
        if chain.contains(&next) {
            break (
                Some(Cause::HttpRedirects),
                format!("redirect loop: {}", path()),
            );
        }
        if walk.hop >= site.http.max_redirects {
            break (
                Some(Cause::HttpRedirects),
                format!(
                    "more than {} redirects: {}",
                    site.http.max_redirects,
                    path()
                ),
            );
        }
        match crate::config::parse_target(&next) {
            Ok(t) if t.scheme.uses_http() => {
                target = Cow::Owned(t);
                walk.hop += 1;
            }
            Ok(_) | Err(_) => {
                break (
                    Some(Cause::HttpRedirects),
                    format!(
                        "{} redirects ({status}) to {next}, which is not an http(s) URL",
                        chain.last().map_or("", String::as_str)
                    ),
                );
            }
        }
    };
    Ok(report(walk, &target, &chain, cause, detail))
}

/// The report of a finished walk: a down cause explains more than any
/// degraded finding on the way; otherwise a degraded finding, or up.
fn report(
    mut walk: Walk<'_>,
    target: &Target,
    chain: &[String],
    cause: Option<Cause>,
    detail: String,
) -> ProbeReport {
    let (cause, detail) = if cause.is_some_and(|c| c.status() == Status::Down) {
        (cause, detail)
    } else if let Some(partial) = walk.partial.take() {
        (Some(Cause::TcpPartial), format!("{detail}; but {partial}"))
    } else if let Some(expiring) = walk.expiring.take() {
        (
            Some(Cause::TlsExpiring),
            format!("{detail}; but {expiring}"),
        )
    } else if chain.is_empty() {
        (cause, detail)
    } else {
        let n = chain.len();
        (
            cause,
            format!(
                "{detail} after {n} redirect{} ({} → {})",
                if n == 1 { "" } else { "s" },
                chain.join(" → "),
                target.url
            ),
        )
    };
    walk.finish(target, cause, detail)
}
