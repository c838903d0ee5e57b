//! Hourly roll-ups and uptime windows: raw samples become one row per site
//! and hour, hourly rows become daily rows ([`super::retention`]), old rows
//! are pruned, and the uptime percentages are counted.
//!
//! An hour is rolled up once it is over, and again whenever a sample of it
//! arrives late (a probe that began at 10:59:58 and ended at 11:00:08 counts
//! in hour 10): rolling up is idempotent.
//!
//! A window counts the hourly rows it covers and, for its part older than
//! the hourly table (`meta.hourly_from`), the daily rows of the days that
//! begin inside it. With the default hourly retention (90 days) every
//! window is counted by the hour; with a shorter one the oldest part of a
//! longer window is counted by whole UTC days (its first, partial day
//! left out).

use super::retention::{self, Retention};
use super::{Record, unix_ms};
use crate::diagnosis::Status;
use rusqlite::{Connection, params};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::time::SystemTime;

/// Uptime percentages over the usual windows (`None` without probes in it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Uptime {
    /// Last 24 hours.
    #[serde(rename = "24h")]
    pub d1: Option<f64>,
    /// Last 7 days.
    #[serde(rename = "7d")]
    pub d7: Option<f64>,
    /// Last 30 days.
    #[serde(rename = "30d")]
    pub d30: Option<f64>,
    /// Last 90 days.
    #[serde(rename = "90d")]
    pub d90: Option<f64>,
    /// The share of probes (percent) that could not be believed in each
    /// window, because this monitor's own network was down; left out of
    /// the uptime above.
    pub unverified: Unverified,
    /// The share of probes (percent) made under a maintenance window with
    /// `uptime = "exclude"`, in each window; left out of the uptime above.
    pub maintenance: Unverified,
}

/// Percent of probes that could not be believed, per window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Unverified {
    /// Last 24 hours.
    #[serde(rename = "24h")]
    pub d1: Option<f64>,
    /// Last 7 days.
    #[serde(rename = "7d")]
    pub d7: Option<f64>,
    /// Last 30 days.
    #[serde(rename = "30d")]
    pub d30: Option<f64>,
    /// Last 90 days.
    #[serde(rename = "90d")]
    pub d90: Option<f64>,
}

/// Windows of the uptime figures, in hours.
pub(super) const WINDOWS: [i64; 4] = [24, 7 * 24, 30 * 24, 90 * 24];

#[derive(Default, Clone, Copy)]
pub(super) struct Counts {
    pub(super) probes: u64,
    pub(super) failures: u64,
    /// Probes that could not be believed (the monitor's network was down).
    pub(super) unknown: u64,
    /// Probes made under a maintenance window that leaves them out.
    pub(super) maintenance: u64,
}

#[derive(Default)]
pub(super) struct SiteCounts {
    /// Probes of the current hour (not yet in `hourly`).
    pub(super) current: Counts,
    /// Sums over the complete hours of each window.
    pub(super) windows: [Counts; 4],
}

impl Counts {
    /// Counts one probe result.
    pub(super) fn add(&mut self, status: Status, unverified: bool, maintenance: bool) {
        self.probes += 1;
        if maintenance {
            self.maintenance += 1;
        } else if unverified {
            self.unknown += 1;
        } else if status == Status::Down {
            self.failures += 1;
        }
    }

    /// The uptime percentage of the probes that count, and the shares that
    /// could not be believed and that were under maintenance (all `None`
    /// without probes).
    pub(super) fn shares(self) -> (Option<f64>, Option<f64>, Option<f64>) {
        let counted = self
            .probes
            .saturating_sub(self.unknown)
            .saturating_sub(self.maintenance);
        let up = (counted > 0)
            .then(|| 100.0 * counted.saturating_sub(self.failures) as f64 / counted as f64);
        let share = |n: u64| (self.probes > 0).then(|| 100.0 * n as f64 / self.probes as f64);
        (up, share(self.unknown), share(self.maintenance))
    }

    fn plus(self, o: Counts) -> Counts {
        Counts {
            probes: self.probes + o.probes,
            failures: self.failures + o.failures,
            unknown: self.unknown + o.unknown,
            maintenance: self.maintenance + o.maintenance,
        }
    }
}

