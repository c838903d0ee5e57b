//! The scheduler: one loop over all sites that wakes at most once per short
//! slice, spawns every probe due, and feeds each result through the state
//! machine.
//!
//! Owns every site's [`SiteState`] (a `Vec` indexed by site, no lock). Each
//! site runs on a fixed-rate grid starting at a deterministic offset within
//! its interval, so thousands of sites never fire together; a site whose
//! previous probe still runs skips its slot instead of stacking; a global
//! semaphore caps probes in flight; a hanging probe ends at its own deadline
//! and never delays another site.

mod burst;
mod planned;
mod reconfigure;
mod record;
mod task;
mod vote;

use burst::{Burst, network_class};
use planned::{after_window, heartbeat_index, judge_heartbeat};
use record::{log_transition, sample_in, sample_of};
use task::{Done, Outcome, lag_stats, spawn_probe};

use reconfigure::{Failing, reconfigure};

use crate::alert;
use crate::config::{Diff, SiteSpec};
use crate::history::{History, NewChange, Sample};
use crate::probe::{ProbeDeps, ProbeReport};
use crate::state::{self, Observation, SiteState, Thresholds};
use crate::store::{SchedulerStats, StatusStore};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The shortest time between two wake-ups: probes due within one slice
/// start together, which bounds the loop's wake-ups to 1/SLICE per second.
pub const SLICE: Duration = Duration::from_millis(10);
/// How often the scheduler publishes its figures to the store.
const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// How many results are handled per wake-up at most.
const RESULT_BATCH: usize = 256;
/// On stop, probes in flight get this long to finish; the rest are
/// abandoned so that the whole stop fits systemd's `TimeoutStopSec`.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(5);
/// A site that began failing this long before another site's down is
/// confirmed counts as part of a storm forming.
const FAILING_LOOKBACK: Duration = Duration::from_secs(120);

/// A deterministic offset in `[0, interval)` for a site, from its name.
pub fn offset(name: &str, interval: Duration) -> Duration {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // In u128: an interval of 2^64 µs or more must not become a zero divisor.
    let span = interval.as_micros().max(1);
    let us = u128::from(h) % span;
    Duration::from_micros(u64::try_from(us).unwrap_or(u64::MAX))
}

/// `t + d`, or a time a year after `t` when that would overflow (validated
/// intervals never get there; a bad one must not panic the loop).
fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .unwrap_or_else(|| t + Duration::from_secs(365 * 86_400))
}

struct Slot {
    spec: Arc<SiteSpec>,
    state: SiteState,
    running: bool,
    /// A change waits for the other vantages' votes: no probe meanwhile.
    voting: bool,
    /// Every other vantage abstained: this one judges alone from then on.
    alone_after: Option<Instant>,
    /// Tells this slot's results and heap entries from those of a site
    /// that had the same index before a reload.
    generation: u64,
    /// The maintenance window after which this site started over: its
    /// next down alert says it is still down after it.
    after_maintenance: Option<String>,
}

/// Called by the scheduler loop about once a second with its figures.
pub type Heartbeat = Box<dyn FnMut(&SchedulerStats) + Send>;

/// Where the scheduler's results go.
pub struct Sinks {
    /// The latest state of every site, for the API.
    pub store: StatusStore,
    /// The history database: every result, and every confirmed change with
    /// the alert it makes due (the history hands alerts on once stored).
    pub history: History,
    /// Called once per loop turn at most every second (status line, liveness).
    pub heartbeat: Option<Heartbeat>,
    /// Whether this monitor's own network can be trusted now.
    pub network: crate::selfcheck::Handle,
    /// The other vantages, when this instance has peers: a change waits
    /// for their votes.
    pub voting: Option<Arc<crate::cluster::Voting>>,
    /// Where heartbeat pings arrive (heartbeats are judged from its ledger).
    pub pings: Option<Arc<crate::heartbeat::hub::Hub>>,
    /// The maintenance windows in force.
    pub windows: crate::maintenance::Windows,
    /// What the registries say of the sites' domains (`None`: not asked).
    pub domains: Option<Arc<crate::domain::watch::DomainWatch>>,
}

/// What the scheduler can be told while it runs.
pub enum Control {
    /// Switch to a new configuration ([`config::diff`] decides, per site):
    /// sites whose probe settings changed start over and their open outage
    /// is closed as forgotten; sites whose policy or routing changed keep
    /// their state and schedule; removed ones stop, added ones start.
    Reconfigure {
        /// The sites of the new configuration, in file order.
        sites: Vec<Arc<SiteSpec>>,
        /// Resolvers and TLS configurations for them.
        deps: Arc<ProbeDeps>,
        /// Told what changed once the switch is done.
        done: tokio::sync::oneshot::Sender<Diff>,
    },
    /// A heartbeat received a ping: judge it now rather than at its next tick.
    Judge(String),
}

