//! What the writer thread is sent: probe results with the change they
//! confirm, resets, network changes, heartbeat records, silences and the
//! dispatcher's bookkeeping.

use super::{Error, NetChange, OutboxOp};
use crate::alert::{Alert, Forget};
use crate::config::SiteSpec;
use crate::diagnosis::{Cause, Status};
use crate::state::{SiteState, Transition};
use std::sync::{Arc, mpsc};
use std::time::SystemTime;
use tokio::sync::oneshot;

/// A confirmed change that comes with a probe result: written in the same
/// transaction as the state it leads to, with the alert it makes due.
pub(crate) struct Change {
    pub(crate) transition: Transition,
    pub(crate) detail: String,
    /// The alert due (`None` for changes that alert nobody).
    pub(crate) alert: Option<Alert>,
    /// The channels it goes to.
    pub(crate) notify: Vec<String>,
    /// Other sites that began failing shortly before (a storm forming).
    pub(crate) failing: usize,
    /// Made inside a maintenance window: no incident is opened.
    pub(crate) maintenance: bool,
    /// Already handed to the dispatcher without being stored (the disk
    /// failed); when it is stored later, its alert is not due again.
    pub(crate) forwarded: bool,
}

/// One thing to write.
pub(crate) enum Record {
    Probe {
        site: Arc<SiteSpec>,
        at: SystemTime,
        status: Status,
        cause: Option<Cause>,
        ms: f64,
        unverified: bool,
        maintenance: bool,
        state: SiteState,
        change: Option<Box<Change>>,
    },
    /// The monitor's own network changed.
    Network {
        change: Box<NetChange>,
        forwarded: bool,
    },
    /// A site starts over (its probe settings changed) or is gone: its open
    /// outage is closed as forgotten, with a notice to whoever heard of it.
    Reset {
        site: Arc<SiteSpec>,
        /// The fresh state, or `None` when the site was removed.
        state: Option<SiteState>,
        why: Forget,
        at: SystemTime,
        forwarded: bool,
    },
    /// A heartbeat's record after a ping (or when first watched).
    Heartbeat {
        name: String,
        record: String,
    },
    /// A silence made or changed, answered once written.
    Silence {
        id: String,
        body: String,
        ends: SystemTime,
        answer: Option<oneshot::Sender<Result<Vec<bool>, Error>>>,
    },
    /// The dispatcher's bookkeeping, answered once written (or failed).
    Outbox(OutboxOp, Option<oneshot::Sender<Result<Vec<bool>, Error>>>),
    /// Write everything queued before it, do the due maintenance, then ack.
    Sync(mpsc::Sender<()>),
    Stop,
}

impl Record {
    /// Whether it should be written at once rather than gathered: alerts
    /// wait for it.
    pub(crate) fn urgent(&self) -> bool {
        match self {
            Record::Probe { change, .. } => change.is_some(),
            Record::Reset { .. }
            | Record::Heartbeat { .. }
            | Record::Silence { .. }
            | Record::Network { .. }
            | Record::Outbox(..)
            | Record::Sync(_)
            | Record::Stop => true,
        }
    }
}
