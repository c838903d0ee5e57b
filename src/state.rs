//! The per-site state machine: a pure function from (previous state, probe
//! observation, now) to (new state, optional transition).
//!
//! This is the only place that decides a site changed state, and so the only
//! place that decides an alert is due ([`Kind::alerts`]). No I/O, no clock:
//! `now` is passed in.

use crate::diagnosis::{Cause, Status};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};

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

    let Some((kind, to, began)) = change else {
        return (s, None);
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use Observation as O;

    const REFUSED: Cause = Cause::TcpRefused;
    const TIMEOUT: Cause = Cause::TcpTimeout;
    const SLOW: Cause = Cause::HttpSlow;
    const EXPIRING: Cause = Cause::TlsExpiring;

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + secs)
    }

    /// Feeds observations one per 10 s and returns (health after each step,
    /// transition kind at each step) plus the final state.
    fn run(
        th: Thresholds,
        start: Option<Health>,
        obs: &[O],
    ) -> (Vec<Health>, Vec<Option<&'static str>>, SiteState) {
        let mut s = SiteState::new(t(0));
        if let Some(h) = start {
            // Reach the starting health honestly, through the machine itself.
            let seed = match h {
                Health::Up => O::Up,
                Health::Degraded(c) => O::Degraded(c),
                Health::Down(c) => O::Down(c),
                Health::Unknown => unreachable!(),
            };
            for i in 0..th.confirm_down.max(th.confirm_up) {
                s = step(&s, seed, t(u64::from(i)), th).0;
            }
            assert_eq!(s.health, h, "seeding failed");
        }
        let mut healths = Vec::new();
        let mut kinds = Vec::new();
        for (i, &o) in obs.iter().enumerate() {
            let (next, tr) = step(&s, o, t(100 + 10 * i as u64), th);
            if let Some(tr) = tr {
                assert_eq!(tr.from, s.health);
                assert_eq!(tr.to, next.health);
            }
            healths.push(next.health);
            kinds.push(tr.map(|t| t.kind.as_str()));
            s = next;
        }
        (healths, kinds, s)
    }

    const TH: Thresholds = Thresholds {
        confirm_down: 2,
        confirm_up: 2,
    };

    #[test]
    fn table_of_edges() {
        use Health::*;
        type Case = (
            &'static str,
            Thresholds,
            Option<Health>,
            Vec<O>,
            Vec<Health>,
            Vec<Option<&'static str>>,
        );
        let cases: Vec<Case> = vec![
            (
                "first good probe is up at once, without an alert",
                TH,
                None,
                vec![O::Up],
                vec![Up],
                vec![Some("initial")],
            ),
            (
                "first degraded probe is degraded at once",
                TH,
                None,
                vec![O::Degraded(EXPIRING)],
                vec![Degraded(EXPIRING)],
                vec![Some("degraded")],
            ),
            (
                "unknown needs confirm_down failures",
                TH,
                None,
                vec![O::Down(REFUSED), O::Down(REFUSED)],
                vec![Unknown, Down(REFUSED)],
                vec![None, Some("down")],
            ),
            (
                "up to down after two failures",
                TH,
                Some(Up),
                vec![O::Down(REFUSED), O::Down(REFUSED)],
                vec![Up, Down(REFUSED)],
                vec![None, Some("down")],
            ),
            (
                "mixed causes still confirm down, with the latest cause",
                TH,
                Some(Up),
                vec![O::Down(TIMEOUT), O::Down(REFUSED)],
                vec![Up, Down(REFUSED)],
                vec![None, Some("down")],
            ),
            (
                "one failure is not an outage",
                TH,
                Some(Up),
                vec![O::Down(REFUSED), O::Up, O::Down(REFUSED), O::Up],
                vec![Up, Up, Up, Up],
                vec![None; 4],
            ),
            (
                "confirm_down 1 alerts at once",
                Thresholds {
                    confirm_down: 1,
                    confirm_up: 1,
                },
                Some(Up),
                vec![O::Down(REFUSED), O::Up],
                vec![Down(REFUSED), Up],
                vec![Some("down"), Some("recovered")],
            ),
            (
                "down to up after two successes",
                TH,
                Some(Down(REFUSED)),
                vec![O::Up, O::Up],
                vec![Down(REFUSED), Up],
                vec![None, Some("recovered")],
            ),
            (
                "recovery into degraded",
                TH,
                Some(Down(REFUSED)),
                vec![O::Up, O::Degraded(SLOW)],
                vec![Down(REFUSED), Degraded(SLOW)],
                vec![None, Some("recovered")],
            ),
            (
                "flapping while down never recovers",
                TH,
                Some(Down(REFUSED)),
                vec![O::Up, O::Down(REFUSED), O::Up, O::Down(REFUSED)],
                vec![Down(REFUSED); 4],
                vec![None; 4],
            ),
            (
                "cause change needs the same new cause twice",
                TH,
                Some(Down(Cause::HttpBadGateway)),
                vec![O::Down(REFUSED), O::Down(REFUSED)],
                vec![Down(Cause::HttpBadGateway), Down(REFUSED)],
                vec![None, Some("cause_changed")],
            ),
            (
                "alternating causes never change the cause",
                TH,
                Some(Down(Cause::HttpBadGateway)),
                vec![
                    O::Down(REFUSED),
                    O::Down(TIMEOUT),
                    O::Down(REFUSED),
                    O::Down(TIMEOUT),
                ],
                vec![Down(Cause::HttpBadGateway); 4],
                vec![None; 4],
            ),
            (
                "same cause again is no transition",
                TH,
                Some(Down(REFUSED)),
                vec![O::Down(REFUSED); 3],
                vec![Down(REFUSED); 3],
                vec![None; 3],
            ),
            (
                "up to degraded after two degraded probes",
                TH,
                Some(Up),
                vec![O::Degraded(SLOW), O::Degraded(SLOW)],
                vec![Up, Degraded(SLOW)],
                vec![None, Some("degraded")],
            ),
            (
                "degraded flapping with up stays up",
                TH,
                Some(Up),
                vec![O::Degraded(SLOW), O::Up, O::Degraded(SLOW), O::Up],
                vec![Up; 4],
                vec![None; 4],
            ),
            (
                "degraded back to up",
                TH,
                Some(Degraded(SLOW)),
                vec![O::Up, O::Up],
                vec![Degraded(SLOW), Up],
                vec![None, Some("resolved")],
            ),
            (
                "degraded cause change",
                TH,
                Some(Degraded(SLOW)),
                vec![O::Degraded(EXPIRING), O::Degraded(EXPIRING)],
                vec![Degraded(SLOW), Degraded(EXPIRING)],
                vec![None, Some("degraded")],
            ),
            (
                "degraded to down",
                TH,
                Some(Degraded(SLOW)),
                vec![O::Down(REFUSED), O::Down(REFUSED)],
                vec![Degraded(SLOW), Down(REFUSED)],
                vec![None, Some("down")],
            ),
            (
                "up and degraded mixed count toward recovery",
                TH,
                Some(Down(REFUSED)),
                vec![O::Degraded(SLOW), O::Up],
                vec![Down(REFUSED), Up],
                vec![None, Some("recovered")],
            ),
            (
                "confirm_up 3",
                Thresholds {
                    confirm_down: 2,
                    confirm_up: 3,
                },
                Some(Down(REFUSED)),
                vec![O::Up, O::Up, O::Up],
                vec![Down(REFUSED), Down(REFUSED), Up],
                vec![None, None, Some("recovered")],
            ),
        ];
        assert!(!cases.is_empty());
        for (name, th, start, obs, want_h, want_k) in cases {
            let (h, k, _) = run(th, start, &obs);
            assert_eq!(h, want_h, "{name}: health");
            assert_eq!(k, want_k, "{name}: transitions");
        }
    }

    #[test]
    fn outage_runs_from_first_failure_to_first_success() {
        let mut s = SiteState::new(t(0));
        s = step(&s, O::Up, t(0), TH).0;
        s = step(&s, O::Down(REFUSED), t(60), TH).0;
        let (s2, tr) = step(&s, O::Down(REFUSED), t(120), TH);
        let tr = tr.unwrap();
        assert_eq!((tr.kind, tr.since), (Kind::Down, t(60)));
        assert_eq!(s2.since, t(60));
        let (s3, _) = step(&s2, O::Down(TIMEOUT), t(180), TH);
        let (s4, tr) = step(&s3, O::Down(TIMEOUT), t(240), TH);
        assert_eq!(tr.unwrap().kind, Kind::CauseChanged);
        assert_eq!(
            (s4.since, s4.cause_since),
            (t(60), t(180)),
            "a new cause keeps the outage start"
        );
        let (s5, _) = step(&s4, O::Up, t(300), TH);
        let (s6, tr) = step(&s5, O::Up, t(360), TH);
        let tr = tr.unwrap();
        assert_eq!(
            tr.kind,
            Kind::Recovered {
                outage: Duration::from_secs(240)
            }
        );
        assert_eq!(s6.since, t(300));
        assert!(tr.kind.alerts() && !Kind::Initial.alerts());
    }

    #[test]
    fn a_clock_stepping_back_never_panics() {
        let mut s = SiteState::new(t(100));
        s = step(&s, O::Down(REFUSED), t(100), TH).0;
        s = step(&s, O::Down(REFUSED), t(110), TH).0;
        let (_, tr) = step(&s, O::Up, t(5), TH);
        assert!(tr.is_none());
        let (s, tr) = step(&step(&s, O::Up, t(5), TH).0, O::Up, t(6), TH);
        assert_eq!(
            tr.unwrap().kind,
            Kind::Recovered {
                outage: Duration::ZERO
            }
        );
        assert_eq!(s.health, Health::Up);
    }

    #[test]
    fn observation_reads_status_and_cause() {
        assert_eq!(O::new(Status::Up, None), O::Up);
        assert_eq!(O::new(Status::Down, Some(REFUSED)), O::Down(REFUSED));
        assert_eq!(O::new(Status::Degraded, Some(SLOW)), O::Degraded(SLOW));
    }
}
