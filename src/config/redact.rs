//! Which bytes of a configuration file are secrets, so that no diagnostic
//! (its shown line or its message) and so nothing logged or served from it
//! ever repeats one.
//!
//! A secret is the value of: any key of an `[alert.NAME]` channel except
//! the few known to be harmless (`type`, `smtp_host`, `to`, …, and the
//! `_file`/`_env`/`_credential` references), so a misspelt `passwrod` is
//! masked too; any key anywhere whose name holds `password`, `secret` or
//! `token` (`[daemon] api_token`); a site's `headers` entry whose name
//! holds `auth`, `cookie`, `token`, `secret`, `pass`, `key`, `session` or
//! `signature` (Authorization, Proxy-Authorization and Cookie, and their
//! misspellings, which are errors shown on the same line); and any string
//! that is a URL with `user:password@`.
//!
//! Two passes find them: [`structural`] over the parsed table (exact spans,
//! also from the partial table of a file with a syntax error), and
//! [`super::lexer`], which needs no valid TOML (a line that does not parse
//! is exactly the line an error shows). The union is masked.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Keys of an alert channel whose values are not secret.
const CHANNEL_KEYS_SHOWN: &[&str] = &[
    "type",
    "smtp_host",
    "smtp_port",
    "tls",
    "allow_plain",
    "username",
    "from",
    "to",
    "ca_file",
    "events",
    "storm_hold",
    "sites",
    "tags",
    "severity",
    "priority",
    "retry",
    "expire",
    "message_thread_id",
];

/// Parts of header names whose values are credentials.
const SECRET_HEADER_WORDS: &[&str] = &[
    "auth",
    "cookie",
    "token",
    "secret",
    "pass",
    "key",
    "session",
    "signature",
];

/// Deepest nesting followed; deeper values are skipped whole (the TOML
/// parser refuses such files anyway).
pub(super) const MAX_DEPTH: usize = 64;

/// Whether `text`, lowercased (ASCII), contains `word` (lowercase ASCII);
/// without allocating, since every key of the file is asked.
fn contains_word(text: &str, word: &str) -> bool {
    text.as_bytes()
        .windows(word.len())
        .any(|w| w.eq_ignore_ascii_case(word.as_bytes()))
}

