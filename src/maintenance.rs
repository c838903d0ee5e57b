//! Maintenance windows: planned work during which covered sites and
//! heartbeats are still probed and judged, but page nobody.
//!
//! A window is evaluated by *time*, never by a timer firing: "is `now`
//! inside the latest occurrence plus its duration?" is asked on every
//! probe, so a restart or a reload inside a window keeps it, and a window
//! that ended while sitewatch was stopped is simply over. [`Windows`] is
//! the set in force, swapped whole on reload.
//!
//! What a window does (the rest of sitewatch asks through [`Windows`]):
//!
//! - a change of a covered site makes no alert and opens no incident; a
//!   recovery of an outage announced before the window still closes it;
//! - reminders of a covered site's open outage pause;
//! - when the window is over, a site whose current state began inside it
//!   starts over and must confirm it again (`confirm_down`): one still down
//!   alerts "still down after maintenance", one that came back sends
//!   nothing;
//! - with `uptime = "exclude"` (the default) its probes are left out of
//!   uptime, like those made while the monitor's own network was down.

use crate::config::{MaintenanceSpec, SiteSpec, When};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// One occurrence of a window: from `start` to `end`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Occurrence {
    /// The window's id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// When it begins.
    #[serde(with = "crate::timefmt")]
    pub start: SystemTime,
    /// When it ends.
    #[serde(with = "crate::timefmt")]
    pub end: SystemTime,
    /// Whether its time is left out of uptime.
    #[serde(skip)]
    pub exclude_uptime: bool,
}

fn occurrence(w: &MaintenanceSpec, start: SystemTime, end: SystemTime) -> Occurrence {
    Occurrence {
        id: w.id.clone(),
        title: w.title.clone(),
        start,
        end,
        exclude_uptime: w.exclude_uptime,
    }
}

/// The occurrence of `w` in force at `now`, if any (start inclusive, end
/// exclusive).
pub fn active(w: &MaintenanceSpec, now: SystemTime) -> Option<Occurrence> {
    match &w.when {
        When::Once { start, end } => {
            (*start <= now && now < *end).then(|| occurrence(w, *start, *end))
        }
        When::Every { schedule, duration } => {
            let start = schedule.latest_at_or_before(now)?;
            let end = start + *duration;
            (now < end).then(|| occurrence(w, start, end))
        }
    }
}

/// The latest occurrence of `w` that ended at or before `now`.
pub fn last_ended(w: &MaintenanceSpec, now: SystemTime) -> Option<Occurrence> {
    match &w.when {
        When::Once { start, end } => (*end <= now).then(|| occurrence(w, *start, *end)),
        When::Every { schedule, duration } => {
            let back = now.checked_sub(*duration)?;
            let start = schedule.latest_at_or_before(back)?;
            Some(occurrence(w, start, start + *duration))
        }
    }
}

/// The next occurrence of `w` that begins after `now`.
pub fn next(w: &MaintenanceSpec, now: SystemTime) -> Option<Occurrence> {
    match &w.when {
        When::Once { start, end } => (*start > now).then(|| occurrence(w, *start, *end)),
        When::Every { schedule, duration } => {
            let start = schedule.next_after(now)?;
            Some(occurrence(w, start, start + *duration))
        }
    }
}

/// Whether `w` covers `site` (by name, or by one of its tags).
pub fn covers(w: &MaintenanceSpec, site: &SiteSpec) -> bool {
    w.sites.contains(&site.name) || w.tags.iter().any(|t| site.tags.contains(t))
}

/// The windows in force, shared by the scheduler, the dispatcher and the
/// API; swapped whole on reload. Cheap to clone.
#[derive(Clone, Default)]
pub struct Windows {
    inner: Arc<RwLock<Indexed>>,
}

/// The windows, and which of them name each site and each tag: asking
/// which windows cover a site costs the same however many sites and
/// windows there are.
#[derive(Default)]
struct Indexed {
    all: Vec<Arc<MaintenanceSpec>>,
    by_name: HashMap<String, Vec<usize>>,
    by_tag: HashMap<String, Vec<usize>>,
}

