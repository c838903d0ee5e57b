//! A bounded fuzz test of the whole configuration path, run with every
//! `cargo test`: the valid configurations (tests/fixtures/valid, config/,
//! config/examples) are mutated (flipped bytes, long strings, huge numbers,
//! control characters, invalid UTF-8, truncations, duplicated lines, deep
//! nesting) and loaded. Whatever the bytes, loading must not panic; every
//! diagnostic must point inside the file and render; and every accepted
//! configuration must hold only values within the documented limits.
//!
//! A panic found here is pinned as a file in tests/fixtures/invalid.

use proptest::prelude::*;
use sitewatch::config::{self, Config, Diagnostic};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Cases per run: enough to find the renderer and bounds crashes seen in
/// the field in a few runs, and a few seconds in a debug build.
const CASES: u32 = 2000;

fn seeds() -> &'static [(PathBuf, Vec<u8>)] {
    static SEEDS: OnceLock<Vec<(PathBuf, Vec<u8>)>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut paths = vec![root.join("config/sites.toml")];
        for dir in ["tests/fixtures/valid", "config/examples"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let p = entry.unwrap().path();
                if p.extension().is_some_and(|e| e == "toml") {
                    paths.push(p);
                }
            }
        }
        paths.sort();
        paths
            .into_iter()
            .map(|p| {
                let bytes = std::fs::read(&p).unwrap();
                (p, bytes)
            })
            .collect()
    })
}

/// One change to a file.
#[derive(Clone, Debug)]
enum Mutation {
    /// Flip one bit of the byte at (position modulo length).
    Flip(usize, u8),
    /// Overwrite one byte with any byte.
    Set(usize, u8),
    /// Insert bytes at a position.
    Insert(usize, Vec<u8>),
    /// Cut the file at a position.
    Truncate(usize),
    /// Remove a run of bytes.
    Remove(usize, usize),
    /// Repeat the line that holds a position.
    DuplicateLine(usize),
}

fn insertion() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Long runs on one line (a caret far to the right).
        (
            prop::sample::select(vec![b'a', b'"', b' ', b'[', b'\t']),
            1usize..80_000
        )
            .prop_map(|(b, n)| vec![b; n]),
        // Numbers and durations beyond every integer type.
        prop::sample::select(vec![
            "18446744073709551616",
            "-9223372036854775809",
            "9223372036854775807",
            "1e400",
            "\"18446744073709s 551ms 616us\"",
            "\"99999999999999999999d\"",
            "\"584542years\"",
            "0x7fffffffffffffff",
            "nan",
            "-0",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        // Whole key lines with extreme values, valid TOML.
        prop::sample::select(vec![
            "\ninterval = \"9999999h\"\n",
            "\ntimeout = \"0s\"\n",
            "\nmax_concurrent_probes = 9223372036854775807\n",
            "\nconfirm_down = -1\n",
            "\nremind_every = \"1ns\"\n",
            "\nexpect_ips = [\"::1\", \"::1\", \"::1\"]\n",
            "\nheaders = { \"\" = \"\" }\n",
            "\n[[site]]\nname = \"x\"\nurl = \"tcp://[::1]:65535\"\n",
            "\n[alert.x]\ntype = \"webhook\"\nurl = \"https://u:p@x\"\n",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        // Control characters, escapes and bidi overrides.
        prop::collection::vec(
            prop::sample::select(vec![0u8, 1, 7, 8, 0x0b, 0x0c, 0x0d, 0x1b, 0x7f, b'\n']),
            1..20
        ),
        Just("\u{1b}[2J\u{202e}".as_bytes().to_vec()),
        // Invalid UTF-8: stray continuation, truncated sequence, surrogate, overlong.
        prop::sample::select(vec![
            vec![0xffu8],
            vec![0x80],
            vec![0xc3],
            vec![0xe2, 0x82],
            vec![0xed, 0xa0, 0x80],
            vec![0xc0, 0xaf],
        ]),
        // String and table delimiters.
        prop::sample::select(vec![
            "\"\"\"", "'''", "\"", "'", "[[", "]]", "{", "}", "=", ".", "#"
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        // Deep nesting.
        (1usize..3000).prop_map(|n| {
            let mut v = b"x = ".to_vec();
            v.extend(std::iter::repeat_n(b'[', n));
            v
        }),
        // Anything at all.
        prop::collection::vec(any::<u8>(), 1..64),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), 0u8..8).prop_map(|(p, b)| Mutation::Flip(p, b)),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Set(p, b)),
        5 => (any::<usize>(), insertion()).prop_map(|(p, v)| Mutation::Insert(p, v)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), 1usize..200).prop_map(|(p, n)| Mutation::Remove(p, n)),
        1 => any::<usize>().prop_map(Mutation::DuplicateLine),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let at = |p: usize, len: usize| if len == 0 { 0 } else { p % (len + 1) };
    match m {
        Mutation::Flip(p, bit) if !bytes.is_empty() => {
            let i = p % bytes.len();
            bytes[i] ^= 1 << bit;
        }
        Mutation::Set(p, b) if !bytes.is_empty() => {
            let i = p % bytes.len();
            bytes[i] = *b;
        }
        Mutation::Insert(p, v) => {
            let i = at(*p, bytes.len());
            bytes.splice(i..i, v.iter().copied());
        }
        Mutation::Truncate(p) => bytes.truncate(at(*p, bytes.len())),
        Mutation::Remove(p, n) => {
            let i = at(*p, bytes.len());
            let end = (i + n).min(bytes.len());
            bytes.drain(i..end);
        }
        Mutation::DuplicateLine(p) if !bytes.is_empty() => {
            let i = p % bytes.len();
            let start = bytes[..i]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |s| s + 1);
            let end = bytes[i..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |e| i + e + 1);
            let line: Vec<u8> = bytes[start..end].to_vec();
            bytes.splice(end..end, line);
        }
        _ => {}
    }
}