/// Whether `text`, lowercased (ASCII), ends with `suffix` (lowercase ASCII).
fn ends_with_word(text: &str, suffix: &str) -> bool {
    let (text, suffix) = (text.as_bytes(), suffix.as_bytes());
    text.len() >= suffix.len() && text[text.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

/// Whether a key (any case) names a secret's source rather than the secret.
fn is_reference(key: &str) -> bool {
    ends_with_word(key, "_file")
        || ends_with_word(key, "_env")
        || ends_with_word(key, "_credential")
}

/// Whether the value at this key path (tables and keys, arrays left out)
/// is a secret. Keys are compared ignoring ASCII case.
pub(super) fn is_secret_path<S: AsRef<str>>(path: &[S]) -> bool {
    let Some(last) = path.last().map(AsRef::as_ref) else {
        return false;
    };
    let at = |i: usize| path.get(i).map(AsRef::as_ref);
    let secret_word = |k: &str| {
        ["password", "passwd", "secret", "token"]
            .iter()
            .any(|w| contains_word(k, w))
    };
    if secret_word(last) && !is_reference(last) {
        return true;
    }
    let first = at(0).unwrap_or_default();
    if first.eq_ignore_ascii_case("alert") {
        at(2).is_some_and(|key| {
            !CHANNEL_KEYS_SHOWN
                .iter()
                .any(|k| k.eq_ignore_ascii_case(key))
                && !is_reference(key)
        })
    } else if first.eq_ignore_ascii_case("site") || first.eq_ignore_ascii_case("defaults") {
        at(1).is_some_and(|k| k.eq_ignore_ascii_case("headers"))
            && at(2).is_some_and(|h| SECRET_HEADER_WORDS.iter().any(|w| contains_word(h, w)))
    } else if first.eq_ignore_ascii_case("heartbeat") {
        // A heartbeat's ping key is its password.
        at(1).is_some_and(|k| k.eq_ignore_ascii_case("key"))
    } else {
        false
    }
}

/// Whether a string is a URL that carries `user[:password]@`.
pub(super) fn has_userinfo(text: &str) -> bool {
    text.split_once("://").is_some_and(|(_, rest)| {
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        rest[..end].contains('@')
    })
}

/// Sorts byte ranges and merges the overlapping or touching ones.
pub(super) fn merge(mut ranges: Vec<std::ops::Range<usize>>) -> Vec<std::ops::Range<usize>> {
    ranges.retain(|r| r.start < r.end);
    ranges.sort_by_key(|r| r.start);
    let mut out: Vec<std::ops::Range<usize>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// The spans of secret values in a parsed (or partly parsed) table.
pub(super) fn structural(root: &DeTable<'_>) -> Vec<std::ops::Range<usize>> {
    fn value<'a>(
        v: &'a Spanned<DeValue<'_>>,
        path: &mut Vec<&'a str>,
        out: &mut Vec<std::ops::Range<usize>>,
        depth: usize,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        if is_secret_path(path) {
            out.push(v.span());
            return;
        }
        match v.get_ref() {
            DeValue::String(s) if has_userinfo(s) => out.push(v.span()),
            DeValue::Array(items) => {
                for item in items.iter() {
                    value(item, path, out, depth + 1);
                }
            }
            DeValue::Table(t) => table(t, path, out, depth + 1),
            _ => {}
        }
    }
    fn table<'a>(
        t: &'a DeTable<'_>,
        path: &mut Vec<&'a str>,
        out: &mut Vec<std::ops::Range<usize>>,
        depth: usize,
    ) {
        for (k, v) in t.iter() {
            path.push(k.get_ref().as_ref());
            value(v, path, out, depth);
            path.pop();
        }
    }
    let mut out = Vec::new();
    table(root, &mut Vec::new(), &mut out, 0);
    out
}

/// Decodes the escapes of a TOML basic string (keys only need this much).
pub(super) fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('e') => out.push('\u{1b}'),
            Some(u @ ('u' | 'U' | 'x')) => {
                let n = match u {
                    'u' => 4,
                    'U' => 8,
                    _ => 2,
                };
                let hex: String = chars.by_ref().take(n).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => out.push('\u{FFFD}'),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// `message` with every quoted part or occurrence of a secret replaced by
/// `***`. `secrets` are the raw texts of the secret values the message may
/// be about (as written, quotes and escapes included).
pub(super) fn mask_message(message: &str, secrets: &[&str]) -> String {
    let mut candidates: Vec<String> = Vec::new();
    for raw in secrets {
        let raw = raw.trim();
        let inner = raw
            .trim_start_matches(['"', '\''])
            .trim_end_matches(['"', '\''])
            .trim();
        for c in [raw.to_string(), inner.to_string(), unescape(inner)] {
            if !c.is_empty() && !candidates.contains(&c) {
                candidates.push(c);
            }
        }
    }
    if candidates.is_empty() {
        return message.to_string();
    }
    // A quoted part that is exactly a secret, however short.
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(open) = rest.find(['`', '"']) {
        let q = rest[open..].chars().next().unwrap_or('"');
        let after = &rest[open + 1..];
        match after.find(q) {
            Some(close) if candidates.iter().any(|c| c == &after[..close]) => {
                out.push_str(&rest[..=open]);
                out.push_str(super::diagnostic::MASK);
                out.push(q);
                rest = &after[close + 1..];
            }
            _ => {
                out.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    // Any other occurrence of a secret of three characters or more.
    candidates.sort_by_key(|c| std::cmp::Reverse(c.len()));
    for c in candidates.iter().filter(|c| c.chars().count() >= 3) {
        out = out.replace(c.as_str(), super::diagnostic::MASK);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_paths() {
        let yes: &[&[&str]] = &[
            &["alert", "m", "password"],
            &["alert", "s", "webhook_url"],
            &["alert", "h", "url"],
            &["alert", "h", "secret"],
            &["alert", "m", "passwrod"],
            &["daemon", "api_token"],
            &["site", "headers", "Authorization"],
            &["defaults", "headers", "cookie"],
            &["site", "headers", "Proxy-Authorization"],
            &["site", "headers", "X-Api-Key"],
            &["site", "headers", "Authorization "],
            &["site", "headers", "Authorisation"],
            &["site", "headers", "set-cookie"],
            &["password"],
            // Any case, as the keys are compared lowercased.
            &["Alert", "M", "PassWord"],
            &["SITE", "Headers", "X-API-KEY"],
            &["Heartbeat", "KEY"],
            &["Daemon", "API_TOKEN"],
        ];
        let no: &[&[&str]] = &[
            &["alert", "m", "password_file"],
            &["alert", "m", "smtp_host"],
            &["alert", "m", "to"],
            &["alert", "h", "url_env"],
            &["daemon", "api_token_file"],
            &["site", "url"],
            &["site", "headers", "X-Probe"],
            &["alert", "h"],
            &["alert", "m", "Password_FILE"],
            &["ALERT", "h", "SMTP_Host"],
            &["Site", "Headers", "X-Probe"],
            &["heartbeat", "key_env"],
            &[],
        ];
        for p in yes {
            assert!(is_secret_path(p), "{p:?}");
        }
        for p in no {
            assert!(!is_secret_path(p), "{p:?}");
        }
    }

    #[test]
    fn messages_lose_quoted_and_repeated_secrets() {
        assert_eq!(
            mask_message(
                "invalid type: integer `31337`, expected a string",
                &["31337"]
            ),
            "invalid type: integer `***`, expected a string"
        );
        assert_eq!(
            mask_message("invalid type: string \"ab\", expected u16", &["\"ab\""]),
            "invalid type: string \"***\", expected u16"
        );
        assert_eq!(
            mask_message("\"https://x/s3cr3t\" is bad", &["\"https://x/s3cr3t\""]),
            "\"***\" is bad"
        );
        assert_eq!(mask_message("expected `\"`", &["\"a\""]), "expected `\"`");
        assert_eq!(mask_message("nothing here", &[]), "nothing here");
    }
}
