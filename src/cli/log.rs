//! Where logs and messages for a person go: stderr, written so that a
//! closed or full stderr never stops sitewatch, and so that journald files
//! each line under its priority.
//!
//! Under systemd, stderr is the journal's stream (`JOURNAL_STREAM` names
//! its device and inode). Each line then starts with the sd-daemon prefix
//! of its level, `<3>` error, `<4>` warning, `<5>` info, `<6>` debug, `<7>`
//! trace (tracing-journald's mapping), so `journalctl -p err` finds the
//! errors.
//!
//! Not the tracing-journald crate: this stream protocol needs no socket and uses the stream journald already captures.

use std::io::{self, Write};
use std::sync::OnceLock;
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// Whether stderr is the journal's stream: `JOURNAL_STREAM` is
/// `DEVICE:INODE` of the stream systemd connected, and it is inherited by
/// children whose stderr may be elsewhere, so both must match stderr.
pub fn stderr_is_journal() -> bool {
    static JOURNAL: OnceLock<bool> = OnceLock::new();
    *JOURNAL.get_or_init(|| {
        std::env::var("JOURNAL_STREAM")
            .ok()
            .and_then(|v| {
                let (dev, ino) = v.split_once(':')?;
                Some((dev.parse::<u64>().ok()?, ino.parse::<u64>().ok()?))
            })
            .is_some_and(|(dev, ino)| stderr_id() == Some((dev, ino)))
    })
}

/// The device and inode of stderr.
fn stderr_id() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = io::stderr().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

/// The sd-daemon prefix of a level (sd-daemon(3)).
pub fn priority(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "<3>",
        Level::WARN => "<4>",
        Level::INFO => "<5>",
        Level::DEBUG => "<6>",
        Level::TRACE => "<7>",
    }
}

/// A `MakeWriter` for tracing-subscriber: each event becomes one write to
/// stderr whose errors are ignored, with a priority prefix on every line
/// when `journal` is set.
#[derive(Clone, Copy, Debug)]
pub struct Stderr {
    /// Whether to prefix lines for journald.
    pub journal: bool,
}

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Lines;

    fn make_writer(&'a self) -> Lines {
        Lines::new(self.journal.then_some("<5>"))
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Lines {
        Lines::new(self.journal.then(|| priority(meta.level())))
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

/// Writes a message for a person to stderr, ignoring failure; under
/// journald every line is filed as an error.
pub fn error(text: &str) {
    let mut w = Lines::new(stderr_is_journal().then_some("<3>"));
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

    #[test]
    fn levels_map_like_tracing_journald() {
        let levels = [
            Level::ERROR,
            Level::WARN,
            Level::INFO,
            Level::DEBUG,
            Level::TRACE,
        ];
        let got: Vec<&str> = levels.iter().map(priority).collect();
        assert_eq!(got, ["<3>", "<4>", "<5>", "<6>", "<7>"]);
    }
}