/// Every diagnostic points inside the file and renders in bounded width.
fn check_diagnostics(bytes: &[u8], diags: &[Diagnostic]) -> Result<(), TestCaseError> {
    prop_assert!(!diags.is_empty(), "an invalid file with no diagnostic");
    prop_assert!(diags.len() <= 101, "{} diagnostics", diags.len());
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.split('\n').collect();
    for d in diags {
        prop_assert!(
            d.line >= 1 && d.line <= lines.len(),
            "line {} of {}: {d}",
            d.line,
            lines.len()
        );
        let line = lines[d.line - 1];
        let width = line.strip_suffix('\r').unwrap_or(line).chars().count();
        prop_assert!(
            d.column >= 1 && d.column <= width + 1,
            "column {} of {width}: {d}",
            d.column
        );
        prop_assert!(!d.message.is_empty());
        prop_assert!(
            d.message.chars().count() <= 1001,
            "message of {} chars",
            d.message.chars().count()
        );
        prop_assert!(
            !d.message.chars().any(|c| c.is_control()),
            "control character in {:?}",
            d.message
        );
        let shown = d.source_line.chars().count();
        prop_assert!(shown <= 122, "a shown line of {shown} chars");
        prop_assert!(
            d.caret >= 1 && d.caret <= shown + 1,
            "caret {} in {shown}",
            d.caret
        );
        prop_assert!(!d.source_line.chars().any(|c| c.is_control() && c != '\t'));
        let rendered = d.render();
        prop_assert!(rendered.ends_with('^'), "{rendered}");
        prop_assert_eq!(rendered.lines().count(), 4, "{}", rendered);
    }
    Ok(())
}

