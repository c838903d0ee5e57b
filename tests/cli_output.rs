//! sitewatch never panics on its own output. `check` (a Nagios plugin) and
//! `validate` whose stdout is full or closed exit 3 (UNKNOWN) with a short
//! message on stderr; the daemon whose stderr is a pipe nobody reads keeps
//! running and stops cleanly on SIGTERM.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sitewatch");

/// A loopback port with nothing listening on it.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Where a lost stdout goes: /dev/full (ENOSPC) or a pipe whose read end
/// is already closed (EPIPE).
fn lost_stdouts() -> Vec<(&'static str, Stdio)> {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    vec![
        ("/dev/full", Stdio::from(full)),
        ("a closed pipe", Stdio::from(writer)),
    ]
}

/// Runs sitewatch with `stdout`; returns the exit code and stderr.
fn run_with_stdout(args: &[&str], stdout: Stdio) -> (Option<i32>, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (child.wait().unwrap().code(), err)
}

#[test]
fn check_and_validate_exit_unknown_when_stdout_is_lost() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sites.toml");
    let config = config.to_str().unwrap();
    let target = format!("tcp://127.0.0.1:{}", closed_port());
    let commands: [&[&str]; 5] = [
        &["validate", "--config", config],
        &["check", &target],
        &["check", &target, "--json"],
        &["check", &target, "--format", "nagios"],
        &[
            "check",
            "tcp://127.0.0.1:9",
            "--format",
            "nagios",
            "--timeout",
            "1s",
        ],
    ];
    let mut runs = 0;
    for args in commands {
        for (what, stdout) in lost_stdouts() {
            let (code, err) = run_with_stdout(args, stdout);
            assert_eq!(code, Some(3), "{args:?} to {what}: {err}");
            assert!(!err.contains("panicked"), "{args:?} to {what}: {err}");
            assert!(
                err.contains("cannot write the result"),
                "{args:?} to {what}: {err}"
            );
            runs += 1;
        }
    }
    assert_eq!(runs, 10);
}

#[test]
fn help_that_cannot_be_printed_is_unknown() {
    for (what, stdout) in lost_stdouts() {
        let (code, err) = run_with_stdout(&["--help"], stdout);
        assert_eq!(code, Some(3), "to {what}: {err}");
        assert!(!err.contains("panicked"), "to {what}: {err}");
    }
}

#[test]
fn the_daemon_survives_a_stderr_nobody_reads() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("sites.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n\n[[site]]\nname = \"closed\"\nurl = \"tcp://127.0.0.1:{}\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n",
            state.display(),
            closed_port()
        ),
    )
    .unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        // Every probe logs at debug: many writes to the dead pipe.
        .env("SITEWATCH_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::from(writer))
        .spawn()
        .unwrap();
    // Started once its database is there (created after the signal
    // handlers); a crash on the first log line never gets that far.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !state.join("sitewatch.db").exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the daemon exited before starting: {status}");
        }
        assert!(Instant::now() < deadline, "no state database after 15 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let a few probes log (interval 1s) before stopping it.
    let probed = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < probed {
        assert!(child.try_wait().unwrap().is_none(), "the daemon died");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on the PID of a child this test started and still owns.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the daemon did not stop within 15 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "{status}");
}

#[test]
fn notify_test_exits_unknown_when_stdout_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sites.toml");
    std::fs::write(
        &path,
        format!(
            "[alert.hook]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{}/x\"\n\n[[site]]\nname = \"a\"\nurl = \"tcp://127.0.0.1:9\"\n",
            closed_port()
        ),
    )
    .unwrap();
    let config = path.to_str().unwrap();
    for (what, stdout) in lost_stdouts() {
        let (code, err) = run_with_stdout(&["notify-test", "--config", config], stdout);
        assert_eq!(code, Some(3), "notify-test to {what}: {err}");
        assert!(!err.contains("panicked"), "notify-test to {what}: {err}");
    }
    // With a stdout, it says which channel failed and exits 1.
    let out = Command::new(BIN)
        .args(["notify-test", "--config", config])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("hook (webhook): FAILED: "),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
