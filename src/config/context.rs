//! What every part of validation shares: the collector of diagnostics with
//! its span helpers ([`Cx`]), and the value parsers that more than one table
//! uses (durations, secrets, names). The daemon, site and alert validators
//! all build on this module; it depends on none of them.

use super::defaults;
use super::diagnostic::{Diagnostic, Source, clean_message, quote, snippet};
use super::model::SecretRef;
use super::{lexer, redact};
use serde::de::{Deserialize, Deserializer, IntoDeserializer};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;
use toml::de::DeValue;

/// A duration written like `"30s"`, `"5m"` or `"1h 30m"`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Dur(pub(super) Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text)
            .map(Dur)
            .map_err(serde::de::Error::custom)
    }
}

/// Parses a human duration, with the message sites.toml shows on failure.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|_| {
        format!(
            "invalid duration \"{}\": write it like \"30s\", \"5m\" or \"1h 30m\" (units: ms, s, m, h, d)",
            quote(text)
        )
    })
}

/// The most diagnostics reported for one file; the rest are counted in a
/// last one ("N more errors"), so a file of garbage cannot flood the log.
pub(super) const MAX_REPORTED: usize = 100;

/// A mistake found, before it is located and rendered.
struct Pending {
    at: usize,
    message: String,
}

/// Collects the diagnostics of one file, each located in its source.
pub(super) struct Cx<'a> {
    path: &'a Path,
    source: Source<'a>,
    pending: Vec<Pending>,
    /// Byte ranges of secret values, sorted and merged: never shown.
    secrets: Vec<Range<usize>>,
}

impl<'a> Cx<'a> {
    pub(super) fn new(path: &'a Path, text: &'a str) -> Self {
        Cx {
            path,
            source: Source::new(text),
            pending: Vec::new(),
            secrets: redact::merge(lexer::lexical(text)),
        }
    }

    /// Adds spans of secret values (from the parsed table).
    pub(super) fn add_secrets(&mut self, spans: Vec<Range<usize>>) {
        let mut all = std::mem::take(&mut self.secrets);
        all.extend(spans);
        self.secrets = redact::merge(all);
    }

    /// Records a mistake at the start of `span` (a byte range of the text).
    pub(super) fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.pending.push(Pending {
            at: span.start,
            message: clean_message(&message.into()),
        });
    }

    /// Records an error of the TOML parser or deserializer.
    pub(super) fn toml_error(&mut self, e: &toml::de::Error) {
        let span = e.span().unwrap_or(0..0);
        self.error(span, e.message());
    }

    /// Deserializes one table or value, recording its first error. The
    /// value is consumed: the parsed document is read once, not copied.
    pub(super) fn de<T: for<'de> Deserialize<'de>>(
        &mut self,
        value: Spanned<DeValue<'_>>,
    ) -> Option<T> {
        match T::deserialize(value.into_deserializer()) {
            Ok(v) => Some(v),
            Err(e) => {
                self.toml_error(&e);
                None
            }
        }
    }

    /// The 1-based line of a byte offset.
    pub(super) fn line_of(&self, offset: usize) -> usize {
        self.source.line_of(offset)
    }

    /// How many mistakes are recorded so far.
    pub(super) fn count(&self) -> usize {
        self.pending.len()
    }

    /// `p` as written if absolute, else relative to the file's directory.
    pub(super) fn relative(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.path.parent().unwrap_or_else(|| Path::new(".")).join(p)
        }
    }

    /// The diagnostics in the order of the file: at most [`MAX_REPORTED`],
    /// then one that counts the rest.
    pub(super) fn finish(mut self) -> Vec<Diagnostic> {
        self.pending.sort_by_key(|p| p.at);
        // A bad value in [defaults] is found once per site that inherits it.
        self.pending
            .dedup_by(|a, b| a.at == b.at && a.message == b.message);
        let more = self.pending.len().saturating_sub(MAX_REPORTED);
        let mut out: Vec<Diagnostic> = self
            .pending
            .iter()
            .take(MAX_REPORTED)
            .map(|p| self.diagnostic(p.at, p.message.clone()))
            .collect();
        if let Some(first) = self.pending.get(MAX_REPORTED) {
            out.push(self.diagnostic(
                first.at,
                format!(
                    "{more} more error{} not shown: fix the ones above first",
                    if more == 1 { "" } else { "s" }
                ),
            ));
        }
        out
    }

    /// Locates a mistake and masks the secrets on its line, and in its
    /// message those it may quote (on its line, or where it points).
    fn diagnostic(&self, at: usize, message: String) -> Diagnostic {
        let text = self.source.text();
        let loc = self.source.locate(at);
        let line = loc.line_bytes.clone();
        // The secrets that touch the line or the offset (sorted, disjoint).
        let window = line.start.min(at)..line.end.max(at + 1);
        let first = self.secrets.partition_point(|s| s.end <= window.start);
        let near: Vec<&Range<usize>> = self.secrets[first..]
            .iter()
            .take_while(|s| s.start < window.end)
            .collect();
        let masks: Vec<Range<usize>> = near
            .iter()
            .filter(|s| s.start < line.end && s.end > line.start)
            .map(|s| s.start.max(line.start) - line.start..s.end.min(line.end) - line.start)
            .collect();
        let (source_line, caret) = snippet(&text[line], loc.column, &masks);
        let quoted: Vec<&str> = near
            .iter()
            .filter_map(|s| text.get(s.start..s.end))
            .collect();
        Diagnostic {
            path: self.path.to_path_buf(),
            line: loc.line,
            column: loc.column,
            // Cut again: a short secret masked as `***` lengthens it.
            message: clean_message(&redact::mask_message(&message, &quoted)),
            source_line,
            caret,
        }
    }
}

