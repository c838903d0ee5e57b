//! Who sends. Receivers that deduplicate by key (Alertmanager, a webhook
//! with its stable ids) hear every vantage; a chat or email channel hears
//! one: the site's owner, the first live vantage in the rendezvous order
//! of (site, vantage) among those that agree with the alert. Every vantage
//! computes the same owner from the same votes.
//!
//! A vantage that is not the owner holds its delivery for a handover
//! time, then asks the owner and the others that agreed what they told
//! their channels ([`Told`]): when one of them announced it, the delivery
//! is dropped as delegated; otherwise (the owner is unreachable, or never
//! confirmed the change) it is sent from here. An owner that confirms a
//! change the others confirmed before it (it was cut off, or restarted)
//! asks them first instead of sending at once. A partition may so
//! duplicate an alert, never swallow one. The vantage that announced an
//! outage on a channel also closes it there.

use super::health::Health;
use super::{Told, Voting, vote};
use crate::alert::{Alert, AlertKind};
use crate::diagnosis::Cause;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// What to do with one alert on a chat or email channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// This vantage sends it.
    Send,
    /// Another vantage should: ask these (the owner first) whether one of
    /// them announced it, after the handover time when `wait` (at once
    /// otherwise), and send it from here if none did.
    Standby {
        /// Whom to ask.
        ask: Vec<String>,
        /// Whether to give them the handover time first.
        wait: bool,
    },
    /// Another vantage sends it, and there is nothing to check with it.
    Skip(String),
}

/// What this vantage told its chat and email channels about each site
/// last; cheap to clone, shared with the peer API.
#[derive(Clone, Default)]
pub struct ToldLog(Arc<Mutex<HashMap<String, Told>>>);

impl ToldLog {
    /// Records that `kind` about `site` is sent from here.
    pub fn record(&self, site: &str, kind: AlertKind, at: SystemTime) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(site.to_string(), Told { kind, at });
    }

    /// What was told about `site` last.
    pub fn get(&self, site: &str) -> Option<Told> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(site)
            .copied()
    }
}

/// This vantage's side of "who sends".
pub struct Senders {
    voting: Arc<Voting>,
    health: Health,
    told: ToldLog,
}

impl Senders {
    /// Who sends, among `voting`'s peers as `health` sees them.
    pub fn new(voting: Arc<Voting>, health: Health) -> Senders {
        Senders {
            voting,
            health,
            told: ToldLog::default(),
        }
    }

    /// This vantage's name.
    pub fn vantage(&self) -> &str {
        self.voting.vantage()
    }

    /// What this vantage told its channels (for the peer API).
    pub fn told(&self) -> ToldLog {
        self.told.clone()
    }

    /// Who sends `a` on a chat or email channel; `watching` are the
    /// vantages that watch its site (empty: every one).
    pub fn decide(&self, a: &Alert, watching: &[String]) -> Decision {
        let me = self.vantage();
        let peers = self.voting.peers.all().iter().map(|p| p.name.as_str());
        if matches!(a.kind, AlertKind::VantageLost | AlertKind::VantageBack) {
            // Among those that can see the others, not the one it is about.
            let key = format!("vantage:{}", a.site);
            let live: Vec<&str> = std::iter::once(me)
                .chain(peers.filter(|n| *n != a.site && self.health.live(n)))
                .collect();
            return match vote::owner(&key, live) {
                Some(o) if o != me => Decision::Skip(o.to_string()),
                _ => Decision::Send,
            };
        }
        let Some(want) = direction(a) else {
            return Decision::Send;
        };
        // With votes: those that agreed (they answered just now); without:
        // every live vantage that watches the site.
        let (mut agree, earlier): (Vec<&str>, Vec<&str>) = if a.seen.is_empty() {
            let all = peers
                .filter(|n| watching.is_empty() || watching.iter().any(|w| w == n))
                .collect();
            (all, Vec::new())
        } else {
            let agree: Vec<&crate::alert::Seen> = a
                .seen
                .iter()
                .filter(|s| s.vantage != me && want.voted(&s.verdict))
                .collect();
            (
                agree.iter().map(|s| s.vantage.as_str()).collect(),
                agree
                    .iter()
                    .filter(|s| s.earlier)
                    .map(|s| s.vantage.as_str())
                    .collect(),
            )
        };
        agree.retain(|n| self.health.live(n));
        let mut candidates = agree.clone();
        candidates.push(me);
        match vote::owner(&a.site, candidates) {
            Some(o) if o != me => {
                let mut ask = vec![o.to_string()];
                ask.extend(agree.iter().filter(|n| **n != o).map(|n| n.to_string()));
                Decision::Standby { ask, wait: true }
            }
            _ if !earlier.is_empty() => Decision::Standby {
                ask: earlier.iter().map(|n| n.to_string()).collect(),
                wait: false,
            },
            _ => Decision::Send,
        }
    }