impl Indexed {
    fn new(all: Vec<Arc<MaintenanceSpec>>) -> Indexed {
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_tag: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, w) in all.iter().enumerate() {
            for n in &w.sites {
                by_name.entry(n.clone()).or_default().push(i);
            }
            for t in &w.tags {
                by_tag.entry(t.clone()).or_default().push(i);
            }
        }
        Indexed {
            all,
            by_name,
            by_tag,
        }
    }

    /// The windows that cover `site`, each once.
    fn covering<'a>(&'a self, site: &SiteSpec) -> impl Iterator<Item = &'a MaintenanceSpec> {
        let mut hits: Vec<usize> = Vec::new();
        if !self.all.is_empty() {
            hits.extend(self.by_name.get(&site.name).into_iter().flatten());
            for t in &site.tags {
                hits.extend(self.by_tag.get(t).into_iter().flatten());
            }
            hits.sort_unstable();
            hits.dedup();
        }
        hits.into_iter().map(|i| self.all[i].as_ref())
    }
}

impl Windows {
    /// The set `windows`.
    pub fn new(windows: Vec<Arc<MaintenanceSpec>>) -> Windows {
        Windows {
            inner: Arc::new(RwLock::new(Indexed::new(windows))),
        }
    }

    /// Switches to the windows of a new configuration.
    pub fn set(&self, windows: Vec<Arc<MaintenanceSpec>>) {
        let indexed = Indexed::new(windows);
        *self.inner.write().unwrap_or_else(|p| p.into_inner()) = indexed;
    }

    fn all(&self) -> Vec<Arc<MaintenanceSpec>> {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .all
            .clone()
    }

    /// The occurrence covering `site` at `now`, if any (the one that ends
    /// last, when several overlap).
    pub fn covering(&self, site: &SiteSpec, now: SystemTime) -> Option<Occurrence> {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .covering(site)
            .filter_map(|w| active(w, now))
            .max_by_key(|o| o.end)
    }

    /// The latest occurrence covering `site` that is over at `now`.
    pub fn last_ended(&self, site: &SiteSpec, now: SystemTime) -> Option<Occurrence> {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .covering(site)
            .filter_map(|w| last_ended(w, now))
            .max_by_key(|o| o.end)
    }

    /// Occurrences in force or beginning within each window's `announce`,
    /// soonest first (for the page).
    pub fn announced(&self, now: SystemTime) -> Vec<Occurrence> {
        let mut out: Vec<Occurrence> = self
            .all()
            .iter()
            .filter_map(|w| {
                active(w, now).or_else(|| next(w, now).filter(|o| o.start <= now + w.announce))
            })
            .collect();
        out.sort_by_key(|o| o.start);
        out
    }
}

