//! The history store through its public API, on a real SQLite file, with a
//! simulated clock so hours and days pass in milliseconds: hourly roll-up,
//! percentiles, uptime, pruning, incidents and resumed states.

use sitewatch::diagnosis::{Cause, Status};
use sitewatch::history::{History, HistoryPoint, NewChange, Resolution, Retention, Sample};
use sitewatch::state::{Health, Kind, Observation, SiteState, Thresholds, Transition, step};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const HOUR: u64 = 3600;

fn sites() -> Vec<Arc<sitewatch::config::SiteSpec>> {
    sitewatch::config::parse(
        std::path::Path::new("h.toml"),
        "[[site]]\nname = \"a\"\nurl = \"tcp://127.0.0.1:1\"\n\n[[site]]\nname = \"b\"\nurl = \"tcp://127.0.0.1:2\"\n",
    )
    .unwrap()
    .sites
}

struct SimClock(Arc<AtomicU64>);

impl SimClock {
    fn new(start: u64) -> (SimClock, sitewatch::history::Clock) {
        let secs = Arc::new(AtomicU64::new(start));
        let read = Arc::clone(&secs);
        (
            SimClock(secs),
            Arc::new(move || UNIX_EPOCH + Duration::from_secs(read.load(Ordering::SeqCst))),
        )
    }
    fn set(&self, secs: u64) {
        self.0.store(secs, Ordering::SeqCst);
    }
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn sample(secs: u64, status: Status, cause: Option<Cause>, ms: f64) -> Sample {
    Sample {
        at: at(secs),
        status,
        cause,
        ms,
        unverified: false,
        maintenance: false,
    }
}

fn change(transition: Transition, detail: &str) -> NewChange {
    NewChange {
        transition,
        detail: detail.to_string(),
        alert: None,
        failing: 0,
        maintenance: false,
    }
}

#[test]
fn hours_roll_up_into_uptime_and_percentiles_then_raw_samples_are_pruned() {
    let dir = tempfile::tempdir().unwrap();
    // Ten days ago, on an hour boundary.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let base = (now - 10 * 24 * HOUR) / HOUR * HOUR;
    let (clock, read) = SimClock::new(base);
    let sites = sites();
    let (h, writer, saved) =
        History::open_with_clock(dir.path(), &sites, None, Retention::default(), read);
    assert!(saved.states.is_empty());
    let state = SiteState::new(at(base));
    for hour in 0..3u64 {
        for minute in 0..60u64 {
            let t = base + hour * HOUR + minute * 60;
            clock.set(t);
            // Site a: always up, 1..=60 ms. Site b: down one minute in ten.
            h.record(
                &sites[0],
                sample(t, Status::Up, None, (minute + 1) as f64),
                state,
                None,
            );
            let down = minute % 10 == 0;
            let (status, cause) = if down {
                (Status::Down, Some(Cause::TcpRefused))
            } else {
                (Status::Up, None)
            };
            h.record(&sites[1], sample(t, status, cause, 5.0), state, None);
        }
        clock.set(base + (hour + 1) * HOUR);
        assert!(h.sync(Duration::from_secs(30)), "writer did not answer");
    }
    let reader = h.reader();
    let points = reader
        .history("a", at(base), at(base + 3 * HOUR), Resolution::Hour)
        .unwrap();
    assert_eq!(points.len(), 3, "{points:?}");
    let HistoryPoint::Hour {
        probes,
        failures,
        p50_ms,
        p95_ms,
        max_ms,
        uptime,
        ..
    } = points[0]
    else {
        panic!("{points:?}")
    };
    assert_eq!((probes, failures), (60, 0));
    assert_eq!((p50_ms, p95_ms, max_ms, uptime), (31.0, 57.0, 60.0, 100.0));
    let points = reader
        .history("b", at(base), at(base + 3 * HOUR), Resolution::Hour)
        .unwrap();
    let HistoryPoint::Hour {
        probes,
        failures,
        uptime,
        ..
    } = points[2]
    else {
        panic!()
    };
    assert_eq!((probes, failures, uptime), (60, 6, 90.0));
    let up = reader.uptime("b").unwrap();
    assert_eq!((up.d1, up.d90), (Some(90.0), Some(90.0)));
    assert_eq!(reader.uptime("a").unwrap().d7, Some(100.0));
    let raw = reader
        .history("b", at(base), at(base + HOUR), Resolution::Raw)
        .unwrap();
    assert_eq!(raw.len(), 60);

    // 49 hours later the raw samples are gone; the hourly rows remain.
    clock.set(base + 52 * HOUR);
    assert!(h.sync(Duration::from_secs(30)));
    assert!(
        reader
            .history("b", at(base), at(base + 3 * HOUR), Resolution::Raw)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        reader
            .history("b", at(base), at(base + 3 * HOUR), Resolution::Hour)
            .unwrap()
            .len(),
        3
    );
    // The 24 h window no longer holds any probe; the 7 d window still does.
    let up = reader.uptime("b").unwrap();
    assert_eq!((up.d1, up.d7), (None, Some(90.0)));
    assert!(writer.stop(Duration::from_secs(30)));
}

#[test]
fn incidents_keep_their_cause_timeline_and_states_resume() {
    let dir = tempfile::tempdir().unwrap();
    let sites = sites();
    let th = Thresholds {
        confirm_down: 1,
        confirm_up: 1,
        intermittent: None,
    };
    let t0 = SystemTime::now() - Duration::from_secs(600);
    let (h, writer, _) = History::open(dir.path(), &sites, None, Retention::default());
    let mut s = SiteState::new(t0);
    let mut feed = |obs: Observation, secs: u64, detail: &str| {
        let (next, tr) = step(&s, obs, t0 + Duration::from_secs(secs), th);
        let (status, cause) = match obs {
            Observation::Up => (Status::Up, None),
            Observation::Degraded(c) => (Status::Degraded, Some(c)),
            Observation::Down(c) => (Status::Down, Some(c)),
        };
        let sample = Sample {
            at: t0 + Duration::from_secs(secs),
            status,
            cause,
            ms: 1.0,
            unverified: false,
            maintenance: false,
        };
        h.record(&sites[0], sample, next, tr.map(|tr| change(tr, detail)));
        s = next;
        tr
    };
    feed(Observation::Up, 0, "up");
    assert_eq!(
        feed(
            Observation::Down(Cause::HttpBadGateway),
            60,
            "502 from 10.0.0.1"
        )
        .unwrap()
        .kind,
        Kind::Down
    );
    assert_eq!(
        feed(
            Observation::Down(Cause::TcpRefused),
            120,
            "10.0.0.1:443 refused"
        )
        .unwrap()
        .kind,
        Kind::CauseChanged
    );
    assert!(h.sync(Duration::from_secs(30)));
    let open = h.reader().incidents(Some("a"), 10).unwrap();
    assert_eq!(open.len(), 1);
    assert!(open[0].ended_at.is_none());
    let causes: Vec<_> = open[0]
        .causes
        .iter()
        .map(|c| c.cause.clone().unwrap())
        .collect();
    assert_eq!(causes, ["http.bad_gateway", "tcp.refused"]);
    assert_eq!(
        (open[0].first_error.as_str(), open[0].last_error.as_str()),
        ("502 from 10.0.0.1", "10.0.0.1:443 refused")
    );
    assert!(writer.stop(Duration::from_secs(30)));

    // Reopened: the down state comes back as it was.
    let (h, writer, saved) = History::open(dir.path(), &sites, None, Retention::default());
    let resumed = saved.states["a"];
    assert_eq!(resumed.health, Health::Down(Cause::TcpRefused));
    assert_eq!(resumed.since, s.since);
    assert_eq!(resumed, s, "counters and runs resume too");
    let back = t0 + Duration::from_secs(300);
    let (next, tr) = step(&resumed, Observation::Up, back, th);
    let tr: Transition = tr.unwrap();
    assert_eq!(
        tr.kind,
        Kind::Recovered {
            outage: Duration::from_secs(240)
        }
    );
    let sample = Sample {
        at: back,
        status: Status::Up,
        cause: None,
        ms: 1.0,
        unverified: false,
        maintenance: false,
    };
    h.record(&sites[0], sample, next, Some(change(tr, "up again")));
    assert!(h.sync(Duration::from_secs(30)));
    let closed = h.reader().incidents(None, 10).unwrap();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].duration_s, 240.0);
    assert!(writer.stop(Duration::from_secs(30)));
}

