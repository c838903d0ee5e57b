//! How big the history database grows: replays days of probes for 1,000
//! sites at a 60 s interval through the real history writer (a simulated
//! clock makes each hour pass in a moment), measures the file after each
//! day, and extrapolates the size after a year from the measured daily
//! growth of the hourly aggregates plus the 48 h of raw samples.
//!
//! Run: `cargo bench --bench history_growth -- [--sites N] [--interval-s S] [--days D]`
//! (defaults 1000, 60, 4). Writes only to a temporary directory.

use sitewatch::diagnosis::{Cause, Status};
use sitewatch::history::{History, Sample};
use sitewatch::state::SiteState;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
}

fn db_bytes(dir: &std::path::Path) -> u64 {
    ["sitewatch.db", "sitewatch.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / 1_048_576.0)
}

fn main() {
    let n_sites = arg("--sites", 1000) as usize;
    let interval = arg("--interval-s", 60);
    let days = arg("--days", 4).max(3);
    let dir = tempfile::tempdir().unwrap();
    let mut toml = String::new();
    for i in 0..n_sites {
        toml.push_str(&format!(
            "[[site]]\nname = \"site-{i:05}\"\nurl = \"https://site-{i:05}.example.com/\"\n\n"
        ));
    }
    let sites = sitewatch::config::parse(std::path::Path::new("bench.toml"), &toml)
        .unwrap()
        .sites;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let start = (now - (days + 1) * 86_400) / 3600 * 3600;
    let clock = Arc::new(AtomicU64::new(start));
    let read = Arc::clone(&clock);
    let (history, writer, _) = History::open_with_clock(
        dir.path(),
        &sites,
        None,
        Arc::new(move || UNIX_EPOCH + Duration::from_secs(read.load(Ordering::SeqCst))),
    );
    let state = SiteState::new(UNIX_EPOCH + Duration::from_secs(start));
    println!(
        "history growth: {n_sites} sites, one probe every {interval} s, {days} simulated days"
    );
    println!("| day | database | added that day | wall time |");
    println!("|---|---|---|---|");
    let began = Instant::now();
    let mut sizes = vec![db_bytes(dir.path())];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for day in 0..days {
        let day_began = Instant::now();
        for hour in 0..24 {
            let hour_start = start + day * 86_400 + hour * 3600;
            let mut t = hour_start;
            while t < hour_start + 3600 {
                clock.store(t, Ordering::SeqCst);
                for site in &sites {
                    // A cheap xorshift: realistic latencies and one failure in 500.
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let ms = 20.0 + (seed % 400) as f64 / 3.0;
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
                history.sync(Duration::from_secs(300)),
                "the writer did not keep up"
            );
        }
        let size = db_bytes(dir.path());
        println!(
            "| {} | {} | {} | {:.0} s |",
            day + 1,
            mib(size),
            mib(size.saturating_sub(*sizes.last().unwrap())),
            day_began.elapsed().as_secs_f64()
        );
        sizes.push(size);
    }
    writer.stop(Duration::from_secs(600));
    // From day 3 on the raw window (48 h) is full and pruned: what grows is
    // the hourly rows. The steady raw part is the size at day 2 minus two
    // days of hourly growth.
    let daily = (sizes[days as usize] - sizes[2]) / (days - 2).max(1);
    let year = sizes[2] + 365 * daily;
    let per_site_day = daily as f64 / n_sites as f64;
    println!();
    println!(
        "steady growth after the raw window fills: {} per day ({per_site_day:.0} bytes per site per day)",
        mib(daily)
    );
    println!(
        "raw window (48 h of samples) plus indexes: about {}",
        mib(sizes[2])
    );
    println!(
        "estimated size after one year: {} ({} per site)",
        mib(year),
        mib(year / n_sites as u64)
    );
    println!("simulated in {:.0} s", began.elapsed().as_secs_f64());
}
