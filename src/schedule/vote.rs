//! The scheduler's side of a vote. When this vantage confirms that a site
//! went down (or came back), and the site has other vantages, the change
//! is held while they probe it now; then it is committed (enough agree),
//! turned into `vantage.partial` (some fail, others reach it), kept back
//! (a recovery the others do not see yet), or, when every other vantage
//! abstains, judged alone after one more interval: a partition may then
//! duplicate an alert, never swallow one.

use super::{Failing, Sinks, Slot, commit, later};
use crate::alert::Seen;
use crate::cluster::Voting;
use crate::cluster::vote::{self, Answer, Ballot, Tally, Verdict};
use crate::config::SiteSpec;
use crate::diagnosis::Cause;
use crate::probe::ProbeReport;
use crate::state::{self, Health, Kind, Level, SiteState, Transition};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A change waiting for the vote.
pub(super) struct Question {
    pub(super) idx: usize,
    pub(super) generation: u64,
    /// The state before the change.
    pub(super) prev: SiteState,
    /// The state the change leads to.
    pub(super) next: SiteState,
    pub(super) transition: Transition,
    /// The probe that confirmed it here.
    pub(super) report: ProbeReport,
}

/// A question and the other vantages' answers.
pub(super) struct Voted {
    q: Question,
    answers: Vec<(String, Answer)>,
}

/// Whether `t` waits for a vote: a site going down or coming back, with
/// other vantages watching it. LAN sites (`network = "local"`) are judged
/// here alone: other networks cannot reach them.
pub(super) fn wanted(voting: &Voting, spec: &SiteSpec, t: &Transition) -> bool {
    matches!(t.kind, Kind::Down | Kind::Recovered { .. })
        && !spec.local
        && !voting.others(spec).is_empty()
}

/// Asks the site's other vantages, all at once; the answers come back to
/// the scheduler's loop.
pub(super) fn ask(
    voting: &Arc<Voting>,
    spec: &Arc<SiteSpec>,
    q: Question,
    tx: &mpsc::UnboundedSender<Voted>,
) {
    let voting = Arc::clone(voting);
    let spec = Arc::clone(spec);
    let tx = tx.clone();
    tokio::spawn(async move {
        let others = voting.others(&spec);
        let answers = voting.peers.ask_all(&others, &spec.name).await;
        let _ = tx.send(Voted { q, answers });
    });
}

fn seen(tally: &Tally, answers: &[(String, Answer)], local: &ProbeReport) -> Vec<Seen> {
    tally
        .ballots
        .iter()
        .enumerate()
        .map(|(i, (vantage, ballot))| {
            let view = answers
                .iter()
                .find(|(n, _)| n == vantage && i > 0)
                .map(|(_, a)| a);
            let detail = match view {
                None if i == 0 => local.detail.clone(),
                Some(Ok(view)) => view.detail.clone(),
                Some(Err(e)) => e.clone(),
                None => String::new(),
            };
            let judged = match view {
                Some(Ok(v)) => v.judged,
                _ => None,
            };
            let (verdict, cause, detail, earlier) = match ballot {
                Ballot::Down(c) => ("down", Some(*c), detail, judged == Some(Level::Down)),
                Ballot::Up => (
                    "up",
                    None,
                    detail,
                    matches!(judged, Some(Level::Up | Level::Degraded)),
                ),
                Ballot::Abstain(why) => ("abstains", None, why.clone(), false),
            };
            Seen {
                vantage: vantage.clone(),
                verdict: verdict.to_string(),
                cause,
                detail: crate::probe::text::cap(&detail, 512),
                earlier,
            }
        })
        .collect()
}

