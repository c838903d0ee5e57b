//! Secrets never leave the configuration through its errors: not in a
//! diagnostic's message, not in the source line shown under it, and so not
//! in the daemon's log or `/healthz`'s `last_reload_error` after a failed
//! reload.
//!
//! Each `tests/fixtures/invalid/secret-*.toml` has an error on, next to or
//! around a secret, and names its secret values on its first line
//! (`# never shown: VALUE …`).

mod common;

use common::daemon::{get_json, signal, spawn_daemon, wait_for, write_config};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn secret_fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("secret-") && name.ends_with(".toml")
        })
        .collect();
    out.sort();
    out
}

/// The values listed on the fixture's `# never shown:` line.
fn listed_secrets(text: &str) -> Vec<String> {
    let first = text.lines().next().unwrap_or_default();
    let list = first
        .strip_prefix("# never shown:")
        .unwrap_or_else(|| panic!("the first line must be `# never shown: …`: {first}"));
    let secrets: Vec<String> = list.split_whitespace().map(str::to_string).collect();
    assert!(!secrets.is_empty(), "no secret listed: {first}");
    secrets
}

#[test]
fn secret_fixtures_never_show_their_secrets() {
    let fixtures = secret_fixtures();
    assert!(fixtures.len() >= 8, "{fixtures:?}");
    let mut masked_lines = 0;
    for path in fixtures {
        let bytes = std::fs::read(&path).unwrap();
        let secrets = listed_secrets(&String::from_utf8_lossy(&bytes));
        let diags = sitewatch::config::parse_bytes(&path, &bytes)
            .err()
            .unwrap_or_else(|| panic!("{} should be rejected", path.display()));
        // Everything a person or a log can see of them.
        let shown = sitewatch::config::Error::Invalid(diags.clone()).to_string();
        for s in &secrets {
            assert!(
                !shown.contains(s.as_str()),
                "{} shows {s}:\n{shown}",
                path.display()
            );
        }
        masked_lines += diags
            .iter()
            .filter(|d| d.source_line.contains("***"))
            .count();
    }
    assert!(masked_lines >= 8, "the errors land on secret lines");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_reload_neither_logs_nor_serves_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let good = format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n\n[[site]]\nname = \"x\"\nurl = \"tcp://127.0.0.1:9\"\ninterval = \"1m\"\n",
        dir.path().join("state").display()
    );
    let path = write_config(dir.path(), &good);
    let (child, api, mut logs) = spawn_daemon(&path).await;

    // A password typo'd as a number (toml quotes it), a bad header next to
    // a token, and a channel with a misspelt key.
    let bad = format!(
        "{good}headers = {{ Authorization = \"Bearer t0ken-value\", \"Bad Name\" = \"1\" }}\n\n\
         [alert.mail]\ntype = \"email\"\nsmtp_host = \"smtp.example.com\"\nfrom = \"a@example.com\"\n\
         to = [\"b@example.com\"]\nusername = \"u\"\npassword = 4242424242\n\n\
         [alert.hook]\ntype = \"webhook\"\nurl = \"https://hook.example.com/h00k-path\"\nsecert = \"x\"\n"
    );
    std::fs::write(&path, bad).unwrap();
    signal(&child, libc::SIGHUP);
    let health = wait_for("the failed reload", Duration::from_secs(10), || {
        let api = api.clone();
        async move {
            let (_, h) = get_json(&format!("{api}/healthz")).await;
            (h["config"]["last_reload_ok"] == false).then_some(h)
        }
    })
    .await;
    let served = health["config"]["last_reload_error"].as_str().unwrap();
    assert!(served.contains("sites.toml:"), "{served}");
    signal(&child, libc::SIGTERM);
    let mut logged = String::new();
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_secs(10), logs.recv()).await {
        logged.push_str(&line);
        logged.push('\n');
    }
    assert!(logged.contains("reload failed"), "{logged}");
    for secret in ["t0ken-value", "4242424242", "h00k-path"] {
        assert!(!served.contains(secret), "served {secret}: {served}");
        assert!(!logged.contains(secret), "logged {secret}: {logged}");
    }
    assert!(served.contains("integer `***`"), "{served}");
}
