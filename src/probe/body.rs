//! Searching a response body while it streams: the site's `expect_body` and
//! `forbid_body`, and the signatures of broken pages: application errors
//! (`http.app_error`, each with its [`Sign`]) and PHP source served as text
//! (`http.php_source`). The body is never held whole: each needle is
//! searched with [`memchr::memmem::Finder`] over the new bytes plus an
//! overlap of (longest pending needle − 1) bytes, the PHP error lines are
//! recognised by a small state machine, and the blank-page check keeps only
//! a bounded prefix. The reader stops as soon as every check is decided.
//!
//! Pure: it sees bytes, not sockets; [`super::http`] feeds it.

use crate::diagnosis::{Cause, Sign};
use memchr::memmem::Finder;

/// The most of a body kept for the blank-page check. A page longer than
/// this is not blank; 64 KiB leaves room for the large inline styles of
/// WordPress heads, so a white screen after such a head is still caught.
pub const BLANK_PREFIX: usize = 64 * 1024;

/// What a body is searched for.
#[derive(Clone, Copy, Debug, Default)]
pub struct Checks<'a> {
    /// Text the body must contain.
    pub expect: Option<&'a str>,
    /// Text the body must not contain.
    pub forbid: Option<&'a str>,
    /// Look for application-error pages.
    pub app_errors: bool,
    /// The response says it is HTML (the blank-page check applies).
    pub html: bool,
}

/// Whether a `Content-Type` value is HTML.
pub fn is_html(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|c| {
        c.get(..9)
            .is_some_and(|start| start.eq_ignore_ascii_case("text/html"))
    })
}

/// A broken page a body showed: what it is called in the detail, its
/// cause and, for an application error, which one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageError {
    /// The words of the detail.
    pub name: &'static str,
    /// `http.app_error` or `http.php_source`.
    pub cause: Cause,
    /// Which application error (none for PHP source).
    pub sign: Option<Sign>,
}

const fn app(name: &'static str, sign: Sign) -> PageError {
    PageError {
        name,
        cause: Cause::HttpAppError,
        sign: Some(sign),
    }
}

const PHP_SOURCE: PageError = PageError {
    name: "PHP source code (\"<?php\" in the body): PHP is not being run",
    cause: Cause::HttpPhpSource,
    sign: None,
};
const FATAL: PageError = app("PHP fatal error", Sign::PhpFatal);
const PARSE: PageError = app("PHP parse error", Sign::PhpParse);
const BLANK: PageError = app(
    "blank page (an HTML response with nothing in its body)",
    Sign::BlankPage,
);
const NGINX: PageError = app(
    "nginx's default page (\"Welcome to nginx!\")",
    Sign::DefaultPage,
);
const APACHE: PageError = app("Apache's default page", Sign::DefaultPage);
const APACHE_WORKS: PageError = app("Apache's default page (\"It works!\")", Sign::DefaultPage);
const IIS: PageError = app("IIS's default page", Sign::DefaultPage);

/// Texts that give a broken page away wherever they appear, in order of
/// precedence. PHP source comes first: it may expose passwords. The
/// web servers' default pages come after the PHP error lines (see
/// [`FIRST_DEFAULT_PAGE`]).
const SIGNATURES: &[(&str, PageError)] = &[
    ("<?php ", PHP_SOURCE),
    ("<?php\n", PHP_SOURCE),
    ("<?php\r", PHP_SOURCE),
    (
        "Error establishing a database connection",
        app(
            "WordPress cannot reach its database (\"Error establishing a database connection\")",
            Sign::WpDatabase,
        ),
    ),
    (
        "There has been a critical error on this website",
        app(
            "WordPress critical error (\"There has been a critical error on this website\")",
            Sign::WpCritical,
        ),
    ),
    ("<b>Fatal error</b>:", FATAL),
    ("<b>Parse error</b>:", PARSE),
    ("<title>Welcome to nginx!</title>", NGINX),
    ("Apache2 Debian Default Page", APACHE),
    ("Apache2 Ubuntu Default Page", APACHE),
    ("Test Page for the Apache HTTP Server", APACHE),
    ("<title>HTTP Server Test Page", APACHE),
    ("<h1>It works!</h1>", APACHE_WORKS),
    ("<title>IIS Windows Server</title>", IIS),
];

