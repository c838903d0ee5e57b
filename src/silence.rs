//! Silences: ad hoc, private mutes ("I am deploying blog for 30 minutes"),
//! in the shape of Alertmanager's v2 silences so that its tools and habits
//! carry over. A silence mutes alerts only: probes, states, history and
//! the page go on. Maintenance windows are the planned, public kind.
//!
//! A silence has matchers on the labels of an alert (`site`, `tag`,
//! `cause`, `heartbeat`), a start and an end; it mutes an alert when every
//! matcher matches and `now` is in `[startsAt, endsAt)`. Silences are
//! saved in the state database before they are acknowledged, so they
//! survive a restart; expiring one sets its end to now.

use crate::config::SiteSpec;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// The labels a matcher may name.
pub const LABELS: [&str; 4] = ["site", "tag", "cause", "heartbeat"];
/// The most matchers one silence may have.
pub const MAX_MATCHERS: usize = 16;
/// The longest value or pattern of a matcher, and of `createdBy`, in bytes.
pub const MAX_VALUE_BYTES: usize = 256;
/// The longest comment, in bytes.
pub const MAX_COMMENT_BYTES: usize = 1024;
/// The most silences pending or active at once.
pub const MAX_SILENCES: usize = 1000;
/// How long an expired silence stays listed.
pub const KEEP_EXPIRED: Duration = Duration::from_secs(7 * 24 * 3600);

/// One matcher, as Alertmanager writes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Matcher {
    /// The label: `site`, `tag`, `cause` or `heartbeat`.
    pub name: String,
    /// The value, or a pattern when `is_regex`.
    pub value: String,
    /// Whether `value` is a regular expression (anchored at both ends).
    pub is_regex: bool,
    /// `false` negates the matcher (`!=`, `!~`).
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

/// A silence, as stored and as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    /// Its id.
    pub id: String,
    /// All must match.
    pub matchers: Vec<Matcher>,
    /// When it begins to mute.
    #[serde(with = "crate::timefmt")]
    pub starts_at: SystemTime,
    /// When it stops (exclusive).
    #[serde(with = "crate::timefmt")]
    pub ends_at: SystemTime,
    /// Who made it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// When it was last written.
    #[serde(with = "crate::timefmt")]
    pub updated_at: SystemTime,
}

/// `pending`, `active` or `expired` at `now`.
pub fn state(s: &Silence, now: SystemTime) -> &'static str {
    if now < s.starts_at {
        "pending"
    } else if now < s.ends_at {
        "active"
    } else {
        "expired"
    }
}

/// What an alert is matched on.
#[derive(Clone, Debug, Default)]
pub struct Labels<'a> {
    /// The site's (or heartbeat's) name.
    pub site: &'a str,
    /// Its tags.
    pub tags: &'a [String],
    /// The alert's cause code, if any.
    pub cause: Option<&'a str>,
    /// Whether the site is a heartbeat.
    pub heartbeat: bool,
}

impl<'a> Labels<'a> {
    /// The labels of an alert about `site` with `cause`.
    pub fn of(site: &'a SiteSpec, cause: Option<&'a str>) -> Labels<'a> {
        Labels {
            site: &site.name,
            tags: &site.tags,
            cause,
            heartbeat: site.heartbeat.is_some(),
        }
    }
}

/// A matcher ready to match: its pattern compiled.
#[derive(Clone, Debug)]
struct Compiled {
    name: String,
    test: Test,
    equal: bool,
}

#[derive(Clone, Debug)]
enum Test {
    Is(String),
    Like(regex::Regex),
}

impl Test {
    fn matches(&self, v: &str) -> bool {
        match self {
            Test::Is(s) => s == v,
            Test::Like(r) => r.is_match(v),
        }
    }
}

