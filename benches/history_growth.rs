//! How big the history database grows: replays a year of probes for a
//! hundred sites at a 60 s interval through the real history writer (a
//! simulated clock makes each hour pass in a moment: samples, state saves,
//! hourly and daily roll-ups, pruning all run as in the daemon), and
//! measures the file after the raw window is full, after the hourly window
//! is full, and at the end: its size per site, what each table costs per
//! row, and what that makes for 100,000 sites.
//!
//! Run: `cargo bench --bench history_growth -- [--sites N] [--interval-s S]
//! [--days D] [--raw 48h] [--hourly 90d] [--daily 400d] [--runs R]
//! [--first-id I]` (defaults 100, 60, 365, the default retentions, 1 run,
//! 32768). Site ids start at `--first-id`: from the 32,768th site on an id
//! takes 3 bytes in every row instead of 1 or 2, so the default measures
//! rows as large as a 100,000-site database has. Writes only to a
//! temporary directory.

use sitewatch::diagnosis::{Cause, Status};
use sitewatch::history::{History, Retention, Sample};
use sitewatch::state::SiteState;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DAY: u64 = 86_400;
/// The projection's fleet.
const FLEET: f64 = 100_000.0;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn num(name: &str, default: u64) -> u64 {
    arg(name).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} takes a number"))
    })
}

fn dur(name: &str, default: Duration) -> Duration {
    arg(name).map_or(default, |v| {
        sitewatch::config::parse_duration(&v).unwrap_or_else(|e| panic!("{name}: {e}"))
    })
}

/// The database's size on disk once its write-ahead log is checkpointed
/// into it (the log is bounded and the same for any number of sites).
fn db_bytes(dir: &Path) -> u64 {
    let conn = rusqlite::Connection::open(dir.join("sitewatch.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(30)).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    std::fs::metadata(dir.join("sitewatch.db")).unwrap().len()
        + std::fs::metadata(dir.join("sitewatch.db-wal")).map_or(0, |m| m.len())
}

/// Per table (with its indexes' own b-trees apart): rows, bytes of pages,
/// bytes per row; and the free pages.
fn tables(dir: &Path) -> (Vec<(String, u64, u64)>, u64) {
    let conn = rusqlite::Connection::open(dir.join("sitewatch.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT name, SUM(pgsize), SUM(CASE WHEN pagetype = 'leaf' THEN ncell END) FROM dbstat GROUP BY name ORDER BY SUM(pgsize) DESC")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, Option<i64>>(2)?.unwrap_or(0) as u64,
            ))
        })
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let free: i64 = conn
        .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .unwrap();
    let page: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    (rows, (free * page) as u64)
}

/// "48h", "90d".
fn show(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(DAY) {
        format!("{}d", s / DAY)
    } else {
        format!("{}h", s as f64 / 3600.0)
    }
}

fn kib(b: f64) -> String {
    format!("{:.1} KiB", b / 1024.0)
}

fn mib(b: f64) -> String {
    format!("{:.1} MiB", b / 1_048_576.0)
}

fn gib(b: f64) -> String {
    format!("{:.1} GiB", b / 1_073_741_824.0)
}

/// One measurement: the day it was taken, the database's bytes.
struct Phase {
    name: String,
    day: u64,
    bytes: u64,
}

