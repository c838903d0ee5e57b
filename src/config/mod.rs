//! sites.toml: reading, validating and reporting every mistake with
//! file:line:column.
//!
//! The pipeline is parse (TOML, with spans) → per-table deserialize into the
//! raw model (so one bad site does not hide another's errors) → validate and
//! inherit `[defaults]` → immutable [`Config`]. Nothing here does I/O except
//! [`load`] reading the file.

mod alert;
mod defaults;
mod model;
mod validate;

mod context;
mod daemon;
mod site;
mod target;

pub use context::parse_duration;
pub use defaults::*;
pub use model::*;
pub use target::{parse_address_mode, parse_resolver, parse_status_range, parse_target};

use std::fmt;
use std::path::{Path, PathBuf};

/// One mistake in a configuration file, located in its source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file (as given to `load`).
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong, as one sentence.
    pub message: String,
    /// The source line, to show under the message.
    pub source_line: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

impl Diagnostic {
    /// The message followed by the source line and a caret under the column,
    /// the way compilers show it.
    pub fn render(&self) -> String {
        let gutter = self.line.to_string().len();
        format!(
            "{self}\n{:gutter$} |\n{} | {}\n{:gutter$} | {:>col$}",
            "",
            self.line,
            self.source_line,
            "",
            "^",
            col = self.column
        )
    }
}

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

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text).map_err(Error::Invalid)
}

/// Validates configuration text; `path` is used for messages and for
/// resolving relative paths (`ca_file`, `state_dir`) against its directory.
pub fn parse(path: &Path, text: &str) -> Result<Config, Vec<Diagnostic>> {
    validate::parse(path, text)
}

/// Turns a byte offset into a 1-based line, a 1-based column in characters,
/// and the text of that line.
pub(crate) fn locate(text: &str, offset: usize) -> (usize, usize, String) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = text[line_start..offset].chars().count() + 1;
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let source_line = text[line_start..line_end]
        .trim_end_matches('\r')
        .to_string();
    (line, column, source_line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_counts_lines_and_characters() {
        let text = "a = 1\nnäme = 2\n";
        assert_eq!(locate(text, 0), (1, 1, "a = 1".to_string()));
        let off = text.find("= 2").unwrap();
        assert_eq!(locate(text, off), (2, 6, "näme = 2".to_string()));
        assert_eq!(locate(text, text.len()).0, 3);
    }

    #[test]
    fn render_puts_a_caret_under_the_column() {
        let d = Diagnostic {
            path: "s.toml".into(),
            line: 3,
            column: 5,
            message: "bad".into(),
            source_line: "url = 1".into(),
        };
        assert_eq!(d.render(), "s.toml:3:5: bad\n  |\n3 | url = 1\n  |     ^");
    }
}