/// Runs the schedule for `sites` until `shutdown` fires, then lets the
/// probes in flight finish (each ends by its own deadline) and returns.
pub async fn run(
    sites: Vec<Arc<SiteSpec>>,
    mut saved: HashMap<String, SiteState>,
    mut deps: Arc<ProbeDeps>,
    mut sinks: Sinks,
    max_concurrent: usize,
    mut control: mpsc::UnboundedReceiver<Control>,
    shutdown: CancellationToken,
) {
    let start = Instant::now();
    let wall_start = SystemTime::now();
    let mut generation: u64 = 0;
    let mut slots: Vec<Option<Slot>> = sites
        .iter()
        .map(|spec| {
            generation += 1;
            Some(Slot {
                spec: Arc::clone(spec),
                state: saved
                    .remove(&spec.name)
                    .unwrap_or_else(|| SiteState::new(wall_start)),
                running: false,
                voting: false,
                alone_after: None,
                after_maintenance: None,
                generation,
            })
        })
        .collect();
    let mut due: BinaryHeap<Reverse<(Instant, usize, u64)>> = slots
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            s.as_ref().map(|s| {
                Reverse((
                    start + offset(&s.spec.name, s.spec.interval),
                    i,
                    s.generation,
                ))
            })
        })
        .collect();
    let semaphore = Arc::new(Semaphore::new(max_concurrent.max(1)));
    let (tx, mut rx) = mpsc::unbounded_channel::<Done>();
    let (vote_tx, mut vote_rx) = mpsc::unbounded_channel::<vote::Voted>();
    let mut results = Vec::with_capacity(RESULT_BATCH);
    // 1 µs to 1 h, 2 significant digits: a few KiB.
    let mut lag = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 2)
        .expect("static histogram bounds are valid");
    let mut stats = SchedulerStats::default();
    let mut next_publish = start;
    let mut last_wake = start;
    let timer = tokio::time::sleep_until(start);
    tokio::pin!(timer);
    let mut control_open = true;
    let mut failing = Failing::default();
    let mut burst = Burst::default();
    let mut heartbeats = heartbeat_index(&slots);

    tracing::info!(sites = slots.len(), max_concurrent, "scheduler started");
    loop {
        // Wake for the next due probe, and at least once per publish period:
        // the watchdog ping and the status line must not wait for a site
        // with a long interval.
        let wake = Some(
            due.peek()
                .map(|Reverse((t, _, _))| (*t).max(last_wake + SLICE))
                .map_or(next_publish, |w| w.min(next_publish)),
        );
        if let Some(w) = wake
            && timer.deadline() != w
        {
            timer.as_mut().reset(w);
        }
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            n = rx.recv_many(&mut results, RESULT_BATCH) => {
                if n == 0 {
                    break;
                }
                for done in results.drain(..) {
                    handle(&mut slots, &sinks, &mut stats, &mut lag, &mut failing, &mut burst, &vote_tx, done);
                }
            }
            Some(voted) = vote_rx.recv() => {
                vote::settle(&mut slots, &sinks, &mut failing, voted);
            }
            msg = control.recv(), if control_open => match msg {
                Some(Control::Reconfigure { sites, deps: new_deps, done }) => {
                    deps = new_deps;
                    let changes = reconfigure(&mut slots, &mut due, &mut generation, sites, &sinks);
                    heartbeats = heartbeat_index(&slots);
                    let _ = done.send(changes);
                }
                Some(Control::Judge(name)) => {
                    if let Some(&idx) = heartbeats.get(&name)
                        && let Some(slot) = slots.get_mut(idx).and_then(Option::as_mut)
                        && !slot.running
                        && !slot.voting
                    {
                        let now = Instant::now();
                        slot.running = true;
                        stats.in_flight += 1;
                        let done = judge_heartbeat(idx, slot, sinks.pings.as_deref(), now, now);
                        handle(&mut slots, &sinks, &mut stats, &mut lag, &mut failing, &mut burst, &vote_tx, done);
                    }
                }
                None => control_open = false,
            },
            () = &mut timer, if wake.is_some() => {
                let now = Instant::now();
                last_wake = now;
                while let Some(&Reverse((planned, idx, gen_))) = due.peek() {
                    if planned > now {
                        break;
                    }
                    due.pop();
                    // An entry of a site removed or changed by a reload: dropped.
                    let Some(slot) = slots.get_mut(idx).and_then(Option::as_mut).filter(|s| s.generation == gen_) else {
                        continue;
                    };
                    let interval = slot.spec.interval;
                    // Fixed-rate grid; if the loop fell a whole interval behind, skip ahead.
                    let mut next = later(planned, interval);
                    if next <= now {
                        let behind = now.duration_since(next).as_micros() / interval.as_micros().max(1) + 1;
                        stats.skipped += u64::try_from(behind).unwrap_or(u64::MAX);
                        next = later(planned, interval.saturating_mul(u32::try_from(behind + 1).unwrap_or(u32::MAX)));
                    }
                    due.push(Reverse((next, idx, gen_)));
                    if slot.running || slot.voting {
                        stats.skipped += 1;
                        continue;
                    }
                    slot.running = true;
                    stats.in_flight += 1;
                    if slot.spec.heartbeat.is_some() {
                        // Judged here and now: reading a record is no probe.
                        let done = judge_heartbeat(idx, slot, sinks.pings.as_deref(), planned, now);
                        handle(&mut slots, &sinks, &mut stats, &mut lag, &mut failing, &mut burst, &vote_tx, done);
                        continue;
                    }
                    spawn_probe(idx, gen_, Arc::clone(&slot.spec), &deps, &semaphore, &tx, planned, &shutdown);
                }
            }
        }
        let now = Instant::now();
        if now >= next_publish {
            next_publish = now + PUBLISH_EVERY;
            stats.lag_ms = lag_stats(&lag);
            sinks.store.set_scheduler(stats.clone());
            if let Some(beat) = sinks.heartbeat.as_mut() {
                beat(&stats);
            }
        }
    }

    // Drain: nothing new starts; every probe in flight ends by its deadline.
    tracing::info!(
        in_flight = stats.in_flight,
        "scheduler stopping, waiting for probes in flight"
    );
    drop(tx);
    let drain_until = later(Instant::now(), DRAIN_LIMIT);
    while stats.in_flight > 0 {
        match tokio::time::timeout_at(drain_until, rx.recv_many(&mut results, RESULT_BATCH)).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(_) => {
                tracing::warn!(
                    in_flight = stats.in_flight,
                    "probes still running after {} s: abandoned",
                    DRAIN_LIMIT.as_secs()
                );
                break;
            }
        }
        for done in results.drain(..) {
            handle(
                &mut slots,
                &sinks,
                &mut stats,
                &mut lag,
                &mut failing,
                &mut burst,
                &vote_tx,
                done,
            );
        }
    }
    stats.lag_ms = lag_stats(&lag);
    sinks.store.set_scheduler(stats);
    tracing::info!("scheduler stopped");
}