    /// Records that `a` goes out from here (to a chat or email channel).
    pub fn sending(&self, a: &Alert) {
        self.told.record(&a.site, a.kind, a.at);
    }

    /// Which of `ask` told its channels what `a` says, if one did (then it
    /// is not sent from here). A vantage that cannot be asked told nothing.
    pub async fn taken_up(&self, ask: &[String], a: &Alert, handover: Duration) -> Option<String> {
        let want = direction(a)?;
        let answers = futures_util::future::join_all(
            ask.iter()
                .map(|name| self.voting.peers.site_at(name, &a.site)),
        )
        .await;
        // Told about this episode: not before it began, give or take the handover.
        let since = a.since.checked_sub(handover).unwrap_or(a.since);
        answers
            .into_iter()
            .zip(ask)
            .find(|(answer, name)| match answer {
                Ok(status) => status
                    .site
                    .as_ref()
                    .and_then(|s| s.told)
                    .is_some_and(|t| t.at >= since && want.told(t.kind)),
                Err(e) => {
                    tracing::debug!(peer = %name, error = %e, site = %a.site, "cannot ask a vantage what it told");
                    false
                }
            })
            .map(|(_, name)| name.clone())
    }
}

/// What an alert says of its site, for comparing with the others.
#[derive(Clone, Copy)]
enum Direction {
    /// Down (a down alert, a cause change, a reminder).
    Down,
    /// No longer down.
    Back,
    /// Degraded.
    Degraded,
    /// Fully up.
    Up,
}

impl Direction {
    /// Whether a vote's verdict agrees.
    fn voted(self, verdict: &str) -> bool {
        match self {
            Direction::Down => verdict == "down",
            Direction::Back | Direction::Up => verdict == "up",
            Direction::Degraded => false,
        }
    }

    /// Whether having told `kind` covers it.
    fn told(self, kind: AlertKind) -> bool {
        match self {
            Direction::Down => matches!(
                kind,
                AlertKind::Down | AlertKind::CauseChanged | AlertKind::Reminder
            ),
            Direction::Back => kind == AlertKind::Recovered,
            Direction::Degraded => kind == AlertKind::Degraded,
            Direction::Up => kind == AlertKind::Resolved,
        }
    }
}

