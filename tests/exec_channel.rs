//! The `exec` channel end to end: real programs (shell scripts written by
//! the test) run by the daemon for a real outage (a closed port). One reads
//! the alert from its standard input and environment and exits 0; one
//! exits 75 once (tried again, then delivered); one exits 1 (a dead letter
//! on /api/v1/outbox with its standard error); one hangs with a child of
//! its own past its timeout (both killed).

mod common;

use common::daemon::{get_json, start_in_process, wait_for, wait_status};
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpListener;

fn script(dir: &Path, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only asks whether the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

#[tokio::test]
async fn programs_deliver_retry_refuse_and_are_killed_at_their_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out");
    std::fs::create_dir(&out).unwrap();
    let o = out.display();
    let ok = script(
        d,
        "ok.sh",
        &format!(
            // stdin.json appears last, whole (a rename): the test waits for it.
            "cat > {o}/stdin.part\nenv | grep ^SITEWATCH_ | sort > {o}/env.txt\necho \"$1 $2\" > {o}/args.txt\nmv {o}/stdin.part {o}/stdin.json"
        ),
    );
    let retry = script(
        d,
        "retry.sh",
        &format!(
            "echo run >> {o}/retry.log\nif [ ! -e {o}/retried ]; then touch {o}/retried; echo 'pager busy' >&2; exit 75; fi\nexit 0"
        ),
    );
    let fail = script(d, "fail.sh", "echo 'no such pager: web' >&2\nexit 1");
    let hang = script(
        d,
        "hang.sh",
        &format!("echo $$ > {o}/hang.pid\nsleep 60 &\necho $! > {o}/child.pid\nwait"),
    );
    // A closed port: the site is down at its second probe.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let text = format!(
        r#"[daemon]
state_dir = "{state}"

[[site]]
name = "web"
url = "tcp://127.0.0.1:{port}"
interval = "1s"
timeout = "500ms"

[alert.ok]
type = "exec"
command = ["{ok}", "--team", "web team"]

[alert.retry]
type = "exec"
command = ["{retry}"]

[alert.fail]
type = "exec"
command = ["{fail}"]

[alert.hang]
type = "exec"
command = ["{hang}"]
timeout = "1s"
"#,
        state = d.join("state").display(),
    );
    let (running, api) = start_in_process(d, &text).await;
    wait_status(
        &api,
        "web",
        "down",
        Some("tcp.refused"),
        Duration::from_secs(15),
    )
    .await;

    // Delivered: the alert on stdin, in the environment, and the argv as given.
    let stdin = out.join("stdin.json");
    wait_for("ok.sh to run", Duration::from_secs(10), || {
        let p = stdin.clone();
        async move { std::fs::read(&p).ok().filter(|b| !b.is_empty()) }
    })
    .await;
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(&stdin).unwrap()).unwrap();
    assert_eq!(
        (j["event"].as_str(), j["site"].as_str(), j["cause"].as_str()),
        (Some("down"), Some("web"), Some("tcp.refused")),
        "{j}"
    );
    let env = std::fs::read_to_string(out.join("env.txt")).unwrap();
    for line in [
        "SITEWATCH_EVENT=down",
        "SITEWATCH_SITE=web",
        "SITEWATCH_STATUS=down",
        "SITEWATCH_CAUSE=tcp.refused",
        "SITEWATCH_CHANNEL=ok",
    ] {
        assert!(env.lines().any(|l| l == line), "{line} missing:\n{env}");
    }
    assert_eq!(
        std::fs::read_to_string(out.join("args.txt")).unwrap(),
        "--team web team\n",
        "no shell splits the arguments"
    );

    // 75: tried again after the backoff, then delivered.
    let log = out.join("retry.log");
    wait_for("retry.sh to run twice", Duration::from_secs(20), || {
        let p = log.clone();
        async move {
            std::fs::read_to_string(&p)
                .ok()
                .filter(|t| t.lines().count() >= 2)
        }
    })
    .await;

    // 1: a dead letter, with what the program said.
    let (_, failed) = get_json(&format!("{api}/api/v1/outbox?state=failed")).await;
    let list = failed["deliveries"].as_array().unwrap();
    let dead = list
        .iter()
        .find(|d| d["channel"] == "fail")
        .expect("fail.sh's delivery");
    let error = dead["last_error"].as_str().unwrap();
    assert!(
        error.contains("exited 1") && error.contains("no such pager: web"),
        "{error}"
    );
    assert!(!list.iter().any(|d| d["channel"] == "retry"), "{failed}");

    // Hangs: killed at its timeout with the child it started; pending, to retry.
    let pids = wait_for("hang.sh to start", Duration::from_secs(10), || {
        let (a, b) = (out.join("hang.pid"), out.join("child.pid"));
        async move {
            let read = |p: &Path| std::fs::read_to_string(p).ok()?.trim().parse::<i32>().ok();
            Some((read(&a)?, read(&b)?))
        }
    })
    .await;
    wait_for(
        "hang.sh and its child killed",
        Duration::from_secs(5),
        || async move { (!alive(pids.0) && !alive(pids.1)).then_some(()) },
    )
    .await;
    // Recorded as pending with why (the record reaches the database a
    // moment after the kill).
    let hung = wait_for(
        "hang.sh's delivery pending with its timeout",
        Duration::from_secs(10),
        || async {
            let (_, pending) = get_json(&format!("{api}/api/v1/outbox?state=pending")).await;
            pending["deliveries"]
                .as_array()?
                .iter()
                .find(|d| d["channel"] == "hang" && d["last_error"].is_string())
                .cloned()
        },
    )
    .await;
    assert!(
        hung["last_error"]
            .as_str()
            .unwrap()
            .contains("did not finish within 1s"),
        "{hung}"
    );
    running.stop();
    running.wait().await.unwrap();
}