/// Index in [`SIGNATURES`] of the first web server default page: they
/// rank below the PHP error lines that [`Lines`] finds.
const FIRST_DEFAULT_PAGE: usize = 7;

/// How PHP without HTML error formatting starts an error line (after any
/// `<br />` and whitespace).
const LINE_STARTS: &[(&[u8], PageError)] = &[
    (b"Fatal error: ", FATAL),
    (b"PHP Fatal error:", FATAL),
    (b"Parse error: ", PARSE),
    (b"PHP Parse error:", PARSE),
];
const LONGEST_LINE_START: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Expect,
    Forbid,
    /// Index into [`SIGNATURES`].
    Signature(usize),
}

struct Needle<'a> {
    finder: Finder<'a>,
    role: Role,
    found: bool,
    /// Longer than the read budget: it can never be found.
    hopeless: bool,
}

impl Needle<'_> {
    fn len(&self) -> usize {
        self.finder.needle().len()
    }
    fn pending(&self) -> bool {
        !self.found && !self.hopeless
    }
}

/// How reading the body ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The whole body was read.
    Complete,
    /// The read budget ran out first.
    Budget,
    /// Every check was decided before the end.
    Decided,
}

/// What the search found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Bytes read.
    pub read: usize,
    /// How reading ended.
    pub end: End,
    /// `expect_body` is set and was not found.
    pub lacks_expected: bool,
    /// `forbid_body` is set and was found.
    pub holds_forbidden: bool,
    /// The broken page it shows, if any (when asked for).
    pub app_error: Option<PageError>,
}

impl Verdict {
    /// The part of the body the verdict is about, for `detail`: "N bytes"
    /// when it was read whole, else "first N KiB".
    pub fn size(&self) -> String {
        match self.end {
            End::Complete => format!("{} bytes", self.read),
            End::Budget | End::Decided if self.read >= 1024 => {
                format!("first {} KiB", self.read / 1024)
            }
            End::Budget | End::Decided => format!("first {} bytes", self.read),
        }
    }
}

/// A search under way over one body.
pub struct Scan<'a> {
    needles: Vec<Needle<'a>>,
    /// The overlap already searched, then `fresh` bytes not searched yet.
    window: Vec<u8>,
    fresh: usize,
    lines: Option<Lines>,
    blank: Blank,
    app_errors: bool,
    read: usize,
    budget: usize,
    scanned: usize,
}

enum Blank {
    /// Not asked for.
    Off,
    /// The body so far (at most [`BLANK_PREFIX`]).
    Prefix(Vec<u8>),
    /// Longer than [`BLANK_PREFIX`]: not blank.
    TooLong,
}

impl<'a> Scan<'a> {
    /// Starts a search for `checks` over a body of which at most `budget`
    /// bytes will be fed.
    pub fn new(checks: Checks<'a>, budget: usize) -> Scan<'a> {
        let mut needles = Vec::new();
        let mut add = |text: &'a str, role| {
            needles.push(Needle {
                finder: Finder::new(text.as_bytes()),
                role,
                found: text.is_empty(),
                hopeless: text.len() > budget,
            });
        };
        if let Some(text) = checks.expect {
            add(text, Role::Expect);
        }
        if let Some(text) = checks.forbid {
            add(text, Role::Forbid);
        }
        if checks.app_errors {
            for (i, (text, _)) in SIGNATURES.iter().enumerate() {
                add(text, Role::Signature(i));
            }
        }
        Scan {
            needles,
            window: Vec::new(),
            fresh: 0,
            lines: checks.app_errors.then(Lines::default),
            blank: if checks.app_errors && checks.html {
                Blank::Prefix(Vec::new())
            } else {
                Blank::Off
            },
            app_errors: checks.app_errors,
            read: 0,
            budget,
            scanned: 0,
        }
    }

    /// Searches the next piece of the body; returns whether every check is
    /// now decided (reading more cannot change the verdict).
    pub fn feed(&mut self, chunk: &[u8]) -> bool {
        let chunk = &chunk[..chunk.len().min(self.budget - self.read)];
        self.read += chunk.len();
        if let Some(lines) = &mut self.lines {
            lines.feed(chunk);
        }
        if let Blank::Prefix(prefix) = &mut self.blank {
            if prefix.len() + chunk.len() > BLANK_PREFIX {
                self.blank = Blank::TooLong;
            } else {
                prefix.extend_from_slice(chunk);
            }
        }
        let longest = self.longest_pending();
        if longest > 0 {
            self.window.extend_from_slice(chunk);
            self.fresh += chunk.len();
            // Waiting for a needle's length of new bytes keeps the work
            // linear in the body, however long the needle.
            if self.fresh >= longest {
                self.search();
            }
        }
        self.decided()
    }

