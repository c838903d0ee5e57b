//! The outcomes of a site's recent probes, for failures too scattered to
//! confirm an outage: `intermittent_failures` of the last
//! `intermittent_window` probes failed, and the site is degraded
//! (`site.intermittent`) though it never stayed down.
//!
//! Pure and small: one byte per probe, at most [`MAX_WINDOW`] of them.

use crate::diagnosis::Cause;
use serde::{Deserialize, Serialize};

/// The most probes remembered.
pub const MAX_WINDOW: usize = 32;

/// The last [`MAX_WINDOW`] outcomes, oldest first: 0 for a probe that
/// worked (up or degraded), else 1 + the index of its cause in
/// [`Cause::ALL`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recent {
    slots: [u8; MAX_WINDOW],
    /// Outcomes held (up to [`MAX_WINDOW`]).
    len: u8,
}

impl Recent {
    /// Adds one probe's outcome: its cause when it failed (down).
    pub fn push(&mut self, failed: Option<Cause>) {
        let code = failed.map_or(0, |c| {
            Cause::ALL
                .iter()
                .position(|&k| k == c)
                .map_or(0, |i| u8::try_from(i + 1).unwrap_or(0))
        });
        let len = usize::from(self.len);
        if len < MAX_WINDOW {
            self.slots[len] = code;
            self.len += 1;
        } else {
            self.slots.copy_within(1.., 0);
            self.slots[MAX_WINDOW - 1] = code;
        }
    }

    /// Forgets every outcome: the failures of a confirmed outage are not
    /// scattered ones.
    pub fn clear(&mut self) {
        *self = Recent::default();
    }

    /// The last `window` outcomes held (fewer at first).
    fn last(&self, window: u8) -> &[u8] {
        let len = usize::from(self.len);
        let n = usize::from(window).min(len);
        &self.slots[len - n..len]
    }

    /// Probes counted among the last `window` (fewer at first).
    pub fn probes(&self, window: u8) -> u8 {
        u8::try_from(self.last(window).len()).unwrap_or(u8::MAX)
    }

    /// Failures among the last `window` probes.
    pub fn failures(&self, window: u8) -> u8 {
        u8::try_from(self.last(window).iter().filter(|&&c| c != 0).count()).unwrap_or(u8::MAX)
    }

    /// The causes of the failures among the last `window` probes, most
    /// frequent first (then in contract order), with their counts.
    pub fn causes(&self, window: u8) -> Vec<(Cause, u8)> {
        let mut counts: Vec<(Cause, u8)> = Vec::new();
        for &code in self.last(window).iter().filter(|&&c| c != 0) {
            let Some(&cause) = Cause::ALL.get(usize::from(code) - 1) else {
                continue;
            };
            match counts.iter_mut().find(|(c, _)| *c == cause) {
                Some((_, n)) => *n += 1,
                None => counts.push((cause, 1)),
            }
        }
        counts.sort_by_key(|&(cause, n)| {
            (
                std::cmp::Reverse(n),
                Cause::ALL.iter().position(|&c| c == cause),
            )
        });
        counts
    }

    /// "3 of the last 20 probes failed: tcp.timeout ×2, http.bad_gateway ×1".
    pub fn summary(&self, window: u8) -> String {
        let causes: Vec<String> = self
            .causes(window)
            .iter()
            .map(|(c, n)| format!("{c} ×{n}"))
            .collect();
        let failed = self.failures(window);
        let probes = self.probes(window);
        if causes.is_empty() {
            format!("none of the last {probes} probes failed")
        } else {
            format!(
                "{failed} of the last {probes} probes failed: {}",
                causes.join(", ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_slide_with_the_window() {
        let mut r = Recent::default();
        assert_eq!((r.probes(20), r.failures(20)), (0, 0));
        r.push(Some(Cause::TcpTimeout));
        for _ in 0..5 {
            r.push(None);
        }
        r.push(Some(Cause::HttpBadGateway));
        r.push(Some(Cause::TcpTimeout));
        assert_eq!((r.probes(20), r.failures(20)), (8, 3));
        assert_eq!(r.failures(2), 2);
        assert_eq!(
            r.causes(20),
            [(Cause::TcpTimeout, 2), (Cause::HttpBadGateway, 1)]
        );
        assert_eq!(
            r.summary(20),
            "3 of the last 8 probes failed: tcp.timeout ×2, http.bad_gateway ×1"
        );
        // The oldest failure slides out after MAX_WINDOW more probes.
        for _ in 0..(MAX_WINDOW - 8 + 1) {
            r.push(None);
        }
        assert_eq!(r.probes(32), 32);
        assert_eq!(r.failures(32), 2);
        assert_eq!(r.failures(20), 0);
        assert_eq!(r.summary(20), "none of the last 20 probes failed");
        r.clear();
        assert_eq!(r, Recent::default());
    }

    #[test]
    fn every_cause_survives_the_byte_and_serde() {
        let mut r = Recent::default();
        for &c in Cause::ALL.iter().take(MAX_WINDOW) {
            r.push(Some(c));
        }
        let back: Recent = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        let counted: usize = back.causes(32).iter().map(|(_, n)| usize::from(*n)).sum();
        assert_eq!(counted, MAX_WINDOW);
    }
}
