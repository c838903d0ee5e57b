//! The `exec` channel: runs the configured program (no shell: its argv is
//! `command`) with the alert as JSON on its standard input (the webhook's
//! body) and as `SITEWATCH_*` environment variables. Its exit status says
//! what happened: 0 delivered, 75 (`EX_TEMPFAIL`) try again later, anything
//! else refused for good. A program still running at `timeout` is killed
//! with everything it started (its process group).

use super::{Alert, SendError, render};
use crate::config::ExecSpec;
use std::process::Stdio;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The exit status that asks for another attempt (sysexits' `EX_TEMPFAIL`).
pub const EXIT_RETRY: i32 = 75;
/// The most of the program's standard error kept for the error text.
const MAX_STDERR: usize = 4096;

/// Runs `spec` once for `alert`, sent through `channel`.
pub async fn run(spec: &ExecSpec, alert: &Alert, channel: &str) -> Result<(), SendError> {
    let Some((program, args)) = spec.command.split_first() else {
        return Err(SendError::Permanent("no command".to_string()));
    };
    let body = serde_json::to_vec(&render::webhook(alert))
        .map_err(|e| SendError::Permanent(e.to_string()))?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env("SITEWATCH_EVENT", alert.kind.as_str())
        .env("SITEWATCH_ALERT_ID", &alert.id)
        .env("SITEWATCH_CHANNEL", channel)
        .env("SITEWATCH_SITE", &alert.site)
        .env("SITEWATCH_URL", &alert.url)
        .env("SITEWATCH_STATUS", alert.status.as_str())
        .env(
            "SITEWATCH_CAUSE",
            alert.cause.map(|c| c.as_str()).unwrap_or_default(),
        )
        .env("SITEWATCH_DETAIL", &alert.detail)
        .env("SITEWATCH_HINT", alert.hint.as_deref().unwrap_or_default())
        // Its own process group: a timeout kills what it started too.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| SendError::Permanent(format!("cannot start {program}: {e}")))?;
    let pid = child.id();
    let mut stdin = child.stdin.take();
    let mut stderr = child.stderr.take();
    let work = async {
        if let Some(mut input) = stdin.take() {
            // A program that does not read its input is fine.
            let _ = input.write_all(&body).await;
            drop(input);
        }
        let mut err = Vec::new();
        if let Some(pipe) = stderr.as_mut() {
            let _ = pipe.take(MAX_STDERR as u64).read_to_end(&mut err).await;
            // The rest is drained, so a talkative program never blocks.
            let _ = tokio::io::copy(pipe, &mut tokio::io::sink()).await;
        }
        let status = child.wait().await;
        (status, err)
    };
    let (status, err) = match tokio::time::timeout(spec.timeout, work).await {
        Ok(done) => done,
        Err(_) => {
            kill_group(pid);
            return Err(SendError::Transient {
                message: format!(
                    "{program} did not finish within {}; it was killed",
                    render::human(spec.timeout)
                ),
                retry_after: None,
            });
        }
    };
    let said = String::from_utf8_lossy(&err).trim().to_string();
    let said = if said.is_empty() {
        String::new()
    } else {
        format!(": {said}")
    };
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => match s.code() {
            Some(EXIT_RETRY) => Err(SendError::Transient {
                message: format!("{program} exited {EXIT_RETRY} (try again later){said}"),
                retry_after: None,
            }),
            Some(code) => Err(SendError::Permanent(format!(
                "{program} exited {code}{said}"
            ))),
            None => Err(SendError::Transient {
                message: format!("{program} was killed by a signal ({s}){said}"),
                retry_after: None,
            }),
        },
        Err(e) => Err(SendError::Transient {
            message: format!("waiting for {program} failed: {e}"),
            retry_after: None,
        }),
    }
}

/// Kills the process group led by `pid` (the program and what it started).
fn kill_group(pid: Option<u32>) {
    let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    // SAFETY: kill(2) with a negative pid signals that process group; the
    // group is the child's own (process_group(0)), so nothing else is hit.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}
