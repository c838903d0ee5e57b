//! How long each resolution of the history is kept, and the daily roll-up.
//!
//! Raw samples become hourly rows as each hour ends ([`super::rollup`]).
//! Hourly rows become one row per site and UTC day once the whole day is
//! older than the hourly retention: the day's hourly rows are summed into
//! its daily row and deleted in the same transaction, and the first hour
//! the hourly table still holds (always a UTC midnight) is stored as
//! `meta.hourly_from`. Readers take hours from `hourly` from that hour on
//! and days from `daily` before it, so nothing is counted twice.

use rusqlite::{OptionalExtension, Transaction, params};
use std::time::{Duration, SystemTime};

/// How long raw samples are kept by default.
pub const RAW_RETENTION: Duration = Duration::from_secs(48 * 3600);
/// How long hourly rows are kept by default: long enough for the 90-day
/// uptime window and the status page's 90-day bars to count by the hour.
pub const HOURLY_RETENTION: Duration = Duration::from_secs(90 * 86_400);
/// How long daily rows, transitions and incidents are kept by default.
pub const DAILY_RETENTION: Duration = Duration::from_secs(400 * 86_400);

/// How long each resolution of the history is kept (`[daemon] history`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Raw samples, one per probe.
    pub raw: Duration,
    /// Hourly rows (one per site and hour).
    pub hourly: Duration,
    /// Daily rows (one per site and UTC day), transitions and incidents.
    pub daily: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            raw: RAW_RETENTION,
            hourly: HOURLY_RETENTION,
            daily: DAILY_RETENTION,
        }
    }
}

/// Seconds since the Unix epoch (negative before it).
pub(super) fn unix_s(t: SystemTime) -> i64 {
    super::unix_ms(t).div_euclid(1000)
}

/// The first hour the hourly table keeps as of `now`: the UTC midnight of
/// the day the hourly retention reaches into (every hour of that day is
/// kept, so a window that starts in it counts by the hour).
pub(super) fn hourly_start(now: SystemTime, hourly: Duration) -> i64 {
    (unix_s(now) - hourly.as_secs() as i64).div_euclid(86_400) * 24
}

/// The first hour `hourly` holds: hours before it are in `daily`
/// (`i64::MIN` while nothing has been rolled into days).
pub(super) fn hourly_from(conn: &rusqlite::Connection) -> Result<i64, rusqlite::Error> {
    Ok(conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'hourly_from'",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(i64::MIN))
}

/// One hour of a site as the roll-up into days reads it.
struct HourRow {
    probes: i64,
    failures: i64,
    degraded: i64,
    unknown: i64,
    maintenance: i64,
    p50: i64,
    p95: i64,
    max: i64,
}

/// Rolls the hourly rows of the whole days that are now older than the
/// hourly retention into daily rows, deletes them, and prunes daily rows
/// older than the daily retention. Returns the first hour `hourly` keeps.
pub(super) fn roll_days(
    tx: &Transaction<'_>,
    now: SystemTime,
    retention: &Retention,
) -> Result<i64, rusqlite::Error> {
    // Only ever forward: hours once rolled into days are gone from
    // `hourly`, so a longer retention set later keeps the boundary until
    // time catches up with it.
    let from = hourly_start(now, retention.hourly).max(hourly_from(tx)?);
    let ids: Vec<i64> = tx
        .prepare("SELECT id FROM site")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let keep_day = (unix_s(now) - retention.daily.as_secs() as i64).div_euclid(86_400);
    for id in ids {
        // One site at a time: after an upgrade from a version that kept
        // hourly rows 400 days, a site has 300 days of them to roll up.
        let rows: Vec<(i64, HourRow)> = tx
            .prepare_cached(
                "SELECT hour, probes, failures, degraded, unknown, maintenance, p50_ms, p95_ms, max_ms
                 FROM hourly WHERE site_id = ?1 AND hour < ?2 ORDER BY hour",
            )?
            .query_map([id, from], |r| {
                Ok((
                    r.get::<_, i64>(0)?.div_euclid(24),
                    HourRow {
                        probes: r.get(1)?,
                        failures: r.get(2)?,
                        degraded: r.get(3)?,
                        unknown: r.get(4)?,
                        maintenance: r.get(5)?,
                        p50: r.get(6)?,
                        p95: r.get(7)?,
                        max: r.get(8)?,
                    },
                ))
            })?
            .collect::<Result<_, _>>()?;
        for day in rows.chunk_by(|a, b| a.0 == b.0) {
            add_day(tx, id, day[0].0, day.iter().map(|(_, h)| h))?;
        }
        if !rows.is_empty() {
            tx.prepare_cached("DELETE FROM hourly WHERE site_id = ?1 AND hour < ?2")?
                .execute([id, from])?;
        }
        tx.prepare_cached("DELETE FROM daily WHERE site_id = ?1 AND day < ?2")?
            .execute([id, keep_day])?;
    }
    tx.execute(
        "INSERT INTO meta(key, value) VALUES ('hourly_from', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [from],
    )?;
    Ok(from)
}

/// Adds a day's hours to its daily row.
fn add_day<'a>(
    tx: &Transaction<'_>,
    site: i64,
    day: i64,
    hours: impl Iterator<Item = &'a HourRow> + Clone,
) -> Result<(), rusqlite::Error> {
    let sum = |f: fn(&HourRow) -> i64| hours.clone().map(f).sum::<i64>();
    // Hours whose every probe went unbelieved have no probe times.
    let timed = || hours.clone().filter(|h| h.probes > h.unknown);
    let mut p50: Vec<i64> = timed().map(|h| h.p50).collect();
    let mut p95: Vec<i64> = timed().map(|h| h.p95).collect();
    tx.prepare_cached(
        // A day already there (hours that came back after it was rolled
        // up, e.g. after the clock went back) is added to, not replaced.
        "INSERT INTO daily(site_id, day, probes, failures, degraded, unknown, maintenance, p50_ms, p95_ms, max_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT(site_id, day) DO UPDATE SET
           p50_ms = CASE WHEN excluded.probes > probes THEN excluded.p50_ms ELSE p50_ms END,
           p95_ms = CASE WHEN excluded.probes > probes THEN excluded.p95_ms ELSE p95_ms END,
           max_ms = max(max_ms, excluded.max_ms),
           probes = probes + excluded.probes, failures = failures + excluded.failures,
           degraded = degraded + excluded.degraded, unknown = unknown + excluded.unknown,
           maintenance = maintenance + excluded.maintenance",
    )?
    .execute(params![
        site,
        day,
        sum(|h| h.probes),
        sum(|h| h.failures),
        sum(|h| h.degraded),
        sum(|h| h.unknown),
        sum(|h| h.maintenance),
        quantile(&mut p50, 0.5),
        quantile(&mut p95, 0.95),
        hours.clone().map(|h| h.max).max().unwrap_or(0),
    ])?;
    Ok(())
}

/// The nearest-rank quantile `q` of `values` (0 when empty): a day's
/// median is the median of its hours' medians, its 95th percentile that of
/// its hours' 95th percentiles.
fn quantile(values: &mut [i64], q: f64) -> i64 {
    values.sort_unstable();
    values
        .get(((values.len().max(1) - 1) as f64 * q).round() as usize)
        .copied()
        .unwrap_or(0)
}
