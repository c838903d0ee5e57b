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