#[allow(clippy::too_many_arguments)]
fn handle(
    slots: &mut [Option<Slot>],
    sinks: &Sinks,
    stats: &mut SchedulerStats,
    lag: &mut hdrhistogram::Histogram<u64>,
    failing: &mut Failing,
    burst: &mut Burst,
    votes: &mpsc::UnboundedSender<vote::Voted>,
    done: Done,
) {
    stats.in_flight = stats.in_flight.saturating_sub(1);
    if let Outcome::Cancelled = done.outcome {
        return;
    }
    let lag_us = done
        .began
        .saturating_duration_since(done.planned)
        .as_micros();
    lag.saturating_record(u64::try_from(lag_us).unwrap_or(u64::MAX).max(1));
    // A result of a site removed or changed by a reload since: dropped.
    let Some(slot) = slots
        .get_mut(done.idx)
        .and_then(Option::as_mut)
        .filter(|s| s.generation == done.generation)
    else {
        return;
    };
    slot.running = false;
    // Held apart from the slot: the slot itself may start over below.
    let spec_held = Arc::clone(&slot.spec);
    let spec = &spec_held;
    let mut report = match done.outcome {
        Outcome::Report(report) => *report,
        Outcome::Cancelled => return,
        Outcome::Error(error) => {
            stats.probe_errors += 1;
            tracing::warn!(site = %spec.name, %error, "could not probe; the site's state is unchanged");
            sinks.store.record_error(done.idx, error);
            return;
        }
        Outcome::Pending(detail) => {
            stats.probes += 1;
            let sample = Sample {
                at: SystemTime::now(),
                status: crate::diagnosis::Status::Up,
                cause: None,
                ms: 0.0,
                unverified: true,
                maintenance: false,
            };
            sinks.history.record(spec, sample, slot.state, None);
            sinks.store.record_pending(done.idx, detail);
            return;
        }
    };
    stats.probes += 1;
    if let Some(domains) = &sinks.domains {
        domains.apply(spec, &mut report, SystemTime::now());
    }
    tracing::debug!(
        site = %spec.name,
        status = %report.status,
        cause = report.cause.map_or("", |c| c.as_str()),
        ms = report.ms,
        "probe"
    );
    let th = Thresholds {
        confirm_down: spec.confirm_down,
        confirm_up: spec.confirm_up,
        intermittent: spec.intermittent,
    };
    let obs = Observation::new(report.status, report.cause);
    let now = Instant::now();
    let net = &sinks.network;
    if !spec.local
        && burst.record(
            done.idx,
            now,
            report.cause.is_some_and(network_class),
            net.trigger_share,
        )
    {
        tracing::warn!(
            "many sites fail at the network layers at once: checking this monitor's own network"
        );
        net.check_now();
    }
    if !spec.local && obs != Observation::Up && !net.trusted() {
        // This monitor's own network is down (or being checked): the
        // result says nothing of the site. Kept as unknown; the state
        // machine does not move and nobody is paged.
        net.unverified(&spec.name);
        let sample = sample_of(&report, true);
        sinks.history.record(spec, sample, slot.state, None);
        sinks.store.record(done.idx, slot.state, report, None);
        return;
    }
    after_window(slot, sinks, report.started_at);
    let (next, transition) = state::step(&slot.state, obs, report.started_at, th);
    if next.fails.is_some_and(|r| r.count == 1) {
        failing.began(done.idx, now);
    }
    if let (Some(t), Some(voting)) = (transition, &sinks.voting)
        && vote::wanted(voting, spec, &t)
    {
        // Another vantage's opinion first: the change waits for the vote.
        let prev = slot.state;
        slot.voting = true;
        let sample = sample_of(&report, false);
        sinks.history.record(spec, sample, prev, None);
        sinks.store.record(done.idx, prev, report.clone(), None);
        vote::ask(
            voting,
            spec,
            vote::Question {
                idx: done.idx,
                generation: done.generation,
                prev,
                next,
                transition: t,
                report,
            },
            votes,
        );
        return;
    }
    commit(
        slot,
        done.idx,
        sinks,
        failing,
        next,
        transition,
        report,
        Vec::new(),
    );
}

