//! The per-site state machine: a pure function from (previous state, probe
//! observation, now) to (new state, optional transition).
//!
//! This is the only place that decides a site changed state, and so the only
//! place that decides an alert is due ([`Kind::alerts`]). No I/O, no clock:
//! `now` is passed in.

use crate::config::Intermittent;
use crate::diagnosis::{Cause, Status};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};

pub mod recent;
pub use recent::Recent;

/// What sitewatch believes about a site.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Health {
    /// No conclusive probe yet.
    Unknown,
    /// Works.
    Up,
    /// Works, but needs attention.
    Degraded(Cause),
    /// Does not work, and why.
    Down(Cause),
}

/// A confirmed status without its cause: the one status word that alerts,
/// the API and the page pass around (serialized as `unknown`, `up`,
/// `degraded`, `down`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Not known (yet, or any more).
    Unknown,
    /// Works.
    Up,
    /// Works, but needs attention.
    Degraded,
    /// Does not work.
    Down,
}

impl Level {
    /// The contract's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Unknown => "unknown",
            Level::Up => "up",
            Level::Degraded => "degraded",
            Level::Down => "down",
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Health {
    /// The status without its cause.
    pub fn level(self) -> Level {
        match self {
            Health::Unknown => Level::Unknown,
            Health::Up => Level::Up,
            Health::Degraded(_) => Level::Degraded,
            Health::Down(_) => Level::Down,
        }
    }

    /// The contract's status word (`unknown` when not yet known).
    pub fn as_str(self) -> &'static str {
        self.level().as_str()
    }

    /// The cause, when degraded or down.
    pub fn cause(self) -> Option<Cause> {
        match self {
            Health::Degraded(c) | Health::Down(c) => Some(c),
            Health::Unknown | Health::Up => None,
        }
    }
}

/// One probe's verdict, as the state machine sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Observation {
    /// The probe found the site up.
    Up,
    /// The probe found it working but degraded.
    Degraded(Cause),
    /// The probe found it down.
    Down(Cause),
}

impl Observation {
    /// Reads the verdict off a probe's status and cause.
    pub fn new(status: Status, cause: Option<Cause>) -> Observation {
        match (status, cause) {
            (Status::Up, _) | (_, None) => Observation::Up,
            (Status::Degraded, Some(c)) => Observation::Degraded(c),
            (Status::Down, Some(c)) => Observation::Down(c),
        }
    }

    fn class(self) -> u8 {
        match self {
            Observation::Up => 0,
            Observation::Degraded(_) => 1,
            Observation::Down(_) => 2,
        }
    }

    fn health(self) -> Health {
        match self {
            Observation::Up => Health::Up,
            Observation::Degraded(c) => Health::Degraded(c),
            Observation::Down(c) => Health::Down(c),
        }
    }
}

/// How many consecutive observations confirm a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    /// Consecutive failures before down (and before a new cause replaces the old).
    pub confirm_down: u32,
    /// Consecutive successes before up again.
    pub confirm_up: u32,
    /// When scattered failures make the site degraded (`None`: never).
    pub intermittent: Option<Intermittent>,
}

/// A run of consecutive observations and when it began.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// How many observations in a row.
    pub count: u32,
    /// When the first of them was made.
    pub since: SystemTime,
}

impl Run {
    fn extend(run: Option<Run>, now: SystemTime) -> Run {
        match run {
            Some(r) => Run {
                count: r.count.saturating_add(1),
                since: r.since,
            },
            None => Run {
                count: 1,
                since: now,
            },
        }
    }
}

