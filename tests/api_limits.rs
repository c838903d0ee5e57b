//! No client can take the daemon's descriptors, memory or time through the
//! API: real sockets on 127.0.0.1 against the API server on its own thread
//! ([`sitewatch::api::spawn`], with limits shortened through [`Limits`]) or
//! against `sitewatch run` itself. Idle connections beyond the cap are shed
//! and `/healthz` still answers, a slowloris meets the header timeout, an
//! endless head is cut at its cap (and a flood of them leaves the daemon
//! small), a body over its cap is refused unread, and a reader too slow
//! for its answer is cut off. (tests/api_thread.rs: a flood of requests
//! does not move the probe schedule.)

mod common;

use common::daemon::{get_json, spawn_daemon, wait_for, write_config};
use common::http::http_get;
use sitewatch::api::{Access, ApiThread, Limits};
use sitewatch::store::StatusStore;
use std::collections::HashMap;
use std::io::{ErrorKind, Read};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

/// sites.toml with `n` sites on `target` (a closed port: each probe is a
/// quick refusal), probed every second.
fn sites_config(dir: &std::path::Path, n: usize, target: SocketAddr) -> String {
    let mut text = format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n\n[defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\n",
        dir.join("state").display()
    );
    for i in 0..n {
        text.push_str(&format!(
            "\n[[site]]\nname = \"site-{i:04}\"\nurl = \"tcp://{target}\"\n"
        ));
    }
    text
}

/// A store with `n` sites that were never probed.
fn store(n: usize) -> (StatusStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &sites_config(dir.path(), n, common::http::closed_addr()),
    );
    let config = sitewatch::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let store = StatusStore::new(&config.sites, SystemTime::now(), &HashMap::new(), None);
    (store, dir)
}

/// The API server on its own thread, on `listener`.
struct Server {
    addr: SocketAddr,
    stop: CancellationToken,
    thread: ApiThread,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(limits: Limits) -> Server {
        Server::start_on(
            std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
            3,
            limits,
        )
    }

    fn start_on(listener: std::net::TcpListener, sites: usize, limits: Limits) -> Server {
        let (store, dir) = store(sites);
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let thread =
            sitewatch::api::spawn(listener, store, Access::default(), limits, stop.clone())
                .unwrap();
        Server {
            addr,
            stop,
            thread,
            _dir: dir,
        }
    }

    /// Stops the server and checks that it ends cleanly, within its grace.
    async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.thread.wait())
            .await
            .expect("the API stops within its grace period")
            .unwrap();
    }
}

/// A listener with small socket buffers (accepted sockets inherit them), so
/// that the kernel cannot hide what the server reads or writes.
fn small_buffered_listener() -> std::net::TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.set_send_buffer_size(4096).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    socket.listen(128).unwrap().into_std().unwrap()
}

/// Server-side sockets of `port` open in this process: established
/// connections the server holds a descriptor for (`/proc/net/tcp` rows with
/// that local port, not listening, with an inode). The clients' ends have
/// the port as their remote one, and connections still in the backlog have
/// no inode. Counted by inode: the table is read in pages, and a row can
/// show twice while connections come and go.
fn server_sockets(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let inodes: std::collections::HashSet<&str> = table
        .lines()
        .skip(1)
        .filter_map(|row| {
            let f: Vec<&str> = row.split_whitespace().collect();
            let local_port = f[1].rsplit(':').next()?;
            let ours = u16::from_str_radix(local_port, 16).ok()? == port;
            (ours && f[3] != "0A" && f[9] != "0").then_some(f[9])
        })
        .collect();
    inodes.len()
}

