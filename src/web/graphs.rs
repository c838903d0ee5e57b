//! The graphs of the status page: per site, a 90-day uptime bar (one cell
//! per UTC day, quiet days merged into runs) and a 24-hour latency sparkline
//! (median per hour), built from the hourly history plus the raw samples of
//! the hours not yet rolled up, and cached per site.
//!
//! Reading 90 days for every site on every request would not scale to a
//! thousand sites, so the graphs of each site are cached for [`GRAPH_TTL`]
//! (statuses, causes and probe times on the page are always live), refreshed
//! by one request at a time in a blocking task, and drawn for the first
//! [`GRAPH_LIMIT`] sites only (docs/http-api.md, "Scale"). Nothing here
//! renders HTML: that is [`super::page`].

use crate::history::{HistoryPoint, HistoryReader, Resolution};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Days in the uptime bar.
pub const DAYS: i64 = 90;
/// How long a site's graphs are reused before they are read again.
pub const GRAPH_TTL: Duration = Duration::from_secs(60);
/// Graphs are drawn for this many sites (in configuration order); the rest
/// show their status, cause and last probe only.
pub const GRAPH_LIMIT: usize = 500;

const HOUR_S: i64 = 3600;
const DAY_S: i64 = 86_400;
/// Sparkline geometry: 24 hourly slots across a 240 × 40 view box.
const SPARK_SLOT: f64 = 10.0;
const SPARK_HEIGHT: f64 = 40.0;

/// A stretch of the uptime bar (one slot of 10 view-box units per UTC day):
/// a day with something to tell (failures or degraded probes), drawn with
/// its own tooltip, or a run of quiet days (all good, or all without data)
/// drawn as one rectangle filled with a pattern of cells. Runs keep the page
/// small: 500 sites × 90 days of separate cells with tooltips weighed 6 MB.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// Left edge in the bar's view box.
    pub x: i64,
    /// Width in the view box: 8 for a single day, 10 per day for a run.
    pub width: i64,
    /// `ok` (no failure), `minor` (≥ 99% up, or only degraded), `major`
    /// (≥ 95%), `bad`, or `none` without data.
    pub class: &'static str,
    /// The tooltip of a day with something to tell: date, uptime, counts.
    /// `None` for a run of quiet days.
    pub title: Option<String>,
}

impl Cell {
    /// Days this stretch covers.
    pub fn days(&self) -> i64 {
        if self.title.is_some() {
            1
        } else {
            self.width / 10
        }
    }
}

/// A 24-hour latency sparkline (median probe time per hour).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Spark {
    /// Polyline point lists ("x,y x,y …"), one per run of hours with data.
    pub lines: Vec<String>,
    /// Single hours with data between two without: drawn as dots.
    pub dots: Vec<(f64, f64)>,
    /// The latest hour's median, ms.
    pub last_ms: Option<f64>,
    /// The highest hourly median of the 24 hours, ms (the top of the scale).
    pub max_ms: Option<f64>,
}

/// A site's graphs.
#[derive(Clone, Debug, PartialEq)]
pub struct Graphs {
    /// The uptime bar: [`DAYS`] days, oldest first, ending today (UTC).
    pub cells: Vec<Cell>,
    /// The last 24 hours.
    pub spark: Spark,
    /// Probes and failures over the whole bar, for when the writer's
    /// uptime figure is not there yet.
    pub totals: (i64, i64),
}

#[derive(Clone, Copy, Debug, Default)]
struct HourFigures {
    probes: i64,
    failures: i64,
    degraded: i64,
    /// Probes that could not be believed (this monitor's network was down).
    unknown: i64,
    p50_ms: Option<f64>,
}

fn unix_s(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64) - 1,
    }
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(values[(values.len() - 1) / 2])
}