/// How long a window lasts, for messages.
pub fn length(o: &Occurrence) -> Duration {
    o.end.duration_since(o.start).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heartbeat::cron::CronSchedule;

    fn t(s: &str) -> SystemTime {
        humantime::parse_rfc3339(s).unwrap()
    }

    fn weekly() -> MaintenanceSpec {
        // The second Tuesday of the month, 22:00 to 23:30 in Berlin.
        MaintenanceSpec {
            id: "patch-tuesday".into(),
            title: "Patch Tuesday".into(),
            sites: vec!["db".into()],
            tags: vec!["linux".into()],
            when: When::Every {
                schedule: Box::new(CronSchedule::parse("0 22 * * TUE#2", "Europe/Berlin").unwrap()),
                duration: Duration::from_secs(90 * 60),
            },
            exclude_uptime: true,
            announce: Duration::from_secs(72 * 3600),
        }
    }

    #[test]
    fn a_recurring_window_is_in_force_from_its_start_to_its_end() {
        let w = weekly();
        // 2026-11-10 is November's second Tuesday; 22:00 CET = 21:00Z.
        assert_eq!(active(&w, t("2026-11-10T20:59:59Z")), None);
        let o = active(&w, t("2026-11-10T21:00:00Z")).unwrap();
        assert_eq!(o.start, t("2026-11-10T21:00:00Z"));
        assert_eq!(o.end, t("2026-11-10T22:30:00Z"));
        assert!(active(&w, t("2026-11-10T22:29:59Z")).is_some());
        assert_eq!(
            active(&w, t("2026-11-10T22:30:00Z")),
            None,
            "the end is exclusive"
        );
        assert_eq!(
            last_ended(&w, t("2026-11-10T22:30:00Z")).map(|o| o.start),
            Some(t("2026-11-10T21:00:00Z"))
        );
        // Summer time: 2026-07-14, 22:00 CEST = 20:00Z.
        assert!(active(&w, t("2026-07-14T20:00:00Z")).is_some());
        assert_eq!(
            next(&w, t("2026-11-11T00:00:00Z")).map(|o| o.start),
            Some(t("2026-12-08T21:00:00Z"))
        );
    }

    #[test]
    fn a_one_off_window_and_what_it_covers() {
        let w = MaintenanceSpec {
            when: When::Once {
                start: t("2026-12-01T02:00:00Z"),
                end: t("2026-12-01T03:00:00Z"),
            },
            ..weekly()
        };
        assert!(active(&w, t("2026-12-01T02:30:00Z")).is_some());
        assert!(active(&w, t("2026-12-01T03:00:00Z")).is_none());
        assert!(last_ended(&w, t("2026-12-01T02:30:00Z")).is_none());
        assert!(last_ended(&w, t("2026-12-01T03:00:00Z")).is_some());
        let target = |name: &str, tags: &[&str]| {
            let mut s = SiteSpec::with_defaults(
                name,
                crate::config::parse_target("tcp://127.0.0.1:1").unwrap(),
                Duration::from_secs(1),
            );
            s.tags = tags.iter().map(|t| t.to_string()).collect();
            s
        };
        assert!(covers(&w, &target("db", &[])));
        assert!(covers(&w, &target("web", &["linux"])));
        assert!(!covers(&w, &target("web", &["windows"])));
        let windows = Windows::new(vec![Arc::new(w)]);
        assert_eq!(
            windows.announced(t("2026-11-27T00:00:00Z")).len(),
            0,
            "more than 72 h ahead"
        );
        assert_eq!(windows.announced(t("2026-11-29T12:00:00Z")).len(), 1);
    }

    #[test]
    fn a_site_is_covered_by_the_windows_naming_it_or_its_tags_each_once() {
        let target = crate::config::parse_target("http://127.0.0.1:9/").unwrap();
        let mut db = SiteSpec::with_defaults("db", target.clone(), Duration::from_secs(5));
        db.tags = vec!["linux".into(), "mysql".into()];
        let web = SiteSpec::with_defaults("web", target, Duration::from_secs(5));
        let mut both = weekly();
        both.id = "both".into();
        both.tags = vec!["linux".into(), "mysql".into()];
        let mut other = weekly();
        other.id = "other".into();
        other.sites = vec!["cache".into()];
        other.tags = Vec::new();
        let set = Windows::new(vec![Arc::new(weekly()), Arc::new(both), Arc::new(other)]);
        let inside = t("2026-11-10T21:30:00Z");
        let ids = |site: &SiteSpec| -> Vec<String> {
            set.inner
                .read()
                .unwrap()
                .covering(site)
                .map(|w| w.id.clone())
                .collect()
        };
        assert_eq!(ids(&db), ["patch-tuesday", "both"]);
        assert!(ids(&web).is_empty());
        assert!(set.covering(&db, inside).is_some());
        assert!(set.covering(&web, inside).is_none());
        set.set(Vec::new());
        assert!(ids(&db).is_empty());
    }
}
