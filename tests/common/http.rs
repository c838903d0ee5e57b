//! A real HTTP/1.1 server on 127.0.0.1:0 whose answer a test can change
//! while it runs, plus raw TCP servers that misbehave on purpose.
#![allow(dead_code)]

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What the server answers to every request.
#[derive(Clone, Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body text.
    pub body: String,
}

/// An HTTP server answering every path with the current [`Reply`].
pub struct TestHttp {
    /// Where it listens.
    pub addr: SocketAddr,
    reply: Arc<Mutex<Reply>>,
    task: JoinHandle<()>,
}

impl TestHttp {
    /// Starts a server answering `status` with `body`.
    pub async fn start(status: u16, body: &str) -> TestHttp {
        let reply = Arc::new(Mutex::new(Reply {
            status,
            body: body.to_string(),
        }));
        let shared = Arc::clone(&reply);
        let app = Router::new().fallback(move || {
            let r = shared.lock().unwrap().clone();
            async move {
                (
                    StatusCode::from_u16(r.status).unwrap(),
                    [("content-type", "text/html; charset=utf-8")],
                    r.body,
                )
                    .into_response()
            }
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestHttp { addr, reply, task }
    }

    /// Changes the answer for the next request.
    pub fn set(&self, status: u16, body: &str) {
        *self.reply.lock().unwrap() = Reply {
            status,
            body: body.to_string(),
        };
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for TestHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TCP server that accepts and closes at once (an "up" tcp:// target).
pub struct AcceptClose {
    /// Where it listens.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl AcceptClose {
    /// Listens on `addr` (use port 0 for any).
    pub async fn bind(addr: &str) -> std::io::Result<AcceptClose> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                drop(stream);
            }
        });
        Ok(AcceptClose { addr, task })
    }

    /// Stops listening: connects to the port are refused from now on.
    pub async fn close(self) -> SocketAddr {
        self.task.abort();
        let _ = (&mut { self.task }).await;
        self.addr
    }
}

/// A TCP server that writes `bytes` once a request arrives, then closes.
pub async fn raw_server(bytes: &'static [u8]) -> (SocketAddr, JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(bytes).await;
                let _ = stream.shutdown().await;
                // Drain so closing sends FIN, not RST.
                let _ =
                    tokio::time::timeout(std::time::Duration::from_secs(2), stream.read(&mut buf))
                        .await;
            });
        }
    });
    (addr, task)
}

/// A loopback address where nothing listens (bound, then released): a
/// target that refuses connections.
pub fn closed_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
}

/// A request a [`Recorder`] received.
#[derive(Clone, Debug)]
pub struct Received {
    /// Whether it came over TLS.
    pub tls: bool,
    /// The request target (path and query).
    pub path: String,
    /// The whole request head, lossy UTF-8.
    pub head: String,
}

impl Received {
    /// Every value of the header `name` (any case), in order.
    pub fn header(&self, name: &str) -> Vec<String> {
        self.head
            .split("\r\n")
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }
}

/// How a [`Recorder`] answers a request: the whole raw response.
type Respond = Arc<dyn Fn(&Received) -> String + Send + Sync>;

/// The longest request head a [`Recorder`] reads (a redirect may put a
/// very long path in it).
const MAX_REQUEST_HEAD: usize = 2 * 1024 * 1024;
/// How long a [`Recorder`] waits on a client.
const CLIENT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// An HTTP/1.1 server on 127.0.0.1:0 that records every request head it
/// receives and answers with what its function returns. Started with a TLS
/// configuration, it speaks TLS to clients whose first byte opens a TLS
/// handshake and plain HTTP to the others, on the same port.
pub struct Recorder {
    /// Where it listens.
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    task: JoinHandle<()>,
}

impl Recorder {
    /// A plain HTTP server.
    pub async fn start(respond: impl Fn(&Received) -> String + Send + Sync + 'static) -> Recorder {
        Self::serve(None, Arc::new(respond)).await
    }

    /// A server speaking TLS (with `config`) and plain HTTP on one port.
    pub async fn start_tls(
        config: Arc<rustls::ServerConfig>,
        respond: impl Fn(&Received) -> String + Send + Sync + 'static,
    ) -> Recorder {
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        Self::serve(Some(acceptor), Arc::new(respond)).await
    }

    async fn serve(acceptor: Option<tokio_rustls::TlsAcceptor>, respond: Respond) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        let task = tokio::spawn(async move {
            // Owned by the accept task: aborting it aborts every connection.
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((tcp, _)) = listener.accept().await {
                while conns.try_join_next().is_some() {}
                let (acceptor, respond, log) =
                    (acceptor.clone(), Arc::clone(&respond), Arc::clone(&log));
                conns.spawn(async move {
                    let conn = serve_one(tcp, acceptor, respond, log);
                    let _ = tokio::time::timeout(CLIENT_WAIT, conn).await;
                });
            }
        });
        Recorder {
            addr,
            received,
            task,
        }
    }

    /// The requests received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_one(
    tcp: tokio::net::TcpStream,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    respond: Respond,
    log: Arc<Mutex<Vec<Received>>>,
) {
    let mut first = [0u8; 1];
    let tls_hello = matches!(tcp.peek(&mut first).await, Ok(1) if first[0] == 0x16);
    match acceptor {
        Some(acceptor) if tls_hello => {
            if let Ok(tls) = acceptor.accept(tcp).await {
                exchange(tls, true, &respond, &log).await;
            }
        }
        _ => exchange(tcp, false, &respond, &log).await,
    }
}

/// Reads one request head, records it, writes the response and closes.
async fn exchange<S>(mut io: S, tls: bool, respond: &Respond, log: &Mutex<Vec<Received>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let end = loop {
        let Ok(n) = io.read(&mut buf).await else {
            return;
        };
        if n == 0 || head.len() + n > MAX_REQUEST_HEAD {
            return;
        }
        // Search only where the end may be: the new bytes and 3 before.
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(&buf[..n]);
        if let Some(i) = head[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            break from + i + 4;
        }
    };
    let head = String::from_utf8_lossy(&head[..end]).into_owned();
    let path = head.split(' ').nth(1).unwrap_or_default().to_string();
    let request = Received { tls, path, head };
    let response = respond(&request);
    log.lock().unwrap().push(request);
    if io.write_all(response.as_bytes()).await.is_ok() {
        let _ = io.flush().await;
        let _ = io.shutdown().await;
        // Drain until the client closes, so closing sends FIN, not RST.
        while let Ok(n) = io.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    }
}

/// A raw HTTP/1.1 response with `Content-Length` and `Connection: close`.
pub fn response(status: u16, headers: &[(&str, &str)], body: &str) -> String {
    let mut out = format!("HTTP/1.1 {status} Whatever\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    out
}

/// GET `path` over a fresh connection with a hand-written request, for
/// tests that must see exactly what the server answers (at most 10 s).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        http_get_unbounded(addr, path),
    )
    .await
    .unwrap_or_else(|_| panic!("GET {path}: no answer within 10 s"))
}

pub async fn http_get_unbounded(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: sitewatch\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let code = text
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}
