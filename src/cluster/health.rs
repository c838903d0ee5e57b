//! Is each peer there? Every `[cluster] peer_interval` each peer is asked
//! `GET /peer/v1/status`. A peer that has not answered
//! [`PEER_LOST_AFTER`] times in a row is reported unreachable, once, to
//! every channel ("vantage fra1 unreachable since T"), and once more when
//! it answers again: while a vantage is cut off it cannot page anyone, so
//! the others are the only way anyone learns of it. Nothing is reported
//! while this monitor's own network is in doubt (then it is this one that
//! is cut off). The reports are journaled like this monitor's own network
//! changes, so a restart neither repeats nor loses them.
//!
//! Which peers are live also decides who sends chat and email alerts
//! ([`super::sender`]).

use super::Voting;
use crate::alert::{Alert, AlertKind};
use crate::config::PEER_LOST_AFTER;
use crate::history::{History, NetChange};
use crate::selfcheck::{self, NetState};
use crate::state::Level;
use serde::Serialize;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// One peer as seen from here.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PeerView {
    /// Its vantage name.
    pub name: String,
    /// Whether its last check answered (`null` before the first).
    pub up: Option<bool>,
    /// When it last answered.
    #[serde(with = "crate::timefmt::option")]
    pub last_seen: Option<SystemTime>,
    /// When it was last asked.
    #[serde(with = "crate::timefmt::option")]
    pub checked_at: Option<SystemTime>,
    /// Checks in a row it has not answered.
    pub misses: u32,
    /// Why the last check failed.
    pub error: Option<String>,
    /// Its own network, as it said last.
    pub network: Option<NetState>,
    /// Since when it has been reported unreachable (`null`: it is not).
    #[serde(with = "crate::timefmt::option")]
    pub unreachable_since: Option<SystemTime>,
    /// Its version, as it said last.
    pub version: Option<String>,
}

/// What is known of each peer; cheap to clone.
#[derive(Clone)]
pub struct Health {
    peers: Arc<RwLock<Vec<PeerView>>>,
}

impl Health {
    /// The peers `names`, none checked yet; those in `lost` were reported
    /// unreachable before a restart, since the time given.
    pub fn new(names: &[String], lost: &[(String, SystemTime)]) -> Health {
        let peers = names
            .iter()
            .map(|n| PeerView {
                name: n.clone(),
                up: None,
                last_seen: None,
                checked_at: None,
                misses: 0,
                error: None,
                network: None,
                unreachable_since: lost.iter().find(|(l, _)| l == n).map(|(_, t)| *t),
                version: None,
            })
            .collect();
        Health {
            peers: Arc::new(RwLock::new(peers)),
        }
    }

    /// Every peer, in configuration order.
    pub fn views(&self) -> Vec<PeerView> {
        self.peers.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether `name` may be counted on to send: it answered its last
    /// check (or has not been checked yet, or is not a known peer: a
    /// vantage that just answered a vote).
    pub fn live(&self, name: &str) -> bool {
        self.peers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|p| p.name == name)
            .is_none_or(|p| p.misses == 0 && p.unreachable_since.is_none())
    }

    /// Records one round of answers and returns the changes to report:
    /// `(peer, lost, since, evidence)`. `trusted`: this monitor's own
    /// network is fine (otherwise nobody is reported lost).
    pub(super) fn record(
        &self,
        answers: Vec<(String, Result<super::PeerStatus, String>)>,
        now: SystemTime,
        trusted: bool,
    ) -> Vec<(String, bool, SystemTime, String)> {
        let mut changes = Vec::new();
        let mut peers = self.peers.write().unwrap_or_else(|p| p.into_inner());
        for (name, answer) in answers {
            let Some(p) = peers.iter_mut().find(|p| p.name == name) else {
                continue;
            };
            p.checked_at = Some(now);
            match answer {
                Ok(status) => {
                    p.up = Some(true);
                    p.misses = 0;
                    p.error = None;
                    p.last_seen = Some(now);
                    p.network = Some(status.network);
                    p.version = Some(status.version);
                    if let Some(since) = p.unreachable_since.take() {
                        changes.push((name, false, since, "it answers again".to_string()));
                    }
                }
                Err(e) => {
                    p.up = Some(false);
                    p.misses = p.misses.saturating_add(1);
                    p.error = Some(e.clone());
                    if p.misses >= PEER_LOST_AFTER && p.unreachable_since.is_none() && trusted {
                        let since = p.last_seen.unwrap_or(now);
                        p.unreachable_since = Some(since);
                        changes.push((name, true, since, e));
                    }
                }
            }
        }
        changes
    }
}

