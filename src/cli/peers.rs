//! `sitewatch check --from-peers NAME`: "down for everyone, or just me?" on
//! demand. Probes the configured site NAME from here and asks every other
//! vantage that watches it (`[[cluster.peer]]`) to probe it now, all at
//! once, then prints each view and what the vantages' vote would make of
//! it. The peers only probe their own site of that name.

use super::check::{CheckArgs, EXIT_UNKNOWN, Format};
use super::{ConfigArg, log};
use crate::cluster::vote::{self, Ballot, Tally};
use crate::config::SiteSpec;
use crate::diagnosis::{Cause, Status};
use crate::probe::{self, ProbeDeps};
use serde::Serialize;
use std::sync::Arc;

/// One vantage's view, as printed.
#[derive(Serialize)]
struct Seen {
    vantage: String,
    /// This host.
    here: bool,
    /// `up`, `degraded`, `down`, or `null` when it could not say.
    status: Option<Status>,
    cause: Option<Cause>,
    detail: String,
    hint: Option<String>,
    /// Why it does not count (no answer, its own network, other settings).
    abstains: Option<String>,
}

/// The whole answer (`--json`).
#[derive(Serialize)]
struct FromPeers {
    site: String,
    url: String,
    /// `all` (down for enough vantages), `partial` (some fail, others
    /// reach it), `up` (every vantage that could say reaches it), or
    /// `unknown` (none could).
    scope: &'static str,
    /// Who fails how, in one line.
    summary: String,
    /// What to check first, for `partial`.
    #[serde(skip)]
    hint: String,
    vantages: Vec<Seen>,
}

/// Runs it; returns the exit code: 2 down for enough vantages, 1 partial
/// (`vantage.partial`) or degraded, 0 up, 3 when nobody could say.
pub fn run(args: &CheckArgs) -> i32 {
    let path = ConfigArg {
        config: args.config.clone(),
    }
    .path();
    let fail = |msg: String| {
        log::error(&format!("sitewatch check --from-peers: {msg}"));
        EXIT_UNKNOWN
    };
    let config = match crate::config::load(&path) {
        Ok(c) => c,
        Err(e) => return fail(e.to_string()),
    };
    let Some(site) = config.sites.iter().find(|s| s.name == args.target).cloned() else {
        return fail(format!(
            "no site named \"{}\" in {}",
            args.target,
            path.display()
        ));
    };
    if site.heartbeat.is_some() {
        return fail(format!(
            "\"{}\" is a heartbeat: it is judged from the pings it receives, not probed; see `curl localhost:PORT/status/{}`",
            args.target, args.target
        ));
    }
    let voting = match crate::app::cluster::voting(&config) {
        Ok(Some(v)) => v,
        Ok(None) => return fail(format!("{} has no [[cluster.peer]]", path.display())),
        Err(e) => return fail(format!("{e:#}")),
    };
    let here = config.cluster.vantage.clone();
    let watched_here = site.vantages.is_empty() || site.vantages.contains(&here);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    let (local, answers) = runtime.block_on(async {
        let local = async {
            if !watched_here {
                return Err(format!("{here} does not watch this site (`vantages`)"));
            }
            let deps = ProbeDeps::new([site.as_ref()]).map_err(|e| e.to_string())?;
            probe::run(&site, &deps).await.map_err(|e| e.to_string())
        };
        let others = voting.others(&site);
        tokio::join!(local, voting.peers.ask_all(&others, &site.name))
    });
    let report = build(&site, &here, local, &answers);
    let code = match report.scope {
        "all" => 2,
        "partial" => 1,
        "up" if report
            .vantages
            .iter()
            .any(|v| v.status == Some(Status::Degraded)) =>
        {
            1
        }
        "up" => 0,
        _ => EXIT_UNKNOWN,
    };
    let out = match args.format() {
        Format::Json => match serde_json::to_string_pretty(&report) {
            Ok(s) => format!("{s}\n"),
            Err(e) => return fail(e.to_string()),
        },
        Format::Nagios => {
            let word = ["OK", "WARNING", "CRITICAL", "UNKNOWN"][usize::try_from(code).unwrap_or(3)];
            format!(
                "SITEWATCH {word} - {} {}: {}\n",
                report.site, report.scope, report.summary
            )
        }
        Format::Text => text(&report),
    };
    super::print_or_unknown("check", &out).unwrap_or(code)
}

