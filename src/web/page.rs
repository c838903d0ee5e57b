//! `GET /`: the HTML status page, rendered on the server with askama
//! (templates/status.html, checked at compile time, HTML auto-escaped).
//!
//! Per site: a colour *and* a word for its status, the cause in plain words
//! with its hint behind a `<details>`, a 90-day uptime bar and a 24-hour
//! latency sparkline (both from [`super::graphs`]), and the time of the last
//! probe; then the last incidents. No script, font or stylesheet from
//! elsewhere: it works without internet, and a meta refresh reloads it
//! every 30 s.

use super::graphs::{GRAPH_LIMIT, GraphCache, Graphs, Spark};
use crate::diagnosis::Cause;
use crate::history::Incident;
use crate::state::Level;
use crate::store::{SiteView, StatusStore};
use askama::Template;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Incidents listed at the bottom of the page.
pub const INCIDENTS: usize = 10;
/// The most sites drawn on the page (problems first); a larger fleet is
/// searched or narrowed by tag.
pub const PAGE_ROWS: usize = GRAPH_LIMIT;

/// A time shown on the page: machine-readable and for people.
#[derive(Clone, Debug)]
pub struct Stamp {
    /// RFC 3339, for `<time datetime>`.
    pub iso: String,
    /// `2026-11-25 19:00:03 UTC`.
    pub text: String,
}

fn stamp(t: SystemTime) -> Stamp {
    let s = humantime::format_rfc3339_seconds(t).to_string();
    Stamp {
        iso: crate::timefmt::rfc3339(t),
        text: format!("{} UTC", s.trim_end_matches('Z').replacen('T', " ", 1)),
    }
}

