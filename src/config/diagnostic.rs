//! One mistake in a configuration file ([`Diagnostic`]) and how it is shown:
//! `file:line:column: message`, then the source line with a caret under the
//! column, the way compilers show it.
//!
//! Whatever the file holds, showing it is safe: a long line is cut to a
//! window around the caret, control characters (terminal escapes, bidi
//! overrides) are replaced, secrets are masked, and messages are capped.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

/// The most characters of a source line shown under a message; a longer
/// line is cut around the caret, with "…" on the cut sides.
pub(super) const SHOWN_LINE_CHARS: usize = 120;
/// The most characters of one message (room for every key of a table in
/// "unknown field" messages); the rest is cut with "…".
pub(super) const MESSAGE_CHARS: usize = 1000;
/// What a masked secret is shown as.
pub(super) const MASK: &str = "***";

/// One mistake in a configuration file, located in its source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file (as given to `load`).
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong, as one sentence (secrets masked, control characters escaped).
    pub message: String,
    /// The source line to show under the message: secrets masked as `***`,
    /// control characters replaced, and a long line cut to a window around
    /// the column with "…" on the cut sides.
    pub source_line: String,
    /// 1-based position of the caret in `source_line`, in characters. It
    /// differs from `column` when the line was cut or a secret before the
    /// column was masked.
    pub caret: usize,
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
    /// The message followed by the source line and a caret under the column.
    /// Never fails, whatever the fields hold.
    pub fn render(&self) -> String {
        let number = self.line.to_string();
        let gutter = " ".repeat(number.chars().count());
        let chars: Vec<char> = self.source_line.chars().map(printable).collect();
        let (shown, caret) = window(&chars, self.caret.saturating_sub(1));
        // The caret is indented by copying tabs and writing spaces for the
        // rest, so it lines up under a tab-indented line too.
        let indent: String = shown[..caret.min(shown.len())]
            .iter()
            .map(|&c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let shown: String = shown.into_iter().collect();
        format!("{self}\n{gutter} |\n{number} | {shown}\n{gutter} | {indent}^")
    }
}

/// Byte offsets → line and column, with an index of line starts so that
/// locating many offsets in a large file stays cheap.
pub(super) struct Source<'a> {
    text: &'a str,
    /// Byte offset of the start of each line.
    starts: Vec<usize>,
}

/// Where an offset lies.
pub(super) struct Location {
    /// 1-based line.
    pub(super) line: usize,
    /// 1-based column, in characters.
    pub(super) column: usize,
    /// The bytes of the line, without its line break.
    pub(super) line_bytes: Range<usize>,
}

impl<'a> Source<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Source { text, starts }
    }

    pub(super) fn text(&self) -> &'a str {
        self.text
    }

    /// The 1-based line of a byte offset (clamped to the text).
    pub(super) fn line_of(&self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        // `starts[0]` is 0, so at least one start is <= offset.
        self.starts.partition_point(|&s| s <= offset).max(1)
    }

    /// Locates a byte offset; one past the end or inside a character is
    /// moved to the nearest character start before it.
    pub(super) fn locate(&self, offset: usize) -> Location {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_of(offset);
        let start = self.starts[line - 1];
        let end = self
            .starts
            .get(line)
            .map_or(self.text.len(), |next| next - 1);
        let end = if self.text[start..end].ends_with('\r') {
            end - 1
        } else {
            end
        };
        // An offset in the line break (between \r and \n) is the end of the line.
        let column = self.text[start..offset.min(end)].chars().count() + 1;
        Location {
            line,
            column,
            line_bytes: start..end.max(start),
        }
    }
}

/// The text of a line to show and the 1-based caret in it: the characters
/// of `masks` (byte ranges of `line`, sorted, not overlapping) become one
/// `***` each, control characters are replaced, and a long line is cut to
/// a window around `column`.
pub(super) fn snippet(line: &str, column: usize, masks: &[Range<usize>]) -> (String, usize) {
    let target = column.saturating_sub(1);
    let mut out: Vec<char> = Vec::new();
    let mut caret = None;
    let mut masks = masks.iter().peekable();
    let mut in_mask: Option<usize> = None;
    for (i, (byte, c)) in line.char_indices().enumerate() {
        while masks.peek().is_some_and(|m| m.end <= byte) {
            masks.next();
        }
        let masked = masks.peek().is_some_and(|m| m.start <= byte);
        if masked {
            let start = masks.peek().map_or(byte, |m| m.start);
            if in_mask != Some(start) {
                in_mask = Some(start);
                if i == target {
                    caret = Some(out.len());
                }
                out.extend(MASK.chars());
            }
        } else {
            in_mask = None;
            if i == target {
                caret = Some(out.len());
            }
            out.push(printable(c));
        }
        if caret.is_none() && i >= target {
            // The column fell inside a mask: point at the mask's start.
            caret = Some(out.len().saturating_sub(MASK.len()));
        }
    }
    let caret = caret.unwrap_or(out.len());
    let (shown, caret) = window(&out, caret);
    (shown.into_iter().collect(), caret + 1)
}

/// At most [`SHOWN_LINE_CHARS`] characters of `chars` around the 0-based
/// `caret`, with "…" on each cut side; returns them and the caret in them
/// (which may be one past the end, for a mistake at the end of the line).
fn window(chars: &[char], caret: usize) -> (Vec<char>, usize) {
    let caret = caret.min(chars.len());
    if chars.len() <= SHOWN_LINE_CHARS {
        return (chars.to_vec(), caret);
    }
    let mut start = caret.saturating_sub(SHOWN_LINE_CHARS / 2);
    let end = (start + SHOWN_LINE_CHARS).min(chars.len());
    start = start.min(end.saturating_sub(SHOWN_LINE_CHARS));
    let mut shown = Vec::with_capacity(SHOWN_LINE_CHARS + 2);
    let mut at = caret - start;
    if start > 0 {
        shown.push('…');
        at += 1;
    }
    shown.extend_from_slice(&chars[start..end]);
    if end < chars.len() {
        shown.push('…');
    }
    (shown, at)
}

