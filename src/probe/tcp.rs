//! The TCP layer: connect to every address of a name under one deadline,
//! classify each failure, and tell a dead backend from a family this host
//! cannot route.

use crate::diagnosis::Cause;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// What one connect attempt did.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    /// The address tried.
    pub addr: SocketAddr,
    /// `None` when it connected, else why not.
    pub cause: Option<Cause>,
    /// The OS error text, when there was one.
    pub error: Option<String>,
    /// Time from the start of this connect to its outcome.
    pub elapsed: Duration,
    /// The failure says this host has no route for the address family:
    /// skipped rather than counted when another family works.
    pub no_route_for_family: bool,
}

/// sitewatch itself could not make a connection attempt (out of sockets or
/// ports): not the site's fault, so not a diagnosis.
#[derive(Debug, thiserror::Error)]
#[error("cannot open a socket to {addr}: {source}")]
pub struct LocalError {
    /// The address we were about to connect to.
    pub addr: SocketAddr,
    /// The OS error.
    pub source: io::Error,
}

/// What connecting to a site's addresses gave.
pub struct Connected {
    /// The first stream that connected.
    pub stream: TcpStream,
    /// Its address.
    pub addr: SocketAddr,
    /// How long that connect took.
    pub elapsed: Duration,
    /// The attempts on the other addresses, once they have ended; filled by
    /// [`Connecting::finish`].
    pub others: Vec<Attempt>,
}

/// The error is sitewatch's own (no file descriptors, no buffers, no local
/// port) and says nothing about the site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnFault;

/// The outcome of one connect: the stream and its connect time, or what
/// went wrong (the site's failure, or our own).
pub type ConnectOutcome = Result<(TcpStream, Duration), Result<Attempt, LocalError>>;

/// Maps a connect error to a cause, or to [`OwnFault`].
pub fn classify_connect_error(err: &io::Error, v6: bool) -> Result<Cause, OwnFault> {
    use libc::*;
    let cause = match err.raw_os_error() {
        Some(ECONNREFUSED) => Cause::TcpRefused,
        Some(ETIMEDOUT) => Cause::TcpTimeout,
        Some(EHOSTUNREACH | ENETUNREACH | EHOSTDOWN | ENETDOWN | EACCES | EPERM | EPROTO) => {
            Cause::TcpUnreachable
        }
        // No local IPv6 address at all: this host cannot reach the family.
        Some(EADDRNOTAVAIL | EAFNOSUPPORT) if v6 => Cause::TcpUnreachable,
        Some(EMFILE | ENFILE | ENOBUFS | ENOMEM | EADDRNOTAVAIL | EAFNOSUPPORT) => {
            return Err(OwnFault);
        }
        _ => match err.kind() {
            io::ErrorKind::ConnectionRefused => Cause::TcpRefused,
            io::ErrorKind::TimedOut => Cause::TcpTimeout,
            io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
                Cause::TcpUnreachable
            }
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => Cause::TcpRefused,
            _ => return Err(OwnFault),
        },
    };
    Ok(cause)
}

/// Whether an error means "no route for this address family from here".
fn no_route_for_family(err: &io::Error, v6: bool) -> bool {
    v6 && matches!(
        err.raw_os_error(),
        Some(libc::ENETUNREACH | libc::EADDRNOTAVAIL | libc::EAFNOSUPPORT)
    )
}

/// Connects to one address, giving up at `deadline`.
pub async fn connect_one(addr: SocketAddr, deadline: Instant) -> ConnectOutcome {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    };
    let socket = socket.map_err(|source| {
        if addr.is_ipv6() && no_route_for_family(&source, true) {
            Ok(Attempt {
                addr,
                cause: Some(Cause::TcpUnreachable),
                error: Some(source.to_string()),
                elapsed: Duration::ZERO,
                no_route_for_family: true,
            })
        } else {
            Err(LocalError { addr, source })
        }
    })?;
    let started = Instant::now();
    match tokio::time::timeout_at(deadline, socket.connect(addr)).await {
        Ok(Ok(stream)) => Ok((stream, started.elapsed())),
        Ok(Err(e)) => {
            let v6 = addr.is_ipv6();
            match classify_connect_error(&e, v6) {
                Ok(cause) => Err(Ok(Attempt {
                    addr,
                    cause: Some(cause),
                    error: Some(e.to_string()),
                    elapsed: started.elapsed(),
                    no_route_for_family: no_route_for_family(&e, v6),
                })),
                Err(OwnFault) => Err(Err(LocalError { addr, source: e })),
            }
        }
        Err(_) => Err(Ok(Attempt {
            addr,
            cause: Some(Cause::TcpTimeout),
            error: None,
            elapsed: started.elapsed(),
            no_route_for_family: false,
        })),
    }
}

/// Connection attempts to several addresses under way.
pub struct Connecting {
    set: JoinSet<(SocketAddr, ConnectOutcome)>,
    done: Vec<Attempt>,
}

