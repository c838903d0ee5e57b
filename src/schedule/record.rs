//! What the loop writes down of a probe and a change: the history's
//! sample, the log line, and the words of an alert for scattered failures.

use crate::alert::Alert;
use crate::config::SiteSpec;
use crate::diagnosis::{Cause, HintFacts, hint};
use crate::history::Sample;
use crate::probe::ProbeReport;
use crate::probe::text::{MAX_DETAIL, cap_owned};
use crate::state::{self, Health, SiteState};
use std::time::Duration;

/// An alert that the site is now degraded by scattered failures says
/// which and how many, then what the latest probe saw (the probe that
/// tipped it may well have worked).
pub(super) fn scattered(spec: &SiteSpec, next: &SiteState, alert: &mut Alert) {
    let (Health::Degraded(Cause::SiteIntermittent), Some(policy)) =
        (next.health, spec.intermittent)
    else {
        return;
    };
    if alert.cause != Some(Cause::SiteIntermittent) {
        return;
    }
    alert.detail = cap_owned(
        format!(
            "{}; no outage was confirmed (confirm_down = {}); the latest probe: {}",
            next.recent.summary(policy.window),
            spec.confirm_down,
            alert.detail
        ),
        MAX_DETAIL,
    );
    alert.hint = Some(hint(
        Cause::SiteIntermittent,
        &HintFacts {
            host: &spec.target.host_str,
            port: spec.target.port,
            addr: alert.addr,
            http_status: None,
            source: None,
            sign: None,
        },
    ));
}

pub(super) fn log_transition(spec: &SiteSpec, t: &state::Transition, report: &ProbeReport) {
    let cause = t.to.cause().map(|c| c.as_str());
    match t.kind {
        state::Kind::Recovered { outage } => tracing::info!(
            site = %spec.name,
            from = t.from.as_str(),
            to = t.to.as_str(),
            outage = %humantime::format_duration(Duration::from_secs(outage.as_secs())),
            "site recovered"
        ),
        kind => tracing::info!(
            site = %spec.name,
            change = kind.as_str(),
            from = t.from.as_str(),
            to = t.to.as_str(),
            cause,
            detail = %report.detail,
            "site is {}",
            t.to.as_str()
        ),
    }
}

/// What the history keeps of a probe; `unverified` while this monitor's
/// own network is down.
pub(super) fn sample_of(report: &crate::probe::ProbeReport, unverified: bool) -> Sample {
    sample_in(report, unverified, false)
}

/// [`sample_of`], made under a maintenance window that leaves it out of
/// uptime when `maintenance`.
pub(super) fn sample_in(
    report: &crate::probe::ProbeReport,
    unverified: bool,
    maintenance: bool,
) -> Sample {
    Sample {
        at: report.started_at,
        status: report.status,
        cause: report.cause,
        ms: report.ms,
        unverified,
        maintenance,
    }
}