/// An accepted configuration holds only values within the limits, so the
/// scheduler and the probes can trust it.
fn check_config(c: &Config) -> Result<(), TestCaseError> {
    let d = &c.daemon;
    prop_assert!((1..=config::MAX_CONCURRENT_PROBES_LIMIT).contains(&d.max_concurrent_probes));
    prop_assert!(
        (config::MIN_HEARTBEAT_EVERY..=config::MAX_HEARTBEAT_EVERY).contains(&d.heartbeat_every)
    );
    for s in &c.sites {
        prop_assert!(
            (config::MIN_INTERVAL..=config::MAX_INTERVAL).contains(&s.interval),
            "{s:?}"
        );
        prop_assert!(
            (config::MIN_TIMEOUT..=config::MAX_TIMEOUT).contains(&s.timeout),
            "{s:?}"
        );
        prop_assert!(s.timeout <= s.interval);
        prop_assert!(s.expect.slow.is_none_or(|x| !x.is_zero() && x < s.timeout));
        prop_assert!(
            s.remind_every
                .is_none_or(|r| (config::MIN_REMIND_EVERY..=config::MAX_REMIND_EVERY).contains(&r))
        );
        prop_assert!((1..=config::MAX_CONFIRM).contains(&s.confirm_down));
        prop_assert!((1..=config::MAX_CONFIRM).contains(&s.confirm_up));
        prop_assert!(s.expect.cert_warn_days <= config::MAX_CERT_WARN_DAYS);
        prop_assert!(s.http.max_redirects <= config::MAX_REDIRECTS_LIMIT);
        for text in [&s.expect.body, &s.expect.forbid_body] {
            prop_assert!(
                text.as_ref()
                    .is_none_or(|t| (1..=config::MAX_BODY_TEXT_BYTES).contains(&t.len()))
            );
        }
        prop_assert!(
            s.expect
                .banner
                .as_ref()
                .is_none_or(|b| b.len() <= config::MAX_BANNER_BYTES)
        );
        prop_assert!(s.http.headers.len() <= config::MAX_HEADERS);
        prop_assert!(s.expect.resolvers.len() <= config::MAX_RESOLVERS);
        prop_assert!(s.expect.ips.len() <= config::MAX_EXPECT_IPS);
        prop_assert!(s.expect.status.0.len() <= config::MAX_STATUS_RANGES);
        prop_assert!(s.target.url.len() <= config::MAX_URL_BYTES);
        prop_assert!(s.heartbeat.is_some() || s.target.port != 0);
    }
    Ok(())
}

#[test]
fn the_seeds_are_valid_configurations() {
    let seeds = seeds();
    assert!(seeds.len() >= 4, "{seeds:?}");
    for (path, bytes) in seeds {
        let c = config::parse_bytes(path, bytes)
            .unwrap_or_else(|d| panic!("{}: {d:?}", path.display()));
        check_config(&c).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_mutation_loads_without_panic_and_reports_in_the_file(
        seed in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..5),
    ) {
        let (path, original) = &seeds()[seed.index(seeds().len())];
        let mut bytes = original.clone();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        match config::parse_bytes(path, &bytes) {
            Ok(c) => check_config(&c)?,
            Err(diags) => {
                check_diagnostics(&bytes, &diags)?;
                // What a log or /healthz gets.
                let _ = config::Error::Invalid(diags).to_string();
            }
        }
    }
}

/// `load` reads what `parse_bytes` checks: the same verdict from a file.
#[test]
fn load_agrees_with_parse_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 50,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = (
        any::<prop::sample::Index>(),
        prop::collection::vec(mutation(), 1..3),
    );
    runner
        .run(&strategy, |(seed, mutations)| {
            let (_, original) = &seeds()[seed.index(seeds().len())];
            let mut bytes = original.clone();
            for m in &mutations {
                apply(&mut bytes, m);
            }
            let path = dir.path().join("sites.toml");
            std::fs::write(&path, &bytes).unwrap();
            let from_file = config::load(&path)
                .map(|c| c.sites.len())
                .map_err(|e| e.to_string());
            let from_bytes = config::parse_bytes(&path, &bytes)
                .map(|c| c.sites.len())
                .map_err(|d| config::Error::Invalid(d).to_string());
            prop_assert_eq!(from_file, from_bytes);
            Ok(())
        })
        .unwrap();
}
