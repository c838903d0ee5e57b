//! How much any client may take from the API: connections, bytes and time.
//! One plain struct with documented defaults, handed to the server by its
//! caller (the daemon uses the defaults; tests shorten them).

use std::time::Duration;

/// The smallest cap on a request head that hyper accepts: it reads in
/// buffers of 8 KiB. A smaller [`Limits::max_head_bytes`] is raised to it.
pub const MIN_HEAD_BYTES: usize = 8 * 1024;

/// The longest any time limit can be: a year stands for "never".
pub const LONGEST: Duration = Duration::from_secs(365 * 86_400);

/// Limits on what clients may take from the API, so that no client, slow
/// or hostile, can take descriptors, memory or time from the probes.
///
/// Times longer than [`LONGEST`] count as [`LONGEST`]. Every default suits an operator's browser, `curl` and a Prometheus
/// scrape on a large configuration with room to spare (docs/http-api.md,
/// "Limits").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once. Default 256.
    ///
    /// When all are taken, a new connection closes the one that has waited
    /// longest without a request in service (idle, or still sending its
    /// head) and takes its place, so an operator's `curl …/healthz` gets
    /// through even when idle or stalled connections fill the cap; only
    /// when every connection is in the middle of a request does the new one
    /// wait (in the kernel's backlog, costing the daemon no descriptor)
    /// until one ends.
    pub max_connections: usize,
    /// The largest request head (request line and headers), in bytes.
    /// Default 16 KiB; at least [`MIN_HEAD_BYTES`]. A longer head is
    /// answered `431` and its connection closed; this is also the most a
    /// connection buffers while its head arrives.
    pub max_head_bytes: usize,
    /// The largest request body, in bytes. Default 16 KiB (the API takes
    /// only small JSON bodies: silences; heartbeat pings are read apart). A
    /// request announcing more, or a body of unknown length (chunked), is
    /// answered `413` without the body being read, and its connection
    /// closed.
    pub max_body_bytes: u64,
    /// How long a request head may take to arrive, counted from when the
    /// server starts waiting for it (the connection opened, or the previous
    /// answer was written). Default 10 s. Past it the connection is closed.
    pub header_read_timeout: Duration,
    /// How long a connection may wait without sending the first byte of a
    /// request: a new connection, or a kept-alive one between requests.
    /// Default 5 s. Past it the connection is closed.
    pub idle_timeout: Duration,
    /// How long one request may take, from its head being read to the last
    /// byte of its answer being handed to the kernel, however slowly the
    /// client reads. Default 30 s. Past it the connection is closed.
    pub request_timeout: Duration,
    /// On stop: how long requests in progress may take to finish before
    /// their connections are closed. Default 5 s.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 256,
            max_head_bytes: 16 * 1024,
            max_body_bytes: 16 * 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

impl Limits {
    /// These limits as the server can apply them: at least one connection
    /// and at most what a semaphore counts, a head cap of at least
    /// [`MIN_HEAD_BYTES`] (hyper panics below it), and times of at most
    /// [`LONGEST`] (a deadline past the clock's range would panic).
    pub(super) fn checked(mut self) -> Limits {
        self.max_connections = self.max_connections.clamp(
            1,
            tokio::sync::Semaphore::MAX_PERMITS.min(u32::MAX as usize),
        );
        self.max_head_bytes = self.max_head_bytes.max(MIN_HEAD_BYTES);
        for time in [
            &mut self.header_read_timeout,
            &mut self.idle_timeout,
            &mut self.request_timeout,
            &mut self.shutdown_grace,
        ] {
            *time = (*time).min(LONGEST);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_limits_are_ones_the_server_can_apply() {
        let l = Limits {
            max_connections: 0,
            max_head_bytes: 10,
            ..Limits::default()
        }
        .checked();
        assert_eq!((l.max_connections, l.max_head_bytes), (1, MIN_HEAD_BYTES));
        let l = Limits {
            max_connections: usize::MAX,
            ..Limits::default()
        }
        .checked();
        assert!(l.max_connections <= u32::MAX as usize);
        let l = Limits {
            idle_timeout: Duration::MAX,
            request_timeout: Duration::MAX,
            ..Limits::default()
        }
        .checked();
        assert_eq!((l.idle_timeout, l.request_timeout), (LONGEST, LONGEST));
        assert_eq!(Limits::default().checked(), Limits::default());
    }
}