/// Counts the votes and acts on the verdict.
pub(super) fn settle(
    slots: &mut [Option<Slot>],
    sinks: &Sinks,
    failing: &mut Failing,
    voted: Voted,
) {
    let Voted { q, answers } = voted;
    let Some(slot) = slots
        .get_mut(q.idx)
        .and_then(Option::as_mut)
        .filter(|s| s.generation == q.generation)
    else {
        return;
    };
    slot.voting = false;
    let Some(voting) = &sinks.voting else {
        return;
    };
    let probe_key = crate::config::probe_key(&slot.spec);
    let local = match (q.transition.kind, q.transition.to.cause()) {
        (Kind::Down, Some(c)) => Ballot::Down(c),
        _ => Ballot::Up,
    };
    let mut ballots = vec![(voting.vantage().to_string(), local)];
    ballots.extend(
        answers
            .iter()
            .map(|(name, a)| (name.clone(), vote::ballot(a, &probe_key))),
    );
    let tally = Tally::new(ballots);
    let failure = q.transition.kind == Kind::Down;
    let verdict = if failure {
        tally.failure(slot.spec.quorum)
    } else {
        tally.recovery(slot.spec.quorum)
    };
    let views = seen(&tally, &answers, &q.report);
    sinks.store.record_votes(q.idx, &views);
    let name = slot.spec.name.clone();
    tracing::info!(site = %name, verdict = ?verdict, votes = %tally.summary(), "the vantages voted");
    match verdict {
        Verdict::Agreed => {
            slot.alone_after = None;
            commit(
                slot,
                q.idx,
                sinks,
                failing,
                q.next,
                Some(q.transition),
                q.report,
                views,
            );
        }
        Verdict::Alone => {
            let now = Instant::now();
            match slot.alone_after {
                Some(t) if now >= t => {
                    tracing::warn!(site = %name, "every other vantage still abstains: judging alone");
                    commit(
                        slot,
                        q.idx,
                        sinks,
                        failing,
                        q.next,
                        Some(q.transition),
                        q.report,
                        views,
                    );
                }
                _ => {
                    let after = later(now, slot.spec.interval);
                    slot.alone_after.get_or_insert(after);
                    tracing::warn!(site = %name, "every other vantage abstains: judging alone after one more interval");
                    slot.state = q.prev;
                }
            }
        }
        Verdict::Disagreed => {
            // Up here, still down for enough of the others: still down.
            slot.alone_after = None;
            slot.state = q.prev;
        }
        Verdict::Partial => {
            slot.alone_after = None;
            let others_up = tally.up;
            let mut report = q.report;
            report.detail = crate::probe::text::cap(
                &format!(
                    "{name} fails from here but works from {others_up} other vantage{}: {}",
                    if others_up == 1 { "" } else { "s" },
                    tally.summary()
                ),
                crate::probe::text::MAX_DETAIL,
            );
            report.hint = Some(crate::diagnosis::hint(
                Cause::VantagePartial,
                &crate::diagnosis::HintFacts {
                    host: &slot.spec.target.host_str,
                    port: slot.spec.target.port,
                    addr: report.addr,
                    http_status: report.http_status,
                    source: report.addr.and_then(source_towards),
                    sign: None,
                },
            ));
            let (next, t) = state::judge(
                &q.prev,
                Health::Degraded(Cause::VantagePartial),
                q.transition.since,
            );
            // The failures were confirmed here: they keep counting, so the
            // next one asks again.
            let next = SiteState {
                fails: q.next.fails,
                oks: q.next.oks,
                last: q.next.last,
                class_run: q.next.class_run,
                same_run: q.next.same_run,
                ..next
            };
            commit(slot, q.idx, sinks, failing, next, t, report, views);
        }
    }
}

/// This host's own address towards `to`: what the kernel would pick as the
/// source (a connected UDP socket sends nothing).
fn source_towards(to: std::net::SocketAddr) -> Option<std::net::IpAddr> {
    let any: std::net::SocketAddr = if to.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = std::net::UdpSocket::bind(any).ok()?;
    s.connect(to).ok()?;
    Some(s.local_addr().ok()?.ip())
}