/// A character as shown in a source line: tabs stay, other control
/// characters and bidi overrides (which could rewrite a terminal or
/// reorder the line) become U+FFFD.
fn printable(c: char) -> char {
    let bidi = matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if (c.is_control() && c != '\t') || bidi {
        '\u{FFFD}'
    } else {
        c
    }
}

/// A message safe to print and to keep: one line, control characters and
/// bidi overrides escaped, at most [`MESSAGE_CHARS`] characters.
pub(super) fn clean_message(message: &str) -> String {
    let message = message.trim_end();
    let mut out = String::new();
    for (i, c) in message.chars().enumerate() {
        if i == MESSAGE_CHARS {
            out.push('…');
            break;
        }
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            c if printable(c) != c => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    out
}

/// `text` for quoting in a message: cut to 80 characters with "…".
pub(super) fn quote(text: &str) -> String {
    const QUOTED_CHARS: usize = 80;
    match text.char_indices().nth(QUOTED_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diag(source_line: &str, column: usize, caret: usize) -> Diagnostic {
        Diagnostic {
            path: "s.toml".into(),
            line: 3,
            column,
            message: "bad".into(),
            source_line: source_line.into(),
            caret,
        }
    }

    #[test]
    fn locate_counts_lines_and_characters() {
        let text = "a = 1\r\nnäme = 2\n";
        let src = Source::new(text);
        let at = |o| {
            let l = src.locate(o);
            (l.line, l.column, &text[l.line_bytes])
        };
        assert_eq!(at(0), (1, 1, "a = 1"));
        assert_eq!(at(text.find("= 2").unwrap()), (2, 6, "näme = 2"));
        assert_eq!(at(text.len()).0, 3);
        // Inside the two bytes of 'ä': the column of 'ä' itself.
        assert_eq!(at(text.find('ä').unwrap() + 1), (2, 2, "näme = 2"));
        assert_eq!(at(usize::MAX).0, 3);
        // The \n of a \r\n is the end of the line, not a column past it.
        assert_eq!(at(text.find('\n').unwrap()), (1, 6, "a = 1"));
    }

    #[test]
    fn render_puts_a_caret_under_the_column() {
        let d = diag("url = 1", 5, 5);
        assert_eq!(d.render(), "s.toml:3:5: bad\n  |\n3 | url = 1\n  |     ^");
    }

    #[test]
    fn render_survives_any_caret_and_a_huge_line() {
        // The column and the caret are far beyond what a format width takes.
        let long = "x".repeat(70_000);
        let d = diag(&long, 69_999, 69_999);
        let shown = d.render();
        let line = shown.lines().nth(2).unwrap();
        assert!(line.chars().count() <= SHOWN_LINE_CHARS + 6, "{line}");
        assert!(line.starts_with("3 | …") && !line.ends_with('…'), "{line}");
        for caret in [0, 1, usize::MAX] {
            assert!(diag(&long, caret, caret).render().ends_with('^'));
        }
    }

    #[test]
    fn a_long_line_is_cut_around_the_column_and_the_caret_stays_on_it() {
        let line = format!("url = \"{}X{}\"", "a".repeat(500), "b".repeat(500));
        let column = line.find('X').unwrap() + 1;
        let (shown, caret) = snippet(&line, column, &[]);
        let chars: Vec<char> = shown.chars().collect();
        assert_eq!(chars[caret - 1], 'X', "{shown}");
        assert!(shown.starts_with('…') && shown.ends_with('…'), "{shown}");
        assert!(chars.len() <= SHOWN_LINE_CHARS + 2);
        // Near the start only the end is cut.
        let (shown, caret) = snippet(&line, 1, &[]);
        assert_eq!((shown.chars().next(), caret), (Some('u'), 1));
        assert!(shown.ends_with('…'));
        // Past the end of the line (an error at end of file).
        let (shown, caret) = snippet(&line, line.len() + 1, &[]);
        assert_eq!(caret, shown.chars().count() + 1);
    }

    #[test]
    fn masks_become_three_stars_and_the_caret_follows() {
        let line = r#"h = { Authorization = "Bearer abc", Host = "x" }"#;
        let secret = line.find("\"Bearer").unwrap()..line.find(", Host").unwrap();
        let column = line.find("Host").unwrap() + 1;
        let (shown, caret) = snippet(line, column, std::slice::from_ref(&secret));
        assert_eq!(shown, r#"h = { Authorization = ***, Host = "x" }"#);
        assert_eq!(&shown[caret - 1..caret + 3], "Host");
        // A column inside the secret points at the mask.
        let (shown, caret) = snippet(line, secret.start + 4, &[secret]);
        assert_eq!(&shown[caret - 1..caret + 2], MASK);
    }

    #[test]
    fn control_characters_are_never_shown() {
        let (shown, _) = snippet("a = \"\u{1b}[2J\u{202e}\"", 1, &[]);
        assert_eq!(shown, "a = \"\u{fffd}[2J\u{fffd}\"");
        let m = clean_message("bad \u{1b}[2J\nvalue");
        assert_eq!(m, "bad \\u{1b}[2J value");
        assert!(clean_message(&"x".repeat(10_000)).chars().count() <= MESSAGE_CHARS + 1);
    }
}
