//! Under systemd, stderr is the journal's stream and `JOURNAL_STREAM` holds
//! its device and inode: every line sitewatch writes then starts with the
//! sd-daemon priority of its level (`<3>` error … `<7>` trace), so
//! `journalctl -p err` finds the errors. Anywhere else nothing changes.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sitewatch");

/// A file to serve as stderr, and the `JOURNAL_STREAM` value naming it.
fn journal_file(dir: &Path) -> (PathBuf, std::fs::File, String) {
    let path = dir.join("journal.log");
    let file = std::fs::File::create(&path).unwrap();
    let meta = file.metadata().unwrap();
    let stream = format!("{}:{}", meta.dev(), meta.ino());
    (path, file, stream)
}

fn spawn(config: &Path, stderr: std::fs::File, journal_stream: &str) -> Child {
    Command::new(BIN)
        .args(["run", "--config"])
        .arg(config)
        .env("JOURNAL_STREAM", journal_stream)
        .env("SITEWATCH_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr))
        .spawn()
        .unwrap()
}

/// Waits (bounded) until `done` holds.
fn wait(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: i32) {
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on the PID of a child this test started and still owns.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

fn daemon_config(dir: &Path) -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n\n[[site]]\nname = \"closed\"\nurl = \"tcp://127.0.0.1:{port}\"\ninterval = \"1s\"\ntimeout = \"500ms\"\nconfirm_down = 1\n",
        dir.join("state").display()
    )
}

#[test]
fn every_line_carries_its_priority_under_journald() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sites.toml");
    std::fs::write(&config, daemon_config(dir.path())).unwrap();
    let (log, file, stream) = journal_file(dir.path());
    let mut child = spawn(&config, file, &stream);
    let read = || std::fs::read_to_string(&log).unwrap();
    wait("the daemon to start", || {
        dir.path().join("state/sitewatch.db").exists() && read().contains("sitewatch started")
    });
    wait("the site to be down", || read().contains("site is down"));
    // An invalid reload logs errors.
    std::fs::write(&config, "[[site]]\nname = \"x\"\nurl = \"ftp://x\"\n").unwrap();
    signal(&child, libc::SIGHUP);
    wait("the failed reload", || read().contains("reload failed"));
    signal(&child, libc::SIGTERM);
    assert_eq!(child.wait().unwrap().code(), Some(0));

    let text = read();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 5, "{text}");
    for line in &lines {
        assert!(
            ["<3>", "<4>", "<5>", "<6>", "<7>"]
                .iter()
                .any(|p| line.starts_with(p)),
            "a line without priority: {line:?}\n{text}"
        );
    }
    let with = |p: &str, words: &str| lines.iter().any(|l| l.starts_with(p) && l.contains(words));
    assert!(with("<5>", "sitewatch started"), "{text}");
    assert!(with("<5>", "site is down"), "{text}");
    assert!(with("<3>", "reload failed"), "{text}");
    assert!(with("<3>", "unsupported scheme \"ftp\""), "{text}");
    assert!(
        lines.iter().any(|l| l.starts_with("<6>")),
        "debug lines: {text}"
    );
    // journald adds its own timestamps: the level follows the prefix.
    for line in &lines {
        let rest = line[3..].trim_start();
        assert!(
            ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"]
                .iter()
                .any(|l| rest.starts_with(l)),
            "{line:?}"
        );
    }
}

#[test]
fn a_multi_line_error_gets_a_prefix_on_every_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sites.toml");
    // Two errors: the startup error renders both, each with its source
    // line and caret, as one event.
    std::fs::write(
        &config,
        "[[site]]\nname = \"a\"\nurl = \"ftp://a\"\n\n[[site]]\nname = \"b\"\nurl = \"gopher://b\"\n",
    )
    .unwrap();
    let (log, file, stream) = journal_file(dir.path());
    let status = spawn(&config, file, &stream).wait().unwrap();
    assert_eq!(status.code(), Some(1));
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 8, "{text}");
    for line in &lines {
        assert!(line.starts_with("<3>"), "{line:?} in\n{text}");
    }
    assert!(text.contains("<3>3 | url = \"ftp://a\"\n"), "{text}");
    assert!(text.contains("<3>  |       ^\n"), "{text}");
}

#[test]
fn without_the_journal_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sites.toml");
    std::fs::write(&config, "[[site]]\nname = \"a\"\nurl = \"ftp://a\"\n").unwrap();
    // JOURNAL_STREAM inherited from a parent whose stream this is not.
    for stream in ["1:2", "not a stream"] {
        let (log, file, _) = journal_file(dir.path());
        let status = spawn(&config, file, stream).wait().unwrap();
        assert_eq!(status.code(), Some(1));
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("unsupported scheme"), "{text}");
        assert!(!text.contains("<3>"), "{stream}: {text}");
        assert!(
            !text.lines().any(|l| l.starts_with('<')),
            "{stream}: {text}"
        );
    }
}
