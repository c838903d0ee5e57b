//! Where pings arrive: the key → heartbeat map (swapped on reload), a rate
//! limit per key, the [`Ledger`], the save of every ping, and the call that
//! has the scheduler judge the heartbeat at once.
//!
//! Shared by the API thread (which receives pings) and the scheduler
//! (which judges); every lock here is held for a map lookup or a record
//! update, never across I/O.

use super::ledger::{Ledger, Ping};
use crate::config::{SiteSpec, check_ping_key};
use crate::history::History;
use crate::schedule::Control;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The largest ping body read, in bytes (the rest is discarded).
pub const BODY_LIMIT: usize = 100 * 1024;
/// Pings one key may send at once before it is slowed down.
const BURST: f64 = 20.0;
/// Pings per second one key may send for as long as it likes.
const RATE: f64 = 2.0;

/// Why a ping was not taken.
#[derive(Debug, PartialEq)]
pub enum Refused {
    /// No heartbeat has this key (the answer does not say more).
    Unknown,
    /// Too many pings with this key: try again after this long.
    TooMany(Duration),
}

/// A token bucket.
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * RATE).min(BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / RATE).max(Duration::from_secs(1)))
        }
    }
}

/// The ping keys of `sites`' heartbeats, read from where sites.toml says
/// they are: key → heartbeat name. Errors name the heartbeat.
pub fn resolve_keys(sites: &[Arc<SiteSpec>]) -> Result<HashMap<String, String>, String> {
    let mut keys = HashMap::new();
    for site in sites {
        let Some(hb) = &site.heartbeat else { continue };
        let key = crate::alert::channel::resolve(&hb.key)
            .map_err(|e| format!("heartbeat {}: ping key: {e}", site.name))?;
        let key = key.expose().to_string();
        check_ping_key(&key).map_err(|e| format!("heartbeat {}: {e}", site.name))?;
        if let Some(other) = keys.insert(key, site.name.clone()) {
            return Err(format!(
                "heartbeats {other} and {} have the same ping key: each needs its own",
                site.name
            ));
        }
    }
    Ok(keys)
}

/// The receiving end of heartbeat pings.
pub struct Hub {
    keys: RwLock<HashMap<String, String>>,
    ledger: Ledger,
    buckets: Mutex<HashMap<String, Bucket>>,
    history: History,
    judge: mpsc::UnboundedSender<Control>,
    started: SystemTime,
}

impl Hub {
    /// A hub over `ledger` that saves through `history` and has the
    /// scheduler (`judge`) judge each heartbeat that pings. `started` is
    /// when this sitewatch started (deadlines before it are not judged).
    pub fn new(
        keys: HashMap<String, String>,
        ledger: Ledger,
        history: History,
        judge: mpsc::UnboundedSender<Control>,
        started: SystemTime,
    ) -> Hub {
        Hub {
            keys: RwLock::new(keys),
            ledger,
            buckets: Mutex::new(HashMap::new()),
            history,
            judge,
            started,
        }
    }

    /// Switches to the keys of a new configuration.
    pub fn set_keys(&self, keys: HashMap<String, String>) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets.retain(|k, _| keys.contains_key(k));
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
    }

    /// The records of every heartbeat.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// When this sitewatch started.
    pub fn started(&self) -> SystemTime {
        self.started
    }

    /// Saves a record (the scheduler calls it for a heartbeat it starts watching).
    pub fn save(&self, name: &str, record: &super::ledger::Record) {
        self.history.heartbeat(name, record);
    }

    /// Takes in a ping sent with `key` at `now` (`mono`: the same moment on
    /// the monotonic clock, for the rate limit). Returns the heartbeat's name.
    pub fn ping(
        &self,
        key: &str,
        ping: &Ping,
        now: SystemTime,
        mono: Instant,
    ) -> Result<String, Refused> {
        let name = self
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
            .ok_or(Refused::Unknown)?;
        {
            let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
            let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
                tokens: BURST,
                at: mono,
            });
            bucket.take(mono).map_err(Refused::TooMany)?;
        }
        let record = self.ledger.ping(&name, ping, now);
        self.history.heartbeat(&name, &record);
        let _ = self.judge.send(Control::Judge(name.clone()));
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut b = Bucket {
            tokens: BURST,
            at: t0,
        };
        for _ in 0..BURST as usize {
            assert!(b.take(t0).is_ok());
        }
        let wait = b.take(t0).unwrap_err();
        assert!(wait >= Duration::from_secs(1), "{wait:?}");
        // Half a second later one more ping is allowed (2 per second).
        assert!(b.take(t0 + Duration::from_millis(500)).is_ok());
        assert!(b.take(t0 + Duration::from_millis(500)).is_err());
    }
}