/// Per hour (Unix hour number): the hourly aggregates, completed with the
/// raw samples of hours that are not rolled up yet (the current one).
fn hours(hourly: &[HistoryPoint], raw: &[HistoryPoint]) -> BTreeMap<i64, HourFigures> {
    let mut out = BTreeMap::new();
    for p in hourly {
        if let HistoryPoint::Hour {
            at,
            probes,
            failures,
            degraded,
            unknown,
            maintenance,
            p50_ms,
            ..
        } = p
        {
            out.insert(
                unix_s(*at).div_euclid(HOUR_S),
                HourFigures {
                    probes: *probes,
                    failures: *failures,
                    degraded: *degraded,
                    // The bars draw maintenance time grey, as unknown.
                    unknown: *unknown + *maintenance,
                    p50_ms: (*probes > 0).then_some(*p50_ms),
                },
            );
        }
    }
    let mut pending: BTreeMap<i64, (HourFigures, Vec<f64>)> = BTreeMap::new();
    for p in raw {
        if let HistoryPoint::Raw { at, status, ms, .. } = p {
            let hour = unix_s(*at).div_euclid(HOUR_S);
            if out.contains_key(&hour) {
                continue;
            }
            let (f, times) = pending.entry(hour).or_default();
            f.probes += 1;
            f.failures += i64::from(*status == "down");
            f.degraded += i64::from(*status == "degraded");
            let unknown = *status == "unknown" || *status == "maintenance";
            f.unknown += i64::from(unknown);
            if !unknown {
                times.push(*ms);
            }
        }
    }
    for (hour, (mut f, mut times)) in pending {
        f.p50_ms = median(&mut times);
        out.insert(hour, f);
    }
    out
}

/// The UTC date of a Unix day number, `2026-11-25`.
fn date(day: i64) -> String {
    let t = if day >= 0 {
        UNIX_EPOCH + Duration::from_secs((day * DAY_S) as u64)
    } else {
        UNIX_EPOCH
    };
    let s = humantime::format_rfc3339_seconds(t).to_string();
    s[..10].to_string()
}

/// A day's colour. Probes that could not be believed (this monitor's
/// network was down) are grey, never red: they say nothing of the site.
fn day_class(probes: i64, failures: i64, degraded: i64, unknown: i64) -> &'static str {
    if probes == 0 {
        return "none";
    }
    let believed = probes - unknown;
    if failures == 0 && degraded == 0 {
        return if unknown > 0 { "unknown" } else { "ok" };
    }
    let up = 100.0 * (believed - failures) as f64 / believed.max(1) as f64;
    match up {
        u if u >= 99.0 => "minor",
        u if u >= 95.0 => "major",
        _ => "bad",
    }
}

