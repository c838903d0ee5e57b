//! The durable outbox: every delivery (alert × channel) is written to
//! `outbox.db` in the state directory, and synced to disk, before its first
//! attempt; it is marked sent or failed when that is known. After a restart
//! (even SIGKILL) what is still pending is sent again with the same id.

use super::Alert;
use rusqlite::{Connection, params};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The outbox file's name in the state directory.
pub const FILE: &str = "outbox.db";

/// One pending delivery as stored.
#[derive(Clone, Debug)]
pub struct Stored {
    /// The alert.
    pub alert: Alert,
    /// The channel's name.
    pub channel: String,
    /// Attempts made so far.
    pub attempts: u32,
}

/// The outbox database (blocking; used from blocking tasks).
pub struct Outbox {
    path: PathBuf,
    conn: Option<Connection>,
}

fn open(path: &Path) -> Result<Connection, rusqlite::Error> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    }
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // An alert must survive power loss once written: sync every commit.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS delivery (
            alert_id   TEXT NOT NULL,
            channel    TEXT NOT NULL,
            alert      TEXT NOT NULL,          -- the alert as JSON
            state      TEXT NOT NULL,          -- pending, sent, failed
            attempts   INTEGER NOT NULL,
            last_error TEXT,
            created_ms INTEGER NOT NULL,
            done_ms    INTEGER,
            PRIMARY KEY (alert_id, channel)
        ) STRICT;",
    )?;
    Ok(conn)
}

impl Outbox {
    /// Opens the outbox in `dir` (an unusable one is reported, not fatal).
    pub fn open(dir: &Path) -> Outbox {
        let path = dir.join(FILE);
        let conn = match open(&path) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "cannot open the alert outbox; alerts are still sent but would not survive a restart");
                None
            }
        };
        Outbox { path, conn }
    }

    fn conn(&mut self) -> Result<&Connection, String> {
        if self.conn.is_none() {
            self.conn = Some(
                open(&self.path)
                    .map_err(|e| format!("cannot open {}: {e}", self.path.display()))?,
            );
        }
        self.conn.as_ref().ok_or_else(|| "no outbox".to_string())
    }

    /// Pending deliveries left from before (oldest first).
    pub fn pending(&mut self) -> Result<Vec<Stored>, String> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare("SELECT alert, channel, attempts FROM delivery WHERE state = 'pending' ORDER BY created_ms")
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for row in rows {
            let (json, channel, attempts) = row.map_err(|e| e.to_string())?;
            match serde_json::from_str::<Alert>(&json) {
                Ok(alert) => out.push(Stored {
                    alert,
                    channel,
                    attempts: attempts as u32,
                }),
                Err(e) => tracing::error!(error = %e, "unreadable alert in the outbox, skipped"),
            }
        }
        Ok(out)
    }

    /// Stores new deliveries (one transaction, synced) and returns the
    /// channels that were new: a delivery already stored (the same alert
    /// confirmed again after a restart) is neither stored nor sent twice.
    pub fn add(&mut self, alert: &Alert, channels: &[String]) -> Result<Vec<String>, String> {
        let json = serde_json::to_string(alert).map_err(|e| e.to_string())?;
        let now = crate::history::unix_ms(std::time::SystemTime::now());
        let conn = self.conn()?;
        let tx = conn.unchecked_transaction().map_err(|e| e.to_string())?;
        let mut new = Vec::new();
        for channel in channels {
            let inserted = tx
                .execute(
                    "INSERT OR IGNORE INTO delivery(alert_id, channel, alert, state, attempts, created_ms) VALUES (?1, ?2, ?3, 'pending', 0, ?4)",
                    params![alert.id, channel, json, now],
                )
                .map_err(|e| e.to_string())?;
            if inserted == 1 {
                new.push(channel.clone());
            }
        }
        tx.commit().map_err(|e| e.to_string())?;
        Ok(new)
    }

    /// Records an attempt's outcome: `Some(state)` ends the delivery.
    pub fn update(
        &mut self,
        alert_id: &str,
        channel: &str,
        attempts: u32,
        state: &str,
        error: Option<&str>,
    ) -> Result<(), String> {
        let now = crate::history::unix_ms(std::time::SystemTime::now());
        let done = (state != "pending").then_some(now);
        self.conn()?
            .execute(
                "UPDATE delivery SET state = ?3, attempts = ?4, last_error = ?5, done_ms = ?6 WHERE alert_id = ?1 AND channel = ?2",
                params![alert_id, channel, state, attempts, error, done],
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Forgets deliveries finished more than a week ago.
    pub fn prune(&mut self) -> Result<(), String> {
        let cutoff = crate::history::unix_ms(std::time::SystemTime::now()) - 7 * 86_400_000;
        self.conn()?
            .execute(
                "DELETE FROM delivery WHERE state != 'pending' AND done_ms < ?1",
                [cutoff],
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
