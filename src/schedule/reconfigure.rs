//! The scheduler's side of a reload, site by site as [`config::diff`] sorts
//! the changes, and its tracking of sites that began failing (the storm
//! signal handed on with each change).

use super::Sinks;
use super::{FAILING_LOOKBACK, Slot, later, offset};
use crate::alert::Forget;
use crate::config::{self, Diff, SiteSpec};
use crate::state::SiteState;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::time::Instant;

/// Sites that began failing recently: how many other sites are failing
/// when one's outage is confirmed tells whether a storm is forming.
#[derive(Default)]
pub(super) struct Failing {
    starts: VecDeque<(Instant, usize)>,
    /// How many of `starts` each site has: counting the others stays
    /// cheap while thousands of sites fail at once.
    per_site: HashMap<usize, usize>,
}

impl Failing {
    pub(super) fn began(&mut self, idx: usize, now: Instant) {
        self.prune(now);
        self.starts.push_back((now, idx));
        *self.per_site.entry(idx).or_default() += 1;
    }

    pub(super) fn others(&mut self, idx: usize, now: Instant) -> usize {
        self.prune(now);
        self.starts.len() - self.per_site.get(&idx).copied().unwrap_or(0)
    }

    fn prune(&mut self, now: Instant) {
        while let Some(&(t, idx)) = self.starts.front()
            && now.saturating_duration_since(t) > FAILING_LOOKBACK
        {
            self.starts.pop_front();
            if let Some(n) = self.per_site.get_mut(&idx) {
                *n -= 1;
                if *n == 0 {
                    self.per_site.remove(&idx);
                }
            }
        }
    }
}

/// Applies a new site list to the running schedule, site by site as
/// [`config::diff`] sorts the changes.
pub(super) fn reconfigure(
    slots: &mut Vec<Option<Slot>>,
    due: &mut BinaryHeap<Reverse<(Instant, usize, u64)>>,
    generation: &mut u64,
    sites: Vec<Arc<SiteSpec>>,
    sinks: &Sinks,
) -> Diff {
    let now = Instant::now();
    let wall = SystemTime::now();
    let mut changes = Diff::default();
    let mut by_name: HashMap<String, usize> = slots
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.as_ref().map(|s| (s.spec.name.clone(), i)))
        .collect();
    // Slots freed by earlier reloads, lowest first: new sites fill them
    // before the list grows.
    let mut free: VecDeque<usize> = slots
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.is_none().then_some(i))
        .collect();
    let mut order = Vec::with_capacity(sites.len());
    for spec in sites {
        let existing = by_name
            .remove(&spec.name)
            .and_then(|i| slots[i].as_mut().map(|slot| (i, slot)));
        let i = match existing {
            Some((i, slot)) => {
                let change = config::diff::site(&slot.spec, &spec);
                if !change.restarts() {
                    // Same probe: state, schedule and a probe in flight go on;
                    // the next result is judged and routed by the new settings.
                    if change.is_none() {
                        changes.unchanged.push(spec.name.clone());
                    } else {
                        changes.kept.push(spec.name.clone());
                    }
                    slot.spec = Arc::clone(&spec);
                    order.push((i, spec, false));
                    continue;
                }
                changes.restarted.push(spec.name.clone());
                // The outage seen through the old settings is closed as
                // forgotten (history, incident, dispatcher) and the fresh
                // state saved with the new probe settings, in one step.
                sinks
                    .history
                    .reset(&spec, Some(SiteState::new(wall)), Forget::Changed, wall);
                i
            }
            None => {
                changes.added.push(spec.name.clone());
                free.pop_front().unwrap_or_else(|| {
                    slots.push(None);
                    slots.len() - 1
                })
            }
        };
        *generation += 1;
        due.push(Reverse((
            later(now, offset(&spec.name, spec.interval)),
            i,
            *generation,
        )));
        slots[i] = Some(Slot {
            spec: Arc::clone(&spec),
            state: SiteState::new(wall),
            running: false,
            voting: false,
            alone_after: None,
            after_maintenance: None,
            generation: *generation,
        });
        order.push((i, spec, true));
    }
    let mut removed: Vec<(usize, String)> = by_name.into_iter().map(|(n, i)| (i, n)).collect();
    removed.sort();
    for (i, name) in removed {
        if let Some(slot) = slots[i].take() {
            sinks.history.reset(&slot.spec, None, Forget::Removed, wall);
        }
        changes.removed.push(name);
    }
    // Heap entries of removed or replaced slots are skipped when they come up.
    sinks.store.reconfigure(&order, wall);
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn failing_counts_the_other_sites_that_began_failing_lately() {
        let mut f = Failing::default();
        let t0 = Instant::now();
        let s = Duration::from_secs;
        f.began(1, t0);
        f.began(2, t0);
        f.began(1, t0 + s(1));
        assert_eq!(f.others(1, t0 + s(2)), 1);
        assert_eq!(f.others(2, t0 + s(2)), 2);
        assert_eq!(f.others(3, t0 + s(2)), 3);
        // The first two are older than the lookback: forgotten.
        let later = t0 + FAILING_LOOKBACK + Duration::from_millis(500);
        assert_eq!(f.others(3, later), 1);
        assert_eq!(f.others(1, later), 0);
        assert_eq!(f.others(2, later), 1);
        assert_eq!(f.per_site.len(), 1, "forgotten sites are not kept");
        assert_eq!(f.others(2, later + s(2)), 0);
        assert!(f.per_site.is_empty());
    }
}
