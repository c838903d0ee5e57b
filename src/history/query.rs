//! Reads for the API: a site's probe history and the incident list, each on
//! its own read-only connection (WAL lets it read while the writer writes).

use super::{from_ms, unix_ms};
use rusqlite::{Connection, OpenFlags, params};
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// At most this many points are returned by one history request.
pub const MAX_POINTS: usize = 20_000;

/// The granularity of a history request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Every probe (kept 48 hours by default).
    Raw,
    /// One point per hour (kept 90 days by default), then one per UTC day
    /// (kept 400 days by default) before the hourly rows begin.
    Hour,
}

impl Resolution {
    /// Parses `raw` or `hour`.
    pub fn parse(text: &str) -> Option<Resolution> {
        match text {
            "raw" => Some(Resolution::Raw),
            "hour" => Some(Resolution::Hour),
            _ => None,
        }
    }
}

/// One point of a site's history.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum HistoryPoint {
    /// One probe.
    Raw {
        /// When it started.
        #[serde(with = "crate::timefmt")]
        at: SystemTime,
        /// up, degraded or down.
        status: &'static str,
        /// The cause, when not up.
        cause: Option<String>,
        /// How long it took.
        ms: f64,
    },
    /// One hour; before the first hour the hourly rows keep
    /// ([`super::HistoryReader::hourly_from`]), one UTC day.
    Hour {
        /// The start of the hour (or day).
        #[serde(with = "crate::timefmt")]
        at: SystemTime,
        /// Probes made.
        probes: i64,
        /// Probes that found the site down.
        failures: i64,
        /// Probes that found it degraded.
        degraded: i64,
        /// Probes that could not be believed (this monitor's network was
        /// down): left out of `uptime`.
        unknown: i64,
        /// Probes made under a maintenance window that leaves them out of
        /// `uptime`.
        maintenance: i64,
        /// Percentage of the counted probes that did not find it down.
        uptime: f64,
        /// Median probe time.
        p50_ms: f64,
        /// 95th percentile probe time.
        p95_ms: f64,
        /// Slowest probe.
        max_ms: f64,
    },
}

/// One cause of an incident's timeline.
#[derive(Clone, Debug, Serialize)]
pub struct IncidentCause {
    /// When this cause began.
    #[serde(with = "crate::timefmt")]
    pub at: SystemTime,
    /// The cause code.
    pub cause: Option<String>,
}

/// One outage.
#[derive(Clone, Debug, Serialize)]
pub struct Incident {
    /// Its id.
    pub id: i64,
    /// The site.
    pub site: String,
    /// The first failed probe.
    #[serde(with = "crate::timefmt")]
    pub started_at: SystemTime,
    /// The first good probe after it, `null` while it lasts.
    #[serde(with = "crate::timefmt::option")]
    pub ended_at: Option<SystemTime>,
    /// Its length so far, in seconds.
    pub duration_s: f64,
    /// The causes, in order.
    pub causes: Vec<IncidentCause>,
    /// The detail of the first confirmed failure.
    pub first_error: String,
    /// The detail of the last one.
    pub last_error: String,
    /// How it ended: `recovered`, `forgotten` (the site's probe settings
    /// changed) or `removed` (the site left the configuration); `null` while
    /// it lasts.
    pub end_reason: Option<String>,
}

fn open(path: &Path) -> Result<Connection, String> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

fn status_word(code: i64) -> &'static str {
    match code {
        0 => "up",
        1 => "degraded",
        3 => "unknown",
        4 => "maintenance",
        _ => "down",
    }
}