/// Builds a site's graphs from its hourly history over the last [`DAYS`]
/// days and its raw samples since the last rolled-up hour, as of `now`.
pub fn graphs(hourly: &[HistoryPoint], raw: &[HistoryPoint], now: SystemTime) -> Graphs {
    let hours = hours(hourly, raw);
    let now_s = unix_s(now);
    let today = now_s.div_euclid(DAY_S);
    let first = today - (DAYS - 1);
    let mut per_day = vec![(0i64, 0i64, 0i64, 0i64); DAYS as usize];
    for (hour, f) in &hours {
        let day = (hour * HOUR_S).div_euclid(DAY_S);
        if (first..=today).contains(&day) {
            let d = &mut per_day[(day - first) as usize];
            d.0 += f.probes;
            d.1 += f.failures;
            d.2 += f.degraded;
            d.3 += f.unknown;
        }
    }
    let totals = per_day
        .iter()
        .fold((0, 0), |(p, f), d| (p + d.0 - d.3, f + d.1));
    let mut cells: Vec<Cell> = Vec::new();
    for (i, &(probes, failures, degraded, unknown)) in per_day.iter().enumerate() {
        let x = i as i64 * 10;
        let class = day_class(probes, failures, degraded, unknown);
        if matches!(class, "ok" | "none") {
            match cells.last_mut() {
                Some(run) if run.title.is_none() && run.class == class => run.width += 10,
                _ => cells.push(Cell {
                    x,
                    width: 10,
                    class,
                    title: None,
                }),
            }
            continue;
        }
        let believed = (probes - unknown).max(1);
        let up = 100.0 * (believed - failures) as f64 / believed as f64;
        let mut title = if failures == 0 && degraded == 0 {
            format!("{}: {probes} probes", date(first + i as i64))
        } else {
            format!(
                "{}: {} up, {probes} probes, {failures} failed",
                date(first + i as i64),
                super::badge::percent(up)
            )
        };
        if degraded > 0 {
            title.push_str(&format!(", {degraded} degraded"));
        }
        if unknown > 0 {
            title.push_str(&format!(
                ", {unknown} not verifiable (this monitor's network was down)"
            ));
        }
        cells.push(Cell {
            x,
            width: 8,
            class,
            title: Some(title),
        });
    }

    // The sparkline: the 24 hours ending with the current one.
    let current = now_s.div_euclid(HOUR_S);
    let slots: Vec<Option<f64>> = (current - 23..=current)
        .map(|h| hours.get(&h).and_then(|f| f.p50_ms))
        .collect();
    let max = slots
        .iter()
        .flatten()
        .copied()
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    let mut spark = Spark {
        last_ms: slots.iter().rev().flatten().next().copied(),
        max_ms: max,
        ..Spark::default()
    };
    if let Some(max) = max {
        let scale = if max > 0.0 { max } else { 1.0 };
        let point = |i: usize, v: f64| {
            let x = i as f64 * SPARK_SLOT + SPARK_SLOT / 2.0;
            // The highest hour reaches 80% of the height: a flat line reads as steady, not as high.
            let y = (SPARK_HEIGHT - 3.0) - (v / scale) * 0.8 * (SPARK_HEIGHT - 6.0);
            (x, y)
        };
        let mut run: Vec<(f64, f64)> = Vec::new();
        let flush = |run: &mut Vec<(f64, f64)>, spark: &mut Spark| {
            match run.len() {
                0 => {}
                1 => spark.dots.push(run[0]),
                _ => spark.lines.push(
                    run.iter()
                        .map(|(x, y)| format!("{x:.1},{y:.1}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
            }
            run.clear();
        };
        for (i, v) in slots.iter().enumerate() {
            match v {
                Some(v) => run.push(point(i, *v)),
                None => flush(&mut run, &mut spark),
            }
        }
        flush(&mut run, &mut spark);
    }
    Graphs {
        cells,
        spark,
        totals,
    }
}

/// Reads one site's graphs (blocking: call from a blocking task).
fn read_graphs(reader: &HistoryReader, site: &str, now: SystemTime) -> Result<Graphs, String> {
    let from = now - Duration::from_secs((DAYS * DAY_S) as u64);
    let hourly = reader
        .history(site, from, now, Resolution::Hour)
        .map_err(|e| e.to_string())?;
    // Samples since the start of the previous hour: the hours the writer
    // has not rolled up yet (the current one, and the last one for a while).
    let hour_start = now_s_floor(now, HOUR_S) - HOUR_S;
    let since = UNIX_EPOCH + Duration::from_secs(hour_start.max(0) as u64);
    let raw = reader
        .history(site, since, now + Duration::from_secs(1), Resolution::Raw)
        .map_err(|e| e.to_string())?;
    Ok(graphs(&hourly, &raw, now))
}

fn now_s_floor(now: SystemTime, unit: i64) -> i64 {
    unix_s(now).div_euclid(unit) * unit
}

/// Each site's graphs, kept for [`GRAPH_TTL`].
#[derive(Default)]
pub struct GraphCache {
    entries: Mutex<HashMap<String, (Instant, Arc<Graphs>)>>,
    /// Held while graphs are being read, so that a burst of page loads
    /// reads the history once.
    refresh: tokio::sync::Mutex<()>,
}

impl GraphCache {
    /// An empty cache.
    pub fn new() -> GraphCache {
        GraphCache::default()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Arc<Graphs>)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The graphs of `names`, reading those missing or older than
    /// [`GRAPH_TTL`]; the error, if the history could not be read.
    pub(crate) async fn get(
        &self,
        reader: Option<HistoryReader>,
        names: Vec<String>,
        now: SystemTime,
    ) -> (HashMap<String, Arc<Graphs>>, Option<String>) {
        let _refreshing = self.refresh.lock().await;
        let stale: Vec<String> = {
            let entries = self.entries();
            names
                .iter()
                .filter(|n| {
                    entries
                        .get(*n)
                        .is_none_or(|(at, _)| at.elapsed() >= GRAPH_TTL)
                })
                .cloned()
                .collect()
        };
        let mut error = None;
        if let (Some(reader), false) = (reader, stale.is_empty()) {
            let read = tokio::task::spawn_blocking(move || {
                stale
                    .into_iter()
                    .map(|name| {
                        let g = read_graphs(&reader, &name, now);
                        (name, g)
                    })
                    .collect::<Vec<_>>()
            })
            .await;
            match read {
                Ok(results) => {
                    let mut entries = self.entries();
                    let at = Instant::now();
                    for (name, g) in results {
                        match g {
                            Ok(g) => {
                                entries.insert(name, (at, Arc::new(g)));
                            }
                            Err(e) => error = Some(e),
                        }
                    }
                }
                Err(e) => error = Some(e.to_string()),
            }
        }
        let mut entries = self.entries();
        let wanted: HashSet<&String> = names.iter().collect();
        // Sites removed from the configuration leave the cache.
        entries.retain(|name, _| wanted.contains(name));
        let out = names
            .iter()
            .filter_map(|n| entries.get(n).map(|(_, g)| (n.clone(), Arc::clone(g))))
            .collect();
        (out, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s as u64)
    }

    fn hour(h: i64, probes: i64, failures: i64, p50: f64) -> HistoryPoint {
        HistoryPoint::Hour {
            at: at(h * HOUR_S),
            probes,
            failures,
            degraded: 0,
            unknown: 0,
            maintenance: 0,
            uptime: 0.0,
            p50_ms: p50,
            p95_ms: p50,
            max_ms: p50,
        }
    }

    fn raw(s: i64, status: &'static str, ms: f64) -> HistoryPoint {
        HistoryPoint::Raw {
            at: at(s),
            status,
            cause: None,
            ms,
        }
    }

    #[test]
    fn days_aggregate_hours_per_utc_day_and_quiet_days_merge_into_runs() {
        // 2026-11-25T12:30:00Z
        let now_s = 1_795_609_800;
        let now = at(now_s);
        let today = now_s / DAY_S;
        let h0 = today * 24;
        let pts = vec![
            hour(h0, 60, 0, 10.0),
            hour(h0 + 1, 60, 6, 20.0),
            // Yesterday and the day before: all good.
            hour(h0 - 5, 60, 0, 10.0),
            hour(h0 - 30, 60, 0, 10.0),
            // 100 days ago: outside the bar.
            hour(h0 - 100 * 24, 60, 60, 10.0),
        ];
        let g = graphs(&pts, &[], now);
        assert_eq!(
            g.cells.iter().map(Cell::days).sum::<i64>(),
            90,
            "{:?}",
            g.cells
        );
        let [none, ok, today_cell] = &g.cells[..] else {
            panic!("{:?}", g.cells);
        };
        assert_eq!((none.x, none.width, none.class), (0, 870, "none"));
        assert_eq!(none.title, None);
        assert_eq!((ok.x, ok.width, ok.class), (870, 20, "ok"));
        // 114 of 120: 95%.
        assert_eq!(
            (today_cell.x, today_cell.width, today_cell.class),
            (890, 8, "major")
        );
        assert_eq!(
            today_cell.title.as_deref(),
            Some("2026-11-25: 95.00% up, 120 probes, 6 failed")
        );
        assert_eq!(g.totals, (240, 6));
    }

    #[test]
    fn a_day_with_one_failure_or_only_degraded_probes_is_not_ok() {
        assert_eq!(day_class(1440, 1, 0, 0), "minor");
        assert_eq!(day_class(1440, 0, 3, 0), "minor");
        assert_eq!(day_class(1440, 0, 0, 0), "ok");
        assert_eq!(day_class(100, 5, 0, 0), "major");
        assert_eq!(day_class(100, 50, 0, 0), "bad");
        assert_eq!(day_class(0, 0, 0, 0), "none");
        // Unverifiable probes are grey, and left out of the uptime.
        assert_eq!(day_class(100, 0, 0, 60), "unknown");
        assert_eq!(day_class(100, 2, 0, 60), "major");
    }

    #[test]
    fn raw_samples_fill_hours_not_rolled_up_and_the_sparkline_has_gaps() {
        let now_s = 1_795_609_800; // 12:30 UTC
        let current = now_s / HOUR_S;
        let pts = vec![
            hour(current - 23, 10, 0, 5.0),
            hour(current - 22, 10, 0, 15.0),
            hour(current - 10, 10, 0, 30.0),
        ];
        let raws = vec![
            raw(now_s - 60, "up", 2.0),
            raw(now_s - 50, "down", 4.0),
            raw(now_s - 40, "up", 9.0),
            // An hour already rolled up: ignored in favour of the aggregate.
            raw((current - 10) * HOUR_S + 5, "down", 999.0),
        ];
        let g = graphs(&pts, &raws, at(now_s));
        assert_eq!(g.spark.lines.len(), 1, "{:?}", g.spark);
        assert_eq!(g.spark.dots.len(), 2, "{:?}", g.spark);
        assert_eq!(g.spark.last_ms, Some(4.0));
        assert_eq!(g.spark.max_ms, Some(30.0));
        // The current hour's raw samples count in today's cell.
        let today = g.cells.last().unwrap();
        assert!(
            today
                .title
                .as_deref()
                .unwrap()
                .contains("13 probes, 1 failed"),
            "{today:?}"
        );
    }
}