    /// The verdict, once reading has ended as `end`.
    pub fn finish(mut self, end: End) -> Verdict {
        if self.fresh > 0 {
            self.search();
        }
        let found = |role| self.needles.iter().any(|n| n.role == role && n.found);
        let has = |role| self.needles.iter().any(|n| n.role == role);
        let app_error = if self.app_errors {
            let signature = |range: std::ops::Range<usize>| {
                SIGNATURES[range.clone()]
                    .iter()
                    .zip(range)
                    .find(|(_, i)| found(Role::Signature(*i)))
                    .map(|((_, error), _)| *error)
            };
            let blank = match (&self.blank, end) {
                (Blank::Prefix(p), End::Complete) => {
                    blank_html(&String::from_utf8_lossy(p)).then_some(BLANK)
                }
                _ => None,
            };
            signature(0..FIRST_DEFAULT_PAGE)
                .or(self.lines.as_ref().and_then(|l| l.found))
                .or_else(|| signature(FIRST_DEFAULT_PAGE..SIGNATURES.len()))
                .or(blank)
        } else {
            None
        };
        Verdict {
            read: self.read,
            end,
            lacks_expected: has(Role::Expect) && !found(Role::Expect),
            holds_forbidden: found(Role::Forbid),
            app_error,
        }
    }

    /// Bytes the needle searches have gone through so far: the work done,
    /// which stays within a small multiple of the body's length.
    pub fn scanned(&self) -> usize {
        self.scanned
    }

    fn longest_pending(&self) -> usize {
        self.needles
            .iter()
            .filter(|n| n.pending())
            .map(Needle::len)
            .max()
            .unwrap_or(0)
    }

    fn search(&mut self) {
        for needle in self.needles.iter_mut().filter(|n| n.pending()) {
            self.scanned += self.window.len();
            needle.found = needle.finder.find(&self.window).is_some();
        }
        let keep = self.longest_pending().saturating_sub(1);
        let drop = self.window.len().saturating_sub(keep);
        self.window.drain(..drop);
        self.fresh = 0;
    }

    /// Every check is decided: reading on cannot change what is reported.
    /// A missing `expect_body` outranks everything and is known only at
    /// the end; then a found `forbid_body` decides; then the broken page,
    /// decided by a signature found when none that ranks above it can
    /// still be.
    fn decided(&self) -> bool {
        let find = |role| self.needles.iter().find(|n| n.role == role);
        if find(Role::Expect).is_some_and(|n| !n.found) {
            return false;
        }
        if let Some(forbid) = find(Role::Forbid) {
            if forbid.found {
                return true;
            }
            if forbid.pending() {
                return false;
            }
        }
        if !self.app_errors {
            return true;
        }
        for needle in &self.needles {
            if let Role::Signature(i) = needle.role {
                if i >= FIRST_DEFAULT_PAGE {
                    // Below the PHP error lines, which end only with the body.
                    return false;
                }
                // Needles of one error (the forms of "<?php") rank alike.
                let same_found = || {
                    self.needles.iter().any(|n| {
                        n.found
                            && matches!(n.role, Role::Signature(j) if SIGNATURES[j].1 == SIGNATURES[i].1)
                    })
                };
                if needle.found || (needle.pending() && same_found()) {
                    return true;
                }
                if needle.pending() {
                    return false;
                }
            }
        }
        false
    }
}

/// The broken page `body` shows, searched as a stream would be.
pub fn app_error(body: &[u8], content_type: Option<&str>) -> Option<PageError> {
    let checks = Checks {
        app_errors: true,
        html: is_html(content_type),
        ..Checks::default()
    };
    let mut scan = Scan::new(checks, body.len());
    scan.feed(body);
    scan.finish(End::Complete).app_error
}

/// Recognises a line that starts (after any `<br />`, then whitespace) with
/// a PHP error, one byte at a time, so a line may span any number of
/// chunks. Only the first such line counts.
#[derive(Default)]
struct Lines {
    state: LineState,
    found: Option<PageError>,
}

