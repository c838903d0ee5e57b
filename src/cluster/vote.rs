//! The vote of a site's vantages (pure): who can vote, what quorum means,
//! and the verdict; and which live vantage sends a site's chat alerts.
//! No I/O, no clock: the answers and `now` come in.

use super::View;
use crate::diagnosis::{Cause, Status};
use crate::selfcheck::NetState;

pub use crate::config::Quorum;

/// One vantage's ballot on a site.
#[derive(Clone, Debug, PartialEq)]
pub enum Ballot {
    /// It finds the site down, for this cause.
    Down(Cause),
    /// It reaches the site (up or degraded).
    Up,
    /// It cannot vote: why (unreachable, its own network is down, other
    /// probe settings).
    Abstain(String),
}

/// What a peer answered, or why it did not.
pub type Answer = Result<View, String>;

/// A peer's answer as a ballot: it abstains when it did not answer, when
/// its own network is not ok, or when it probes the site with other
/// settings than ours (`probe_key`).
pub fn ballot(answer: &Answer, probe_key: &str) -> Ballot {
    match answer {
        Err(why) => Ballot::Abstain(why.clone()),
        Ok(v) if v.network != NetState::Ok => {
            Ballot::Abstain(format!("its own network is {}", v.network.as_str()))
        }
        Ok(v) if v.probe_key != probe_key => {
            Ballot::Abstain("it probes the site with other settings".to_string())
        }
        Ok(v) => match (v.status, v.cause) {
            (Status::Down, Some(c)) => Ballot::Down(c),
            _ => Ballot::Up,
        },
    }
}

/// The outcome of a vote.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Enough vantages agree (down when asked about a failure, up when
    /// asked about a recovery).
    Agreed,
    /// Some vantages fail and others reach the site: `vantage.partial`.
    Partial,
    /// Not enough agree for a recovery: the outage goes on.
    Disagreed,
    /// Nobody else could vote: judge alone (after one more interval).
    Alone,
}

/// The count of a vote: this vantage's ballot first, then each peer's.
#[derive(Clone, Debug, PartialEq)]
pub struct Tally {
    /// Every vantage and its ballot, this one first.
    pub ballots: Vec<(String, Ballot)>,
    /// Ballots cast (not abstaining).
    pub voters: usize,
    /// Ballots for down.
    pub down: usize,
    /// Ballots for up.
    pub up: usize,
}

impl Tally {
    /// Counts `ballots` (this vantage's first).
    pub fn new(ballots: Vec<(String, Ballot)>) -> Tally {
        let down = ballots
            .iter()
            .filter(|(_, b)| matches!(b, Ballot::Down(_)))
            .count();
        let up = ballots.iter().filter(|(_, b)| *b == Ballot::Up).count();
        Tally {
            voters: down + up,
            down,
            up,
            ballots,
        }
    }

    /// This vantage finds the site down: is it down for enough of them?
    pub fn failure(&self, quorum: Quorum) -> Verdict {
        if self.voters <= 1 {
            return Verdict::Alone;
        }
        if self.down >= quorum.needed(self.voters) {
            Verdict::Agreed
        } else {
            Verdict::Partial
        }
    }

    /// This vantage finds a down site up again: is it up for enough of them?
    pub fn recovery(&self, quorum: Quorum) -> Verdict {
        if self.voters <= 1 {
            return Verdict::Alone;
        }
        if self.up >= quorum.needed(self.voters) {
            Verdict::Agreed
        } else {
            Verdict::Disagreed
        }
    }