/// The direction of an alert that one owner sends for all, if any: a
/// site's outage and its end, and degradations every vantage can see
/// (`vantage.partial` is seen from here only: this vantage says it).
fn direction(a: &Alert) -> Option<Direction> {
    match a.kind {
        AlertKind::Down | AlertKind::CauseChanged | AlertKind::Reminder => Some(Direction::Down),
        AlertKind::Recovered => Some(Direction::Back),
        AlertKind::Degraded if a.cause == Some(Cause::VantagePartial) => None,
        AlertKind::Degraded => Some(Direction::Degraded),
        AlertKind::Resolved => Some(Direction::Up),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Seen;
    use crate::cluster::client::{Peer, Peers};
    use crate::state::Level;
    use std::time::{Duration, SystemTime};

    fn senders(me: &str, peers: &[&str]) -> (Senders, Health) {
        let list: Vec<Peer> = peers
            .iter()
            .map(|n| Peer {
                name: n.to_string(),
                url: format!("https://{n}.invalid:9899"),
            })
            .collect();
        let p = Peers::new(
            me.into(),
            list,
            crate::alert::channel::resolve(&crate::config::SecretRef::Value(
                "0123456789abcdef".into(),
            ))
            .unwrap(),
            None,
            Duration::from_secs(1),
        )
        .unwrap();
        let names: Vec<String> = peers.iter().map(|s| s.to_string()).collect();
        let health = Health::new(&names, &[]);
        (
            Senders::new(Arc::new(Voting { peers: p }), health.clone()),
            health,
        )
    }

    fn down(site: &str, seen: &[(&str, &str)]) -> Alert {
        let mut a = Alert::bare(
            format!("{site}-down"),
            AlertKind::Down,
            site.into(),
            Level::Down,
            SystemTime::UNIX_EPOCH,
        );
        a.cause = Some(Cause::TcpRefused);
        a.seen = seen
            .iter()
            .map(|(v, verdict)| Seen {
                vantage: v.to_string(),
                verdict: verdict.to_string(),
                cause: None,
                detail: String::new(),
                earlier: false,
            })
            .collect();
        a
    }

    #[test]
    fn an_owner_that_confirms_late_asks_those_that_confirmed_first() {
        let all = ["fra1", "ams1", "nyc1"];
        let owner = vote::owner("shop", all).unwrap();
        let others: Vec<&str> = all.iter().copied().filter(|o| *o != owner).collect();
        let (s, _) = senders(owner, &others);
        let seen: Vec<(&str, &str)> = all.iter().map(|v| (*v, "down")).collect();
        let mut a = down("shop", &seen);
        assert_eq!(
            s.decide(&a, &[]),
            Decision::Send,
            "the first to confirm sends"
        );
        for v in a.seen.iter_mut().filter(|v| v.vantage != owner) {
            v.earlier = true;
        }
        match s.decide(&a, &[]) {
            Decision::Standby { mut ask, wait } => {
                ask.sort();
                let mut want: Vec<String> = others.iter().map(|s| s.to_string()).collect();
                want.sort();
                assert_eq!((ask, wait), (want, false));
            }
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn exactly_one_vantage_sends_each_sites_alert() {
        let all = ["fra1", "ams1", "nyc1"];
        for site in ["shop", "blog", "api", "www", "mail", "wiki"] {
            let seen: Vec<(&str, &str)> = all.iter().map(|v| (*v, "down")).collect();
            let a = down(site, &seen);
            let senders: Vec<&str> = all
                .iter()
                .filter(|me| {
                    let others: Vec<&str> = all.iter().copied().filter(|o| o != *me).collect();
                    senders(me, &others).0.decide(&a, &[]) == Decision::Send
                })
                .copied()
                .collect();
            assert_eq!(senders.len(), 1, "{site}: {senders:?}");
            assert_eq!(Some(senders[0]), vote::owner(site, all));
        }
    }

    #[test]
    fn a_vantage_that_saw_the_site_up_is_not_the_owner() {
        // Whoever owns "shop" among all three: if it voted up, another sends.
        let all = ["fra1", "ams1", "nyc1"];
        let owner = vote::owner("shop", all).unwrap();
        let seen: Vec<(&str, &str)> = all
            .iter()
            .map(|v| (*v, if *v == owner { "up" } else { "down" }))
            .collect();
        let a = down("shop", &seen);
        let second = vote::owner("shop", all.iter().copied().filter(|v| *v != owner)).unwrap();
        let others: Vec<&str> = all.iter().copied().filter(|o| *o != second).collect();
        assert_eq!(senders(second, &others).0.decide(&a, &[]), Decision::Send);
    }

    #[test]
    fn a_silent_owner_hands_over_to_the_next() {
        let all = ["fra1", "ams1", "nyc1"];
        let owner = vote::owner("shop", all).unwrap();
        let second = vote::owner("shop", all.iter().copied().filter(|v| *v != owner)).unwrap();
        let others: Vec<&str> = all.iter().copied().filter(|o| *o != second).collect();
        let (s, health) = senders(second, &others);
        let seen: Vec<(&str, &str)> = all.iter().map(|v| (*v, "down")).collect();
        let a = down("shop", &seen);
        assert!(
            matches!(s.decide(&a, &[]), Decision::Standby { ref ask, wait: true } if ask[0] == owner),
            "{:?}",
            s.decide(&a, &[])
        );
        // The owner misses a check: the next one sends at once.
        let gone = vec![(owner.to_string(), Err("unreachable".to_string()))];
        health.record(gone, SystemTime::now(), true);
        assert_eq!(s.decide(&a, &[]), Decision::Send);
    }

    #[test]
    fn what_only_this_vantage_sees_it_says_itself() {
        let (s, _) = senders("fra1", &["ams1", "nyc1"]);
        let mut a = down("shop", &[("fra1", "down"), ("ams1", "up"), ("nyc1", "up")]);
        a.kind = AlertKind::Degraded;
        a.cause = Some(Cause::VantagePartial);
        assert_eq!(s.decide(&a, &[]), Decision::Send);
        a.kind = AlertKind::NetworkLost;
        assert_eq!(s.decide(&a, &[]), Decision::Send);
    }

    #[test]
    fn a_lost_vantage_is_reported_by_one_of_the_others() {
        let a = crate::cluster::health::vantage_lost(
            "nyc1",
            "x",
            SystemTime::UNIX_EPOCH,
            SystemTime::UNIX_EPOCH,
            "gone",
        );
        let (fra, _) = senders("fra1", &["ams1", "nyc1"]);
        let (ams, _) = senders("ams1", &["fra1", "nyc1"]);
        let sends = [&fra, &ams]
            .iter()
            .filter(|s| s.decide(&a, &[]) == Decision::Send)
            .count();
        assert_eq!(sends, 1);
    }
}
