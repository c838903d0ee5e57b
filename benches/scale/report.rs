//! The figures of a run and the Markdown summary (medians over the runs).

use super::Scenario;

/// The figures of one process over one window.
#[derive(Clone, Default)]
pub struct RunResult {
    pub window_s: f64,
    pub planned_per_s: f64,
    pub achieved_per_s: f64,
    /// From the CPU-time clock (ticks if it could not be read).
    pub cpu_us_per_probe: f64,
    /// From utime + stime in clock ticks (the cross-check).
    pub tick_us_per_probe: f64,
    pub cpu_pct: f64,
    pub peak_rss_kib: f64,
    pub rss_per_site_kib: f64,
    pub lag_p50: f64,
    pub lag_p99: f64,
    pub lag_max: f64,
    pub skipped: f64,
    pub probe_errors: f64,
    /// Spawn to `api listening` (the daemon).
    pub api_s: f64,
    /// Spawn to the first probe logged (the daemon).
    pub first_probe_s: f64,
    /// Failed probes in the window (the floor).
    pub floor_failed: f64,
}

/// The extra figures of a scenario with `extras` (100k).
#[derive(Clone, Default)]
pub struct BigResult {
    pub peak_rss_kib: f64,
    /// Cumulative lag p50 / p99 / max at the end of the window.
    pub lag_window: [f64; 3],
    /// Median wall time of the `GET /metrics` scrapes.
    pub metrics_ms: f64,
    pub metrics_bytes: f64,
    /// SIGHUP to `configuration reloaded`.
    pub reload_s: f64,
    pub lag_before_reload: [f64; 3],
    pub lag_after_reload: [f64; 3],
    pub reload_probes_per_s: f64,
    pub reload_skipped: f64,
    pub reload_errors: f64,
    pub peak_rss_after_reload_kib: f64,
}

/// One run: sitewatch, and the floor if it ran.
pub struct Pair {
    pub sitewatch: RunResult,
    pub floor: Option<RunResult>,
    pub big: Option<BigResult>,
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| !x.is_nan());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A figure, or "–" when there is none.
fn fig(x: f64, decimals: usize) -> String {
    if x.is_nan() {
        "–".to_string()
    } else {
        format!("{x:.decimals$}")
    }
}

fn main_row(sc: &Scenario, runs: &[Pair]) -> String {
    let m = |f: fn(&RunResult) -> f64| median(runs.iter().map(|p| f(&p.sitewatch)).collect());
    let floor_us = median(
        runs.iter()
            .filter_map(|p| p.floor.as_ref().map(|f| f.cpu_us_per_probe))
            .collect(),
    );
    let ratios: Vec<f64> = runs
        .iter()
        .filter_map(|p| {
            p.floor
                .as_ref()
                .map(|f| p.sitewatch.cpu_us_per_probe / f.cpu_us_per_probe)
        })
        .collect();
    let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let ratio = match ratios.len() {
        0 => "–".to_string(),
        1 => format!("{:.2}", ratios[0]),
        _ => format!("{:.2} ({lo:.2}–{hi:.2})", median(ratios)),
    };
    format!(
        "| {} | {} | {} | {} | {} | {} | {:.0} | {:.1} | {:.1} | {} | {} | {} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {:.0} |",
        sc.name,
        sc.kind.as_str(),
        sc.sites,
        humantime::format_duration(sc.interval),
        humantime::format_duration(sc.timeout),
        runs.len(),
        m(|r| r.planned_per_s),
        m(|r| r.achieved_per_s),
        m(|r| r.cpu_us_per_probe),
        fig(floor_us, 1),
        ratio,
        sc.target_ratio
            .map_or("–".to_string(), |t| format!("≤ {t:.1}")),
        m(|r| r.cpu_pct),
        m(|r| r.peak_rss_kib) / 1024.0,
        m(|r| r.rss_per_site_kib),
        m(|r| r.lag_p50),
        m(|r| r.lag_p99),
        m(|r| r.lag_max),
        m(|r| r.skipped),
        m(|r| r.probe_errors),
    )
}

fn floor_row(sc: &Scenario, runs: &[Pair]) -> Option<String> {
    let floors: Vec<&RunResult> = runs.iter().filter_map(|p| p.floor.as_ref()).collect();
    if floors.is_empty() {
        return None;
    }
    let m = |f: fn(&RunResult) -> f64| median(floors.iter().map(|r| f(r)).collect());
    Some(format!(
        "| {} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} | {:.0} |",
        sc.name,
        sc.kind.as_str(),
        floors.len(),
        m(|r| r.planned_per_s),
        m(|r| r.achieved_per_s),
        m(|r| r.cpu_us_per_probe),
        m(|r| r.cpu_pct),
        m(|r| r.peak_rss_kib) / 1024.0,
        m(|r| 100.0 * r.floor_failed / (r.achieved_per_s * r.window_s).max(1.0)),
        m(|r| r.lag_p50),
        m(|r| r.lag_p99),
        m(|r| r.lag_max),
        m(|r| r.skipped),
    ))
}

