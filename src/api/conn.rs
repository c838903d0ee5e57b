//! One API connection: hyper's HTTP/1 server over the socket, with the
//! limits of [`Limits`] that hyper does not keep by itself.
//!
//! hyper caps the head ([`Limits::max_head_bytes`], answering `431`) and
//! the time to receive it ([`Limits::header_read_timeout`]). The rest needs
//! to know where the connection is in its request cycle, which a
//! [`Tracker`] follows from three vantage points: the socket (the first
//! byte of a request read, everything written out), the service (a request
//! began) and the answer's body (hyper has taken all of it). From that the
//! connection's task knows its next deadline (idle, or the whole request),
//! and the accept loop knows which connections it may shed.

use super::Limits;
use super::stats::{Closed, ServerStats};
use axum::Router;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Where a connection is in its request cycle.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    /// No byte of a request yet, since `since` (accepted, or the previous
    /// answer written out). Ends at [`Limits::idle_timeout`].
    Idle { since: Instant },
    /// A head is arriving; hyper's header timeout applies. `since` is when
    /// the connection began to wait for it.
    Head { since: Instant },
    /// A request is in service or its answer is being written; all of it
    /// must be done by `deadline`. `handed` once hyper has taken the whole
    /// answer (it may still be writing it out).
    Busy { deadline: Instant, handed: bool },
}

/// What a connection's parts and the accept loop share about it.
#[derive(Debug)]
pub(super) struct Tracker {
    phase: Mutex<Phase>,
    /// Cancelled by the accept loop to take this connection's place.
    shed: CancellationToken,
}

impl Tracker {
    /// A connection accepted at `now`.
    pub(super) fn new(now: Instant) -> Tracker {
        Tracker {
            phase: Mutex::new(Phase::Idle { since: now }),
            shed: CancellationToken::new(),
        }
    }

    fn phase(&self) -> MutexGuard<'_, Phase> {
        // Every update is a single assignment: a panic elsewhere cannot
        // leave the phase half-written, so a poisoned lock is still good.
        self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Since when the connection has waited without a request in service,
    /// or `None` while it has one (then it is never shed).
    pub(super) fn waiting_since(&self) -> Option<Instant> {
        match *self.phase() {
            Phase::Idle { since } | Phase::Head { since } => Some(since),
            Phase::Busy { .. } => None,
        }
    }

    /// Closes the connection at once, to make room for a new one.
    pub(super) fn shed(&self) {
        self.shed.cancel();
    }

    #[cfg(test)]
    pub(super) fn start_request_for_test(&self) {
        self.request(Instant::now() + Duration::from_secs(3600));
    }

    #[cfg(test)]
    pub(super) fn is_shed_for_test(&self) -> bool {
        self.shed.is_cancelled()
    }

    /// The socket delivered bytes.
    fn read_some(&self) {
        let mut phase = self.phase();
        if let Phase::Idle { since } = *phase {
            *phase = Phase::Head { since };
        }
    }

    /// A request's head was read; it must be done by `deadline`.
    fn request(&self, deadline: Instant) {
        *self.phase() = Phase::Busy {
            deadline,
            handed: false,
        };
    }

    /// hyper has taken the whole answer (or dropped it).
    fn handed(&self) {
        if let Phase::Busy { handed, .. } = &mut *self.phase() {
            *handed = true;
        }
    }

    /// hyper has written out everything it holds.
    fn flushed(&self, now: Instant) {
        let mut phase = self.phase();
        if let Phase::Busy { handed: true, .. } = *phase {
            *phase = Phase::Idle { since: now };
        }
    }

    /// When the connection is to be closed, and why, if nothing happens
    /// before.
    fn deadline(&self, limits: &Limits) -> Option<(Instant, Closed)> {
        match *self.phase() {
            Phase::Idle { since } => Some((since + limits.idle_timeout, Closed::Idle)),
            // hyper's own header timer runs.
            Phase::Head { .. } => None,
            Phase::Busy { deadline, .. } => Some((deadline, Closed::Request)),
        }
    }
}

/// The socket, telling the tracker when a request starts arriving and when
/// everything has been written out.
struct Watched {
    stream: TcpStream,
    tracker: Arc<Tracker>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.stream).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            this.tracker.read_some();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    /// hyper flushes once its own buffer is written out: after the last
    /// byte of an answer, the request is done.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(Pin::new(&mut this.stream).poll_flush(cx))?;
        this.tracker.flushed(Instant::now());
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Tells the tracker when hyper is done with an answer's body.
struct Handed(Arc<Tracker>);

impl Drop for Handed {
    fn drop(&mut self) {
        self.0.handed();
    }
}

/// An answer's body: the router's, marking the request handed on drop
/// (hyper drops it after taking its last frame, or unread for `HEAD`).
pub(super) struct Answer {
    inner: axum::body::Body,
    _handed: Handed,
}

