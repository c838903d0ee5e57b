//! The API on a thread of its own, `sitewatch-api`, with its own
//! current-thread runtime. Rendering `/status`, the page or `/metrics` for
//! a thousand sites takes milliseconds of CPU; on the scheduler's thread
//! that would be milliseconds of lag for every probe due meanwhile
//! (docs/http-api.md, "Limits"). The two threads share only the store,
//! whose lock is held for copies, never for rendering, and the API thread
//! runs at a lower priority, so that the probes keep the CPU they need.

use super::{Access, Limits};
use crate::store::StatusStore;
use std::io;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_util::sync::{CancellationToken, DropGuard};

/// The API's thread. The server stops when the `stop` token given to
/// [`spawn`] is cancelled, or when this handle is dropped.
#[derive(Debug)]
pub struct ApiThread {
    thread: std::thread::JoinHandle<()>,
    /// The server's result, sent as the thread's last act.
    result: oneshot::Receiver<io::Result<()>>,
    /// Stops the server if the handle is dropped without being waited for,
    /// so that no server outlives its daemon.
    _stop: DropGuard,
}

fn panicked() -> io::Error {
    io::Error::other("the API thread panicked")
}

impl ApiThread {
    /// Waits, blocking the calling thread, until the server has stopped
    /// (cancel the `stop` token first), and returns its result.
    pub fn join(self) -> io::Result<()> {
        let ApiThread {
            thread,
            mut result,
            _stop,
        } = self;
        thread.join().map_err(|_| panicked())?;
        result.try_recv().unwrap_or_else(|_| Err(panicked()))
    }

    /// Waits, without blocking the runtime, until the server has stopped
    /// (cancel the `stop` token first), and returns its result.
    pub async fn wait(self) -> io::Result<()> {
        let ApiThread {
            thread,
            result,
            _stop,
        } = self;
        let result = result.await.unwrap_or_else(|_| Err(panicked()));
        // The thread sent the result as its last act and is returning:
        // dropping the handle detaches nothing that still runs.
        drop(thread);
        result
    }
}

/// The API thread's nice value: when the CPU is short, the probe thread
/// (nice 0) gets about nine tenths of it, the API the rest.
const NICE: libc::c_int = 10;

/// Lowers this thread's scheduling priority to [`NICE`] (the threads it
/// starts, such as the runtime's blocking pool, inherit it), so that a
/// flood of requests slows the API, not the probes, even on one core.
fn yield_to_probes() {
    // SAFETY: setpriority(2) only reads its arguments; on Linux, `who` 0
    // with PRIO_PROCESS is the calling thread. Raising one's own nice value
    // needs no privilege.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, NICE) };
    if rc != 0 {
        tracing::warn!(
            error = %io::Error::last_os_error(),
            "cannot lower the API thread's priority; a flood of requests may delay probes"
        );
    }
}

/// Serves the API on `listener` ([`super::serve_with`]) on a new thread,
/// `sitewatch-api`, with a current-thread runtime of its own, until `stop`
/// is cancelled or the returned handle dropped. Errors if the runtime or
/// the thread cannot be made.
pub fn spawn(
    listener: std::net::TcpListener,
    store: StatusStore,
    access: Access,
    limits: Limits,
    stop: CancellationToken,
) -> io::Result<ApiThread> {
    spawn_serving(
        listener,
        store,
        access,
        limits,
        super::Serving::Api(super::Extras::default()),
        stop,
    )
}

/// [`spawn`] serving `what`.
pub fn spawn_serving(
    listener: std::net::TcpListener,
    store: StatusStore,
    access: Access,
    limits: Limits,
    what: super::Serving,
    stop: CancellationToken,
) -> io::Result<ApiThread> {
    let limits = limits.checked();
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("sitewatch-api-blocking")
        .build()?;
    let stop = stop.child_token();
    let guard = stop.clone().drop_guard();
    let (sender, result) = oneshot::channel();
    let grace = limits.shutdown_grace;
    let thread = std::thread::Builder::new()
        .name("sitewatch-api".to_string())
        .spawn(move || {
            yield_to_probes();
            let served = runtime.block_on(async move {
                let listener = TcpListener::from_std(listener)?;
                super::serve_routes(
                    listener,
                    store,
                    access,
                    limits,
                    what,
                    stop.cancelled_owned(),
                )
                .await
            });
            // History reads of requests cut short by the stop get the
            // grace period to end; the thread does not wait longer.
            runtime.shutdown_timeout(grace);
            let _ = sender.send(served);
        })?;
    Ok(ApiThread {
        thread,
        result,
        _stop: guard,
    })
}