fn big_row(sc: &Scenario, runs: &[Pair]) -> Option<String> {
    let bigs: Vec<(&RunResult, &BigResult)> = runs
        .iter()
        .filter_map(|p| p.big.as_ref().map(|b| (&p.sitewatch, b)))
        .collect();
    if bigs.is_empty() {
        return None;
    }
    let m = |f: &dyn Fn(&RunResult, &BigResult) -> f64| {
        median(bigs.iter().map(|(r, b)| f(r, b)).collect())
    };
    Some(format!(
        "| {} | {} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} / {:.2} / {:.2} | {:.0} | {:.1} | {:.2} | {:.2} → {:.2} | {:.2} → {:.2} | {:.0} | {:.0} |",
        sc.name,
        bigs.len(),
        m(&|r, _| r.api_s),
        m(&|r, _| r.first_probe_s),
        m(&|_, b| b.peak_rss_kib) / 1024.0,
        m(&|_, b| b.peak_rss_kib) / sc.sites as f64,
        m(&|_, b| b.lag_window[0]),
        m(&|_, b| b.lag_window[1]),
        m(&|_, b| b.lag_window[2]),
        m(&|_, b| b.metrics_ms),
        m(&|_, b| b.metrics_bytes) / 1048576.0,
        m(&|_, b| b.reload_s),
        m(&|_, b| b.lag_before_reload[1]),
        m(&|_, b| b.lag_after_reload[1]),
        m(&|_, b| b.lag_before_reload[2]),
        m(&|_, b| b.lag_after_reload[2]),
        m(&|_, b| b.reload_skipped),
        m(&|_, b| b.peak_rss_after_reload_kib) / 1024.0,
    ))
}

pub fn print_summary(results: &[(&Scenario, Vec<Pair>)]) {
    println!("\n## Summary (median over runs)\n");
    println!(
        "| scenario | kind | sites | interval | timeout | runs | planned probes/s | achieved probes/s | CPU µs/probe | floor µs/probe | ratio (runs' range) | target | daemon CPU % | peak RSS MiB | RSS KiB/site | lag p50 ms | lag p99 ms | lag max ms | skipped | probe errors |"
    );
    println!("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for (sc, runs) in results {
        println!("{}", main_row(sc, runs));
    }
    println!(
        "\nEach column is the median of that figure over the runs; the ratio is the median of \
         each run's sitewatch / floor (both measured in that run), with the lowest and highest \
         run's in brackets. Lag is cumulative since the \
         daemon started (warm-up included), as /healthz reports it at the end of the window; \
         skipped and probe errors are counted over the window only."
    );
    if results.iter().any(|(sc, _)| sc.name == "1k-2s-10pct-dead") {
        println!(
            "1k-2s-10pct-dead: specified as every 1s with a 2s timeout; runs every 2s because \
             sitewatch requires timeout <= interval."
        );
    }
    for (sc, _) in results {
        if sc.worker_threads != 1 {
            println!(
                "{}: worker_threads = {}, the daemon pinned to one CPU.",
                sc.name, sc.worker_threads
            );
        }
    }

    let floors: Vec<String> = results
        .iter()
        .filter_map(|(sc, runs)| floor_row(sc, runs))
        .collect();
    if !floors.is_empty() {
        println!("\n### The floor (reference prober, same farm, same sites, same CPU)\n");
        println!(
            "| scenario | prober | runs | planned probes/s | achieved probes/s | CPU µs/probe | CPU % | peak RSS MiB | failed % | lag p50 ms | lag p99 ms | lag max ms | skipped |"
        );
        println!("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        for row in floors {
            println!("{row}");
        }
    }

    let bigs: Vec<String> = results
        .iter()
        .filter_map(|(sc, runs)| big_row(sc, runs))
        .collect();
    if !bigs.is_empty() {
        println!("\n### Start-up, /metrics and reload\n");
        println!(
            "| scenario | runs | to `api listening` s | to first probe s | peak RSS MiB | RSS KiB/site | lag p50 / p99 / max ms | GET /metrics ms | /metrics MiB | reload s (all renamed) | lag p99 ms before → after reload | lag max ms before → after reload | skipped across reload | peak RSS after reload MiB |"
        );
        println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        for row in bigs {
            println!("{row}");
        }
        println!(
            "\nStart-up times are from spawning the daemon. Lag is cumulative since start \
             (/healthz has no windowed figure): \"before → after reload\" are the cumulative \
             figures just before the SIGHUP and {} s after the reload applied.",
            super::RELOAD_SETTLE.as_secs()
        );
    }
}