#[derive(Clone, Copy)]
enum LineState {
    /// At the start of the line, or after whole `<br />`s; the number of
    /// bytes of the next `<br />` matched so far.
    Br(usize),
    /// Skipping whitespace; the bytes of a character not yet complete.
    Space([u8; 4], usize),
    /// The line's first bytes after the whitespace.
    Start([u8; LONGEST_LINE_START], usize),
    /// This line cannot match: wait for the next.
    Skip,
}

impl Default for LineState {
    fn default() -> Self {
        LineState::Br(0)
    }
}

impl Lines {
    fn feed(&mut self, mut chunk: &[u8]) {
        const BR: &[u8] = b"<br />";
        while self.found.is_none() && !chunk.is_empty() {
            if let LineState::Skip = self.state {
                match memchr::memchr(b'\n', chunk) {
                    Some(i) => {
                        chunk = &chunk[i + 1..];
                        self.state = LineState::Br(0);
                        continue;
                    }
                    None => return,
                }
            }
            let b = chunk[0];
            chunk = &chunk[1..];
            if b == b'\n' {
                self.state = LineState::Br(0);
                continue;
            }
            self.state = match self.state {
                LineState::Br(k) if b == BR[k] => LineState::Br((k + 1) % BR.len()),
                LineState::Br(0) => space(b, [0; 4], 0),
                LineState::Br(_) | LineState::Skip => LineState::Skip,
                LineState::Space(buf, len) => space(b, buf, len),
                LineState::Start(mut buf, len) => {
                    // len < LONGEST_LINE_START: a start that long either
                    // matched (and the line was left) or was dropped.
                    buf[len] = b;
                    self.start(buf, len + 1)
                }
            };
            if let LineState::Start(buf, 1) = self.state {
                self.state = self.start(buf, 1);
            }
        }
    }

    /// The line so far starts with `buf[..len]`: found, still possible, or not.
    fn start(&mut self, buf: [u8; LONGEST_LINE_START], len: usize) -> LineState {
        let seen = &buf[..len];
        if let Some((_, error)) = LINE_STARTS.iter().find(|(p, _)| seen.starts_with(p)) {
            self.found = Some(*error);
            return LineState::Skip;
        }
        if LINE_STARTS.iter().any(|(p, _)| p.starts_with(seen)) {
            LineState::Start(buf, len)
        } else {
            LineState::Skip
        }
    }
}

/// One more byte while skipping whitespace (`buf[..len]` holds the start of
/// a character not yet complete).
fn space(b: u8, mut buf: [u8; 4], len: usize) -> LineState {
    if len == 0 && b.is_ascii() {
        return if char::from(b).is_whitespace() {
            LineState::Space(buf, 0)
        } else {
            let mut start = [0; LONGEST_LINE_START];
            start[0] = b;
            LineState::Start(start, 1)
        };
    }
    buf[len] = b;
    let len = len + 1;
    let want = match buf[0] {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        // Not the start of a character: read as U+FFFD, not whitespace.
        _ => return LineState::Skip,
    };
    if len < want {
        return if (0x80..=0xBF).contains(&b) || len == 1 {
            LineState::Space(buf, len)
        } else {
            LineState::Skip
        };
    }
    // A complete character: only whitespace keeps the line possible (the
    // starts searched for are ASCII).
    match std::str::from_utf8(&buf[..len]) {
        Ok(c) if c.chars().all(char::is_whitespace) => LineState::Space([0; 4], 0),
        _ => LineState::Skip,
    }
}

/// An HTML document that is empty, or whose `<body>` holds nothing but
/// whitespace: the "white screen" of a crashed PHP application.
fn blank_html(text: &str) -> bool {
    if text.trim().is_empty() {
        return true;
    }
    let lower = text.to_ascii_lowercase();
    let Some(open) = lower.find("<body") else {
        return false;
    };
    let Some(open_end) = lower[open..].find('>') else {
        return false;
    };
    let inner_start = open + open_end + 1;
    let inner_end = lower[inner_start..]
        .find("</body")
        .map_or(lower.len(), |i| inner_start + i);
    lower[inner_start..inner_end].trim().is_empty()
}

#[cfg(test)]
mod tests;
