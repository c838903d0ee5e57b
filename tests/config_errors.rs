//! Configuration errors, pinned by fixtures: each `tests/fixtures/invalid/X.toml`
//! must fail with exactly the lines of `X.expected` (file:line:column: message),
//! every `tests/fixtures/valid/*.toml`, `config/sites.toml` and
//! `config/examples/*.toml` must load, and `sitewatch validate` reports the
//! same as a process.

use std::path::{Path, PathBuf};
use std::process::Command;

fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    out.sort();
    out
}

/// `render()` shows the message, a source line of bounded width, and a
/// caret under the character the column names.
fn assert_rendered(d: &sitewatch::config::Diagnostic) {
    let shown = d.render();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 4, "{shown}");
    assert_eq!(lines[0], d.to_string());
    let prefix = format!("{} | ", d.line);
    let source = lines[2]
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(source.chars().count() <= 122, "{}", source.len());
    let caret = lines[3].chars().count() - (prefix.chars().count() + 1);
    assert!(
        lines[3].ends_with('^') && caret <= source.chars().count(),
        "{shown}"
    );
}

#[test]
fn every_invalid_fixture_fails_with_its_expected_messages() {
    let fixtures = files("tests/fixtures/invalid", "toml");
    assert!(
        fixtures.len() >= 10,
        "the invalid fixture list must not be empty: {fixtures:?}"
    );
    for path in fixtures {
        let name = path.file_name().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let expected = std::fs::read_to_string(path.with_extension("expected"))
            .unwrap_or_else(|e| panic!("{}: missing .expected ({e})", path.display()));
        let diags = sitewatch::config::parse_bytes(Path::new(name), &bytes)
            .err()
            .unwrap_or_else(|| panic!("{} should be rejected", path.display()));
        let got: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
        let want: Vec<&str> = expected.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(got, want, "{}", path.display());
        for d in &diags {
            assert_rendered(d);
        }
    }
}

#[test]
fn every_valid_config_loads() {
    let mut configs = files("tests/fixtures/valid", "toml");
    configs.extend(files("config/examples", "toml"));
    configs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sites.toml"));
    assert!(configs.len() >= 3, "{configs:?}");
    for path in configs {
        let config =
            sitewatch::config::load(&path).unwrap_or_else(|e| panic!("{}:\n{e}", path.display()));
        assert!(!config.sites.is_empty(), "{} has no sites", path.display());
    }
}

#[test]
fn validate_reports_every_error_and_exits_1() {
    let bin = env!("CARGO_BIN_EXE_sitewatch");
    let bad =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid/several-errors.toml");
    let out = Command::new(bin)
        .args(["validate", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.matches("several-errors.toml:").count(),
        4,
        "three errors and a summary: {err}"
    );
    assert!(
        err.contains("11 | name = \"a\"\n"),
        "shows the source line: {err}"
    );
    assert!(err.trim_end().ends_with("3 errors"), "{err}");

    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sites.toml");
    let out = Command::new(bin)
        .args(["validate", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok, 2 sites"));

    let out = Command::new(bin)
        .args(["validate", "--config", "/nonexistent/sites.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/sites.toml"));
}

#[test]
fn validate_locates_invalid_utf8_and_refuses_endless_files() {
    let bin = env!("CARGO_BIN_EXE_sitewatch");
    let bad =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid/invalid-utf8.toml");
    let out = Command::new(bin)
        .args(["validate", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid-utf8.toml:2:12: invalid UTF-8 at byte offset 20"),
        "{err}"
    );
    assert!(err.contains("2 | name = \"caf\u{fffd}\"\n"), "{err}");

    // /dev/zero never ends: it is refused at the size limit, not read forever.
    let out = Command::new(bin)
        .args(["validate", "--config", "/dev/zero"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("larger than 16 MiB"), "{err}");
}
