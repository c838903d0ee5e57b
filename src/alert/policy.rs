//! Alert policy that needs memory beyond one transition: flap damping and
//! storm grouping. Pure: `now` is passed in (monotonic for windows, wall
//! time only for what alerts show).

use super::{Alert, AlertKind};
use crate::state::Level;
use std::collections::VecDeque;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// Changes of one site within [`FLAP_WINDOW`] that make it "flapping".
pub const FLAP_CHANGES: usize = 5;
/// The window in which [`FLAP_CHANGES`] changes mean flapping.
pub const FLAP_WINDOW: Duration = Duration::from_secs(20 * 60);
/// A flapping site is settled after this long without a change.
pub const FLAP_SETTLE: Duration = Duration::from_secs(15 * 60);
/// This many sites down for one cause (or one address) within the window
/// are sent as one grouped message.
pub const STORM_MIN: usize = 5;

/// What to do with a site's change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlapVerdict {
    /// Send the alert as usual.
    Pass,
    /// This change makes the site flapping: send one "flapping" alert instead.
    StartFlapping,
    /// The site is flapping: say nothing.
    Suppress,
}

/// Flap damping for one site.
#[derive(Debug, Default)]
pub struct FlapGuard {
    changes: VecDeque<Instant>,
    flapping: bool,
}

impl FlapGuard {
    /// Records a change at `now` and says what to do with its alert.
    pub fn on_change(&mut self, now: Instant) -> FlapVerdict {
        self.changes.push_back(now);
        while self
            .changes
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > FLAP_WINDOW)
        {
            self.changes.pop_front();
        }
        if self.flapping {
            FlapVerdict::Suppress
        } else if self.changes.len() >= FLAP_CHANGES {
            self.flapping = true;
            FlapVerdict::StartFlapping
        } else {
            FlapVerdict::Pass
        }
    }

    /// Whether a flapping site has now been quiet long enough: true once,
    /// when it settles.
    pub fn settled(&mut self, now: Instant) -> bool {
        let quiet = self
            .changes
            .back()
            .is_none_or(|t| now.saturating_duration_since(*t) >= FLAP_SETTLE);
        if self.flapping && quiet {
            self.flapping = false;
            self.changes.clear();
            return true;
        }
        false
    }

    /// Whether the site is flapping now.
    pub fn flapping(&self) -> bool {
        self.flapping
    }

    /// Whether the site is flapping as of `now`: it was, and has not yet
    /// been quiet for [`FLAP_SETTLE`] (what [`FlapGuard::settled`] will
    /// find, without changing anything).
    pub fn flapping_at(&self, now: Instant) -> bool {
        self.flapping
            && self
                .changes
                .back()
                .is_some_and(|t| now.saturating_duration_since(*t) < FLAP_SETTLE)
    }
}

/// The key a storm is grouped by: the cause, or the address when the
/// alerts name one (many sites behind one dead server).
pub fn storm_key(a: &Alert) -> String {
    a.cause
        .map_or_else(|| "unknown".to_string(), |c| c.as_str().to_string())
}

/// One grouped message for many sites down at once.
pub fn storm(members: &[&Alert], hold: Duration, now: SystemTime) -> Alert {
    let first = members[0];
    let mut detail = format!(
        "{} sites went down within {} s:",
        members.len(),
        hold.as_secs().max(1)
    );
    for m in members {
        detail.push_str(&format!("\n- {} ({}): {}", m.site, m.url, m.detail));
    }
    let since = members.iter().map(|m| m.since).min().unwrap_or(first.since);
    let mut a = Alert::bare(
        format!(
            "storm-{}-{}",
            storm_key(first),
            crate::history::unix_ms(since)
        ),
        AlertKind::Storm,
        format!("{} sites", members.len()),
        Level::Down,
        now,
    );
    a.cause = first.cause;
    a.detail = detail;
    a.hint = first.hint.clone();
    a.since = since;
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> Instant {
        // A fixed base keeps the arithmetic exact; only differences matter.
        static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *BASE.get_or_init(Instant::now) + Duration::from_secs(s)
    }

    #[test]
    fn five_changes_in_the_window_make_a_site_flapping_until_it_settles() {
        let mut g = FlapGuard::default();
        let verdicts: Vec<_> = (0..7).map(|i| g.on_change(t(i * 60))).collect();
        use FlapVerdict::*;
        assert_eq!(
            verdicts,
            [Pass, Pass, Pass, Pass, StartFlapping, Suppress, Suppress]
        );
        assert!(!g.settled(t(6 * 60 + 14 * 60)), "quiet for 14 minutes only");
        assert!(g.settled(t(6 * 60 + 15 * 60)));
        assert!(!g.settled(t(6 * 60 + 16 * 60)), "settles once");
        assert_eq!(g.on_change(t(2000)), Pass);
    }

    #[test]
    fn changes_spread_wider_than_the_window_never_flap() {
        let mut g = FlapGuard::default();
        for i in 0..20 {
            assert_eq!(g.on_change(t(i * 6 * 60)), FlapVerdict::Pass, "change {i}");
        }
    }
}