pub(super) fn history(
    path: &Path,
    site: &str,
    from: SystemTime,
    to: SystemTime,
    resolution: Resolution,
) -> Result<Vec<HistoryPoint>, String> {
    let conn = open(path)?;
    let (lo, hi) = (unix_ms(from), unix_ms(to));
    let e = |e: rusqlite::Error| e.to_string();
    let points = match resolution {
        Resolution::Raw => {
            let mut stmt = conn
                .prepare(
                    "SELECT x.at, x.status, x.cause, x.ms FROM sample x JOIN site s ON s.id = x.site_id
                     WHERE s.name = ?1 AND x.at >= ?2 AND x.at < ?3 ORDER BY x.at LIMIT ?4",
                )
                .map_err(e)?;
            // Samples keep whole seconds: those of `from`'s and of `to`'s
            // second are in.
            stmt.query_map(
                params![
                    site,
                    lo.div_euclid(1000),
                    (hi + 999).div_euclid(1000),
                    MAX_POINTS as i64
                ],
                |r| {
                    Ok(HistoryPoint::Raw {
                        at: from_ms(r.get::<_, i64>(0)? * 1000),
                        status: status_word(r.get(1)?),
                        cause: r.get(2)?,
                        ms: r.get::<_, i64>(3)? as f64,
                    })
                },
            )
            .map_err(e)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(e)?
        }
        Resolution::Hour => {
            let hourly_from = super::retention::hourly_from(&conn).map_err(e)?;
            // Days before the first hour `hourly` keeps, then its hours.
            let mut stmt = conn
                .prepare(
                    "SELECT * FROM (
                         SELECT d.day * 24 AS h, d.probes, d.failures, d.degraded, d.p50_ms, d.p95_ms, d.max_ms, d.unknown, d.maintenance
                         FROM daily d JOIN site s ON s.id = d.site_id
                         WHERE s.name = ?1 AND d.day * 24 + 24 > ?2 AND d.day * 24 < min(?3, ?5)
                         UNION ALL
                         SELECT h.hour AS h, h.probes, h.failures, h.degraded, h.p50_ms, h.p95_ms, h.max_ms, h.unknown, h.maintenance
                         FROM hourly h JOIN site s ON s.id = h.site_id
                         WHERE s.name = ?1 AND h.hour >= max(?2, ?5) AND h.hour < ?3
                     ) ORDER BY h LIMIT ?4",
                )
                .map_err(e)?;
            stmt.query_map(
                params![
                    site,
                    lo.div_euclid(3_600_000),
                    (hi + 3_599_999).div_euclid(3_600_000),
                    MAX_POINTS as i64,
                    hourly_from
                ],
                |r| {
                    let probes: i64 = r.get(1)?;
                    let failures: i64 = r.get(2)?;
                    let unknown: i64 = r.get(7)?;
                    let maintenance: i64 = r.get(8)?;
                    let believed = probes - unknown - maintenance;
                    Ok(HistoryPoint::Hour {
                        at: from_ms(r.get::<_, i64>(0)? * 3_600_000),
                        probes,
                        failures,
                        degraded: r.get(3)?,
                        unknown,
                        maintenance,
                        uptime: if believed > 0 {
                            100.0 * (believed - failures) as f64 / believed as f64
                        } else {
                            100.0
                        },
                        p50_ms: r.get::<_, i64>(4)? as f64,
                        p95_ms: r.get::<_, i64>(5)? as f64,
                        max_ms: r.get::<_, i64>(6)? as f64,
                    })
                },
            )
            .map_err(e)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(e)?
        }
    };
    Ok(points)
}

/// The first hour the hourly rows keep: `hour` points before it stand
/// for whole UTC days (`None` while every point is an hour).
pub(super) fn hourly_from(path: &Path) -> Result<Option<SystemTime>, String> {
    let conn = open(path)?;
    let from = super::retention::hourly_from(&conn).map_err(|e| e.to_string())?;
    Ok((from != i64::MIN).then(|| from_ms(from * 3_600_000)))
}

