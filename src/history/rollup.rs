//! Hourly roll-ups and uptime windows: raw samples become one row per site
//! and hour, old rows are pruned, and the uptime percentages are counted.
//!
//! An hour is rolled up once it is over, and again whenever a sample of it
//! arrives late (a probe that began at 10:59:58 and ended at 11:00:08 counts
//! in hour 10): rolling up is idempotent.

use super::{AGGREGATE_RETENTION, RAW_RETENTION, Record, unix_ms};
use crate::diagnosis::Status;
use rusqlite::{Connection, params};
use std::collections::{HashMap, VecDeque};
use std::time::SystemTime;

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
pub(super) fn uptime(c: &SiteCounts) -> super::Uptime {
    let w = |i: usize| c.windows[i].plus(c.current).shares();
    let (d1, u1, m1) = w(0);
    let (d7, u7, m7) = w(1);
    let (d30, u30, m30) = w(2);
    let (d90, u90, m90) = w(3);
    super::Uptime {
        d1,
        d7,
        d30,
        d90,
        unverified: super::Unverified {
            d1: u1,
            d7: u7,
            d30: u30,
            d90: u90,
        },
        maintenance: super::Unverified {
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

/// Rolls up `hours` and prunes what is past its retention, in one transaction.
pub(super) fn roll_up(
    conn: &mut Connection,
    hours: impl IntoIterator<Item = i64>,
    now: SystemTime,
) -> Result<(), rusqlite::Error> {
    let tx = conn.transaction()?;
    for h in hours {
        aggregate_hour(&tx, h)?;
    }
    let now_ms = unix_ms(now);
    let ids: Vec<i64> = tx
        .prepare("SELECT id FROM site")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let raw_cutoff = now_ms - RAW_RETENTION.as_millis() as i64;
    for &id in &ids {
        tx.prepare_cached("DELETE FROM sample WHERE site_id = ?1 AND at_ms < ?2")?
            .execute([id, raw_cutoff])?;
    }
    let keep_ms = now_ms - AGGREGATE_RETENTION.as_millis() as i64;
    tx.execute(
        "DELETE FROM hourly WHERE hour < ?1",
        [keep_ms.div_euclid(3_600_000)],
    )?;
    tx.execute(
        "DELETE FROM transition WHERE at_ms < ?1 AND alert IS NULL",
        [keep_ms],
    )?;
    tx.execute(
        "DELETE FROM incident WHERE ended_ms IS NOT NULL AND ended_ms < ?1",
        [keep_ms],
    )?;
    super::journal::prune(&tx, now)?;
    tx.commit()
}

/// The uptime counts of every site as of `hour`: complete hours from
/// `hourly` (one scan of the 90 days for all four windows), the current
/// hour from its samples and from `pending` records not yet written.
pub(super) fn counts(
    conn: &Connection,
    hour: i64,
    pending: &VecDeque<Record>,
) -> Result<HashMap<String, SiteCounts>, rusqlite::Error> {
    let mut fresh: HashMap<String, SiteCounts> = HashMap::new();
    let num =
        |r: &rusqlite::Row<'_>, i: usize| r.get::<_, Option<i64>>(i).map(|v| v.unwrap_or(0) as u64);
    let mut stmt = conn.prepare_cached(
        "SELECT s.name,
                SUM(CASE WHEN h.hour >= ?1 THEN h.probes END), SUM(CASE WHEN h.hour >= ?1 THEN h.failures END), SUM(CASE WHEN h.hour >= ?1 THEN h.unknown END), SUM(CASE WHEN h.hour >= ?1 THEN h.maintenance END),
                SUM(CASE WHEN h.hour >= ?2 THEN h.probes END), SUM(CASE WHEN h.hour >= ?2 THEN h.failures END), SUM(CASE WHEN h.hour >= ?2 THEN h.unknown END), SUM(CASE WHEN h.hour >= ?2 THEN h.maintenance END),
                SUM(CASE WHEN h.hour >= ?3 THEN h.probes END), SUM(CASE WHEN h.hour >= ?3 THEN h.failures END), SUM(CASE WHEN h.hour >= ?3 THEN h.unknown END), SUM(CASE WHEN h.hour >= ?3 THEN h.maintenance END),
                SUM(h.probes), SUM(h.failures), SUM(h.unknown), SUM(h.maintenance)
         FROM hourly h JOIN site s ON s.id = h.site_id
         WHERE h.hour >= ?4 AND h.hour < ?5 GROUP BY s.name",
    )?;
    let bounds = [
        hour - WINDOWS[0],
        hour - WINDOWS[1],
        hour - WINDOWS[2],
        hour - WINDOWS[3],
        hour,
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
         WHERE x.site_id = s.id AND x.at_ms >= ?1 GROUP BY s.name",
    )?;
    let rows = stmt.query_map([hour * 3_600_000], |r| {
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
         WHERE x.site_id = s.id AND x.at_ms >= ?1 AND x.at_ms < ?2 ORDER BY s.id",
    )?;
    let rows = stmt.query_map([hour * 3_600_000, (hour + 1) * 3_600_000], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, f64>(2)?,
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
        ms: Vec<f64>,
    }
    let mut emit = |site: i64, h: &mut Hour| -> Result<(), rusqlite::Error> {
        if h.probes == 0 {
            return Ok(());
        }
        h.ms.sort_by(f64::total_cmp);
        let at = |q: f64| {
            h.ms.get(((h.ms.len().max(1) - 1) as f64 * q).round() as usize)
                .copied()
                .unwrap_or(0.0)
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
            h.ms.last().copied().unwrap_or(0.0),
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
