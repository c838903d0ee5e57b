//! Bounds on the text a probe records. A target controls much of what a
//! report says (a `Location` header, a banner, certificate names, error
//! texts quoting them), and a report is kept in every layer, the history
//! and alerts; so every recording point caps its text here, with the limits
//! named below.
//!
//! Pure string functions: no I/O, nothing of the probe's state.

/// Longest `detail` of one layer, in bytes.
pub const MAX_LAYER_DETAIL: usize = 1024;
/// Longest `detail` (and `hint`) of a probe, in bytes.
pub const MAX_DETAIL: usize = 2048;
/// Longest URL (or host name) shown in a sentence, in bytes.
pub const MAX_URL: usize = 256;
/// Longest other target-supplied value shown (a banner, a header value, a
/// certificate subject), in bytes.
pub const MAX_SHOWN: usize = 256;
/// Longest redirect chain shown (`a → b → c`), in bytes; hops in the
/// middle are left out first.
pub const MAX_PATH: usize = 1024;

/// `s` if it fits in `max` bytes; otherwise its start, cut at a character
/// boundary, followed by "… (N bytes)" with the full length, the whole
/// within `max` bytes (for any `max` of 24 or more).
pub fn cap(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    cut(s, max)
}

/// [`cap`] for an owned string: no copy when it fits.
pub fn cap_owned(s: String, max: usize) -> String {
    if s.len() <= max { s } else { cut(&s, max) }
}

fn cut(s: &str, max: usize) -> String {
    let suffix = format!("… ({} bytes)", s.len());
    let mut keep = max.saturating_sub(suffix.len());
    while !s.is_char_boundary(keep) {
        keep -= 1;
    }
    let mut out = String::with_capacity(keep + suffix.len());
    out.push_str(&s[..keep]);
    out.push_str(&suffix);
    out
}

/// Joins `items` with ", ", listing at most `max` of them and then "and N
/// more".
pub fn list<T: std::fmt::Display>(items: &[T], max: usize) -> String {
    let shown: Vec<String> = items.iter().take(max).map(T::to_string).collect();
    let mut out = shown.join(", ");
    if items.len() > max {
        out.push_str(&format!(" and {} more", items.len() - max));
    }
    out
}

/// Joins the URLs of a redirect chain with " → ", each capped at
/// [`MAX_URL`]. When that is longer than [`MAX_PATH`], hops after the first
/// are left out from the middle ("… 12 more …"), so the start and the end
/// of the chain (where it loops or gives up) stay visible.
pub fn path<S: AsRef<str>>(urls: &[S]) -> String {
    const SEP: &str = " → ";
    let shown: Vec<String> = urls.iter().map(|u| cap(u.as_ref(), MAX_URL)).collect();
    let joined = shown.join(SEP);
    if joined.len() <= MAX_PATH || shown.len() < 3 {
        return cap_owned(joined, MAX_PATH);
    }
    // The first hop, then as many of the last ones as fit.
    let marker = |n: usize| format!("… {n} more …");
    let budget = MAX_PATH - shown[0].len() - SEP.len();
    let mut tail: Vec<&str> = Vec::new();
    let mut used = 0;
    for url in shown[1..].iter().rev() {
        let left_out = shown.len() - 1 - tail.len() - 1;
        let need = used + url.len() + SEP.len() + marker(left_out).len() + SEP.len();
        if need > budget || left_out == 0 {
            break;
        }
        used += url.len() + SEP.len();
        tail.push(url);
    }
    tail.reverse();
    let left_out = shown.len() - 1 - tail.len();
    let mut out = format!("{}{SEP}{}", shown[0], marker(left_out));
    for url in tail {
        out.push_str(SEP);
        out.push_str(url);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept_as_it_is() {
        assert_eq!(cap("hello", 5), "hello");
        assert_eq!(cap_owned("hello".to_string(), 64), "hello");
    }

    #[test]
    fn long_text_is_cut_within_the_limit_and_says_its_size() {
        let long = "x".repeat(380_000);
        let c = cap(&long, MAX_URL);
        assert!(c.len() <= MAX_URL, "{}", c.len());
        assert!(c.starts_with("xxxx"), "{c}");
        assert!(c.ends_with("… (380000 bytes)"), "{c}");
        assert_eq!(cap_owned(long, 100).len(), 100);
    }

    #[test]
    fn cuts_fall_on_character_boundaries() {
        // Three-byte characters: every limit lands inside one sooner or later.
        let s = "€".repeat(100);
        for max in 24..60 {
            let c = cap(&s, max);
            assert!(c.len() <= max, "{max}: {c}");
            assert!(c.ends_with("… (300 bytes)"), "{c}");
            assert!(c.starts_with('€'), "{c}");
        }
    }

    #[test]
    fn lists_say_how_many_were_left_out() {
        assert_eq!(list(&[1, 2, 3], 5), "1, 2, 3");
        assert_eq!(list(&[1, 2, 3], 3), "1, 2, 3");
        assert_eq!(list(&[1, 2, 3, 4, 5], 2), "1, 2 and 3 more");
        assert_eq!(list::<u8>(&[], 2), "");
    }

    #[test]
    fn a_short_chain_is_shown_whole() {
        assert_eq!(path(&["http://a/", "http://b/"]), "http://a/ → http://b/");
    }

    #[test]
    fn a_long_chain_keeps_its_start_and_end_within_the_limit() {
        let urls: Vec<String> = (0..21)
            .map(|i| format!("http://h{i}.test/{}", "p".repeat(300_000)))
            .collect();
        let p = path(&urls);
        assert!(p.len() <= MAX_PATH, "{}", p.len());
        assert!(p.starts_with("http://h0.test/ppp"), "{p}");
        assert!(p.contains("http://h20.test/ppp"), "{p}");
        assert!(p.contains(" more … → "), "{p}");
        // Each hop is capped on its own.
        assert!(p.contains("(300016 bytes)"), "{p}");
        // Three hops of 60 bytes fit whole.
        let small: Vec<String> = (0..3).map(|i| format!("http://{i}.test/")).collect();
        assert!(!path(&small).contains("more"));
    }
}