/// Applies a probe result and the state it leads to: the history (with
/// the change and its alert, if any), the store and the log.
#[allow(clippy::too_many_arguments)]
fn commit(
    slot: &mut Slot,
    idx: usize,
    sinks: &Sinks,
    failing: &mut Failing,
    next: SiteState,
    transition: Option<state::Transition>,
    report: ProbeReport,
    seen: Vec<alert::Seen>,
) {
    let spec = &slot.spec;
    let prev = slot.state;
    let mut next = next;
    let now = Instant::now();
    let wall = SystemTime::now();
    let window = sinks.windows.covering(spec, report.started_at);
    let change = transition.map(|t| {
        log_transition(spec, &t, &report);
        let mut alert = alert::from_transition(spec, &t, &report, wall);
        if let Some(a) = alert.as_mut() {
            a.seen = seen;
            record::scattered(spec, &next, a);
        }
        match &window {
            Some(w) => {
                // Planned work: nobody is paged. What closes an episode
                // someone was told of (a recovery, a resolution) still goes.
                let closes = matches!(t.kind, state::Kind::Recovered { .. } | state::Kind::Resolved)
                    && !prev.unannounced;
                if !closes && alert.take().is_some() {
                    tracing::info!(site = %spec.name, window = %w.id, change = t.kind.as_str(), "no alert: under maintenance");
                }
                next.unannounced = match t.kind {
                    state::Kind::Down => true,
                    state::Kind::Degraded => prev.unannounced || !matches!(prev.health, state::Health::Degraded(_)),
                    state::Kind::CauseChanged => prev.unannounced,
                    _ => false,
                };
                if next.unannounced {
                    slot.after_maintenance = Some(w.title.clone());
                }
            }
            None => {
                next.unannounced = false;
                if let (Some(title), Some(a)) = (slot.after_maintenance.take(), alert.as_mut()) {
                    let after = if title.is_empty() {
                        "after maintenance".to_string()
                    } else {
                        format!("after maintenance \"{title}\"")
                    };
                    a.detail = format!("still {} {after}: {}", t.to.as_str(), a.detail);
                }
            }
        }
        NewChange {
            transition: t,
            detail: report.detail.clone(),
            alert,
            failing: failing.others(idx, now),
            maintenance: window.is_some(),
        }
    });
    slot.state = next;
    let excluded = window.as_ref().is_some_and(|w| w.exclude_uptime);
    let sample = sample_in(&report, false, excluded);
    sinks.history.record(spec, sample, next, change);
    sinks.store.record(idx, next, report, transition);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_stable_spread_and_inside_the_interval() {
        let interval = Duration::from_secs(10);
        assert_eq!(offset("blog", interval), offset("blog", interval));
        let mut buckets = [0u32; 10];
        for i in 0..10_000 {
            let o = offset(&format!("site-{i}"), interval);
            assert!(o < interval);
            buckets[o.as_secs() as usize] += 1;
        }
        // Each second of the interval gets roughly a tenth of the sites.
        for b in buckets {
            assert!((800..1200).contains(&b), "{buckets:?}");
        }
    }
}