    /// Who fails how, in words: "fra1: connection refused (tcp.refused);
    /// ams1: up; nyc1: abstains (unreachable)".
    pub fn summary(&self) -> String {
        self.ballots
            .iter()
            .map(|(name, b)| match b {
                Ballot::Down(c) => format!("{name}: {} ({c})", c.words()),
                Ballot::Up => format!("{name}: up"),
                Ballot::Abstain(why) => format!("{name}: abstains ({why})"),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// A stable 64-bit hash (FNV-1a) of `site ‖ vantage`.
fn weight(site: &str, vantage: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in site.bytes().chain([0u8]).chain(vantage.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The vantage that sends `site`'s alerts to chat and email channels: the
/// first live one in the rendezvous order of (site, vantage). Every
/// vantage computes the same owner from the same live set, and when the
/// owner goes silent the next one takes over.
pub fn owner<'a>(site: &str, live: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    live.into_iter().max_by_key(|v| (weight(site, v), *v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(ballots: &[(&str, Ballot)]) -> Tally {
        Tally::new(
            ballots
                .iter()
                .map(|(n, b)| (n.to_string(), b.clone()))
                .collect(),
        )
    }

    const REFUSED: Ballot = Ballot::Down(Cause::TcpRefused);

    #[test]
    fn quorum_counts_only_those_that_can_vote() {
        let gone = || Ballot::Abstain("unreachable".into());
        let table: Vec<(&str, Tally, Quorum, Verdict)> = vec![
            (
                "all three down",
                tally(&[("a", REFUSED), ("b", REFUSED), ("c", REFUSED)]),
                Quorum::Majority,
                Verdict::Agreed,
            ),
            (
                "only this one down",
                tally(&[("a", REFUSED), ("b", Ballot::Up), ("c", Ballot::Up)]),
                Quorum::Majority,
                Verdict::Partial,
            ),
            (
                "two of three",
                tally(&[("a", REFUSED), ("b", REFUSED), ("c", Ballot::Up)]),
                Quorum::Majority,
                Verdict::Agreed,
            ),
            (
                "one abstains, the other agrees: 2 of 2",
                tally(&[("a", REFUSED), ("b", REFUSED), ("c", gone())]),
                Quorum::Majority,
                Verdict::Agreed,
            ),
            (
                "one abstains, the other disagrees: 1 of 2",
                tally(&[("a", REFUSED), ("b", Ballot::Up), ("c", gone())]),
                Quorum::Majority,
                Verdict::Partial,
            ),
            (
                "everyone else abstains: alone",
                tally(&[("a", REFUSED), ("b", gone()), ("c", gone())]),
                Quorum::Majority,
                Verdict::Alone,
            ),
            (
                "a count of 3 needs all three",
                tally(&[("a", REFUSED), ("b", REFUSED), ("c", Ballot::Up)]),
                Quorum::Count(3),
                Verdict::Partial,
            ),
        ];
        assert!(!table.is_empty());
        for (what, t, q, want) in table {
            assert_eq!(t.failure(q), want, "{what}");
        }
    }

    #[test]
    fn recovery_uses_the_same_votes() {
        let t = tally(&[("a", Ballot::Up), ("b", REFUSED), ("c", REFUSED)]);
        assert_eq!(t.recovery(Quorum::Majority), Verdict::Disagreed);
        let t = tally(&[("a", Ballot::Up), ("b", Ballot::Up), ("c", REFUSED)]);
        assert_eq!(t.recovery(Quorum::Majority), Verdict::Agreed);
        let t = tally(&[("a", Ballot::Up), ("b", Ballot::Abstain("x".into()))]);
        assert_eq!(t.recovery(Quorum::Majority), Verdict::Alone);
    }

    #[test]
    fn the_owner_is_stable_and_the_next_takes_over() {
        let all = ["fra1", "ams1", "nyc1"];
        let owner_all = owner("shop", all).unwrap();
        // Order of the list does not matter.
        assert_eq!(owner("shop", ["nyc1", "fra1", "ams1"]), Some(owner_all));
        // Without the owner, another one (the same for everyone).
        let rest: Vec<&str> = all.iter().copied().filter(|v| *v != owner_all).collect();
        let next = owner("shop", rest.clone()).unwrap();
        assert_ne!(next, owner_all);
        assert_eq!(owner("shop", rest.iter().rev().copied()), Some(next));
        // Sites spread over the vantages.
        let mut counts = std::collections::HashMap::new();
        for i in 0..300 {
            *counts
                .entry(owner(&format!("site-{i}"), all).unwrap())
                .or_insert(0) += 1;
        }
        assert!(counts.values().all(|&n| n > 60), "{counts:?}");
        assert_eq!(owner("shop", []), None);
    }

    #[test]
    fn ballots_abstain_for_the_reasons_given() {
        let view = |network, key: &str| View {
            vantage: "b".into(),
            site: "shop".into(),
            probe_key: key.into(),
            network,
            status: Status::Down,
            cause: Some(Cause::TcpTimeout),
            detail: String::new(),
            hint: None,
            layers: Vec::new(),
            at: std::time::SystemTime::UNIX_EPOCH,
            ms: 1.0,
            judged: None,
        };
        assert_eq!(
            ballot(&Ok(view(NetState::Ok, "k")), "k"),
            Ballot::Down(Cause::TcpTimeout)
        );
        assert!(matches!(
            ballot(&Ok(view(NetState::Offline, "k")), "k"),
            Ballot::Abstain(_)
        ));
        assert!(matches!(
            ballot(&Ok(view(NetState::Ok, "other")), "k"),
            Ballot::Abstain(_)
        ));
        assert!(matches!(
            ballot(&Err("timeout".into()), "k"),
            Ballot::Abstain(_)
        ));
    }
}
