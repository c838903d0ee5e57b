//! The accept loop: at most [`Limits::max_connections`] connections (a
//! semaphore, as in mini-redis), shedding the one that has waited longest
//! without a request when a new one arrives at the cap, and a graceful
//! stop bounded by [`Limits::shutdown_grace`].
//!
//! Why shed rather than refuse: the API is how an operator looks at a
//! daemon in trouble. Refusing new connections at the cap would let a few
//! hundred idle or stalled connections (a leaky client, a port scanner, a
//! slowloris) lock the operator out until they time out; shedding the
//! longest-waiting one lets `curl …/healthz` through at once, and the
//! newest connection, the operator's, is the last to be shed. Connections
//! in the middle of a request are never shed: their time is bounded by
//! [`Limits::request_timeout`], and a new connection waits for one of
//! them in the kernel's backlog, costing no descriptor.

use super::Limits;
use super::conn::{self, Shared, Tracker};
use super::stats::ServerStats;
use axum::Router;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long the loop pauses after an accept error that is not about one
/// connection (out of descriptors, out of memory), instead of spinning on
/// a backlog it cannot take from.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Warnings about shedding or accept errors: at most one per this period.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The open connections, for shedding.
#[derive(Default)]
struct Registry {
    conns: Mutex<HashMap<u64, Arc<Tracker>>>,
}

impl Registry {
    fn conns(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Tracker>>> {
        // Inserts and removes only: a poisoned map is still consistent.
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sheds the connection that has waited longest without a request in
    /// service; `false` if every connection has one.
    fn shed_longest_waiting(&self) -> bool {
        let conns = self.conns();
        let oldest = conns
            .values()
            .filter_map(|t| Some((t.waiting_since()?, t)))
            .min_by_key(|(since, _)| *since);
        match oldest {
            Some((_, tracker)) => {
                tracker.shed();
                true
            }
            None => false,
        }
    }
}

/// Removes a connection from the registry when its task ends.
struct Registered {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.conns().remove(&self.id);
    }
}

/// A warning that repeats at most once per [`WARN_EVERY`], with a count of
/// what happened since the last one.
struct Throttled {
    last: Option<Instant>,
    since_last: u64,
}

impl Throttled {
    fn new() -> Throttled {
        Throttled {
            last: None,
            since_last: 0,
        }
    }

    /// Counts one event; returns how many to report if a warning is due.
    fn hit(&mut self, now: Instant) -> Option<u64> {
        self.since_last += 1;
        if self.last.is_some_and(|l| now < l + WARN_EVERY) {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.since_last))
    }
}

/// Accepts on `listener` until `shutdown` resolves, then drains.
pub(super) async fn run(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stats: Arc<ServerStats>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let max = limits.max_connections;
    let permits = Arc::new(Semaphore::new(max));
    let registry = Arc::new(Registry::default());
    let grace = limits.shutdown_grace;
    let shared = Arc::new(Shared {
        router,
        limits,
        stats: Arc::clone(&stats),
        drain: CancellationToken::new(),
        abort: CancellationToken::new(),
    });
    let mut shed_warning = Throttled::new();
    let mut accept_warning = Throttled::new();
    let mut next_id = 0u64;
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // The peer gave up before we took the connection: nothing to do.
                Err(e) if is_about_one_connection(&e) => continue,
                Err(e) => {
                    if let Some(n) = accept_warning.hit(Instant::now()) {
                        tracing::warn!(error = %e, errors = n, "the API cannot accept connections; retrying");
                    }
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    }
                }
            },
        };
        let permit = match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let shed = registry.shed_longest_waiting();
                if let Some(n) = shed_warning.hit(Instant::now()) {
                    if shed {
                        tracing::warn!(
                            max_connections = max,
                            new_connections = n,
                            "the API is at its connection cap: closing the longest-idle connections to make room (docs/http-api.md, \"Limits\")"
                        );
                    } else {
                        tracing::warn!(
                            max_connections = max,
                            new_connections = n,
                            "the API is at its connection cap with every connection in a request: new connections wait (docs/http-api.md, \"Limits\")"
                        );
                    }
                }
                tokio::select! {
                    () = &mut shutdown => break,
                    permit = Arc::clone(&permits).acquire_owned() => match permit {
                        Ok(permit) => permit,
                        // Invariant: this function owns the semaphore and never closes it.
                        Err(_closed) => break,
                    },
                }
            }
        };
        let tracker = Arc::new(Tracker::new(Instant::now()));
        next_id += 1;
        registry.conns().insert(next_id, Arc::clone(&tracker));
        let registered = Registered {
            registry: Arc::clone(&registry),
            id: next_id,
        };
        stats.accepted();
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let closed = conn::serve(stream, tracker, &shared).await;
            // The socket is closed by now: only then is the place free.
            shared.stats.ended(closed);
            drop(registered);
            drop(permit);
        });
    }

    // Stop: no new connections; requests in progress may finish.
    drop(listener);
    shared.drain.cancel();
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(grace, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            open = open_connections(&permits, max),
            "API requests still in progress after the grace period; closing their connections"
        );
        shared.abort.cancel();
        // Each connection returns at its next poll once aborted.
        let _ = permits.acquire_many(all).await;
    }
    Ok(())
}

fn open_connections(permits: &Semaphore, max: usize) -> usize {
    max.saturating_sub(permits.available_permits())
}

/// Whether an accept error concerns only the connection being accepted
/// (the listener itself is fine).
fn is_about_one_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_repeat_at_most_once_a_minute_with_a_count() {
        let mut w = Throttled::new();
        let t0 = Instant::now();
        assert_eq!(w.hit(t0), Some(1));
        assert_eq!(w.hit(t0 + Duration::from_secs(1)), None);
        assert_eq!(w.hit(t0 + Duration::from_secs(59)), None);
        assert_eq!(w.hit(t0 + Duration::from_secs(60)), Some(3));
        assert_eq!(w.hit(t0 + Duration::from_secs(61)), None);
    }

    #[test]
    fn shedding_picks_the_longest_waiting_connection_never_a_busy_one() {
        let registry = Registry::default();
        let t0 = Instant::now();
        let busy = Arc::new(Tracker::new(t0));
        busy.start_request_for_test();
        let older = Arc::new(Tracker::new(t0 + Duration::from_millis(1)));
        let newer = Arc::new(Tracker::new(t0 + Duration::from_millis(2)));
        for (id, t) in [(1, &busy), (2, &newer), (3, &older)] {
            registry.conns().insert(id, Arc::clone(t));
        }
        assert!(registry.shed_longest_waiting());
        assert!(older.is_shed_for_test());
        assert!(!newer.is_shed_for_test() && !busy.is_shed_for_test());
        registry.conns().remove(&3);
        registry.conns().remove(&2);
        assert!(!registry.shed_longest_waiting());
        assert!(!busy.is_shed_for_test());
    }
}