/// A duration for people: `42 s`, `3 min 12 s`, `2 h 5 min`, `3 d 4 h`.
pub fn span(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

fn ms_text(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// A site as the page shows it.
pub struct Row {
    name: String,
    /// `up`, `degraded`, `down` or `unknown` (the CSS class).
    status: &'static str,
    /// The status word shown: Up, Degraded, Down, Unknown.
    word: &'static str,
    /// A symbol beside the word, so the status never rests on colour.
    symbol: &'static str,
    cause_words: Option<&'static str>,
    cause_code: Option<&'static str>,
    /// Hidden in public mode.
    url: Option<String>,
    hint: Option<String>,
    detail: Option<String>,
    error: Option<String>,
    /// How long the status has lasted.
    since: String,
    /// What the last probe found, when it differs from the confirmed status.
    confirming: Option<String>,
    last_probe: Option<Stamp>,
    ago: String,
    duration: Option<String>,
    uptime90: String,
    graphs: Option<Arc<Graphs>>,
    spark_text: String,
    /// With peers: what each vantage saw at the last vote
    /// (`fra1 down (connection refused) · ams1 up`).
    seen: Option<String>,
    /// For a heartbeat: its latest ping and the run in progress
    /// (`last ping 3 min ago · running for 2 min`).
    pinged: Option<String>,
    /// The maintenance window covering it now, in words.
    maintenance: Option<String>,
    /// Its recent failures and whether it flaps, when there is anything to
    /// say (`3 of the last 20 probes failed (15 %) · flapping`).
    recent: Option<String>,
}

/// An incident as the page shows it.
pub struct IncidentRow {
    site: String,
    started: Stamp,
    ended: Option<Stamp>,
    duration: String,
    causes: String,
    /// The first error's detail; hidden in public mode.
    first_error: Option<String>,
}

/// One tag of the summary: its name and counts, and the link that shows
/// its sites.
pub struct TagRow {
    name: String,
    href: String,
    up: usize,
    degraded: usize,
    down: usize,
    unknown: usize,
}

/// The counts at the top.
pub struct Counts {
    total: usize,
    up: usize,
    degraded: usize,
    down: usize,
    unknown: usize,
}

#[derive(Template)]
#[template(path = "status.html")]
struct PageTemplate {
    title: String,
    generated: Stamp,
    counts: Counts,
    sites: Vec<Row>,
    /// The search as typed (`q`), for the search box.
    query: String,
    /// Whether a filter is in force (a link clears it).
    filtered: bool,
    /// Tags with their counts, problems first.
    tags: Vec<TagRow>,
    incidents: Vec<IncidentRow>,
    notes: Vec<String>,
    public: bool,
    version: &'static str,
}

/// The window title: problems first, so a tab shows them.
fn page_title(c: &Counts) -> String {
    let mut parts = Vec::new();
    for (n, word) in [(c.down, "down"), (c.degraded, "degraded")] {
        if n > 0 {
            parts.push(format!("{n} {word}"));
        }
    }
    parts.push(format!("{} of {} up", c.up, c.total));
    format!("sitewatch: {}", parts.join(", "))
}

fn word_and_symbol(status: Level) -> (&'static str, &'static str) {
    match status {
        Level::Up => ("Up", "✔"),
        Level::Degraded => ("Degraded", "▲"),
        Level::Down => ("Down", "✖"),
        Level::Unknown => ("Unknown", "?"),
    }
}

fn row(s: SiteView, graphs: Option<Arc<Graphs>>, public: bool, now: SystemTime) -> Row {
    let (word, symbol) = word_and_symbol(s.status);
    // Under maintenance the card is blue whatever the probes find; the
    // status word stays.
    let status = if s.maintenance.is_some() {
        "maintenance"
    } else {
        s.status.as_str()
    };
    let since = now.duration_since(s.since).unwrap_or_default();
    let confirming = match s.probe_status {
        Some(p) if p.as_str() != s.status.as_str() => Some(match s.probe_cause {
            Some(c) => format!("the last probe found it {p} ({}); confirming", c.words()),
            None => format!("the last probe found it {p}; confirming"),
        }),
        _ => None,
    };
    let uptime90 = match s.uptime.and_then(|u| u.d90) {
        Some(p) => format!("{} over 90 days", super::badge::percent(p)),
        None => match graphs.as_ref().map(|g| g.totals) {
            Some((probes, failures)) if probes > 0 => format!(
                "{} over 90 days",
                super::badge::percent(100.0 * (probes - failures) as f64 / probes as f64)
            ),
            _ => "no data yet".to_string(),
        },
    };
    let spark_text = match graphs.as_ref().map(|g| &g.spark) {
        Some(Spark {
            last_ms: Some(last),
            max_ms: Some(max),
            ..
        }) => format!(
            "median {} latest hour, max {}",
            ms_text(*last),
            ms_text(*max)
        ),
        Some(_) => "no probes in 24 h".to_string(),
        None => String::new(),
    };
    Row {
        word,
        symbol,
        status,
        cause_words: s.cause.map(Cause::words),
        cause_code: s.cause.map(Cause::as_str),
        url: (!public).then(|| s.url.clone()),
        hint: if public { None } else { s.hint.clone() },
        detail: if public { None } else { s.detail.clone() },
        error: if public { None } else { s.error.clone() },
        since: span(since),
        confirming,
        last_probe: s.last_probe.map(stamp),
        ago: s
            .last_probe
            .map(|t| format!("{} ago", span(now.duration_since(t).unwrap_or_default())))
            .unwrap_or_default(),
        duration: s.duration_ms.map(ms_text),
        uptime90,
        graphs,
        spark_text,
        seen: seen_from(&s.vantages),
        pinged: s.heartbeat.as_ref().map(|h| pinged(h, now)),
        recent: recent(&s.recent, s.flapping),
        maintenance: s.maintenance.as_ref().map(|m| {
            format!(
                "{}, until {}",
                m.title,
                humantime::format_rfc3339_seconds(m.end)
            )
        }),
        name: s.name,
    }
}

/// Recent failures and flapping, in words; `None` when all is quiet.
fn recent(r: &crate::store::RecentView, flapping: bool) -> Option<String> {
    let failures = (r.failed > 0).then(|| {
        format!(
            "{} of the last {} probes failed ({:.0} %)",
            r.failed,
            r.probes,
            r.failure_rate * 100.0
        )
    });
    match (failures, flapping) {
        (Some(f), true) => Some(format!("{f} · flapping")),
        (Some(f), false) => Some(f),
        (None, true) => Some("flapping".to_string()),
        (None, false) => None,
    }
}

/// A heartbeat's latest ping and run in progress, in words.
fn pinged(h: &crate::heartbeat::ledger::HeartbeatView, now: SystemTime) -> String {
    let ago = |t: SystemTime| span(now.duration_since(t).unwrap_or_default());
    let mut parts = vec![match h.last_ping {
        Some(t) => format!("last ping {} ago", ago(t)),
        None => "no ping yet".to_string(),
    }];
    if let Some(t) = h.running_since {
        parts.push(format!("running for {}", ago(t)));
    } else if let Some(d) = h.last_duration_s {
        parts.push(format!(
            "last run took {}",
            span(std::time::Duration::from_secs_f64(d))
        ));
    }
    parts.join(" · ")
}

/// "Seen from" at the last vote: each vantage's verdict and cause in words
/// (no details: the page may be public).
fn seen_from(vantages: &[crate::store::VantageView]) -> Option<String> {
    if vantages.is_empty() {
        return None;
    }
    Some(
        vantages
            .iter()
            .map(|v| match v.cause {
                Some(c) => format!("{} {} ({})", v.vantage, v.verdict, c.words()),
                None => format!("{} {}", v.vantage, v.verdict),
            })
            .collect::<Vec<_>>()
            .join(" · "),
    )
}

fn incident_row(i: Incident, public: bool) -> IncidentRow {
    let mut causes: Vec<&str> = Vec::new();
    for c in &i.causes {
        let words = c
            .cause
            .as_deref()
            .and_then(Cause::from_code)
            .map_or("unknown cause", Cause::words);
        if causes.last() != Some(&words) {
            causes.push(words);
        }
    }
    IncidentRow {
        site: i.site,
        started: stamp(i.started_at),
        ended: i.ended_at.map(stamp),
        duration: span(Duration::from_secs_f64(i.duration_s.max(0.0))),
        causes: causes.join(", then "),
        first_error: (!public && !i.first_error.is_empty()).then_some(i.first_error),
    }
}

/// Renders the page from the store's current state; `public` hides
/// targets, addresses and details.
pub async fn render(
    store: &StatusStore,
    cache: &GraphCache,
    public: bool,
    filter: &crate::store::Filter,
    query: &str,
) -> Result<String, String> {
    let now = SystemTime::now();
    let board = store.board(filter, PAGE_ROWS);
    let sites = board.sites;
    let health = store.health();
    let reader = store.history();
    let names: Vec<String> = sites
        .iter()
        .take(GRAPH_LIMIT)
        .map(|s| s.name.clone())
        .collect();
    let (graphs, graph_error) = cache.get(reader.clone(), names, now).await;

    let (incidents, incident_error) = match reader {
        None => (Vec::new(), None),
        Some(reader) => {
            match tokio::task::spawn_blocking(move || reader.incidents(None, INCIDENTS * 5)).await {
                Ok(Ok(list)) => (list, None),
                Ok(Err(e)) => (Vec::new(), Some(e.to_string())),
                Err(e) => (Vec::new(), Some(e.to_string())),
            }
        }
    };
    let incidents: Vec<IncidentRow> = incidents
        .into_iter()
        // Sites removed from the configuration are not on the page.
        .filter(|i| store.contains(&i.site))
        .take(INCIDENTS)
        .map(|i| incident_row(i, public))
        .collect();

    let mut notes = Vec::new();
    if board.total > sites.len() {
        notes.push(format!(
            "Showing {} of {} sites, problems first: search, or pick a tag, to see the others.",
            sites.len(),
            board.total
        ));
    }
    if let Some(e) = graph_error.or(incident_error).or(health.storage_error) {
        notes.push(if public {
            "The history cannot be read right now; graphs may be missing.".to_string()
        } else {
            format!("The history cannot be read right now ({e}); graphs may be missing.")
        });
    }
    for m in store.announced_maintenance() {
        let when = format!(
            "{} to {}",
            humantime::format_rfc3339_seconds(m.start),
            humantime::format_rfc3339_seconds(m.end)
        );
        notes.push(if m.start <= now {
            format!("Under maintenance: {} ({when}).", m.title)
        } else {
            format!("Planned maintenance: {} ({when}).", m.title)
        });
    }
    let counts = Counts {
        total: health.sites,
        up: health.up,
        degraded: health.degraded,
        down: health.down,
        unknown: health.unknown,
    };
    let title = page_title(&counts);
    let rows = sites
        .into_iter()
        .map(|s| {
            let g = graphs.get(&s.name).cloned();
            row(s, g, public, now)
        })
        .collect();
    let filtered = *filter != crate::store::Filter::default();
    let tags = board
        .tags
        .into_iter()
        .filter(|t| !t.tag.is_empty())
        .map(|t| TagRow {
            href: format!("/?tag={}", t.tag),
            name: t.tag,
            up: t.up,
            degraded: t.degraded,
            down: t.down,
            unknown: t.unknown,
        })
        .collect();
    PageTemplate {
        title,
        generated: stamp(now),
        counts,
        sites: rows,
        query: query.to_string(),
        filtered,
        tags,
        incidents,
        notes,
        public,
        version: env!("CARGO_PKG_VERSION"),
    }
    .render()
    .map_err(|e| format!("cannot render the status page: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(s: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s as u64)
    }

    #[test]
    fn the_title_puts_problems_first() {
        let counts = |up, degraded, down, unknown| Counts {
            total: up + degraded + down + unknown,
            up,
            degraded,
            down,
            unknown,
        };
        assert_eq!(page_title(&counts(3, 0, 0, 0)), "sitewatch: 3 of 3 up");
        assert_eq!(page_title(&counts(0, 0, 0, 2)), "sitewatch: 0 of 2 up");
        assert_eq!(
            page_title(&counts(1, 1, 2, 0)),
            "sitewatch: 2 down, 1 degraded, 1 of 4 up"
        );
    }

    #[test]
    fn spans_read_naturally() {
        assert_eq!(span(Duration::from_secs(42)), "42 s");
        assert_eq!(span(Duration::from_secs(192)), "3 min 12 s");
        assert_eq!(span(Duration::from_secs(7500)), "2 h 5 min");
        assert_eq!(span(Duration::from_secs(3 * 86_400 + 4 * 3600)), "3 d 4 h");
    }

    #[test]
    fn stamps_are_utc_and_say_so() {
        let s = stamp(at(1_795_609_800));
        assert_eq!(s.text, "2026-11-25 12:30:00 UTC");
        assert_eq!(s.iso, "2026-11-25T12:30:00.000Z");
    }
}
