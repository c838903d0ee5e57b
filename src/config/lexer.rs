//! The lexical pass of [`super::redact`]: finds secret values by reading
//! the text as TOML-like lines, so it works on a file that does not parse.

use super::redact::{MAX_DEPTH, has_userinfo, is_secret_path, unescape};
use std::ops::Range;

/// The spans of secret values found by reading the text as TOML-like
/// lines, without needing it to be valid: key paths are followed through
/// table headers, dotted keys, inline tables and arrays, strings of every
/// kind are skipped whole, and a secret value that is not well formed is
/// masked to the end of its line.
pub(super) fn lexical(text: &str) -> Vec<Range<usize>> {
    let mut lx = Lexer {
        s: text.as_bytes(),
        text,
        i: 0,
        out: Vec::new(),
    };
    let mut table: Vec<String> = Vec::new();
    while lx.i < lx.s.len() {
        let before = lx.i;
        lx.blank(true);
        match lx.peek() {
            None => break,
            Some(b'[') => table = lx.header(),
            Some(_) => lx.key_value(&table, 0, true),
        }
        lx.rest_of_line();
        if lx.i == before {
            lx.i += 1;
        }
    }
    // Steps over unexpected bytes may end inside a character: widen each
    // range to whole characters.
    let mut out = lx.out;
    for r in &mut out {
        r.end = r.end.min(text.len());
        while !text.is_char_boundary(r.end) {
            r.end += 1;
        }
        r.start = r.start.min(r.end);
        while !text.is_char_boundary(r.start) {
            r.start -= 1;
        }
    }
    out
}

struct Lexer<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
    out: Vec<Range<usize>>,
}