/// "VANTAGE unreachable since T", as seen from `from`.
pub fn vantage_lost(peer: &str, from: &str, since: SystemTime, at: SystemTime, why: &str) -> Alert {
    let mut a = Alert::bare(
        format!("{peer}-vantage-lost-{}", crate::history::unix_ms(at)),
        AlertKind::VantageLost,
        peer.to_string(),
        Level::Unknown,
        at,
    );
    a.since = since;
    a.detail = format!(
        "{from} has had no answer from {peer} for {PEER_LOST_AFTER} checks in a row: {why}"
    );
    a.hint = Some(format!(
        "is sitewatch running on {peer} (`systemctl status sitewatch`, its /healthz), and is its host up and reachable from {from} on the peer port? Its own alerts cannot get out while this lasts"
    ));
    a
}

/// "VANTAGE back after D", as seen from `from`.
pub fn vantage_back(peer: &str, from: &str, since: SystemTime, at: SystemTime) -> Alert {
    let mut a = Alert::bare(
        format!("{peer}-vantage-back-{}", crate::history::unix_ms(at)),
        AlertKind::VantageBack,
        peer.to_string(),
        Level::Up,
        at,
    );
    let lasted = at.duration_since(since).unwrap_or_default();
    a.since = since;
    a.outage_s = Some(lasted.as_secs());
    a.detail = format!(
        "{from} reaches {peer} again after {}",
        crate::alert::render::human(lasted)
    );
    a
}

/// Checks every peer each `interval` until `stop`, keeping `health` and
/// journaling each peer lost or back (with its alert) through `history`.
pub async fn watch(
    voting: Arc<Voting>,
    health: Health,
    interval: Duration,
    network: selfcheck::Handle,
    history: History,
    stop: CancellationToken,
) {
    let me = voting.vantage().to_string();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let answers = tokio::select! {
            () = stop.cancelled() => return,
            a = voting.peers.status_all() => a,
        };
        let now = SystemTime::now();
        for (peer, lost, since, why) in health.record(answers, now, network.trusted()) {
            let (from, to, alert) = if lost {
                tracing::warn!(%peer, error = %why, "a peer vantage is unreachable");
                (
                    NetState::Ok,
                    NetState::Offline,
                    vantage_lost(&peer, &me, since, now, &why),
                )
            } else {
                tracing::info!(%peer, "a peer vantage answers again");
                (
                    NetState::Offline,
                    NetState::Ok,
                    vantage_back(&peer, &me, since, now),
                )
            };
            history.network(NetChange {
                subject: Some(peer),
                from,
                to,
                at: now,
                evidence: why,
                alert: Some(alert),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Result<super::super::PeerStatus, String> {
        Ok(super::super::PeerStatus {
            vantage: "b".into(),
            network: NetState::Ok,
            version: "1".into(),
            site: None,
        })
    }

    fn gone() -> Result<super::super::PeerStatus, String> {
        Err("unreachable: connection refused".into())
    }

    #[test]
    fn a_peer_is_lost_after_misses_in_a_row_and_back_once() {
        let h = Health::new(&["b".into()], &[]);
        let t = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        assert!(h.record(vec![("b".into(), ok())], t(10), true).is_empty());
        assert!(h.live("b"));
        for i in 1..PEER_LOST_AFTER {
            assert!(
                h.record(vec![("b".into(), gone())], t(10 + u64::from(i)), true)
                    .is_empty()
            );
            assert!(!h.live("b"), "a peer that missed a check does not send");
        }
        let lost = h.record(vec![("b".into(), gone())], t(20), true);
        assert_eq!(lost.len(), 1);
        assert_eq!(
            (lost[0].1, lost[0].2),
            (true, t(10)),
            "since its last answer"
        );
        // Reported once.
        assert!(h.record(vec![("b".into(), gone())], t(21), true).is_empty());
        let back = h.record(vec![("b".into(), ok())], t(30), true);
        assert_eq!(back.len(), 1);
        assert_eq!((back[0].1, back[0].2), (false, t(10)));
        assert!(h.live("b"));
    }

    #[test]
    fn nobody_is_lost_while_this_monitor_is_cut_off() {
        let h = Health::new(&["b".into()], &[]);
        let t = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        for i in 0..PEER_LOST_AFTER * 2 {
            assert!(
                h.record(vec![("b".into(), gone())], t(u64::from(i)), false)
                    .is_empty()
            );
        }
        // Once this monitor's network is trusted again, the next miss reports.
        assert_eq!(h.record(vec![("b".into(), gone())], t(99), true).len(), 1);
    }

    #[test]
    fn a_peer_lost_before_a_restart_is_told_back_once() {
        let t = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        let h = Health::new(&["b".into(), "c".into()], &[("b".into(), t(5))]);
        assert!(!h.live("b"));
        assert!(h.live("c"));
        let back = h.record(vec![("b".into(), ok()), ("c".into(), ok())], t(50), true);
        assert_eq!(
            back,
            vec![("b".to_string(), false, t(5), "it answers again".to_string())]
        );
    }
}
