//! Heartbeat monitors: jobs that must ping sitewatch on a schedule.
//!
//! A heartbeat is configured as a `[[heartbeat]]` and runs through the
//! scheduler like a site whose "probe" reads its [`ledger::Record`] instead
//! of the network: [`judge::judge`] turns the pings received so far into a
//! verdict the state machine takes like any probe result. Pings arrive over
//! HTTP (`/ping/KEY`, see [`crate::api`]) and are saved with the history.

pub mod cron;
pub mod hub;
pub mod judge;
pub mod ledger;

use crate::diagnosis::{Cause, HintFacts, Layer, Status};
use crate::probe::{LayerReport, ProbeReport};
use std::time::SystemTime;

/// A heartbeat's verdict in the shape of a probe's report: one layer,
/// `heartbeat`, with the facts, and the hint of its cause.
pub fn report(
    name: &str,
    status: Status,
    cause: Option<Cause>,
    detail: String,
    at: SystemTime,
) -> ProbeReport {
    let hint = cause.map(|c| {
        crate::diagnosis::hint(
            c,
            &HintFacts {
                host: name,
                port: 0,
                addr: None,
                http_status: None,
                source: None,
                sign: None,
            },
        )
    });
    ProbeReport {
        status,
        cause,
        layers: vec![LayerReport {
            layer: Layer::Heartbeat,
            ok: status == Status::Up,
            ms: 0.0,
            detail: detail.clone(),
        }],
        detail,
        hint,
        started_at: at,
        ms: 0.0,
        addr: None,
        http_status: None,
        cert: None,
        domain: None,
    }
}
