//! Where logs and messages for a person go: stderr, written so that a
//! closed or full stderr (EPIPE, ENOSPC, EBADF) never stops sitewatch.

use std::io::{self, Write};
use tracing::Metadata;
use tracing_subscriber::fmt::MakeWriter;

/// A `MakeWriter` for tracing-subscriber: each event becomes one write to
/// stderr whose errors are ignored.
#[derive(Clone, Copy, Debug)]
pub struct Stderr;

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Lines;

    fn make_writer(&'a self) -> Lines {
        Lines::new(None)
    }

    fn make_writer_for(&'a self, _meta: &Metadata<'_>) -> Lines {
        Lines::new(None)
    }
}

/// The text of one event, written to stderr when dropped.
pub struct Lines {
    prefix: Option<&'static str>,
    buf: Vec<u8>,
    at_line_start: bool,
}

impl Lines {
    /// A writer that puts `prefix` (if any) at the start of every line.
    pub fn new(prefix: Option<&'static str>) -> Self {
        Lines {
            prefix,
            buf: Vec::new(),
            at_line_start: true,
        }
    }

    /// The bytes written so far, prefixes included.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

impl Write for Lines {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self.prefix {
            None => self.buf.extend_from_slice(data),
            Some(prefix) => {
                for &b in data {
                    if self.at_line_start {
                        self.buf.extend_from_slice(prefix.as_bytes());
                    }
                    self.buf.push(b);
                    self.at_line_start = b == b'\n';
                }
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        // One write per event keeps events whole; a closed pipe (EPIPE), a
        // full disk or a closed descriptor must not stop the daemon, and
        // there is nowhere left to report it.
        let _ = io::stderr().lock().write_all(&self.buf);
    }
}

/// Writes a message for a person to stderr, ignoring failure.
pub fn error(text: &str) {
    let mut w = Lines::new(None);
    let _ = w.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = w.write_all(b"\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(prefix: Option<&'static str>, parts: &[&str]) -> String {
        let mut w = Lines::new(prefix);
        for p in parts {
            w.write_all(p.as_bytes()).unwrap();
        }
        let s = String::from_utf8(w.bytes().to_vec()).unwrap();
        // Keep the test's stderr quiet: nothing left to write on drop.
        w.buf.clear();
        s
    }

    #[test]
    fn every_line_of_an_event_gets_the_prefix() {
        assert_eq!(
            written(Some("<3>"), &["cannot load\n  |\n", "3 | x\n"]),
            "<3>cannot load\n<3>  |\n<3>3 | x\n"
        );
        assert_eq!(written(Some("<5>"), &["a", "b\n"]), "<5>ab\n");
        assert_eq!(written(None, &["a\nb\n"]), "a\nb\n");
    }
}