/// One replay; returns the phases measured.
fn run(
    n_sites: usize,
    interval: u64,
    days: u64,
    retention: Retention,
    first_id: i64,
) -> Vec<Phase> {
    let dir = tempfile::tempdir().unwrap();
    let mut toml = String::new();
    for i in 0..n_sites {
        toml.push_str(&format!(
            "[[site]]\nname = \"site-{i:05}\"\nurl = \"https://site-{i:05}.example.com/\"\n\n"
        ));
    }
    let sites = sitewatch::config::parse(Path::new("bench.toml"), &toml)
        .unwrap()
        .sites;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Midnight UTC, far enough back that the replay ends before now.
    let start = (now - (days + 2) * DAY) / DAY * DAY;
    let clock = Arc::new(AtomicU64::new(start));
    let read = Arc::clone(&clock);
    let sim: sitewatch::history::Clock =
        Arc::new(move || UNIX_EPOCH + Duration::from_secs(read.load(Ordering::SeqCst)));
    if first_id > 1 {
        // Create the schema, then take the ids below `first_id`.
        let (_, writer, _) =
            History::open_with_clock(dir.path(), &[], None, retention, Arc::clone(&sim));
        writer.stop(Duration::from_secs(60));
        let conn = rusqlite::Connection::open(dir.path().join("sitewatch.db")).unwrap();
        conn.execute(
            "INSERT INTO site(id, name) VALUES (?1, 'bench-placeholder')",
            [first_id - 1],
        )
        .unwrap();
    }
    let (history, writer, _) = History::open_with_clock(dir.path(), &sites, None, retention, sim);
    let state = SiteState::new(UNIX_EPOCH + Duration::from_secs(start));
    let raw_day = retention.raw.as_secs().div_ceil(DAY) + 1;
    let hourly_day = retention.hourly.as_secs().div_ceil(DAY) + 1;
    let mut phases = Vec::new();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let began = Instant::now();
    for day in 0..days {
        for hour in 0..24 {
            let hour_start = start + day * DAY + hour * 3600;
            let mut t = hour_start;
            while t < hour_start + 3600 {
                clock.store(t, Ordering::SeqCst);
                for site in &sites {
                    // A cheap xorshift: probe times of 50 to 550 ms (as an
                    // HTTPS request takes) and one failure in 500.
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let ms = 50.0 + (seed % 2000) as f64 / 4.0;
                    let (status, cause) = if seed.is_multiple_of(500) {
                        (Status::Down, Some(Cause::TcpTimeout))
                    } else {
                        (Status::Up, None)
                    };
                    let sample = Sample {
                        at: UNIX_EPOCH + Duration::from_secs(t),
                        status,
                        cause,
                        ms,
                        unverified: false,
                        maintenance: false,
                    };
                    history.record(site, sample, state, None);
                }
                t += interval;
            }
            clock.store(hour_start + 3600, Ordering::SeqCst);
            assert!(
                history.sync(Duration::from_secs(600)),
                "the writer did not keep up"
            );
        }
        let d = day + 1;
        let name = if d == raw_day {
            Some("raw window full")
        } else if d == hourly_day {
            Some("hourly window full")
        } else if d == days {
            Some("end")
        } else {
            None
        };
        if let Some(name) = name {
            let bytes = db_bytes(dir.path());
            eprintln!(
                "  day {d}: {} ({} per site), {:.0} s",
                mib(bytes as f64),
                kib(bytes as f64 / n_sites as f64),
                began.elapsed().as_secs_f64()
            );
            phases.push(Phase {
                name: name.to_string(),
                day: d,
                bytes,
            });
        }
    }
    writer.stop(Duration::from_secs(600));
    let (tables, free) = tables(dir.path());
    println!();
    println!("| table or index | rows | bytes | bytes per row | per site |");
    println!("|---|---|---|---|---|");
    for (name, bytes, rows) in tables.iter().filter(|t| t.1 > 16_384) {
        println!(
            "| {name} | {rows} | {} | {:.1} | {} |",
            mib(*bytes as f64),
            *bytes as f64 / (*rows).max(1) as f64,
            kib(*bytes as f64 / n_sites as f64)
        );
    }
    let small: u64 = tables.iter().filter(|t| t.1 <= 16_384).map(|t| t.1).sum();
    println!(
        "| the {} other tables and indexes | | {} | | |",
        tables.iter().filter(|t| t.1 <= 16_384).count(),
        kib(small as f64)
    );
    println!("| free pages | | {} | | |", mib(free as f64));
    phases
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let n_sites = num("--sites", 100) as usize;
    let interval = num("--interval-s", 60);
    let days = num("--days", 365).max(3);
    let runs = num("--runs", 1).max(1);
    let first_id = num("--first-id", 32_768) as i64;
    let retention = Retention {
        raw: dur("--raw", sitewatch::history::RAW_RETENTION),
        hourly: dur("--hourly", sitewatch::history::HOURLY_RETENTION),
        daily: dur("--daily", sitewatch::history::DAILY_RETENTION),
    };
    println!(
        "history growth: {n_sites} sites (ids from {first_id}), one probe every {interval} s, {days} simulated days, raw {}, hourly {}, daily {}, {runs} run(s)",
        show(retention.raw),
        show(retention.hourly),
        show(retention.daily),
    );
    let began = Instant::now();
    let all: Vec<Vec<Phase>> = (0..runs)
        .map(|i| {
            eprintln!("run {}:", i + 1);
            run(n_sites, interval, days, retention, first_id)
        })
        .collect();
    println!();
    println!("| after | day | database | per site | projected for 100,000 sites |");
    println!("|---|---|---|---|---|");
    for (i, phase) in all[0].iter().enumerate() {
        let bytes = median(all.iter().map(|r| r[i].bytes as f64).collect());
        let per_site = bytes / n_sites as f64;
        println!(
            "| {} | {} | {} | {} | {} |",
            phase.name,
            phase.day,
            mib(bytes),
            kib(per_site),
            gib(per_site * FLEET)
        );
    }
    if runs > 1 {
        println!("(medians of {runs} runs)");
    }
    println!("simulated in {:.0} s", began.elapsed().as_secs_f64());
}
