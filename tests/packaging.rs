//! Packaging: the hidden `sitewatch generate` as a process (man pages and
//! completions made from the same clap tree as `--help`, without
//! `generate` itself), and the `[package.metadata.deb]` assets and
//! maintainer scripts against what `generate` writes and the repository holds.
//! Building and listing the .deb itself is in `.ci/run` (it needs cargo-deb).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SUBCOMMANDS: [&str; 4] = ["run", "check", "validate", "notify-test"];

fn sitewatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sitewatch"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs `sitewatch generate ARGS DIR`, expects exit 0 and returns the paths
/// it printed.
fn generate(args: &[&str], dir: &Path) -> Vec<PathBuf> {
    let out = Command::new(env!("CARGO_BIN_EXE_sitewatch"))
        .arg("generate")
        .args(args)
        .arg(dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "generate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(PathBuf::from)
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The man page text with roff's escaped hyphens (`\-\-config`) made plain.
fn read_roff(path: &Path) -> String {
    read(path).replace("\\-", "-")
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn generate_man_writes_a_section_8_page_per_subcommand() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("man"); // created by generate
    let printed = generate(&["man"], &dir);

    assert_eq!(
        file_names(&dir),
        [
            "sitewatch-check.8",
            "sitewatch-notify-test.8",
            "sitewatch-ping.8",
            "sitewatch-run.8",
            "sitewatch-silence.8",
            "sitewatch-validate.8",
            "sitewatch.8"
        ],
        "no page for the hidden generate or for help"
    );
    assert_eq!(printed.len(), 7, "{printed:?}");
    assert_eq!(printed[0], dir.join("sitewatch.8"), "main page first");

    let main = read_roff(&dir.join("sitewatch.8"));
    assert!(main.contains(".TH sitewatch 8 "), "{main}");
    for sub in SUBCOMMANDS {
        assert!(
            main.contains(&format!("sitewatch-{sub}(8)")),
            "{sub}: {main}"
        );
    }
    for extra in [
        ".SH \"EXIT STATUS\"",
        ".SH FILES",
        "/etc/sitewatch/sites.toml",
        "SITEWATCH_LOG",
        "SITEWATCH_CONFIG",
    ] {
        assert!(main.contains(extra), "{extra}: {main}");
    }
    assert!(!main.contains("generate"), "{main}");

    let run = read_roff(&dir.join("sitewatch-run.8"));
    assert!(run.contains(".TH sitewatch-run 8 "), "{run}");
    assert!(run.contains("--config"), "{run}");
    let validate = read_roff(&dir.join("sitewatch-validate.8"));
    assert!(validate.contains("--config"), "{validate}");
    let check = read_roff(&dir.join("sitewatch-check.8"));
    for opt in ["--json", "--format", "--timeout", "TARGET"] {
        assert!(check.contains(opt), "{opt}: {check}");
    }
    // The synopsis names the command as it is typed.
    assert!(check.contains("\\fBsitewatch check\\fR"), "{check}");
}

#[test]
fn generate_completions_bash_lists_subcommands_and_options() {
    let tmp = tempfile::tempdir().unwrap();
    let printed = generate(&["completions", "bash"], tmp.path());
    let path = tmp.path().join("sitewatch.bash");
    assert_eq!(printed, std::slice::from_ref(&path));

    let text = read(&path);
    assert!(
        text.contains(
            "opts=\"-h -V --help --version run check validate notify-test ping silence help\""
        ),
        "{text}"
    );
    for word in ["--config", "--json", "--format", "--expect-status"] {
        assert!(text.contains(word), "{word}: {text}");
    }
    assert!(!text.contains("generate"), "hidden: {text}");

    // It is valid bash and registers the completion for `sitewatch`.
    let out = Command::new("bash")
        .arg("-c")
        .arg("source \"$1\" && complete -p sitewatch")
        .arg("bash")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("_sitewatch"));
}

#[test]
fn generate_completions_zsh_and_fish_use_the_names_their_shells_load() {
    let tmp = tempfile::tempdir().unwrap();
    for (shell, name) in [("zsh", "_sitewatch"), ("fish", "sitewatch.fish")] {
        let printed = generate(&["completions", shell], tmp.path());
        assert_eq!(printed, [tmp.path().join(name)], "{shell}");
        let text = read(&printed[0]);
        for word in SUBCOMMANDS.iter().chain(&["config", "json"]) {
            assert!(text.contains(word), "{shell}: {word}: {text}");
        }
        assert!(!text.contains("generate"), "{shell}: hidden: {text}");
    }
}

#[test]
fn generate_is_hidden_from_help_but_works() {
    for args in [&["--help"][..], &["-h"], &["help"]] {
        let out = sitewatch(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        for sub in SUBCOMMANDS {
            assert!(help.contains(sub), "{args:?}: {sub}: {help}");
        }
        assert!(!help.contains("generate"), "{args:?}: {help}");
    }

    let out = sitewatch(&["generate", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("man") && help.contains("completions"),
        "{help}"
    );
}

#[test]
fn generate_errors_exit_like_other_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();

    // An unknown shell is a usage error: 3, like every other one.
    let out = sitewatch(&["generate", "completions", "tcsh", dir]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bash"));

    // A directory that cannot be made: 1 and the reason.
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = sitewatch(&["generate", "man", file.join("man").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("sitewatch generate: "),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `[package.metadata.deb]` from Cargo.toml.
fn deb_metadata() -> toml::Table {
    let manifest = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
    let manifest: toml::Table = toml::from_str(&manifest).unwrap();
    manifest["package"]["metadata"]["deb"]
        .as_table()
        .expect("[package.metadata.deb]")
        .clone()
}

#[test]
fn deb_assets_are_what_generate_writes_and_the_repository_has() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let deb = deb_metadata();
    let assets: Vec<(String, String)> = deb["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let a = a.as_array().unwrap();
            (
                a[0].as_str().unwrap().to_owned(),
                a[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let dest = |src: &str| -> &str {
        &assets
            .iter()
            .find(|(s, _)| s == src)
            .unwrap_or_else(|| panic!("no asset {src}: {assets:?}"))
            .1
    };

    // The binary is where the unit's ExecStart looks for it.
    assert_eq!(dest("target/release/sitewatch"), "usr/bin/");
    let unit = read(&root.join("systemd/sitewatch.service"));
    assert!(
        unit.lines()
            .any(|l| l.starts_with("ExecStart=/usr/bin/sitewatch run ")),
        "{unit}"
    );

    // The generated files, under the names `generate` gives them
    // (scripts/package.sh writes them to target/dist).
    let tmp = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        generate(&["completions", shell], &tmp.path().join("completions"));
    }
    generate(&["man"], &tmp.path().join("man"));
    for (src, want) in [
        (
            "target/dist/completions/sitewatch.bash",
            "usr/share/bash-completion/completions/sitewatch",
        ),
        (
            "target/dist/completions/_sitewatch",
            "usr/share/zsh/vendor-completions/_sitewatch",
        ),
        (
            "target/dist/completions/sitewatch.fish",
            "usr/share/fish/vendor_completions.d/sitewatch.fish",
        ),
    ] {
        assert_eq!(dest(src), want);
        let made = tmp.path().join(src.strip_prefix("target/dist/").unwrap());
        assert!(made.is_file(), "generate did not write {}", made.display());
    }
    assert_eq!(dest("target/dist/man/*.8"), "usr/share/man/man8/");

    // Sources in the repository exist; the config is a conffile.
    assert_eq!(dest("config/sites.toml"), "etc/sitewatch/sites.toml");
    for (src, _) in &assets {
        if !src.starts_with("target/") && !src.contains('*') {
            assert!(root.join(src).is_file(), "asset {src} is missing");
        }
    }
    assert_eq!(
        deb["conf-files"].as_array().unwrap()[0].as_str(),
        Some("/etc/sitewatch/sites.toml")
    );

    // The unit and the maintainer scripts cargo-deb reads.
    let units = deb["systemd-units"].as_table().unwrap();
    assert_eq!(units["unit-name"].as_str(), Some("sitewatch"));
    let unit_dir = units["unit-scripts"].as_str().unwrap();
    assert!(root.join(unit_dir).join("sitewatch.service").is_file());
    assert_eq!(units["enable"].as_bool(), Some(true));
    assert_eq!(units["start"].as_bool(), Some(true));
    let scripts = root.join(deb["maintainer-scripts"].as_str().unwrap());
    let postrm = read(&scripts.join("postrm"));
    // cargo-deb replaces every occurrence of the token, comments included.
    assert_eq!(postrm.matches("#DEBHELPER#").count(), 1, "{postrm}");
    assert!(postrm.starts_with("#!/bin/sh\n"), "{postrm}");
}