impl Connecting {
    /// Starts connecting to every address at once.
    pub fn start(addrs: &[SocketAddr], deadline: Instant) -> Connecting {
        let mut set = JoinSet::new();
        for &addr in addrs {
            set.spawn(async move { (addr, connect_one(addr, deadline).await) });
        }
        Connecting {
            set,
            done: Vec::new(),
        }
    }

    /// Waits for the first address that connects. `Ok(None)` means every
    /// attempt failed; they are then in [`Connecting::failures`].
    pub async fn first(&mut self) -> Result<Option<(TcpStream, SocketAddr, Duration)>, LocalError> {
        while let Some(joined) = self.set.join_next().await {
            // A connect task only panics on a bug; treat it as a local error.
            let (addr, outcome) = joined.map_err(|e| LocalError {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                source: io::Error::other(e),
            })?;
            match outcome {
                Ok((stream, elapsed)) => return Ok(Some((stream, addr, elapsed))),
                Err(Ok(attempt)) => self.done.push(attempt),
                Err(Err(local)) => {
                    debug_assert_eq!(local.addr, addr);
                    return Err(local);
                }
            }
        }
        Ok(None)
    }

    /// Waits for the remaining attempts (they end by the deadline) and
    /// returns every attempt that did not win. Streams of later successes
    /// are closed at once.
    pub async fn finish(mut self) -> Vec<Attempt> {
        while let Some(joined) = self.set.join_next().await {
            let Ok((addr, outcome)) = joined else {
                continue;
            };
            match outcome {
                Ok((_stream, elapsed)) => self.done.push(Attempt {
                    addr,
                    cause: None,
                    error: None,
                    elapsed,
                    no_route_for_family: false,
                }),
                Err(Ok(attempt)) => self.done.push(attempt),
                Err(Err(local)) => self.done.push(Attempt {
                    addr,
                    cause: None,
                    error: Some(format!("not tried: {}", local.source)),
                    elapsed: Duration::ZERO,
                    no_route_for_family: false,
                }),
            }
        }
        self.done
    }

    /// The failed attempts so far.
    pub fn failures(&self) -> &[Attempt] {
        &self.done
    }
}

/// Among failed attempts, the one that best explains the outage: refused
/// beats unreachable, which beats timeout (the contract's order).
pub fn worst_of(attempts: &[Attempt]) -> Option<&Attempt> {
    let rank = |a: &Attempt| match a.cause {
        Some(Cause::TcpRefused) => 0,
        Some(Cause::TcpUnreachable) => 1,
        Some(Cause::TcpTimeout) => 2,
        _ => 3,
    };
    attempts.iter().min_by_key(|a| rank(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_errors_map_to_causes() {
        let os = io::Error::from_raw_os_error;
        let table: &[(i32, bool, Result<Cause, OwnFault>)] = &[
            (libc::ECONNREFUSED, false, Ok(Cause::TcpRefused)),
            (libc::ETIMEDOUT, false, Ok(Cause::TcpTimeout)),
            (libc::EHOSTUNREACH, false, Ok(Cause::TcpUnreachable)),
            (libc::ENETUNREACH, false, Ok(Cause::TcpUnreachable)),
            (libc::ENETUNREACH, true, Ok(Cause::TcpUnreachable)),
            (libc::EACCES, false, Ok(Cause::TcpUnreachable)),
            (libc::EPERM, false, Ok(Cause::TcpUnreachable)),
            (libc::EHOSTDOWN, false, Ok(Cause::TcpUnreachable)),
            (libc::EADDRNOTAVAIL, true, Ok(Cause::TcpUnreachable)),
            (libc::EADDRNOTAVAIL, false, Err(OwnFault)),
            (libc::EMFILE, false, Err(OwnFault)),
            (libc::ENFILE, false, Err(OwnFault)),
            (libc::ENOBUFS, false, Err(OwnFault)),
        ];
        for &(errno, v6, want) in table {
            assert_eq!(
                classify_connect_error(&os(errno), v6),
                want,
                "errno {errno} v6 {v6}"
            );
        }
        assert!(no_route_for_family(&os(libc::ENETUNREACH), true));
        assert!(!no_route_for_family(&os(libc::ENETUNREACH), false));
        assert!(!no_route_for_family(&os(libc::ECONNREFUSED), true));
    }

    #[test]
    fn refused_beats_unreachable_beats_timeout() {
        let a = |cause| Attempt {
            addr: "192.0.2.1:80".parse().unwrap(),
            cause: Some(cause),
            error: None,
            elapsed: Duration::ZERO,
            no_route_for_family: false,
        };
        let list = [
            a(Cause::TcpTimeout),
            a(Cause::TcpUnreachable),
            a(Cause::TcpRefused),
        ];
        assert_eq!(worst_of(&list).unwrap().cause, Some(Cause::TcpRefused));
        assert_eq!(
            worst_of(&list[..2]).unwrap().cause,
            Some(Cause::TcpUnreachable)
        );
        assert!(worst_of(&[]).is_none());
    }
}