/// The uptime figures of a site from its counts.
pub(super) fn uptime(c: &SiteCounts) -> Uptime {
    let w = |i: usize| c.windows[i].plus(c.current).shares();
    let (d1, u1, m1) = w(0);
    let (d7, u7, m7) = w(1);
    let (d30, u30, m30) = w(2);
    let (d90, u90, m90) = w(3);
    Uptime {
        d1,
        d7,
        d30,
        d90,
        unverified: Unverified {
            d1: u1,
            d7: u7,
            d30: u30,
            d90: u90,
        },
        maintenance: Unverified {
            d1: m1,
            d7: m7,
            d30: m30,
            d90: m90,
        },
    }
}

/// The hour a time falls in (hours since the epoch).
pub(super) fn hour_of(t: SystemTime) -> i64 {
    unix_ms(t).div_euclid(3_600_000)
}

/// Rolls up `hours`, rolls the hours past the hourly retention into days
/// and prunes what is past its retention, in one transaction. Returns the
/// first hour the hourly table keeps.
pub(super) fn roll_up(
    conn: &mut Connection,
    hours: impl IntoIterator<Item = i64>,
    now: SystemTime,
    retention: &Retention,
) -> Result<i64, rusqlite::Error> {
    let tx = conn.transaction()?;
    for h in hours {
        aggregate_hour(&tx, h)?;
    }
    let now_ms = unix_ms(now);
    let ids: Vec<i64> = tx
        .prepare("SELECT id FROM site")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    // The previous hour is never pruned: a late sample rolls it up again.
    let raw_cutoff =
        (retention::unix_s(now) - retention.raw.as_secs() as i64).min((hour_of(now) - 1) * 3600);
    for &id in &ids {
        tx.prepare_cached("DELETE FROM sample WHERE site_id = ?1 AND at < ?2")?
            .execute([id, raw_cutoff])?;
    }
    let hourly_from = retention::roll_days(&tx, now, retention)?;
    let keep_ms = now_ms - retention.daily.as_millis() as i64;
    tx.execute(
        "DELETE FROM transition WHERE at_ms < ?1 AND alert IS NULL",
        [keep_ms],
    )?;
    tx.execute(
        "DELETE FROM incident WHERE ended_ms IS NOT NULL AND ended_ms < ?1",
        [keep_ms],
    )?;
    super::journal::prune(&tx, now)?;
    tx.commit()?;
    Ok(hourly_from)
}

/// The uptime counts of every site as of `hour`: complete hours from
/// `hourly` from `hourly_from` on and whole days from `daily` before it
/// (one scan of the 90 days for all four windows), the current hour from
/// its samples and from `pending` records not yet written.
pub(super) fn counts(
    conn: &Connection,
    hour: i64,
    hourly_from: i64,
    pending: &VecDeque<Record>,
) -> Result<HashMap<String, SiteCounts>, rusqlite::Error> {
    let mut fresh: HashMap<String, SiteCounts> = HashMap::new();
    let num =
        |r: &rusqlite::Row<'_>, i: usize| r.get::<_, Option<i64>>(i).map(|v| v.unwrap_or(0) as u64);
    // A day counts in a window when it begins inside it (`h` is the hour
    // a row begins at).
    let mut stmt = conn.prepare_cached(
        "WITH rows(site_id, h, probes, failures, unknown, maintenance) AS (
             SELECT site_id, hour, probes, failures, unknown, maintenance FROM hourly
             WHERE hour >= max(?4, ?6) AND hour < ?5
             UNION ALL
             SELECT site_id, day * 24, probes, failures, unknown, maintenance FROM daily
             WHERE day * 24 >= ?4 AND day * 24 < min(?5, ?6)
         )
         SELECT s.name,
                SUM(CASE WHEN h.h >= ?1 THEN h.probes END), SUM(CASE WHEN h.h >= ?1 THEN h.failures END), SUM(CASE WHEN h.h >= ?1 THEN h.unknown END), SUM(CASE WHEN h.h >= ?1 THEN h.maintenance END),
                SUM(CASE WHEN h.h >= ?2 THEN h.probes END), SUM(CASE WHEN h.h >= ?2 THEN h.failures END), SUM(CASE WHEN h.h >= ?2 THEN h.unknown END), SUM(CASE WHEN h.h >= ?2 THEN h.maintenance END),
                SUM(CASE WHEN h.h >= ?3 THEN h.probes END), SUM(CASE WHEN h.h >= ?3 THEN h.failures END), SUM(CASE WHEN h.h >= ?3 THEN h.unknown END), SUM(CASE WHEN h.h >= ?3 THEN h.maintenance END),
                SUM(h.probes), SUM(h.failures), SUM(h.unknown), SUM(h.maintenance)
         FROM rows h JOIN site s ON s.id = h.site_id
         GROUP BY s.name",
    )?;
    let bounds = [
        hour - WINDOWS[0],
        hour - WINDOWS[1],
        hour - WINDOWS[2],
        hour - WINDOWS[3],
        hour,
        hourly_from,
    ];
    let rows = stmt.query_map(bounds, |r| {
        let mut windows = [Counts::default(); 4];
        for (w, c) in windows.iter_mut().enumerate() {
            *c = Counts {
                probes: num(r, 1 + 4 * w)?,
                failures: num(r, 2 + 4 * w)?,
                unknown: num(r, 3 + 4 * w)?,
                maintenance: num(r, 4 + 4 * w)?,
            };
        }
        Ok((r.get::<_, String>(0)?, windows))
    })?;
    for row in rows {
        let (name, windows) = row?;
        fresh.entry(name).or_default().windows = windows;
    }
    let mut stmt = conn.prepare_cached(
        "SELECT s.name, COUNT(*), SUM(x.status = 2), SUM(x.status = 3), SUM(x.status = 4) FROM site s CROSS JOIN sample x
         WHERE x.site_id = s.id AND x.at >= ?1 GROUP BY s.name",
    )?;
    let rows = stmt.query_map([hour * 3600], |r| {
        Ok((
            r.get::<_, String>(0)?,
            Counts {
                probes: num(r, 1)?,
                failures: num(r, 2)?,
                unknown: num(r, 3)?,
                maintenance: num(r, 4)?,
            },
        ))
    })?;
    for row in rows {
        let (name, current) = row?;
        fresh.entry(name).or_default().current = current;
    }
    for r in pending {
        if let Record::Probe {
            site,
            status,
            at,
            unverified,
            maintenance,
            ..
        } = r
            && hour_of(*at) == hour
        {
            fresh.entry(site.name.clone()).or_default().current.add(
                *status,
                *unverified,
                *maintenance,
            );
        }
    }
    Ok(fresh)
}

