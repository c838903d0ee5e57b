//! Domain registration end to end: the daemon asks a local RDAP server
//! (found through a bootstrap file served beside it, as IANA's is) when
//! each site's domain expires. Expired is down (`domain.expired`), within
//! `domain_warn_days` degraded (`domain.expiring`), far away up; a
//! registry that fails never makes a site down: `/status` shows the
//! expiry as unknown. Real DNS, HTTP and RDAP servers, loopback only.

mod common;

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use common::daemon::{get_json, start_in_process, wait_for, wait_status};
use common::dns::{Answer, TestDns};
use common::http::Recorder;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};
use tokio::net::TcpListener;

const OK: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 27\r\nconnection: close\r\n\r\n<html><body>ok</body></html>";

/// An RDAP date `hours` from now.
fn date(hours: i64) -> String {
    let span = Duration::from_secs(3600 * hours.unsigned_abs());
    let at = if hours < 0 {
        SystemTime::now() - span
    } else {
        SystemTime::now() + span
    };
    humantime::format_rfc3339_seconds(at).to_string()
}

/// A registry answering for `.test`, and the bootstrap file that points at it.
async fn registry(asked: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/rdap/", listener.local_addr().unwrap());
    let bootstrap = serde_json::json!({
        "version": "1.0",
        "publication": "2026-11-01T00:00:00Z",
        "services": [[["test"], [base]]]
    });
    let app = Router::new()
        .route(
            "/dns.json",
            get(move || {
                let b = bootstrap.clone();
                async move { axum::Json(b) }
            }),
        )
        .route(
            "/rdap/domain/{name}",
            get(move |Path(name): Path<String>| {
                asked.fetch_add(1, Ordering::SeqCst);
                async move {
                    // Half a day past whole days: the days counted are exact.
                    let hours = match name.as_str() {
                        "expired.test" => -40 * 24 - 12,
                        "soon.test" => 10 * 24 + 12,
                        "far.test" => 700 * 24 + 12,
                        _ => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                    };
                    let body = serde_json::json!({
                        "objectClassName": "domain",
                        "ldhName": name,
                        "events": [
                            {"eventAction": "registration", "eventDate": date(-3000 * 24)},
                            {"eventAction": "expiration", "eventDate": date(hours)}
                        ]
                    });
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/rdap+json")],
                        body.to_string(),
                    )
                        .into_response()
                }
            }),
        );
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/dns.json")
}

#[tokio::test]
async fn expired_expiring_far_and_unknown_registrations() {
    let asked = Arc::new(AtomicUsize::new(0));
    let bootstrap = registry(Arc::clone(&asked)).await;
    let web = Recorder::start(|_| OK.to_string()).await;
    let dns = TestDns::start().await;
    for name in [
        "www.expired.test",
        "www.soon.test",
        "www.far.test",
        "www.broken.test",
    ] {
        dns.set(name, Answer::Addrs(vec!["127.0.0.1".parse().unwrap()]));
    }
    let dir = tempfile::tempdir().unwrap();
    let port = web.addr.port();
    let mut text = format!(
        r#"[daemon]
state_dir = "{state}"
rdap_bootstrap = "{bootstrap}"

[defaults]
interval = "1s"
timeout = "800ms"
resolvers = ["{dns}"]
"#,
        state = dir.path().join("state").display(),
        dns = dns.addr,
    );
    for name in ["expired", "soon", "far", "broken"] {
        text.push_str(&format!(
            "\n[[site]]\nname = \"{name}\"\nurl = \"http://www.{name}.test:{port}/\"\n"
        ));
    }
    let (running, api) = start_in_process(dir.path(), &text).await;
    let limit = Duration::from_secs(20);

    let s = wait_status(&api, "expired", "down", Some("domain.expired"), limit).await;
    let detail = s["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(
            "the registration of expired.test expired 40 days ago (RDAP); the probe: HTTP 200"
        ),
        "{detail}"
    );
    assert!(
        s["hint"]
            .as_str()
            .unwrap()
            .contains("renew it at the registrar"),
        "{s}"
    );
    assert_eq!(s["domain"]["days_left"], -40, "{s}");

    let s = wait_status(&api, "soon", "degraded", Some("domain.expiring"), limit).await;
    assert!(
        s["detail"]
            .as_str()
            .unwrap()
            .contains("expires in 10 days (RDAP; warning at 30)"),
        "{s}"
    );

    // Far away: up, and the expiry is shown.
    let s = wait_for("far.test's expiry", limit, || {
        let url = format!("{api}/status/far");
        async move {
            let (_, s) = get_json(&url).await;
            s["domain"]["days_left"].as_i64().map(|_| s)
        }
    })
    .await;
    assert_eq!(s["status"], "up", "{s}");
    assert_eq!(s["domain"]["days_left"], 700, "{s}");
    assert!(s["domain"]["expires"].is_string(), "{s}");

    // A registry that fails: up, with the expiry unknown and why.
    let s = wait_for("broken.test's unknown expiry", limit, || {
        let url = format!("{api}/status/broken");
        async move {
            let (_, s) = get_json(&url).await;
            s["domain"]["unknown"].as_str().map(|_| s.clone())
        }
    })
    .await;
    assert_eq!(s["status"], "up", "{s}");
    assert!(
        s["domain"]["unknown"].as_str().unwrap().contains("500"),
        "{s}"
    );

    // Answers are kept: a probe a second does not ask the registry again.
    let before = asked.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        asked.load(Ordering::SeqCst),
        before,
        "the registry is not asked per probe"
    );
    assert!(before <= 4, "each domain asked once: {before}");
    running.stop();
    running.wait().await.unwrap();
}
