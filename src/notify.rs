//! The systemd notification protocol (`sd_notify`): READY, RELOADING,
//! STOPPING, STATUS and WATCHDOG datagrams to `$NOTIFY_SOCKET`.
//!
//! Written here rather than taken from a crate because the send must never
//! block: it runs on the scheduler's loop (watchdog pings), and a blocking
//! datagram send stalls the whole daemon when the receiver's queue is full.
//! A message that cannot be sent at once is dropped (the next one follows
//! within a second).

use std::io;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// One notification.
#[derive(Clone, Copy, Debug)]
pub enum State<'a> {
    /// Start-up (or a reload) is complete.
    Ready,
    /// A configuration reload has begun.
    Reloading,
    /// Shutdown has begun.
    Stopping,
    /// A free-form status line (`systemctl status` shows it).
    Status(&'a str),
    /// The watchdog keep-alive.
    Watchdog,
}

fn line(s: &State<'_>) -> String {
    match s {
        State::Ready => "READY=1".to_string(),
        State::Reloading => "RELOADING=1".to_string(),
        State::Stopping => "STOPPING=1".to_string(),
        State::Status(t) => format!("STATUS={}", t.replace('\n', " ")),
        State::Watchdog => "WATCHDOG=1".to_string(),
    }
}

/// Sends `states` as one datagram if `$NOTIFY_SOCKET` is set; never blocks.
pub fn notify(states: &[State<'_>]) -> io::Result<()> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(());
    };
    let msg: String = states.iter().map(|s| line(s) + "\n").collect();
    let sock = UnixDatagram::unbound()?;
    sock.set_nonblocking(true)?;
    let path = path.to_string_lossy();
    let sent = if let Some(name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        sock.send_to_addr(msg.as_bytes(), &addr)
    } else {
        sock.send_to(msg.as_bytes(), path.as_ref())
    };
    match sent {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e),
    }
}

/// The watchdog interval systemd expects (`$WATCHDOG_USEC`, for this
/// process if `$WATCHDOG_PID` says so), if any.
pub fn watchdog() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_follow_the_protocol() {
        assert_eq!(line(&State::Ready), "READY=1");
        assert_eq!(
            line(&State::Status("3 sites,\n1 down")),
            "STATUS=3 sites, 1 down"
        );
        assert_eq!(line(&State::Watchdog), "WATCHDOG=1");
    }
}