/// Rolls one hour of samples into `hourly` (idempotent).
pub(super) fn aggregate_hour(
    tx: &rusqlite::Transaction<'_>,
    hour: i64,
) -> Result<(), rusqlite::Error> {
    let mut stmt = tx.prepare(
        // CROSS JOIN keeps site as the outer loop: one primary-key range per site.
        "SELECT x.site_id, x.status, x.ms FROM site s CROSS JOIN sample x
         WHERE x.site_id = s.id AND x.at >= ?1 AND x.at < ?2 ORDER BY s.id",
    )?;
    let rows = stmt.query_map([hour * 3600, (hour + 1) * 3600], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    let mut insert = tx.prepare_cached(
        "INSERT OR REPLACE INTO hourly(site_id, hour, probes, failures, degraded, unknown, p50_ms, p95_ms, max_ms, maintenance)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    /// One site's hour so far; `ms` leaves out results that were not
    /// believed (their timings are the monitor's, not the site's).
    #[derive(Default)]
    struct Hour {
        probes: i64,
        failures: i64,
        degraded: i64,
        unknown: i64,
        maintenance: i64,
        ms: Vec<i64>,
    }
    let mut emit = |site: i64, h: &mut Hour| -> Result<(), rusqlite::Error> {
        if h.probes == 0 {
            return Ok(());
        }
        h.ms.sort_unstable();
        let at = |q: f64| {
            h.ms.get(((h.ms.len().max(1) - 1) as f64 * q).round() as usize)
                .copied()
                .unwrap_or(0)
        };
        insert.execute(params![
            site,
            hour,
            h.probes,
            h.failures,
            h.degraded,
            h.unknown,
            at(0.5),
            at(0.95),
            h.ms.last().copied().unwrap_or(0),
            h.maintenance
        ])?;
        *h = Hour::default();
        Ok(())
    };
    let mut current: Option<i64> = None;
    let mut acc = Hour::default();
    for row in rows {
        let (site, status, t) = row?;
        if current != Some(site) {
            if let Some(prev) = current {
                emit(prev, &mut acc)?;
            }
            current = Some(site);
        }
        acc.probes += 1;
        match status {
            1 => acc.degraded += 1,
            2 => acc.failures += 1,
            3 => acc.unknown += 1,
            4 => acc.maintenance += 1,
            _ => {}
        }
        if status != 3 {
            acc.ms.push(t);
        }
    }
    if let Some(prev) = current {
        emit(prev, &mut acc)?;
    }
    Ok(())
}
