//! A site's entry as the API, the page and the metrics see it.

use super::{CauseCount, ChangeView, Entry, RecentView, Shared, SiteView, VantageView};
use crate::diagnosis::Cause;
use std::sync::Arc;
use std::time::SystemTime;

/// What a site's view needs of the store besides the site: taken under
/// the lock (cheap clones), used after it is released.
pub(super) struct Ctx {
    history: Option<crate::history::HistoryReader>,
    ledger: Option<crate::heartbeat::ledger::Ledger>,
    windows: crate::maintenance::Windows,
}

/// A site as the store holds it, copied under the lock without copying
/// its report (shared) and without judging anything: the view is built
/// from it after the lock is released, so that a scrape of 100,000 sites
/// never holds up the scheduler's records.
pub(super) struct Snap {
    spec: Arc<crate::config::SiteSpec>,
    state: crate::state::SiteState,
    report: Option<Arc<crate::probe::ProbeReport>>,
    last_error: Option<String>,
    pending: Option<String>,
    last_transition: Option<crate::state::Transition>,
    transitions: u64,
    votes: Option<(SystemTime, Vec<crate::alert::Seen>)>,
    flapping: bool,
}

impl Shared {
    /// The context of views, to build them after the lock is released.
    pub(super) fn ctx(&self) -> Ctx {
        Ctx {
            history: self.history.clone(),
            ledger: self.ledger.clone(),
            windows: self.windows.clone(),
        }
    }
}

impl Entry {
    /// The site as of now (cheap: its report is shared).
    pub(super) fn snap(&self) -> Snap {
        Snap {
            spec: Arc::clone(&self.spec),
            state: self.state,
            report: self.report.clone(),
            last_error: self.last_error.clone(),
            pending: self.pending.clone(),
            last_transition: self.last_transition,
            transitions: self.transitions,
            votes: self.votes.clone(),
            flapping: self.flaps.flapping_at(tokio::time::Instant::now()),
        }
    }
}

/// The view of a site.
pub(super) fn view(e: &Snap, ctx: &Ctx) -> SiteView {
    let history = ctx.history.as_ref();
    let ledger = ctx.ledger.as_ref();
    let health = e.state.health;
    let r = e.report.as_ref();
    SiteView {
        name: e.spec.name.clone(),
        url: e.spec.target.url.clone(),
        status: health.level(),
        cause: health.cause(),
        cause_text: health.cause().map(Cause::words),
        since: e.state.since,
        interval_s: e.spec.interval.as_secs_f64(),
        last_probe: r.map(|r| r.started_at),
        duration_ms: r.map(|r| r.ms),
        probe_status: r.map(|r| r.status),
        probe_cause: r.and_then(|r| r.cause),
        detail: r.map(|r| r.detail.clone()).or_else(|| e.pending.clone()),
        hint: r.and_then(|r| r.hint.clone()),
        layers: r.map(|r| r.layers.clone()).unwrap_or_default(),
        error: e.last_error.clone(),
        last_change: e.last_transition.map(|t| ChangeView {
            kind: t.kind.as_str(),
            from: t.from.as_str(),
            to: t.to.as_str(),
            since: t.since,
            outage_s: match t.kind {
                crate::state::Kind::Recovered { outage } => Some(outage.as_secs_f64()),
                _ => None,
            },
        }),
        uptime: history.and_then(|h| h.uptime(&e.spec.name)),
        http_status: r.and_then(|r| r.http_status),
        cert: r.and_then(|r| r.cert.clone()),
        addr: r.and_then(|r| r.addr),
        transitions: e.transitions,
        maintenance: ctx.windows.covering(&e.spec, SystemTime::now()),
        heartbeat: e
            .spec
            .heartbeat
            .as_ref()
            .and(ledger)
            .and_then(|l| l.get(&e.spec.name))
            .map(|r| crate::heartbeat::ledger::HeartbeatView::of(&r)),
        recent: recent(e),
        flapping: e.flapping,
        domain: r.and_then(|r| r.domain.clone()),
        scope: e.votes.as_ref().map(|(_, seen)| scope(seen)),
        vantages: e
            .votes
            .as_ref()
            .map(|(at, seen)| {
                let age_s = SystemTime::now()
                    .duration_since(*at)
                    .unwrap_or_default()
                    .as_secs_f64();
                seen.iter()
                    .map(|s| VantageView {
                        vantage: s.vantage.clone(),
                        verdict: s.verdict.clone(),
                        cause: s.cause,
                        detail: s.detail.clone(),
                        age_s,
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The latest probes over the site's `intermittent_window` (the default
/// window when it does not watch for scattered failures).
fn recent(e: &Snap) -> RecentView {
    let window = e
        .spec
        .intermittent
        .map_or(crate::config::INTERMITTENT_WINDOW, |p| p.window);
    let recent = &e.state.recent;
    let (probes, failed) = (recent.probes(window), recent.failures(window));
    RecentView {
        probes,
        failed,
        failure_rate: if probes == 0 {
            0.0
        } else {
            f64::from(failed) / f64::from(probes)
        },
        causes: recent
            .causes(window)
            .into_iter()
            .map(|(cause, count)| CauseCount { cause, count })
            .collect(),
    }
}

/// Who sees it the way this vantage does, from the vantages' ballots:
/// `all` when every vantage that could vote agreed, `partial` when they
/// disagreed, `local` when no other vantage could vote.
fn scope(seen: &[crate::alert::Seen]) -> &'static str {
    let down = seen.iter().filter(|s| s.verdict == "down").count();
    let up = seen.iter().filter(|s| s.verdict == "up").count();
    match (down, up) {
        (d, u) if d + u <= 1 => "local",
        (0, _) | (_, 0) => "all",
        _ => "partial",
    }
}