fn build(
    site: &Arc<SiteSpec>,
    here: &str,
    local: Result<probe::ProbeReport, String>,
    answers: &[(String, vote::Answer)],
) -> FromPeers {
    let key = crate::config::probe_key(site);
    let mut ballots = Vec::new();
    let mut vantages = Vec::new();
    match local {
        Ok(r) => {
            ballots.push((
                here.to_string(),
                match (r.status, r.cause) {
                    (Status::Down, Some(c)) => Ballot::Down(c),
                    _ => Ballot::Up,
                },
            ));
            vantages.push(Seen {
                vantage: here.to_string(),
                here: true,
                status: Some(r.status),
                cause: r.cause,
                detail: r.detail,
                hint: r.hint,
                abstains: None,
            });
        }
        Err(e) => {
            ballots.push((here.to_string(), Ballot::Abstain(e.clone())));
            vantages.push(Seen {
                vantage: here.to_string(),
                here: true,
                status: None,
                cause: None,
                detail: String::new(),
                hint: None,
                abstains: Some(e),
            });
        }
    }
    for (name, answer) in answers {
        let ballot = vote::ballot(answer, &key);
        let abstains = match &ballot {
            Ballot::Abstain(why) => Some(why.clone()),
            _ => None,
        };
        vantages.push(match answer {
            Ok(v) => Seen {
                vantage: name.clone(),
                here: false,
                status: Some(v.status),
                cause: v.cause,
                detail: v.detail.clone(),
                hint: v.hint.clone(),
                abstains,
            },
            Err(_) => Seen {
                vantage: name.clone(),
                here: false,
                status: None,
                cause: None,
                detail: String::new(),
                hint: None,
                abstains,
            },
        });
        ballots.push((name.clone(), ballot));
    }
    let tally = Tally::new(ballots);
    let scope = if tally.voters == 0 {
        "unknown"
    } else if tally.down == 0 {
        "up"
    } else if tally.down >= site.quorum.needed(tally.voters) {
        "all"
    } else if tally.up > 0 {
        "partial"
    } else {
        "unknown"
    };
    FromPeers {
        site: site.name.clone(),
        url: site.target.url.clone(),
        scope,
        summary: tally.summary(),
        hint: crate::diagnosis::hint(
            Cause::VantagePartial,
            &crate::diagnosis::HintFacts {
                host: &site.target.host_str,
                port: site.target.port,
                addr: None,
                http_status: None,
                source: None,
                sign: None,
            },
        ),
        vantages,
    }
}

fn text(r: &FromPeers) -> String {
    let width = r
        .vantages
        .iter()
        .map(|v| v.vantage.len() + 7)
        .max()
        .unwrap_or(8);
    let mut out = format!("{}  {}\n\n", r.site, r.url);
    for v in &r.vantages {
        let name = if v.here {
            format!("{} (here)", v.vantage)
        } else {
            v.vantage.clone()
        };
        let what = match (&v.abstains, v.status) {
            (Some(why), _) => format!("abstains  {why}"),
            (None, Some(s)) => match v.cause {
                Some(c) => format!("{s:<8}  {c}: {}", v.detail),
                None => format!("{s:<8}  {}", v.detail),
            },
            (None, None) => "?".to_string(),
        };
        out.push_str(&format!("{name:<width$}  {what}\n"));
    }
    let verdict = match r.scope {
        "all" => "DOWN for enough vantages: down for everyone",
        "partial" => {
            "fails from some vantages only (vantage.partial): probably this one is blocked, or a route is broken"
        }
        "up" => "reached from every vantage that could say",
        _ => "no vantage could say",
    };
    out.push_str(&format!("\n{verdict}\n"));
    if r.scope == "partial" {
        out.push_str(&format!("{}\n", r.hint));
    }
    out
}
