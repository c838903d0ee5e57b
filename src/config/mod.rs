//! sites.toml: reading, validating and reporting every mistake with
//! file:line:column.
//!
//! The pipeline is parse (TOML, with spans) → per-table deserialize into the
//! raw model (so one bad site does not hide another's errors) → validate and
//! inherit `[defaults]` → immutable [`Config`]. Nothing here does I/O except
//! [`load`] reading the file.
//!
//! - `validate`: the pipeline; it hands each table to `daemon`, `cluster`,
//!   `site` (with `request` for the HTTP keys) or `alert`.
//! - `context`: what they share: the diagnostic collector, limits checks,
//!   durations, secrets, names. It depends on none of them.
//! - `target`: the value parsers the command line shares (URL, statuses,
//!   resolvers, address mode).
//! - `diagnostic`: [`Diagnostic`] and how it is shown; `redact` and `lexer`
//!   find the secrets it must never show.
//! - `model` is the result, `defaults` every default and limit.
//! - `diff`: what a reload changes, site by site (probe, policy, routing).

mod alert;
mod alertmanager;
mod channels;
mod cluster;
mod context;
mod daemon;
mod defaults;
mod diagnostic;
pub mod diff;
mod email;
mod events;
mod exec;
mod heartbeat;
mod hook;
mod judgement;
mod lexer;
mod maintenance;
mod model;
mod options;
mod raw_channel;
mod redact;
mod request;
mod selfcheck;
mod site;
mod target;
mod validate;

pub use context::parse_duration;
pub use defaults::*;
pub use diagnostic::Diagnostic;
pub use diff::{Diff, SiteChange, diff, probe_key};
pub use exec::{EXEC_TIMEOUT, MAX_EXEC_TIMEOUT};
pub use heartbeat::check_ping_key;
pub use model::*;
pub use options::{ExecSpec, HttpOptions, Method};
pub use target::{parse_address_mode, parse_resolver, parse_status_range, parse_target};

use std::io::Read;
use std::path::{Path, PathBuf};

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file was read but is not a valid configuration.
    #[error("{}", render_all(.0))]
    Invalid(Vec<Diagnostic>),
}

fn render_all(diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for (i, d) in diags.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&d.render());
    }
    out
}

/// Reads and validates a configuration file of at most
/// [`MAX_CONFIG_BYTES`].
pub fn load(path: &Path) -> Result<Config, Error> {
    let read_error = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes))
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(read_error(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!(
                "the file is larger than {} MiB, the most a configuration may be",
                MAX_CONFIG_BYTES >> 20
            ),
        )));
    }
    parse_bytes(path, &bytes).map_err(Error::Invalid)
}

/// [`parse`] for the raw bytes of a file: text that is not UTF-8 is
/// reported at the line and column of its first invalid byte.
pub fn parse_bytes(path: &Path, bytes: &[u8]) -> Result<Config, Vec<Diagnostic>> {
    validate::parse_bytes(path, bytes)
}

/// Validates configuration text; `path` is used for messages and for
/// resolving relative paths (`ca_file`, `state_dir`) against its directory.
pub fn parse(path: &Path, text: &str) -> Result<Config, Vec<Diagnostic>> {
    validate::parse(path, text)
}