impl Body for Answer {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The router behind one connection.
#[derive(Clone)]
struct Service {
    router: Router,
    tracker: Arc<Tracker>,
    stats: Arc<ServerStats>,
    request_timeout: Duration,
    max_body_bytes: u64,
}

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = Response<Answer>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Answer>, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.tracker.request(Instant::now() + self.request_timeout);
        let handed = Handed(Arc::clone(&self.tracker));
        let body = request.body().size_hint();
        // Unknown length (chunked) counts as too long: the API takes no
        // body. A ping's body is the exception: its handler keeps what it
        // can use and drops the rest.
        if body.upper().is_none_or(|n| n > self.max_body_bytes)
            && !super::ping::is_ping_path(request.uri().path())
        {
            self.stats.count(Closed::BodyTooLarge);
            let answer = too_large(self.max_body_bytes).map(|inner| Answer {
                inner,
                _handed: handed,
            });
            return Box::pin(std::future::ready(Ok(answer)));
        }
        let router = self.router.clone();
        Box::pin(async move {
            let response = match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            Ok(response.map(|inner| Answer {
                inner,
                _handed: handed,
            }))
        })
    }
}

/// `413`, closing the connection: the body is never read.
fn too_large(max: u64) -> Response<axum::body::Body> {
    let mut response = super::routes::error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the API takes no request body over {max} bytes, nor one of unknown length (see docs/http-api.md, \"Limits\")"
        ),
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// What the server's connections share.
pub(super) struct Shared {
    pub(super) router: Router,
    pub(super) limits: Limits,
    pub(super) stats: Arc<ServerStats>,
    /// Cancelled on stop: connections finish their request and close.
    pub(super) drain: CancellationToken,
    /// Cancelled when the grace after stop is over: connections close now.
    pub(super) abort: CancellationToken,
}

/// Serves HTTP/1 on `stream` until the client closes it or a limit, the
/// accept loop or a stop closes it; returns why the server closed it, if
/// it did. The socket is closed when this returns.
pub(super) async fn serve(
    stream: TcpStream,
    tracker: Arc<Tracker>,
    shared: &Shared,
) -> Option<Closed> {
    let limits = &shared.limits;
    let io = TokioIo::new(Watched {
        stream,
        tracker: Arc::clone(&tracker),
    });
    let service = Service {
        router: shared.router.clone(),
        tracker: Arc::clone(&tracker),
        stats: Arc::clone(&shared.stats),
        request_timeout: limits.request_timeout,
        max_body_bytes: limits.max_body_bytes,
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_head_bytes)
        .max_header_size(limits.max_head_bytes)
        .keep_alive(true);
    let mut conn = pin!(builder.serve_connection(io, service));
    let mut timer = pin!(tokio::time::sleep_until(Instant::now()));
    let mut armed: Option<Instant> = None;
    let mut shed = pin!(tracker.shed.cancelled());
    let mut drain = pin!(shared.drain.cancelled());
    let mut abort = pin!(shared.abort.cancelled());
    let mut draining = false;
    poll_fn(|cx| {
        if abort.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        if shed.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Closed::Shed));
        }
        if !draining && drain.as_mut().poll(cx).is_ready() {
            draining = true;
            conn.as_mut().graceful_shutdown();
        }
        if let Poll::Ready(result) = conn.as_mut().poll(cx) {
            return Poll::Ready(match result {
                Ok(()) => None,
                Err(e) if e.is_timeout() => Some(Closed::Header),
                Err(e) if e.is_parse_too_large() => Some(Closed::HeadTooLarge),
                Err(e) => {
                    tracing::debug!(error = %e, "api connection failed");
                    None
                }
            });
        }
        // Every phase change happens while hyper is polled, just above, on
        // this task: the deadline read here is current.
        let next = tracker.deadline(limits);
        let at = next.map(|(at, _)| at);
        if let Some(at) = at
            && armed != Some(at)
        {
            timer.as_mut().reset(at);
        }
        armed = at;
        match next {
            Some((_, why)) if timer.as_mut().poll(cx).is_ready() => Poll::Ready(Some(why)),
            _ => Poll::Pending,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_sheddable_only_between_requests() {
        let limits = Limits::default();
        let t0 = Instant::now();
        let tracker = Tracker::new(t0);
        assert_eq!(tracker.waiting_since(), Some(t0));
        assert_eq!(
            tracker.deadline(&limits),
            Some((t0 + limits.idle_timeout, Closed::Idle))
        );
        tracker.read_some();
        assert_eq!(tracker.waiting_since(), Some(t0));
        assert_eq!(tracker.deadline(&limits), None);
        let until = t0 + limits.request_timeout;
        tracker.request(until);
        assert_eq!(tracker.waiting_since(), None);
        // Written out before the answer is all handed over: still busy.
        tracker.flushed(t0);
        assert_eq!(tracker.deadline(&limits), Some((until, Closed::Request)));
        tracker.handed();
        assert_eq!(tracker.waiting_since(), None);
        let t1 = t0 + Duration::from_millis(5);
        tracker.flushed(t1);
        assert_eq!(tracker.waiting_since(), Some(t1));
        assert_eq!(
            tracker.deadline(&limits),
            Some((t1 + limits.idle_timeout, Closed::Idle))
        );
    }
}