/// Whether the server has closed `client` (EOF or reset).
fn is_closed(mut client: &std::net::TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match client.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

/// The value of the `/metrics` series `name` (with its labels), if present.
async fn metric(addr: SocketAddr, name: &str) -> Option<f64> {
    let (code, text) = http_get(addr, "/metrics").await;
    assert_eq!(code, 200, "{text}");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn idle_connections_beyond_the_cap_are_shed_and_healthz_still_answers() {
    const CAP: usize = 32;
    const OPENED: usize = 200;
    let server = Server::start(Limits {
        max_connections: CAP,
        // Long: shedding, not a timeout, is what closes connections here.
        idle_timeout: Duration::from_secs(60),
        header_read_timeout: Duration::from_secs(60),
        ..Limits::default()
    });
    let port = server.addr.port();
    let mut most = 0;
    let mut clients = Vec::new();
    for _ in 0..OPENED {
        let c = std::net::TcpStream::connect(server.addr).unwrap();
        c.set_nonblocking(true).unwrap();
        clients.push(c);
        most = most.max(server_sockets(port));
    }
    // The server takes every connection from the backlog, shedding the
    // longest-idle one each time it is full.
    let shed = wait_for(
        "idle connections to be shed",
        Duration::from_secs(10),
        || {
            most = most.max(server_sockets(port));
            let shed = clients.iter().filter(|c| is_closed(c)).count();
            std::future::ready((shed >= OPENED - CAP).then_some(shed))
        },
    )
    .await;
    most = most.max(server_sockets(port));
    assert_eq!(shed, OPENED - CAP);
    // One accepted connection may wait for the place of the one it sheds;
    // and /proc/net/tcp is read in pages, not as one snapshot, so while
    // connections churn one closing may still show beside its successor.
    assert!(most <= CAP + 2, "{most} server sockets for a cap of {CAP}");
    // Once all are taken: the cap, exactly.
    assert_eq!(server_sockets(port), CAP);
    assert!(is_closed(&clients[0]), "the oldest is shed first");
    assert!(!is_closed(&clients[OPENED - 1]), "the newest stays");

    // An operator's request on a fresh connection gets through at once.
    let started = Instant::now();
    let (code, body) =
        tokio::time::timeout(Duration::from_secs(2), http_get(server.addr, "/healthz"))
            .await
            .expect("/healthz answers within 2 s at the cap");
    assert_eq!(code, 200, "{body}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(server_sockets(port) <= CAP + 2);
    let counted = metric(
        server.addr,
        "sitewatch_api_connections_closed_total{reason=\"shed\"}",
    )
    .await;
    // The /healthz and /metrics connections each shed one more.
    assert!(counted >= Some((OPENED - CAP + 1) as f64), "{counted:?}");
    server.stop().await;
}

#[tokio::test]
async fn the_daemon_keeps_its_descriptors_under_a_flood_of_idle_connections() {
    const OPENED: usize = 400;
    let cap = Limits::default().max_connections;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &sites_config(dir.path(), 1, common::http::closed_addr()),
    );
    let (child, api, mut log) = spawn_daemon(&path).await;
    let fds = format!("/proc/{}/fd", child.id().unwrap());
    let count = || std::fs::read_dir(&fds).unwrap().count();
    let addr: SocketAddr = api.trim_start_matches("http://").parse().unwrap();
    get_json(&format!("{api}/healthz")).await;
    let before = count();
    let mut most = before;
    let mut clients = Vec::new();
    for _ in 0..OPENED {
        let c = std::net::TcpStream::connect(addr).unwrap();
        c.set_nonblocking(true).unwrap();
        clients.push(c);
        most = most.max(count());
    }
    wait_for(
        "the daemon to shed connections over its cap",
        Duration::from_secs(10),
        || {
            most = most.max(count());
            let shed = clients.iter().filter(|c| is_closed(c)).count();
            std::future::ready((shed >= OPENED - cap).then_some(()))
        },
    )
    .await;
    // Room for a probe's socket or two and the connection being accepted.
    assert!(
        most <= before + cap + 4,
        "{most} descriptors, {before} before {OPENED} connections, cap {cap}"
    );
    let (code, health) =
        tokio::time::timeout(Duration::from_secs(2), get_json(&format!("{api}/healthz")))
            .await
            .expect("/healthz answers within 2 s at the cap");
    assert_eq!(code, 200, "{health}");
    // The operator hears of it once, not once per connection.
    let warning = "the API is at its connection cap";
    let mut lines = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(line) = log.recv().await {
            let found = line.contains(warning);
            lines.push(line);
            if found {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no warning about the cap in {lines:#?}"));
    while let Ok(line) = log.try_recv() {
        lines.push(line);
    }
    let warnings = lines.iter().filter(|l| l.contains(warning)).count();
    assert_eq!(warnings, 1, "{lines:#?}");
}

/// Bytes received on the server's side of `port`'s connections and not
/// read yet (the `rx_queue` of `/proc/net/tcp`).
fn unread(port: u16) -> u64 {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter_map(|row| {
            let f: Vec<&str> = row.split_whitespace().collect();
            let local_port = u16::from_str_radix(f[1].rsplit(':').next()?, 16).ok()?;
            let rx_queue = u64::from_str_radix(f[4].split(':').nth(1)?, 16).ok()?;
            (local_port == port && f[3] != "0A").then_some(rx_queue)
        })
        .sum()
}

/// The resident memory of process `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

#[tokio::test]
async fn the_daemon_stays_small_under_a_flood_of_endless_heads() {
    const CLIENTS: usize = 200;
    const HEAD: usize = 390 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &sites_config(dir.path(), 1, common::http::closed_addr()),
    );
    let (child, api, _log) = spawn_daemon(&path).await;
    let pid = child.id().unwrap();
    let addr: SocketAddr = api.trim_start_matches("http://").parse().unwrap();
    get_json(&format!("{api}/healthz")).await;
    let before = rss(pid);
    // Each client sends up to 390 KB of head without its end, and keeps
    // its connection open.
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            tokio::spawn(async move {
                let mut s = TcpStream::connect(addr).await.unwrap();
                let mut head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
                head.resize(HEAD, b'a');
                let _ = s.write_all(&head).await;
                s
            })
        })
        .collect();
    let mut held = Vec::new();
    for c in clients {
        let s = tokio::time::timeout(Duration::from_secs(20), c)
            .await
            .expect("every client is done writing within 20 s")
            .unwrap();
        held.push(s);
    }
    // Measured once the daemon has read all it will: nothing left unread on
    // its side of any connection.
    wait_for(
        "the daemon to read what it takes",
        Duration::from_secs(10),
        || std::future::ready((unread(addr.port()) == 0).then_some(())),
    )
    .await;
    let grown = rss(pid).saturating_sub(before);
    eprintln!("resident memory: {before} bytes before, {grown} more with {CLIENTS} endless heads");
    // Unbounded, it would hold 200 × 390 KB = 78 MB of heads.
    assert!(
        grown < 32 * 1024 * 1024,
        "{} MB more resident memory with {CLIENTS} endless heads",
        grown / (1024 * 1024)
    );
    drop(held);
}

#[tokio::test]
async fn a_slowloris_is_cut_off_by_the_header_timeout() {
    let timeout = Duration::from_secs(1);
    let server = Server::start(Limits {
        header_read_timeout: timeout,
        idle_timeout: Duration::from_secs(60),
        ..Limits::default()
    });
    let mut client = std::net::TcpStream::connect(server.addr).unwrap();
    std::io::Write::write_all(&mut client, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    client.set_nonblocking(true).unwrap();
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut sent = 0;
    // One header byte per 100 ms, for at most 10 s.
    let cut_after = loop {
        tick.tick().await;
        let wrote = std::io::Write::write(&mut client, b"a");
        if wrote.is_err() || is_closed(&client) {
            break started.elapsed();
        }
        sent += 1;
        assert!(sent < 100, "still connected after {:?}", started.elapsed());
    };
    assert!(
        cut_after >= timeout - Duration::from_millis(100) && cut_after < timeout * 3,
        "cut after {cut_after:?}, {sent} bytes"
    );
    let counted = metric(
        server.addr,
        "sitewatch_api_connections_closed_total{reason=\"header_timeout\"}",
    )
    .await;
    assert_eq!(counted, Some(1.0));
    server.stop().await;
}

#[tokio::test]
async fn an_endless_head_is_cut_at_its_cap() {
    let cap = 16 * 1024;
    let server = Server::start_on(
        small_buffered_listener(),
        3,
        Limits {
            max_head_bytes: cap,
            header_read_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            ..Limits::default()
        },
    );
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(4096).unwrap();
    let mut client = socket.connect(server.addr).await.unwrap();
    client
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ")
        .await
        .unwrap();
    // 1 MB of header, never ended; the server must stop taking it.
    let chunk = [b'a'; 1024];
    let mut written = 0;
    let outcome = tokio::time::timeout(Duration::from_secs(10), async {
        while written < 1024 * 1024 {
            if client.write_all(&chunk).await.is_err() {
                return true;
            }
            written += chunk.len();
        }
        false
    })
    .await;
    assert_eq!(
        outcome,
        Ok(true),
        "the connection took {written} bytes of head without closing"
    );
    // What the client got written: the server's cap plus both kernels' small buffers.
    assert!(
        written <= cap + 64 * 1024,
        "{written} bytes of head written before the server closed"
    );
    // Whatever arrived before the reset is the 431 answer.
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );
    let counted = metric(
        server.addr,
        "sitewatch_api_connections_closed_total{reason=\"head_too_large\"}",
    )
    .await;
    assert_eq!(counted, Some(1.0));
    server.stop().await;
}

/// Sends `request` and reads until the server closes: the answer.
async fn exchange(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the connection stayed open after {:?}",
                String::from_utf8_lossy(&out)
            )
        })
        .unwrap();
    String::from_utf8_lossy(&out).to_string()
}