/// The value a site uses for a key: its own, else the one from `[defaults]`.
pub(super) fn pick<'a, T>(
    own: &'a Option<Spanned<T>>,
    inherited: &'a Option<Spanned<T>>,
) -> Option<&'a Spanned<T>> {
    own.as_ref().or(inherited.as_ref())
}

/// A limit for a message: "24h", "10m", "1s", "1ms".
pub(super) fn show_limit(d: Duration) -> String {
    let secs = d.as_secs();
    match (secs, d.subsec_nanos()) {
        (0, n) if n % 1_000_000 == 0 => format!("{}ms", n / 1_000_000),
        (s, 0) if s > 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        (s, 0) if s % 3600 == 0 => format!("{}h", s / 3600),
        (s, 0) if s % 60 == 0 => format!("{}m", s / 60),
        (s, 0) => format!("{s}s"),
        _ => humantime::format_duration(d).to_string(),
    }
}

/// The value of a duration key if it lies within `min..=max`; otherwise
/// records an error that names the allowed range.
pub(super) fn duration_in(
    cx: &mut Cx<'_>,
    key: &str,
    v: &Spanned<Dur>,
    min: Duration,
    max: Duration,
) -> Option<Duration> {
    let d = v.get_ref().0;
    let side = if d < min {
        format!("below the minimum of {}", show_limit(min))
    } else if d > max {
        format!("above the maximum of {}", show_limit(max))
    } else {
        return Some(d);
    };
    cx.error(
        v.span(),
        format!(
            "`{key}` is {}, {side} (allowed: {} to {})",
            humantime::format_duration(d),
            show_limit(min),
            show_limit(max)
        ),
    );
    None
}

/// The value of an integer key if it lies within `min..=max`; otherwise
/// records an error that names the allowed range.
pub(super) fn int_in<T: TryFrom<i64>>(
    cx: &mut Cx<'_>,
    key: &str,
    v: &Spanned<i64>,
    min: i64,
    max: i64,
) -> Option<T> {
    let n = *v.get_ref();
    match T::try_from(n) {
        Ok(t) if (min..=max).contains(&n) => Some(t),
        _ => {
            cx.error(v.span(), format!("`{key}` must be between {min} and {max}"));
            None
        }
    }
}

/// Whether a text key is not empty and at most `max` bytes long; otherwise
/// records an error that names the allowed length.
pub(super) fn text_len(cx: &mut Cx<'_>, key: &str, v: &Spanned<String>, max: usize) -> bool {
    let n = v.get_ref().len();
    if n == 0 {
        cx.error(v.span(), format!("`{key}` must not be empty"));
    } else if n > max {
        cx.error(
            v.span(),
            format!(
                "`{key}` is {n} bytes long, above the maximum of {max} (allowed: 1 to {max} bytes)"
            ),
        );
    }
    (1..=max).contains(&n)
}

/// Whether a list key holds at most `max` entries; otherwise records an
/// error that names the limit. `what` names the entries ("servers").
pub(super) fn list_len<T>(
    cx: &mut Cx<'_>,
    key: &str,
    what: &str,
    v: &Spanned<Vec<T>>,
    max: usize,
) -> bool {
    let n = v.get_ref().len();
    if n > max {
        cx.error(
            v.span(),
            format!("`{key}` lists {n} {what}, above the maximum of {max}"),
        );
    }
    n <= max
}

/// Checks a site or channel name.
pub(super) fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.chars().count() <= defaults::MAX_NAME_CHARS
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "site name \"{}\" must start with a letter or digit and use only letters, digits, '-', '_' and '.' (at most {})",
            quote(name),
            defaults::MAX_NAME_CHARS
        ))
    }
}

/// Reads one secret given as `KEY`, `KEY_file`, `KEY_env` or
/// `KEY_credential`; a value written in the file is at most `max` bytes.
pub(super) fn secret(
    cx: &mut Cx<'_>,
    key: &str,
    max: usize,
    options: [&Option<Spanned<String>>; 4],
) -> Option<SecretRef> {
    let given: Vec<(usize, &Spanned<String>)> = options
        .iter()
        .enumerate()
        .filter_map(|(i, o)| o.as_ref().map(|s| (i, s)))
        .collect();
    match given.as_slice() {
        [] => None,
        [(i, v)] => {
            let text = v.get_ref();
            if *i == 0 && !text_len(cx, key, v, max) {
                return None;
            }
            if text.is_empty() {
                cx.error(v.span(), format!("`{key}` must not be empty"));
                return None;
            }
            Some(match i {
                0 => SecretRef::Value(text.clone()),
                1 => SecretRef::File(cx.relative(text)),
                2 => SecretRef::Env(text.clone()),
                _ => SecretRef::Credential(text.clone()),
            })
        }
        [_, (_, second), ..] => {
            cx.error(
                second.span(),
                format!("give `{key}` one way only: `{key}`, `{key}_file`, `{key}_env` or `{key}_credential`"),
            );
            None
        }
    }
}
