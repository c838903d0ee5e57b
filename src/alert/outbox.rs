//! The dispatcher's handle on the outbox. The deliveries live in the history
//! database, next to the changes that make them due, and only the history's
//! writer thread writes there: this handle sends it the dispatcher's writes
//! and waits, never longer than [`ANSWER_WAIT`], for the answer. The
//! dispatcher never touches the disk, so slow storage delays no probe.

use crate::history::{DeliveryState, Error, History, NewDelivery, OutboxOp, Remote};
use std::time::{Duration, SystemTime};
use tokio::sync::oneshot;

/// The longest the dispatcher waits for a write before sending anyway (the
/// write still happens when the disk allows).
pub const ANSWER_WAIT: Duration = Duration::from_secs(5);

/// Writes to the outbox through the history writer.
#[derive(Clone)]
pub struct Outbox {
    history: History,
}

impl Outbox {
    /// The outbox of `history`'s database.
    pub fn new(history: History) -> Outbox {
        Outbox { history }
    }

    async fn ask(&self, op: OutboxOp) -> Result<Vec<bool>, Error> {
        let (tx, rx) = oneshot::channel();
        self.history.outbox(op, Some(tx))?;
        match tokio::time::timeout(ANSWER_WAIT, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(Error::Stopped),
            Err(_) => Err(Error::Storage(format!(
                "the history database did not answer within {} s",
                ANSWER_WAIT.as_secs()
            ))),
        }
    }

    /// Stores `deliveries` (before their first attempt), marks the journal
    /// rows `handled` and restarts the reminder clock of `reminded`
    /// outages, in one transaction. Says per delivery whether it is new.
    pub async fn enqueue(
        &self,
        handled: Vec<crate::alert::Journal>,
        deliveries: Vec<NewDelivery>,
        reminded: Vec<(String, SystemTime)>,
    ) -> Result<Vec<bool>, Error> {
        self.ask(OutboxOp::Enqueue {
            handled,
            deliveries,
            reminded,
        })
        .await
    }

    /// Stores a grouped alert and marks its members as sent with it, in one
    /// transaction.
    pub async fn group(
        &self,
        group: Vec<NewDelivery>,
        members: Vec<(String, String)>,
    ) -> Result<(), Error> {
        self.ask(OutboxOp::Group { group, members })
            .await
            .map(|_| ())
    }

    /// Records an attempt's outcome and what it left at the receiver
    /// (written in order, not waited for).
    pub fn attempt(
        &self,
        alert_id: &str,
        channel: &str,
        attempts: u32,
        state: DeliveryState,
        error: Option<&str>,
        remote: Remote,
    ) {
        let op = OutboxOp::Attempt {
            alert_id: alert_id.to_string(),
            channel: channel.to_string(),
            attempts,
            state,
            error: error.map(str::to_string),
            remote,
        };
        if let Err(e) = self.history.outbox(op, None) {
            tracing::error!(alert = %alert_id, %channel, error = %e, "cannot record the delivery");
        }
    }
}