/// A probe that began at 10:59:58 and timed out at 11:00:08 is written
/// after hour 10 was rolled up: it still counts in hour 10.
#[test]
fn a_late_sample_counts_in_its_own_hour() {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let base = (now - 2 * 24 * HOUR) / HOUR * HOUR;
    let (clock, read) = SimClock::new(base);
    let sites = sites();
    let (h, writer, _) =
        History::open_with_clock(dir.path(), &sites, None, Retention::default(), read);
    let state = SiteState::new(at(base));
    for minute in 0..59u64 {
        let t = base + minute * 60;
        clock.set(t);
        h.record(&sites[0], sample(t, Status::Up, None, 1.0), state, None);
    }
    // The hour ends and is rolled up with 59 probes.
    clock.set(base + HOUR + 2);
    assert!(h.sync(Duration::from_secs(30)));
    let reader = h.reader();
    let hourly = |reader: &sitewatch::history::HistoryReader| {
        let points = reader
            .history("a", at(base), at(base + HOUR), Resolution::Hour)
            .unwrap();
        match points.first() {
            Some(HistoryPoint::Hour {
                probes, failures, ..
            }) => (*probes, *failures),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(hourly(&reader), (59, 0));
    // Then the result of the probe that began at 59:58 arrives.
    clock.set(base + HOUR + 8);
    h.record(
        &sites[0],
        sample(
            base + HOUR - 2,
            Status::Down,
            Some(Cause::TcpTimeout),
            10_000.0,
        ),
        state,
        None,
    );
    assert!(h.sync(Duration::from_secs(30)));
    assert_eq!(hourly(&reader), (60, 1), "the late sample joins its hour");
    let up = reader.uptime("a").unwrap();
    assert_eq!(up.d1, Some(100.0 * 59.0 / 60.0));
    assert!(writer.stop(Duration::from_secs(30)));
}

const DAY: u64 = 24 * HOUR;

/// Feeds site `a` a probe every 10 minutes from `start` for `days` days
/// (failures, degraded, unbelieved and maintenance probes mixed in), the
/// clock passing day by day; returns every sample fed.
fn feed_days(h: &History, clock: &SimClock, start: u64, days: u64) -> Vec<Sample> {
    let sites = sites();
    let state = SiteState::new(at(start));
    let mut fed = Vec::new();
    for day in 0..days {
        clock.set(start + day * DAY);
        for k in 0..144 {
            let t = start + day * DAY + k * 600;
            let n = t / 600;
            let (status, cause) = if n.is_multiple_of(37) {
                (Status::Down, Some(Cause::TcpRefused))
            } else if n.is_multiple_of(53) {
                (Status::Degraded, Some(Cause::HttpSlow))
            } else {
                (Status::Up, None)
            };
            let s = Sample {
                unverified: n.is_multiple_of(101),
                maintenance: n.is_multiple_of(89),
                ..sample(t, status, cause, (n % 400) as f64 + 0.4)
            };
            h.record(&sites[0], s, state, None);
            fed.push(s);
        }
        clock.set(start + (day + 1) * DAY);
        assert!(h.sync(Duration::from_secs(60)), "writer did not answer");
    }
    fed
}

/// Per UTC day of the last 90 (as the status page's bars add them up):
/// probes, failures, degraded, and unknown plus maintenance.
fn bars(reader: &sitewatch::history::HistoryReader, now: u64) -> Vec<(i64, i64, i64, i64)> {
    let points = reader
        .history("a", at(now - 90 * DAY), at(now), Resolution::Hour)
        .unwrap();
    let first = now / DAY - 89;
    let mut days = vec![(0, 0, 0, 0); 90];
    for p in points {
        let HistoryPoint::Hour {
            at,
            probes,
            failures,
            degraded,
            unknown,
            maintenance,
            ..
        } = p
        else {
            panic!("{p:?}")
        };
        let day = at.duration_since(UNIX_EPOCH).unwrap().as_secs() / DAY;
        if day >= first {
            let d = &mut days[(day - first) as usize];
            *d = (
                d.0 + probes,
                d.1 + failures,
                d.2 + degraded,
                d.3 + unknown + maintenance,
            );
        }
    }
    days
}

/// The uptime of the fed samples that began in `from..to`, as the writer
/// counts it: believed probes that did not find the site down.
fn expected(fed: &[Sample], from: u64, to: u64) -> Option<f64> {
    let inside = fed.iter().filter(|s| (at(from)..at(to)).contains(&s.at));
    let counted: Vec<&Sample> = inside.filter(|s| !s.unverified && !s.maintenance).collect();
    let down = counted.iter().filter(|s| s.status == Status::Down).count();
    (!counted.is_empty()).then(|| 100.0 * (counted.len() - down) as f64 / counted.len() as f64)
}

/// The same 95 days of probes kept with a 90-day hourly retention (every
/// window counted by the hour) and with a 2-day one (all but two days
/// rolled into daily rows): the uptime figures and the status page's bars
/// are the same to the last digit.
#[test]
fn uptime_and_bars_are_the_same_after_hours_become_days() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let start = (now - 100 * DAY) / DAY * DAY;
    let end = start + 95 * DAY;
    let short = Retention {
        hourly: Duration::from_secs(2 * DAY),
        ..Retention::default()
    };
    let mut seen = Vec::new();
    let mut fed = Vec::new();
    for retention in [Retention::default(), short] {
        let dir = tempfile::tempdir().unwrap();
        let (clock, read) = SimClock::new(start);
        let (h, writer, _) = History::open_with_clock(dir.path(), &sites(), None, retention, read);
        fed = feed_days(&h, &clock, start, 95);
        let reader = h.reader();
        let hourly_from = reader.hourly_from().unwrap();
        seen.push((reader.uptime("a").unwrap(), bars(&reader, end), hourly_from));
        assert!(writer.stop(Duration::from_secs(30)));
    }
    let (hourly, days) = (&seen[0], &seen[1]);
    // The short retention did roll up: only the last two days are hours.
    assert_eq!(days.2, Some(at(end - 2 * DAY)));
    assert!(hourly.2.is_none_or(|t| t <= at(end - 90 * DAY)));
    assert_eq!(hourly.0, days.0, "uptime figures");
    assert_eq!(hourly.1, days.1, "the bars");
    let up = days.0;
    assert_eq!(up.d90, expected(&fed, end - 90 * DAY, end));
    assert_eq!(up.d30, expected(&fed, end - 30 * DAY, end));
    assert_eq!(up.d7, expected(&fed, end - 7 * DAY, end));
    assert_eq!(up.d1, expected(&fed, end - DAY, end));
    assert!(up.d90.unwrap() < 100.0 && up.unverified.d90.unwrap() > 0.0);
    assert!(up.maintenance.d90.unwrap() > 0.0);
    // 89 whole days of 144 probes, and today, just begun.
    assert!(days.1[..89].iter().all(|d| d.0 == 144), "{:?}", days.1);
    assert_eq!(days.1[89].0, 0);
}

/// With hourly rows kept 2 days, a 90-day window that starts at noon
/// counts its older part by whole UTC days: the days that begin inside
/// it (so the first, partial day is left out).
#[test]
fn a_window_older_than_the_hourly_rows_counts_whole_days() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let start = (now - 100 * DAY) / DAY * DAY;
    let dir = tempfile::tempdir().unwrap();
    let (clock, read) = SimClock::new(start);
    let retention = Retention {
        hourly: Duration::from_secs(2 * DAY),
        ..Retention::default()
    };
    let (h, writer, _) = History::open_with_clock(dir.path(), &sites(), None, retention, read);
    let fed = feed_days(&h, &clock, start, 95);
    let noon = start + 95 * DAY + 12 * HOUR;
    clock.set(noon);
    assert!(h.sync(Duration::from_secs(60)));
    let up = h.reader().uptime("a").unwrap();
    let first_day = (noon - 90 * DAY) / DAY * DAY + DAY;
    assert_eq!(up.d90, expected(&fed, first_day, noon));
    // The 24-hour window lies within the hourly rows: counted by the hour.
    assert_eq!(up.d1, expected(&fed, noon - DAY, noon));
    assert!(writer.stop(Duration::from_secs(30)));
}