impl Lexer<'_> {
    /// Text between two offsets; empty if they are not character
    /// boundaries (the lexer steps by bytes over text it does not follow).
    fn slice(&self, r: Range<usize>) -> &str {
        self.text.get(r).unwrap_or("")
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn at(&self, pat: &str) -> bool {
        self.s[self.i.min(self.s.len())..].starts_with(pat.as_bytes())
    }

    fn eol(&self) -> usize {
        self.s[self.i.min(self.s.len())..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.s.len(), |p| self.i + p)
    }

    /// Skips spaces and tabs; with `newlines`, also line breaks and comments.
    fn blank(&mut self, newlines: bool) {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' => self.i += 1,
                b'\r' | b'\n' if newlines => self.i += 1,
                b'#' if newlines => self.i = self.eol(),
                _ => break,
            }
        }
    }

    /// Skips what is left of the line, and the line break.
    fn rest_of_line(&mut self) {
        self.i = (self.eol() + 1).min(self.s.len());
    }

    /// `[a.b]` or `[[a.b]]`: the new table path.
    fn header(&mut self) -> Vec<String> {
        self.i += if self.at("[[") { 2 } else { 1 };
        self.key_path()
    }

    /// A dotted key: bare, "basic" (escapes decoded) or 'literal' parts.
    fn key_path(&mut self) -> Vec<String> {
        let mut path = Vec::new();
        loop {
            self.blank(false);
            let part = match self.peek() {
                Some(b'"') => {
                    let r = self.short_string(b'"');
                    unescape(self.slice(r))
                }
                Some(b'\'') => {
                    let r = self.short_string(b'\'');
                    self.slice(r).to_string()
                }
                _ => {
                    let start = self.i;
                    while self.peek().is_some_and(|b| {
                        !matches!(
                            b,
                            b' ' | b'\t'
                                | b'\r'
                                | b'\n'
                                | b'='
                                | b'.'
                                | b'['
                                | b']'
                                | b'{'
                                | b'}'
                                | b','
                                | b'#'
                                | b'"'
                                | b'\''
                        )
                    }) {
                        self.i += 1;
                    }
                    self.slice(start..self.i).to_string()
                }
            };
            if part.is_empty() && !matches!(self.s.get(self.i.wrapping_sub(1)), Some(b'"' | b'\''))
            {
                return path;
            }
            path.push(part);
            self.blank(false);
            if self.peek() == Some(b'.') {
                self.i += 1;
            } else {
                return path;
            }
        }
    }

    /// `key = value` under `prefix`; a secret value is recorded.
    fn key_value(&mut self, prefix: &[String], depth: usize, top: bool) {
        let mut path = prefix.to_vec();
        path.extend(self.key_path());
        self.blank(false);
        let secret = is_secret_path(&path);
        if self.peek() != Some(b'=') {
            // Not a key-value pair: if it was heading for a secret, hide the line.
            if secret {
                self.out.push(self.i..self.eol());
            }
            if top {
                self.i = self.eol();
            }
            return;
        }
        self.i += 1;
        self.blank(false);
        let start = self.i;
        self.value(&path, depth, secret);
        if secret {
            // At the top level a malformed value may run on: hide the line.
            let end = if top { self.i.max(self.eol()) } else { self.i };
            self.out.push(start..end.max(start));
        }
    }

    /// Skips one value; records URLs with credentials (secrets are recorded
    /// whole by the caller).
    fn value(&mut self, path: &[String], depth: usize, secret: bool) {
        if depth > MAX_DEPTH && matches!(self.peek(), Some(b'[' | b'{')) {
            return self.skip_nested();
        }
        let start = self.i;
        match self.peek() {
            Some(q @ (b'"' | b'\'')) => {
                let inner = if self.at(if q == b'"' { "\"\"\"" } else { "'''" }) {
                    self.long_string(q)
                } else {
                    self.short_string(q)
                };
                if !secret && has_userinfo(self.slice(inner)) {
                    self.out.push(start..self.i);
                }
            }
            Some(b'[') => {
                self.i += 1;
                loop {
                    self.blank(true);
                    match self.peek() {
                        None => break,
                        Some(b']') => {
                            self.i += 1;
                            break;
                        }
                        Some(b',') => self.i += 1,
                        Some(_) => {
                            let before = self.i;
                            self.value(path, depth + 1, secret);
                            if self.i == before {
                                self.i += 1;
                            }
                        }
                    }
                }
            }
            Some(b'{') => {
                self.i += 1;
                loop {
                    self.blank(true);
                    match self.peek() {
                        None => break,
                        Some(b'}') => {
                            self.i += 1;
                            break;
                        }
                        Some(b',') => self.i += 1,
                        Some(_) => {
                            let before = self.i;
                            self.key_value(path, depth + 1, false);
                            if self.i == before {
                                self.i += 1;
                            }
                        }
                    }
                }
            }
            _ => {
                while self
                    .peek()
                    .is_some_and(|b| !matches!(b, b',' | b']' | b'}' | b'\r' | b'\n' | b'#'))
                {
                    self.i += 1;
                }
            }
        }
    }

    /// A "basic" or 'literal' string on one line; returns its content. An
    /// unterminated one ends at the end of the line.
    fn short_string(&mut self, quote: u8) -> Range<usize> {
        self.i += 1;
        let start = self.i;
        while let Some(b) = self.peek() {
            match b {
                b'\n' => return start..self.i,
                b'\\' if quote == b'"' => self.i = (self.i + 2).min(self.s.len()),
                b if b == quote => {
                    self.i += 1;
                    return start..self.i - 1;
                }
                _ => self.i += 1,
            }
        }
        start..self.i
    }

    /// A """multi-line""" or '''multi-line''' string; returns its content.
    /// An unterminated one runs to the end of the text.
    fn long_string(&mut self, quote: u8) -> Range<usize> {
        let close = if quote == b'"' { "\"\"\"" } else { "'''" };
        self.i += 3;
        let start = self.i;
        while self.i < self.s.len() {
            if quote == b'"' && self.s[self.i] == b'\\' {
                self.i = (self.i + 2).min(self.s.len());
            } else if self.at(close) {
                let end = self.i;
                self.i += 3;
                // Up to two more quotes belong to the content.
                for _ in 0..2 {
                    if self.peek() == Some(quote) {
                        self.i += 1;
                    }
                }
                return start..end;
            } else {
                self.i += 1;
            }
        }
        start..self.i
    }

    /// Skips a value nested too deep to follow, by counting brackets.
    fn skip_nested(&mut self) {
        let mut open = 0usize;
        while let Some(b) = self.peek() {
            match b {
                b'[' | b'{' => open += 1,
                b']' | b'}' if open <= 1 => {
                    self.i += 1;
                    return;
                }
                b']' | b'}' => open -= 1,
                b'"' | b'\'' => {
                    self.short_string(b);
                    continue;
                }
                b'\n' if open == 0 => return,
                _ => {}
            }
            self.i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::redact::{merge, structural};
    use super::*;
    use std::path::Path;
    use toml::de::DeTable;

    fn shown(text: &str) -> Vec<&str> {
        merge(lexical(text)).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn lexical_finds_secrets_in_every_spelling() {
        let text = r#"alert = { h = { type = "webhook", url = "w" } }
[alert.m]
password = "a\"b" # comment
"password_file" = "/etc/pw"
[alert]
hook.url = 'https://x/y'
[[site]]
headers = { "Author\u0069zation" = "Bearer t", X = "1" }
url = "https://u:p@x.test/"
[daemon]
api_token = """
line
""" junk
"#;
        assert_eq!(
            shown(text),
            [
                "\"w\"",
                r#""a\"b" # comment"#,
                "'https://x/y'",
                "\"Bearer t\"",
                "\"https://u:p@x.test/\"",
                "\"\"\"\nline\n\"\"\" junk",
            ]
        );
    }

    #[test]
    fn lexical_masks_a_broken_secret_line_to_its_end() {
        assert_eq!(
            shown("[alert.s]\nwebhook_url = \"https://hooks/abc\ntype = 1\n"),
            ["\"https://hooks/abc"]
        );
        assert_eq!(shown("[alert.s]\npassword \"abc\" x\n"), ["\"abc\" x"]);
    }

    #[test]
    fn lexical_survives_hostile_text() {
        let deep = format!("[alert.x]\npassword = {}", "[".repeat(100_000));
        for text in [
            deep.as_str(),
            "[",
            "[[",
            "=",
            "a.\"",
            "x = \"\\",
            "x = '''",
            "x = {{{{",
            "é = [é, \"\\é\"]",
            "[alert.a]\nk = [\u{1}]\u{e9}\"",
        ] {
            for r in merge(lexical(text)) {
                assert!(text.get(r.clone()).is_some(), "{text:?}: {r:?}");
            }
        }
    }

    #[test]
    fn lexical_covers_every_secret_the_parser_finds() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files: Vec<_> = std::fs::read_dir(root.join("tests/fixtures/invalid"))
            .unwrap()
            .chain(std::fs::read_dir(root.join("tests/fixtures/valid")).unwrap())
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.push(root.join("config/sites.toml"));
        assert!(files.len() > 20, "{files:?}");
        for f in files {
            let Ok(text) = std::fs::read_to_string(&f) else {
                continue;
            };
            let Ok(table) = DeTable::parse(&text) else {
                continue;
            };
            let lex = merge(lexical(&text));
            for s in structural(table.get_ref()) {
                assert!(
                    lex.iter().any(|l| l.start <= s.start && s.end <= l.end),
                    "{}: {:?} not found lexically",
                    f.display(),
                    &text[s]
                );
            }
        }
    }
}
