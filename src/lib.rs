//! sitewatch: an uptime monitor that says *why* a site is down.
//!
//! Crate map (data flows top to bottom):
//!
//! - [`config`]: sites.toml → validated, immutable [`config::Config`]; errors with file:line:column;
//!   [`config::diff`] sorts what a reload changes.
//! - [`probe`]: one probe of one site, layer by layer (DNS, TCP, TLS, HTTP) → [`probe::ProbeReport`].
//! - [`diagnosis`]: the contract's cause codes, statuses, layers and hints (pure).
//! - [`state`]: the per-site state machine, `step(prev, observation, now)` (pure).
//! - [`schedule`]: the one loop that runs every site's probes on time and applies `state::step`.
//! - [`store`]: the latest state and report of each site, shared with the API.
//! - [`api`]: the HTTP endpoints over a read-only store handle, on a thread of their own, with limits
//!   on connections, heads, bodies and time.
//! - [`web`]: the status page, SVG badges and Prometheus metrics the API serves.
//! - [`app`]: the composition root; the only module that knows all the others. Locks the state
//!   directory, supervises every task, reloads off the probing thread.
//! - [`cli`]: the command line (`run`, `check`, `validate`, `notify-test`) and logging.
//! - [`shutdown`]: stop and reload signals.
//! - [`notify`]: systemd notifications (ready, reloading, stopping, status, watchdog).
//! - [`alert`]: alert channels, the alert policy and the dispatcher (its outbox lives in the history).
//! - [`selfcheck`]: "is it me?": the monitor's check of its own network, shared with the scheduler.
//! - [`history`]: the SQLite database (states, samples, incidents, the alert journal and outbox) and
//!   its writer thread, which hands each committed alert to the dispatcher.
//!
//! Rules: `diagnosis`, `state` and `config` do no network I/O and do not use
//! tokio; `probe` knows nothing of state or the store; `api` only reads.

pub mod alert;
pub mod api;
pub mod app;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod diagnosis;
pub mod domain;
pub mod heartbeat;
pub mod history;
pub mod maintenance;
pub mod notify;
pub mod probe;
pub mod schedule;
pub mod selfcheck;
pub mod shutdown;
pub mod silence;
pub mod state;
pub mod store;
pub mod timefmt;
pub mod web;