/// Everything the state machine remembers about one site.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteState {
    /// The confirmed health.
    pub health: Health,
    /// When the confirmed health began; for down, the first failed probe of the outage.
    pub since: SystemTime,
    /// When the current cause began (equals `since` until the cause changes).
    pub cause_since: SystemTime,
    /// The last observation.
    pub last: Option<Observation>,
    /// Consecutive down observations.
    pub fails: Option<Run>,
    /// Consecutive up or degraded observations.
    pub oks: Option<Run>,
    /// Consecutive observations of the same class (up, degraded, down).
    pub class_run: Option<Run>,
    /// Consecutive identical observations (same class and cause).
    pub same_run: Option<Run>,
    /// The current down or degraded state was confirmed inside a
    /// maintenance window and nobody was told of it: it is confirmed again
    /// once no window covers the site. Kept by [`step`]; the scheduler
    /// sets it.
    #[serde(default)]
    pub unannounced: bool,
    /// The outcomes of the latest probes since the last confirmed outage
    /// (see [`recent`]).
    #[serde(default)]
    pub recent: Recent,
}

impl SiteState {
    /// The state of a site never probed, as of `now`.
    pub fn new(now: SystemTime) -> SiteState {
        SiteState {
            health: Health::Unknown,
            since: now,
            cause_since: now,
            last: None,
            fails: None,
            oks: None,
            class_run: None,
            same_run: None,
            unannounced: false,
            recent: Recent::default(),
        }
    }
}

/// What kind of change a transition is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The first conclusive probe found the site up: nothing to alert.
    Initial,
    /// Down, confirmed.
    Down,
    /// Still down, for another reason now.
    CauseChanged,
    /// Works but needs attention (or needs it for another reason now).
    Degraded,
    /// Back from down; the outage lasted this long.
    Recovered {
        /// From the first failed probe to the first good one.
        outage: Duration,
    },
    /// Back from degraded to fully up.
    Resolved,
}

impl Kind {
    /// Whether this change is worth telling an operator.
    pub fn alerts(self) -> bool {
        !matches!(self, Kind::Initial)
    }

    /// A short lowercase name for logs and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Initial => "initial",
            Kind::Down => "down",
            Kind::CauseChanged => "cause_changed",
            Kind::Degraded => "degraded",
            Kind::Recovered { .. } => "recovered",
            Kind::Resolved => "resolved",
        }
    }
}

/// A confirmed change of a site's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// What kind of change.
    pub kind: Kind,
    /// The health before.
    pub from: Health,
    /// The health after.
    pub to: Health,
    /// When the new health began (may be before `now`: the first probe of the run).
    pub since: SystemTime,
}

/// Applies one observation made at `now`.
pub fn step(
    prev: &SiteState,
    obs: Observation,
    now: SystemTime,
    th: Thresholds,
) -> (SiteState, Option<Transition>) {
    let mut s = *prev;
    let same_class = prev.last.is_some_and(|l| l.class() == obs.class());
    let identical = prev.last == Some(obs);
    s.class_run = Some(Run::extend(
        if same_class { prev.class_run } else { None },
        now,
    ));
    s.same_run = Some(Run::extend(
        if identical { prev.same_run } else { None },
        now,
    ));
    s.last = Some(obs);
    s.recent.push(match obs {
        Observation::Down(c) => Some(c),
        Observation::Up | Observation::Degraded(_) => None,
    });
    let is_down = matches!(obs, Observation::Down(_));
    if is_down {
        s.fails = Some(Run::extend(prev.fails, now));
        s.oks = None;
    } else {
        s.oks = Some(Run::extend(prev.oks, now));
        s.fails = None;
    }
    let count = |r: Option<Run>| r.map_or(0, |r| r.count);
    let since = |r: Option<Run>| r.map_or(now, |r| r.since);

    let change = match (prev.health, obs) {
        // Down: confirmed by consecutive failures, whatever their causes.
        (Health::Unknown | Health::Up | Health::Degraded(_), Observation::Down(c)) => {
            (count(s.fails) >= th.confirm_down)
                .then(|| (Kind::Down, Health::Down(c), since(s.fails)))
        }
        // Still down: a new cause must hold for as long as a new outage would.
        (Health::Down(old), Observation::Down(c)) => (old != c
            && count(s.same_run) >= th.confirm_down)
            .then(|| (Kind::CauseChanged, Health::Down(c), since(s.same_run))),
        // Back from down: consecutive working probes, up or degraded alike.
        (Health::Down(_), Observation::Up | Observation::Degraded(_)) => {
            (count(s.oks) >= th.confirm_up).then(|| {
                let back = since(s.oks);
                let outage = back.duration_since(prev.since).unwrap_or_default();
                (Kind::Recovered { outage }, obs.health(), back)
            })
        }
        // First conclusive probe: nothing to confirm against.
        (Health::Unknown, Observation::Up) => Some((Kind::Initial, Health::Up, now)),
        (Health::Unknown, Observation::Degraded(c)) => {
            Some((Kind::Degraded, Health::Degraded(c), now))
        }
        (Health::Up, Observation::Up) => None,
        (Health::Up, Observation::Degraded(c)) => (count(s.class_run) >= th.confirm_down)
            .then(|| (Kind::Degraded, Health::Degraded(c), since(s.class_run))),
        (Health::Degraded(old), Observation::Degraded(c)) => (old != c
            && count(s.same_run) >= th.confirm_down)
            .then(|| (Kind::Degraded, Health::Degraded(c), since(s.same_run))),
        (Health::Degraded(_), Observation::Up) => (count(s.class_run) >= th.confirm_up)
            .then(|| (Kind::Resolved, Health::Up, since(s.class_run))),
    };

    let change = match th.intermittent {
        Some(policy) => scattered(prev, &s, obs, change, policy, now),
        None => change,
    };
    let Some((kind, to, began)) = change else {
        return (s, None);
    };
    if matches!(kind, Kind::Down | Kind::Recovered { .. }) {
        // The failures of a confirmed outage are not scattered ones.
        s.recent.clear();
    }
    s.health = to;
    s.cause_since = began;
    if kind != Kind::CauseChanged {
        s.since = began;
    }
    let t = Transition {
        kind,
        from: prev.health,
        to,
        since: began,
    };
    (s, Some(t))
}

