//! The state machine's table of edges and its timing rules.

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
    intermittent: None,
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
                intermittent: None,
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
                intermittent: None,
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

const SCATTERED: Thresholds = Thresholds {
    confirm_down: 2,
    confirm_up: 2,
    intermittent: Some(Intermittent {
        failures: 3,
        window: 20,
    }),
};

/// One failure in four, never two in a row: never confirmed down.
fn one_in_four(probes: usize) -> Vec<O> {
    (0..probes)
        .map(|i| if i % 4 == 3 { O::Down(TIMEOUT) } else { O::Up })
        .collect()
}

#[test]
fn scattered_failures_degrade_once_and_never_page_down() {
    let intermittent = Health::Degraded(Cause::SiteIntermittent);
    let (healths, kinds, s) = run(SCATTERED, Some(Health::Up), &one_in_four(40));
    // The third failure (probe 12) makes it degraded; nothing else changes.
    let changes: Vec<(usize, &str)> = kinds
        .iter()
        .enumerate()
        .filter_map(|(i, k)| k.map(|k| (i, k)))
        .collect();
    assert_eq!(changes, [(11, "degraded")]);
    assert!(healths[11..].iter().all(|h| *h == intermittent));
    assert!(!healths.iter().any(|h| matches!(h, Health::Down(_))));
    assert_eq!(s.recent.failures(20), 5);
    assert_eq!(s.recent.causes(20), [(TIMEOUT, 5)]);

    // Once it stops, a whole window of working probes brings it back up.
    let mut s = s;
    let mut back = None;
    for i in 0..25 {
        let (next, tr) = step(&s, O::Up, t(1000 + i), SCATTERED);
        if let Some(tr) = tr {
            assert_eq!(tr.kind, Kind::Resolved);
            back = Some(i);
        }
        s = next;
    }
    // The last failure was the 40th probe; 20 working ones push it out.
    assert_eq!(back, Some(19));
    assert_eq!(s.health, Health::Up);
}

#[test]
fn a_confirmed_outage_is_not_scattered() {
    let mut obs = vec![O::Down(REFUSED), O::Down(REFUSED), O::Down(REFUSED)];
    obs.extend([O::Up; 3]);
    let (_, kinds, s) = run(SCATTERED, Some(Health::Up), &obs);
    let changes: Vec<&str> = kinds.iter().flatten().copied().collect();
    assert_eq!(changes, ["down", "recovered"]);
    // The outage's failures were forgotten: one more failure is one, not four.
    assert_eq!(s.recent.failures(20), 0);
    let (next, tr) = step(&s, O::Down(TIMEOUT), t(5000), SCATTERED);
    assert_eq!((next.health, tr), (Health::Up, None));

    // A real outage while scattered failures are counted goes down as usual.
    let mut obs = one_in_four(12);
    obs.extend([O::Down(REFUSED), O::Down(REFUSED)]);
    let (healths, kinds, _) = run(SCATTERED, Some(Health::Up), &obs);
    assert_eq!(
        kinds.iter().flatten().copied().collect::<Vec<_>>(),
        ["degraded", "down"]
    );
    assert_eq!(*healths.last().unwrap(), Health::Down(REFUSED));
}

#[test]
fn without_the_policy_scattered_failures_are_noise() {
    let (healths, kinds, _) = run(TH, Some(Health::Up), &one_in_four(40));
    assert!(kinds.iter().all(Option::is_none));
    assert!(healths.iter().all(|h| *h == Health::Up));
}