impl Compiled {
    fn new(m: &Matcher) -> Result<Compiled, String> {
        if !LABELS.contains(&m.name.as_str()) {
            return Err(format!(
                "a matcher's name is one of {}, not \"{}\"",
                LABELS.join(", "),
                m.name
            ));
        }
        if m.value.len() > MAX_VALUE_BYTES {
            return Err(format!(
                "a matcher's value is at most {MAX_VALUE_BYTES} bytes"
            ));
        }
        let test = if m.is_regex {
            regex::RegexBuilder::new(&format!("^(?:{})$", m.value))
                .size_limit(1 << 20)
                .build()
                .map(Test::Like)
                .map_err(|e| {
                    format!(
                        "the pattern \"{}\" is not a regular expression: {e}",
                        m.value
                    )
                })?
        } else {
            Test::Is(m.value.clone())
        };
        Ok(Compiled {
            name: m.name.clone(),
            test,
            equal: m.is_equal,
        })
    }

    fn matches(&self, l: &Labels<'_>) -> bool {
        let hit = match self.name.as_str() {
            "site" => self.test.matches(l.site),
            "heartbeat" => l.heartbeat && self.test.matches(l.site),
            "cause" => self.test.matches(l.cause.unwrap_or("")),
            // A tag matcher matches when any of the tags does; with no tag
            // the value tested is empty.
            "tag" if l.tags.is_empty() => self.test.matches(""),
            "tag" => l.tags.iter().any(|t| self.test.matches(t)),
            _ => false,
        };
        hit == self.equal
    }
}

/// Checks a silence as posted; returns it with its matchers compiled.
pub fn check(s: &Silence) -> Result<(), String> {
    if s.matchers.is_empty() {
        return Err("a silence needs at least one matcher".to_string());
    }
    if s.matchers.len() > MAX_MATCHERS {
        return Err(format!("a silence has at most {MAX_MATCHERS} matchers"));
    }
    for m in &s.matchers {
        Compiled::new(m)?;
    }
    if s.ends_at <= s.starts_at {
        return Err("`endsAt` must come after `startsAt`".to_string());
    }
    if s.created_by.trim().is_empty() {
        return Err("`createdBy` must say who made the silence".to_string());
    }
    if s.created_by.len() > MAX_VALUE_BYTES || s.comment.len() > MAX_COMMENT_BYTES {
        return Err(format!(
            "`createdBy` is at most {MAX_VALUE_BYTES} bytes and `comment` at most {MAX_COMMENT_BYTES}"
        ));
    }
    Ok(())
}

#[derive(Clone, Debug)]
struct Entry {
    silence: Silence,
    matchers: Vec<Compiled>,
}

/// The silences, shared by the API (which changes them) and the
/// dispatcher (which asks them). Cheap to clone.
#[derive(Clone, Default)]
pub struct Silences {
    inner: Arc<RwLock<Vec<Entry>>>,
}

impl Silences {
    /// The set read back at start (entries that do not compile any more
    /// are dropped with a log line).
    pub fn new(saved: Vec<Silence>) -> Silences {
        let set = Silences::default();
        for s in saved {
            if let Err(e) = set.put(s.clone()) {
                tracing::error!(silence = %s.id, error = %e, "a saved silence is no longer valid; dropped");
            }
        }
        set
    }

    /// Adds `s`, or replaces the silence with its id.
    pub fn put(&self, s: Silence) -> Result<(), String> {
        check(&s)?;
        let matchers = s
            .matchers
            .iter()
            .map(Compiled::new)
            .collect::<Result<Vec<_>, _>>()?;
        let mut all = self.inner.write().unwrap_or_else(|p| p.into_inner());
        // Silences that ended long ago are forgotten (as the database does).
        let keep = SystemTime::now()
            .checked_sub(KEEP_EXPIRED)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        all.retain(|e| e.silence.id != s.id && e.silence.ends_at >= keep);
        all.push(Entry {
            silence: s,
            matchers,
        });
        Ok(())
    }

    /// Every silence, newest first.
    pub fn list(&self) -> Vec<Silence> {
        let mut out: Vec<Silence> = self
            .inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|e| e.silence.clone())
            .collect();
        out.sort_by_key(|s| std::cmp::Reverse(s.updated_at));
        out
    }

    /// The silence with `id`.
    pub fn get(&self, id: &str) -> Option<Silence> {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|e| e.silence.id == id)
            .map(|e| e.silence.clone())
    }

    /// How many silences are pending or active at `now`.
    pub fn live(&self, now: SystemTime) -> usize {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|e| e.silence.ends_at > now)
            .count()
    }

    /// How many silences are kept.
    pub fn len(&self) -> usize {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no silence is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The id of an active silence that mutes an alert with `labels` at
    /// `now`, if any.
    pub fn muting(&self, labels: &Labels<'_>, now: SystemTime) -> Option<String> {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|e| {
                state(&e.silence, now) == "active" && e.matchers.iter().all(|m| m.matches(labels))
            })
            .map(|e| e.silence.id.clone())
    }
}

