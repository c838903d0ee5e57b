//! Network namespaces the tests create for themselves: only `lo`, no route
//! out, firewall rules with nftables. Needs root; without it the caller gets
//! `None` and a loud message, and under CI (`CI` set) it is an error.
#![allow(dead_code)]

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A network namespace, deleted on drop.
pub struct NetNs {
    /// Its name under /run/netns.
    pub name: String,
}

fn run(cmd: &mut Command) -> Result<Output, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl NetNs {
    /// Creates a namespace with `lo` up, or explains loudly why it cannot.
    pub fn new(test: &str) -> Option<NetNs> {
        let name = format!(
            "sw{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let made = run(Command::new("ip").args(["netns", "add", &name]))
            .and_then(|_| run(Command::new("ip").args(["-n", &name, "link", "set", "lo", "up"])));
        match made {
            Ok(_) => Some(NetNs { name }),
            Err(e) => {
                let _ = Command::new("ip").args(["netns", "del", &name]).output();
                let msg = format!(
                    "SKIPPED {test}: cannot create a network namespace ({e}); the fault lab needs root, iproute2 and nftables"
                );
                if std::env::var_os("CI").is_some() {
                    panic!("{msg} (CI must run every test)");
                }
                eprintln!("\n!!!!!!!! {msg} !!!!!!!!\n");
                None
            }
        }
    }

    /// A command that runs inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Loads an nftables ruleset (nft -f syntax) into the namespace.
    pub fn nft(&self, ruleset: &str) {
        use std::io::Write;
        let mut child = self
            .command("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("nft must be installed (Debian package nftables)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ruleset.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "nft -f failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs `ip -n NAME ARGS…`; panics with ip's message if it fails.
    pub fn ip(&self, args: &[&str]) {
        run(Command::new("ip").arg("-n").arg(&self.name).args(args))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Links this namespace to `other` with a veth pair: `ours` here with
    /// `our_addrs`, `theirs` there with `their_addrs` (CIDR; IPv6 ones
    /// without duplicate address detection, so they work at once), both up.
    pub fn link(
        &self,
        ours: &str,
        our_addrs: &[&str],
        other: &NetNs,
        theirs: &str,
        their_addrs: &[&str],
    ) {
        run(Command::new("ip").args([
            "link",
            "add",
            ours,
            "netns",
            &self.name,
            "type",
            "veth",
            "peer",
            "name",
            theirs,
            "netns",
            &other.name,
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        for (ns, dev, addrs) in [(self, ours, our_addrs), (other, theirs, their_addrs)] {
            for a in addrs {
                if a.contains(':') {
                    ns.ip(&["addr", "add", a, "dev", dev, "nodad"]);
                } else {
                    ns.ip(&["addr", "add", a, "dev", dev]);
                }
            }
            ns.ip(&["link", "set", dev, "up"]);
        }
    }

    /// GET `path` from `addr` as seen from inside the namespace (a thread
    /// that enters it): status code and body, within 10 s.
    pub fn get(&self, addr: std::net::SocketAddr, path: &str) -> (u16, String) {
        use std::io::{Read, Write};
        use std::os::fd::AsRawFd;
        let ns_path = format!("/run/netns/{}", self.name);
        let path = path.to_string();
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&ns_path).unwrap();
            // SAFETY: setns(2) on a valid namespace fd; it affects this thread only.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            let timeout = std::time::Duration::from_secs(10);
            let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)
                .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
            s.set_read_timeout(Some(timeout)).unwrap();
            write!(
                s,
                "GET {path} HTTP/1.1\r\nHost: sitewatch\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut out = Vec::new();
            s.read_to_end(&mut out).unwrap();
            let text = String::from_utf8_lossy(&out).to_string();
            let code = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
            let body = text
                .split_once("\r\n\r\n")
                .map(|(_, b)| b.to_string())
                .unwrap_or_default();
            (code, body)
        })
        .join()
        .expect("the GET thread panicked")
    }

    /// Adds an address to `lo` inside the namespace (e.g. "127.0.0.2/8" is
    /// already there; use this for extra IPv6 addresses).
    pub fn add_addr(&self, cidr: &str) {
        run(Command::new("ip").args(["-n", &self.name, "addr", "add", cidr, "dev", "lo"])).unwrap();
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Servers running inside a namespace, on a thread of their own; stopped
/// (and their sockets closed) on drop.
pub struct Served<T> {
    /// What the setup returned (addresses, ports).
    pub info: T,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<T> Drop for Served<T> {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl NetNs {
    /// Runs `setup` on a thread that has entered this namespace, so every
    /// socket it opens lives there; keeps the runtime (and whatever `setup`
    /// returned as its guard) running until the result is dropped.
    pub fn serve<T, G, F, Fut>(&self, setup: F) -> Served<T>
    where
        T: Send + 'static,
        G: 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = (T, G)>,
    {
        use std::os::fd::AsRawFd;
        let path = format!("/run/netns/{}", self.name);
        let (info_tx, info_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).unwrap();
            // SAFETY: setns(2) on a valid namespace fd; it affects this thread only.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let (info, guard) = setup().await;
                info_tx.send(info).unwrap();
                // Serve until the owner drops its handle (bounded: 5 minutes).
                let waiter = tokio::task::spawn_blocking(move || {
                    let _ = stop_rx.recv_timeout(std::time::Duration::from_secs(300));
                });
                let _ = waiter.await;
                drop(guard);
            });
        });
        let info = info_rx
            .recv()
            .expect("the namespace's servers failed to start");
        Served {
            info,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }
}