/// Scattered failures (`policy.failures` of the last `policy.window`
/// probes, none confirmed) make a working site degraded with
/// `site.intermittent`, at once and once; it stays so until a whole window
/// of probes works, then takes what the probe shows. A confirmed outage
/// goes as usual. Returns the change to make instead of `change`.
fn scattered(
    prev: &SiteState,
    s: &SiteState,
    obs: Observation,
    change: Option<(Kind, Health, SystemTime)>,
    policy: Intermittent,
    now: SystemTime,
) -> Option<(Kind, Health, SystemTime)> {
    const SCATTERED: Health = Health::Degraded(Cause::SiteIntermittent);
    if matches!(
        change,
        Some((
            Kind::Down | Kind::CauseChanged | Kind::Recovered { .. },
            _,
            _
        ))
    ) || matches!(prev.health, Health::Down(_) | Health::Unknown)
    {
        return change;
    }
    let failed = s.recent.failures(policy.window);
    if prev.health != SCATTERED {
        return if failed >= policy.failures {
            Some((Kind::Degraded, SCATTERED, now))
        } else {
            change
        };
    }
    if failed > 0 {
        return None;
    }
    match obs {
        Observation::Up => Some((Kind::Resolved, Health::Up, now)),
        Observation::Degraded(c) => Some((Kind::Degraded, Health::Degraded(c), now)),
        Observation::Down(_) => change,
    }
}

/// A verdict the vote of several vantages reached about a failure this
/// site's own probes confirmed: the site is `to` from `since` on, whatever
/// the run counters say (the failures were confirmed here; the vote only
/// says what they mean). Returns the transition if the health changes.
pub fn judge(prev: &SiteState, to: Health, since: SystemTime) -> (SiteState, Option<Transition>) {
    if prev.health == to {
        return (*prev, None);
    }
    let kind = match to {
        Health::Degraded(_) => Kind::Degraded,
        Health::Down(_) => Kind::Down,
        Health::Up | Health::Unknown => return (*prev, None),
    };
    let mut s = *prev;
    s.health = to;
    s.since = since;
    s.cause_since = since;
    (
        s,
        Some(Transition {
            kind,
            from: prev.health,
            to,
            since,
        }),
    )
}

#[cfg(test)]
mod tests;