#[tokio::test]
async fn a_body_over_its_cap_is_refused_unread() {
    let server = Server::start(Limits::default());
    let max = Limits::default().max_body_bytes;
    // Announced but never sent: the answer must not wait for it.
    let answer = exchange(
        server.addr,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(answer.contains(&format!("over {max} bytes")), "{answer}");
    // A body of unknown length counts as too long.
    let answer = exchange(
        server.addr,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // A small one is read and ignored.
    let answer = exchange(
        server.addr,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn a_reader_too_slow_for_its_answer_is_cut_off_by_the_request_timeout() {
    let timeout = Duration::from_secs(1);
    // 500 sites: /status is far bigger than both sockets' small buffers.
    let server = Server::start_on(
        small_buffered_listener(),
        500,
        Limits {
            request_timeout: timeout,
            header_read_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            ..Limits::default()
        },
    );
    let port = server.addr.port();
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut client = socket.connect(server.addr).await.unwrap();
    client
        .write_all(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let asked = Instant::now();
    wait_for(
        "the server to take the connection",
        Duration::from_secs(10),
        || std::future::ready((server_sockets(port) == 1).then_some(())),
    )
    .await;
    // The client reads nothing; the server must let go of the connection.
    wait_for(
        "the server to drop the stalled answer",
        Duration::from_secs(10),
        || std::future::ready((server_sockets(port) == 0).then_some(())),
    )
    .await;
    let held = asked.elapsed();
    assert!(
        held >= timeout - Duration::from_millis(100) && held < timeout * 4,
        "held for {held:?}"
    );
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut got)).await;
    let (_, full) = http_get(server.addr, "/status").await;
    assert!(
        got.len() < full.len(),
        "{} bytes reached the client, the answer is {}",
        got.len(),
        full.len()
    );
    let counted = metric(
        server.addr,
        "sitewatch_api_connections_closed_total{reason=\"request_timeout\"}",
    )
    .await;
    assert_eq!(counted, Some(1.0));
    server.stop().await;
}