/// A new silence id: 16 random bytes as hex (a UUID's worth).
pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).is_err() {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        bytes = nanos.to_le_bytes();
    }
    let h: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, value: &str, re: bool, eq: bool) -> Matcher {
        Matcher {
            name: name.into(),
            value: value.into(),
            is_regex: re,
            is_equal: eq,
        }
    }

    /// Times in seconds from a moment of this test run (a silence that
    /// ended a week before now is forgotten).
    static BASE: std::sync::LazyLock<SystemTime> = std::sync::LazyLock::new(SystemTime::now);

    fn silence(matchers: Vec<Matcher>, from: u64, to: u64) -> Silence {
        let t = |s| *BASE + Duration::from_secs(s);
        Silence {
            id: new_id(),
            matchers,
            starts_at: t(from),
            ends_at: t(to),
            created_by: "ops".into(),
            comment: "deploy".into(),
            updated_at: t(from),
        }
    }

    fn at(s: u64) -> SystemTime {
        *BASE + Duration::from_secs(s)
    }

    #[test]
    fn matchers_mute_exactly_their_alerts_while_active() {
        let set = Silences::default();
        set.put(silence(vec![m("site", "blog", false, true)], 100, 200))
            .unwrap();
        set.put(silence(
            vec![
                m("tag", "wp-.*", true, true),
                m("cause", "http.slow", false, false),
            ],
            100,
            200,
        ))
        .unwrap();
        let tags = vec!["wp-prod".to_string()];
        let blog = Labels {
            site: "blog",
            tags: &[],
            cause: Some("tcp.refused"),
            heartbeat: false,
        };
        let shop = Labels {
            site: "shop",
            tags: &tags,
            cause: Some("http.bad_gateway"),
            heartbeat: false,
        };
        let shop_slow = Labels {
            cause: Some("http.slow"),
            ..shop.clone()
        };
        let other = Labels {
            site: "api",
            tags: &[],
            cause: None,
            heartbeat: false,
        };
        assert!(set.muting(&blog, at(99)).is_none(), "pending");
        assert!(set.muting(&blog, at(100)).is_some());
        assert!(set.muting(&blog, at(200)).is_none(), "the end is exclusive");
        assert!(set.muting(&shop, at(150)).is_some(), "by tag pattern");
        assert!(set.muting(&shop_slow, at(150)).is_none(), "negated cause");
        assert!(set.muting(&other, at(150)).is_none());
    }

    #[test]
    fn a_heartbeat_matcher_matches_heartbeats_only() {
        let set = Silences::default();
        set.put(silence(vec![m("heartbeat", "backup", false, true)], 0, 10))
            .unwrap();
        let mut l = Labels {
            site: "backup",
            tags: &[],
            cause: None,
            heartbeat: true,
        };
        assert!(set.muting(&l, at(5)).is_some());
        l.heartbeat = false;
        assert!(set.muting(&l, at(5)).is_none());
    }

    #[test]
    fn bad_silences_are_refused_with_a_reason() {
        let no = |s: Silence| check(&s).unwrap_err();
        assert!(no(silence(vec![], 0, 10)).contains("at least one matcher"));
        assert!(no(silence(vec![m("instance", "x", false, true)], 0, 10)).contains("site, tag"));
        assert!(
            no(silence(vec![m("site", "(", true, true)], 0, 10))
                .contains("not a regular expression")
        );
        assert!(no(silence(vec![m("site", "x", false, true)], 10, 10)).contains("endsAt"));
        let json =
            serde_json::to_string(&silence(vec![m("site", "x", false, true)], 0, 10)).unwrap();
        assert!(
            json.contains("\"isRegex\":false") && json.contains("\"startsAt\""),
            "{json}"
        );
    }
}
