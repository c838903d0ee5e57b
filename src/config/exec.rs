//! An `exec` channel: a program run for each alert, with no shell
//! (`command` is its argv), the alert as JSON on its standard input, and a
//! `timeout` after which it is killed.

use super::context::{Cx, Dur, duration_in, list_len};
use super::diagnostic::quote;
use super::options::ExecSpec;
use std::time::Duration;
use toml::Spanned;

/// How long a program may run when `timeout` is not set.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest `timeout` (an attempt's own limit).
pub const MAX_EXEC_TIMEOUT: Duration = Duration::from_secs(30);
/// The most arguments of `command`.
const MAX_ARGS: usize = 64;
/// The longest argument.
const MAX_ARG_BYTES: usize = 4096;

/// Checks an exec channel's `command` and `timeout`.
pub(super) fn exec(
    cx: &mut Cx<'_>,
    command: Option<&Spanned<Vec<Spanned<String>>>>,
    timeout: Option<&Spanned<Dur>>,
    at: &std::ops::Range<usize>,
) -> ExecSpec {
    let mut argv = Vec::new();
    match command {
        None => cx.error(
            at.clone(),
            "an exec channel needs `command`: the program and its arguments, e.g. [\"/usr/local/bin/notify\", \"--team\", \"web\"]",
        ),
        Some(list) if list.get_ref().is_empty() => {
            cx.error(list.span(), "`command` must name a program")
        }
        Some(list) if !list_len(cx, "command", "arguments", list, MAX_ARGS) => {}
        Some(list) => {
            for (i, arg) in list.get_ref().iter().enumerate() {
                let text = arg.get_ref();
                if text.len() > MAX_ARG_BYTES || text.contains('\0') {
                    cx.error(
                        arg.span(),
                        format!(
                            "an argument of `command` must be at most {MAX_ARG_BYTES} bytes, without NUL"
                        ),
                    );
                } else if i == 0 && text.is_empty() {
                    cx.error(arg.span(), "`command` must name a program");
                } else if i == 0 && text.contains('/') && !text.starts_with('/') {
                    cx.error(
                        arg.span(),
                        format!(
                            "the program \"{}\" must be an absolute path or a name found in PATH (no shell runs it)",
                            quote(text)
                        ),
                    );
                }
                argv.push(text.clone());
            }
        }
    }
    let timeout = timeout
        .and_then(|t| duration_in(cx, "timeout", t, Duration::from_secs(1), MAX_EXEC_TIMEOUT))
        .unwrap_or(EXEC_TIMEOUT);
    ExecSpec {
        command: argv,
        timeout,
    }
}