pub(super) fn incidents(
    path: &Path,
    site: Option<&str>,
    limit: usize,
) -> Result<Vec<Incident>, String> {
    let conn = open(path)?;
    let e = |e: rusqlite::Error| e.to_string();
    let mut stmt = conn
        .prepare(
            "SELECT i.id, s.name, i.started_ms, i.ended_ms, i.causes, i.first_error, i.last_error, i.end_reason
             FROM incident i JOIN site s ON s.id = i.site_id
             WHERE ?1 IS NULL OR s.name = ?1 ORDER BY i.started_ms DESC LIMIT ?2",
        )
        .map_err(e)?;
    let now = SystemTime::now();
    let rows = stmt
        .query_map(params![site, limit as i64], |r| {
            let started = from_ms(r.get(2)?);
            let ended: Option<i64> = r.get(3)?;
            let ended = ended.map(from_ms);
            let causes: String = r.get(4)?;
            let causes: Vec<serde_json::Value> = serde_json::from_str(&causes).unwrap_or_default();
            Ok(Incident {
                id: r.get(0)?,
                site: r.get(1)?,
                started_at: started,
                ended_at: ended,
                duration_s: ended
                    .unwrap_or(now)
                    .duration_since(started)
                    .unwrap_or_default()
                    .as_secs_f64(),
                causes: causes
                    .iter()
                    .map(|c| IncidentCause {
                        at: from_ms(c["at_ms"].as_i64().unwrap_or_default()),
                        cause: c["cause"].as_str().map(str::to_string),
                    })
                    .collect(),
                first_error: r.get(5)?,
                last_error: r.get(6)?,
                end_reason: match (r.get::<_, Option<String>>(7)?, ended) {
                    (Some(reason), _) => Some(reason),
                    // Outages closed before sitewatch recorded why ended in a recovery.
                    (None, Some(_)) => Some("recovered".to_string()),
                    (None, None) => None,
                },
            })
        })
        .map_err(e)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(e)?;
    Ok(rows)
}

/// A delivery not (yet) delivered, as `GET /api/v1/outbox` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct Undelivered {
    /// The alert's stable id.
    pub alert_id: String,
    /// The channel.
    pub channel: String,
    /// The site (or subject) of the alert.
    pub site: String,
    /// Its event (`down`, `recovered`, …).
    pub event: String,
    /// `pending` (will be retried) or `failed` (dead letter: refused for
    /// good, or given up after 24 hours).
    pub state: String,
    /// Attempts made.
    pub attempts: i64,
    /// The last attempt's error, scrubbed of secrets.
    pub last_error: Option<String>,
    /// When it was queued.
    #[serde(with = "crate::timefmt")]
    pub created_at: SystemTime,
    /// When it was given up on.
    #[serde(with = "crate::timefmt::option")]
    pub done_at: Option<SystemTime>,
}

/// The pending and dead-lettered deliveries, newest first.
pub(super) fn undelivered(
    path: &Path,
    state: Option<&str>,
    limit: usize,
) -> Result<Vec<Undelivered>, String> {
    let conn = open(path)?;
    let e = |e: rusqlite::Error| e.to_string();
    let mut stmt = conn
        .prepare(
            "SELECT alert_id, channel, alert, state, attempts, last_error, created_ms, done_ms
             FROM delivery
             WHERE state IN ('pending', 'failed') AND (?1 IS NULL OR state = ?1)
             ORDER BY created_ms DESC LIMIT ?2",
        )
        .map_err(e)?;
    let rows = stmt
        .query_map(params![state, limit as i64], |r| {
            let alert: String = r.get(2)?;
            let alert: serde_json::Value = serde_json::from_str(&alert).unwrap_or_default();
            let text = |k: &str| alert[k].as_str().unwrap_or_default().to_string();
            Ok(Undelivered {
                alert_id: r.get(0)?,
                channel: r.get(1)?,
                site: text("site"),
                event: text("kind"),
                state: r.get(3)?,
                attempts: r.get(4)?,
                last_error: r.get(5)?,
                created_at: from_ms(r.get(6)?),
                done_at: r.get::<_, Option<i64>>(7)?.map(from_ms),
            })
        })
        .map_err(e)?;
    rows.collect::<Result<_, _>>().map_err(e)
}
