//! `GET /status` for a fleet: the sites that match a filter (status, tag,
//! text), a page at a time, in configuration order, with a cursor to the
//! next page. Only the sites returned are rendered into views.

use super::view::{Ctx, Snap};
use super::{Entry, SiteView, StatusStore, view};
use crate::state::Level;
use serde::Serialize;

/// The most sites one page may hold.
pub const MAX_LIMIT: usize = 10_000;
/// Sites per page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 1000;

/// Which sites a page lists.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    /// Any of these statuses (empty: every status).
    pub statuses: Vec<Level>,
    /// Any of these tags (empty: every site).
    pub tags: Vec<String>,
    /// Text the name or URL contains, lowercase (empty: every site).
    pub text: String,
}

impl Filter {
    fn admits(&self, e: &Entry) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&e.state.health.level()))
            && (self.tags.is_empty() || e.spec.tags.iter().any(|t| self.tags.contains(t)))
            && (self.text.is_empty()
                || e.spec.name.to_ascii_lowercase().contains(&self.text)
                || e.spec.target.url.to_ascii_lowercase().contains(&self.text))
    }
}

/// One page of sites.
#[derive(Clone, Debug, Serialize)]
pub struct Page {
    /// The sites of this page, in configuration order.
    pub sites: Vec<SiteView>,
    /// How many sites match the filter in all.
    pub total: usize,
    /// Where the next page starts (`cursor=`), `None` on the last page.
    pub next_cursor: Option<String>,
}

impl StatusStore {
    /// Up to `limit` sites matching `filter`, starting at `cursor` (from
    /// a previous page's `next_cursor`). A cursor names the site it starts
    /// at and its place, so a page after a reload still starts at that
    /// site (or, if it was removed, at its old place).
    pub fn page(&self, filter: &Filter, cursor: Option<&str>, limit: usize) -> Page {
        let (snaps, ctx, total, next_cursor) = self.pick(filter, cursor, limit);
        Page {
            sites: snaps.iter().map(|s| view(s, &ctx)).collect(),
            total,
            next_cursor,
        }
    }

    /// The page's sites, picked under the lock (their views are built
    /// after it is released).
    fn pick(
        &self,
        filter: &Filter,
        cursor: Option<&str>,
        limit: usize,
    ) -> (Vec<Snap>, Ctx, usize, Option<String>) {
        let shared = self.lock();
        let start = cursor.map_or(0, |c| {
            let (at, name) = c.split_once('.').unwrap_or((c, ""));
            shared
                .index
                .get(name)
                .and_then(|slot| shared.order.iter().position(|i| i == slot))
                .or_else(|| at.parse().ok())
                .unwrap_or(0)
        });
        let mut sites = Vec::new();
        let mut total = 0;
        let mut next_cursor = None;
        for (pos, &slot) in shared.order.iter().enumerate() {
            let Some(e) = shared.sites.get(slot).and_then(Option::as_ref) else {
                continue;
            };
            if !filter.admits(e) {
                continue;
            }
            total += 1;
            if pos < start {
                continue;
            }
            if sites.len() < limit {
                sites.push(e.snap());
            } else if next_cursor.is_none() {
                next_cursor = Some(format!("{pos}.{}", e.spec.name));
            }
        }
        (sites, shared.ctx(), total, next_cursor)
    }
}

/// How many sites of each status carry one tag.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TagCount {
    /// The tag (`""` for sites without one).
    pub tag: String,
    /// Up.
    pub up: usize,
    /// Degraded.
    pub degraded: usize,
    /// Down.
    pub down: usize,
    /// Not known yet.
    pub unknown: usize,
}

impl TagCount {
    /// Sites with problems (down or degraded).
    pub fn problems(&self) -> usize {
        self.down + self.degraded
    }

    /// Every site with the tag.
    pub fn total(&self) -> usize {
        self.up + self.degraded + self.down + self.unknown
    }
}

/// What the status page shows of a fleet.
#[derive(Clone, Debug)]
pub struct Board {
    /// The first sites matching the filter, problems first (down, then
    /// degraded, unknown, up), each group in configuration order.
    pub sites: Vec<SiteView>,
    /// How many sites match the filter.
    pub total: usize,
    /// Every tag with its counts per status (of all sites, not only those
    /// matching), problems first, then by name.
    pub tags: Vec<TagCount>,
}

/// The tag of sites without one, in the page's summary.
static UNTAGGED: [String; 1] = [String::new()];

impl StatusStore {
    /// The status page's sites: at most `limit` matching `filter`,
    /// problems first, and the counts per tag. Only the sites shown are
    /// rendered into views.
    pub fn board(&self, filter: &Filter, limit: usize) -> Board {
        let shared = self.lock();
        // Down, degraded, unknown, up: each kept to `limit`.
        let mut groups: [Vec<usize>; 4] = Default::default();
        let mut total = 0;
        let mut tags: std::collections::HashMap<&str, TagCount> = std::collections::HashMap::new();
        for &slot in &shared.order {
            let Some(e) = shared.sites.get(slot).and_then(Option::as_ref) else {
                continue;
            };
            let level = e.state.health.level();
            let names = if e.spec.tags.is_empty() {
                &UNTAGGED[..]
            } else {
                &e.spec.tags[..]
            };
            for tag in names {
                let c = tags.entry(tag.as_str()).or_insert_with(|| TagCount {
                    tag: tag.clone(),
                    ..TagCount::default()
                });
                match level {
                    Level::Up => c.up += 1,
                    Level::Degraded => c.degraded += 1,
                    Level::Down => c.down += 1,
                    Level::Unknown => c.unknown += 1,
                }
            }
            if !filter.admits(e) {
                continue;
            }
            total += 1;
            let group = match level {
                Level::Down => 0,
                Level::Degraded => 1,
                Level::Unknown => 2,
                Level::Up => 3,
            };
            if groups[group].len() < limit {
                groups[group].push(slot);
            }
        }
        let snaps: Vec<Snap> = groups
            .iter()
            .flatten()
            .take(limit)
            .filter_map(|&slot| shared.sites[slot].as_ref())
            .map(super::Entry::snap)
            .collect();
        let ctx = shared.ctx();
        let mut tags: Vec<TagCount> = tags.into_values().collect();
        drop(shared);
        let sites = snaps.iter().map(|s| view(s, &ctx)).collect();
        tags.sort_by(|a, b| {
            b.problems()
                .cmp(&a.problems())
                .then_with(|| a.tag.cmp(&b.tag))
        });
        Board { sites, total, tags }
    }
}
