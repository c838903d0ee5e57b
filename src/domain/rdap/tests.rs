use super::*;
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::UNIX_EPOCH;

const DAY: Duration = Duration::from_secs(86_400);
const HOUR: Duration = Duration::from_secs(3600);

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

// ---- parse_bootstrap and server_for ----

const BOOTSTRAP: &str = r#"{
  "version": "1.0",
  "publication": "2025-01-01T00:00:00Z",
  "description": "test registry",
  "services": [
    [["com", "NET"], ["http://plain.example/rdap/", "https://secure.example/rdap/"]],
    [["uk"], ["https://uk.example/"]],
    [["co.uk"], ["https://co-uk.example/"]],
    [["org"], ["http://org-only.example/", "http://org-second.example/"]],
    [["bad"]],
    [["empty"], []],
    [["com"], ["https://second.example/"]],
    "junk",
    [[".Dotted."], ["https://dotted.example/", 7]]
  ]
}"#;

#[test]
fn the_longest_matching_suffix_names_the_server() {
    let b = parse_bootstrap(BOOTSTRAP.as_bytes()).unwrap();
    let table = [
        ("example.com", Some("https://secure.example/rdap/")),
        ("EXAMPLE.Net", Some("https://secure.example/rdap/")),
        ("example.com.", Some("https://secure.example/rdap/")),
        ("com", Some("https://secure.example/rdap/")),
        ("example.co.uk", Some("https://co-uk.example/")),
        ("a.b.example.CO.UK", Some("https://co-uk.example/")),
        ("example.uk", Some("https://uk.example/")),
        ("example.org", Some("http://org-only.example/")),
        ("example.dotted", Some("https://dotted.example/")),
        ("example.bad", None),
        ("example.empty", None),
        ("example.invalid", None),
        ("comx", None),
        ("", None),
        (".", None),
    ];
    for (domain, want) in table {
        assert_eq!(b.server_for(domain), want, "{domain:?}");
    }
    assert_eq!(b.len(), 6);
}

#[test]
fn a_bootstrap_that_is_not_one_is_an_error() {
    for junk in ["", "not json", "[]", "{}", r#"{"services": 3}"#] {
        assert!(parse_bootstrap(junk.as_bytes()).is_err(), "{junk:?}");
    }
    let empty = parse_bootstrap(br#"{"services": []}"#).unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.server_for("example.com"), None);
}

// ---- parse_expiration ----

#[test]
fn the_expiration_event_is_read() {
    let answer = r#"{
      "objectClassName": "domain", "ldhName": "EXAMPLE.COM", "extra": {"x": [1, 2]},
      "events": [
        {"eventAction": "registration", "eventDate": "1995-08-14T04:00:00Z"},
        {"eventAction": "last update of RDAP database", "eventDate": "not a date"},
        {"eventAction": "expiration", "eventDate": "2026-08-13T04:00:00Z", "eventActor": "x"},
        {"eventAction": "expiration", "eventDate": "2030-01-01T00:00:00Z"}
      ]
    }"#;
    let want = UNIX_EPOCH + Duration::from_secs(1_786_593_600);
    assert_eq!(parse_expiration(answer.as_bytes()), Ok(Some(want)));

    let offset = r#"{"events": [{"eventAction": "expiration", "eventDate": "2026-08-13T06:00:00.5+02:00"}]}"#;
    let want_offset = want + Duration::from_millis(500);
    assert_eq!(parse_expiration(offset.as_bytes()), Ok(Some(want_offset)));

    let naive =
        r#"{"events": [{"eventAction": "Expiration", "eventDate": "2026-08-13T04:00:00"}]}"#;
    assert_eq!(parse_expiration(naive.as_bytes()), Ok(Some(want)));
}

#[test]
fn no_expiration_event_is_none() {
    let answers = [
        r#"{"objectClassName": "domain"}"#,
        r#"{"events": []}"#,
        r#"{"events": [{"eventAction": "registration", "eventDate": "2020-01-01T00:00:00Z"}]}"#,
        r#"{"events": [{"eventDate": "2020-01-01T00:00:00Z"}, 5, "x", {"eventAction": 3}]}"#,
    ];
    for answer in answers {
        assert_eq!(parse_expiration(answer.as_bytes()), Ok(None), "{answer}");
    }
}

#[test]
fn bad_answers_and_dates_are_errors() {
    let answers = [
        "",
        "not json",
        "{\"events\": [",
        "[]",
        "\"x\"",
        r#"{"events": {}}"#,
        r#"{"events": [{"eventAction": "expiration"}]}"#,
        r#"{"events": [{"eventAction": "expiration", "eventDate": 20260813}]}"#,
        r#"{"events": [{"eventAction": "expiration", "eventDate": "next tuesday"}]}"#,
        r#"{"events": [{"eventAction": "expiration", "eventDate": "2026-13-45T00:00:00Z"}]}"#,
    ];
    for answer in answers {
        assert!(parse_expiration(answer.as_bytes()).is_err(), "{answer}");
    }
    let err =
        parse_expiration(br#"{"events": [{"eventAction": "expiration", "eventDate": "soon"}]}"#)
            .unwrap_err();
    assert!(err.contains("\"soon\""), "{err}");
}

// ---- judge ----

#[test]
fn judge_draws_the_lines_at_the_instant_and_the_window() {
    let at = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let expiry = Expiry::At(at);
    let s = Duration::from_secs(1);
    let table = [
        (at, 30, Verdict::Expired { days_ago: 0 }),
        (at + s, 30, Verdict::Expired { days_ago: 0 }),
        (at + DAY - s, 30, Verdict::Expired { days_ago: 0 }),
        (at + DAY, 30, Verdict::Expired { days_ago: 1 }),
        (at + 400 * DAY, 30, Verdict::Expired { days_ago: 400 }),
        (at - s, 30, Verdict::Expiring { days_left: 0 }),
        (at - DAY, 30, Verdict::Expiring { days_left: 1 }),
        (at - 30 * DAY + s, 30, Verdict::Expiring { days_left: 29 }),
        (at - 30 * DAY, 30, Verdict::Fine { days_left: 30 }),
        (at - 30 * DAY - s, 30, Verdict::Fine { days_left: 30 }),
        (at - 365 * DAY, 30, Verdict::Fine { days_left: 365 }),
        (at - s, 0, Verdict::Fine { days_left: 0 }),
        (at - DAY, 1, Verdict::Fine { days_left: 1 }),
        (at - DAY + s, 1, Verdict::Expiring { days_left: 0 }),
    ];
    for (now, warn, want) in table {
        assert_eq!(judge(&expiry, now, warn), want, "{now:?} warn {warn}");
    }
    let unknown = Expiry::Unknown("no RDAP server for .test".into());
    assert_eq!(
        judge(&unknown, at, 30),
        Verdict::Unknown("no RDAP server for .test".into())
    );
}

// ---- small helpers ----

#[test]
fn queries_are_built_on_the_base_url() {
    let table = [
        (
            "https://rdap.example/",
            "https://rdap.example/domain/example.com",
        ),
        (
            "https://rdap.example/v1",
            "https://rdap.example/v1/domain/example.com",
        ),
        (
            "https://rdap.example/v1/",
            "https://rdap.example/v1/domain/example.com",
        ),
    ];
    for (base, want) in table {
        assert_eq!(query_url(base, "example.com"), want);
    }
}

#[test]
fn domains_are_put_in_queries_as_lowercase_ascii() {
    let table = [
        ("Example.COM.", Some("example.com")),
        ("  example.co.uk ", Some("example.co.uk")),
        ("bücher.example", Some("xn--bcher-kva.example")),
        ("", None),
        (".", None),
        ("a..b", None),
        ("example.com/../admin", None),
        ("example.com?x=1", None),
        ("exa mple.com", None),
    ];
    for (domain, want) in table {
        assert_eq!(normalise(domain).as_deref(), want, "{domain:?}");
    }
}

#[test]
fn a_config_without_a_bootstrap_is_refused() {
    let config = |bootstrap: &str| RdapConfig {
        bootstrap: bootstrap.into(),
        ca_file: None,
    };
    assert!(Rdap::new(config(" ")).is_err());
    assert!(Rdap::new(config("http://")).is_err());
    assert!(Rdap::new(RdapConfig::default()).is_ok());
    let missing_ca = RdapConfig {
        ca_file: Some("/nonexistent/ca.pem".into()),
        ..RdapConfig::default()
    };
    assert!(Rdap::new(missing_ca).is_err());
}

// ---- a local RDAP server ----

/// A registry on 127.0.0.1 that serves the bootstrap at /dns.json and
/// answers for names under .test and .example.
#[derive(Clone)]
struct Lab {
    port: u16,
    /// Whole seconds: dates served round-trip exactly.
    base: SystemTime,
    /// Requests for /rdap/domain/* and the redirect's target.
    hits: Arc<AtomicUsize>,
    bootstrap_hits: Arc<AtomicUsize>,
}

impl Lab {
    async fn start() -> Lab {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let lab = Lab {
            port: listener.local_addr().unwrap().port(),
            base: UNIX_EPOCH + Duration::from_secs(secs),
            hits: Arc::default(),
            bootstrap_hits: Arc::default(),
        };
        let app = Router::new()
            .route("/dns.json", get(dns_json))
            .route("/rdap/domain/{name}", get(answer))
            .route("/elsewhere/{name}", get(answer))
            .with_state(lab.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        lab
    }

    fn bootstrap_json(&self) -> String {
        let base = format!("http://127.0.0.1:{}/rdap/", self.port);
        serde_json::json!({
            "version": "1.0",
            "services": [[["test", "example"], [base]]],
        })
        .to_string()
    }

    fn rdap(&self) -> Rdap {
        Rdap::new(RdapConfig {
            bootstrap: format!("http://127.0.0.1:{}/dns.json", self.port),
            ca_file: None,
        })
        .unwrap()
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn bootstrap_hits(&self) -> usize {
        self.bootstrap_hits.load(Ordering::SeqCst)
    }
}

async fn dns_json(State(lab): State<Lab>) -> Response {
    lab.bootstrap_hits.fetch_add(1, Ordering::SeqCst);
    (
        [(header::CONTENT_TYPE, "application/json")],
        lab.bootstrap_json(),
    )
        .into_response()
}

fn domain_answer(name: &str, expiration: Option<SystemTime>) -> String {
    let mut events = vec![serde_json::json!({
        "eventAction": "registration", "eventDate": "2001-02-03T04:05:06Z"
    })];
    if let Some(at) = expiration {
        events.push(serde_json::json!({"eventAction": "expiration", "eventDate": rfc3339(at)}));
    }
    serde_json::json!({
        "objectClassName": "domain",
        "ldhName": name.to_ascii_uppercase(),
        "status": ["active"],
        "events": events,
        "notices": [{"title": "Terms of Use", "description": ["..."]}],
    })
    .to_string()
}

async fn answer(
    State(lab): State<Lab>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    lab.hits.fetch_add(1, Ordering::SeqCst);
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if accept != Some("application/rdap+json") {
        return StatusCode::NOT_ACCEPTABLE.into_response();
    }
    let rdap =
        |body: String| ([(header::CONTENT_TYPE, "application/rdap+json")], body).into_response();
    let base = lab.base;
    match name.as_str() {
        "expired.test" => rdap(domain_answer(&name, Some(base - 365 * DAY))),
        "soon.test" => rdap(domain_answer(&name, Some(base + 10 * DAY + HOUR))),
        "far.example" => rdap(domain_answer(&name, Some(base + 730 * DAY))),
        "noexp.test" => rdap(domain_answer(&name, None)),
        "junk.test" => rdap("<html>not rdap</html>".into()),
        "huge.test" => rdap(" ".repeat(2 << 20)),
        "flood.test" => {
            // Chunked, without a length: the reader must stop by itself.
            let chunk = bytes::Bytes::from(vec![b' '; 64 << 10]);
            let chunks = std::iter::repeat_n(Ok::<_, std::convert::Infallible>(chunk), 64);
            let body = axum::body::Body::from_stream(futures_util::stream::iter(chunks));
            ([(header::CONTENT_TYPE, "application/rdap+json")], body).into_response()
        }
        "broken.test" => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        "busy.test" => StatusCode::TOO_MANY_REQUESTS.into_response(),
        "moved.test" => (
            StatusCode::FOUND,
            [(header::LOCATION, "/elsewhere/landed.test")],
        )
            .into_response(),
        "landed.test" => rdap(domain_answer("moved.test", Some(base + 100 * DAY))),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

#[tokio::test]
async fn a_local_registry_answers_each_case() {
    let lab = Lab::start().await;
    let rdap = lab.rdap();
    let now = lab.base;
    let at = |d: Duration, later: bool| Expiry::At(if later { now + d } else { now - d });
    let table = [
        (
            "expired.test",
            at(365 * DAY, false),
            Verdict::Expired { days_ago: 365 },
        ),
        (
            "soon.test",
            at(10 * DAY + HOUR, true),
            Verdict::Expiring { days_left: 10 },
        ),
        (
            "FAR.Example.",
            at(730 * DAY, true),
            Verdict::Fine { days_left: 730 },
        ),
        (
            "moved.test",
            at(100 * DAY, true),
            Verdict::Fine { days_left: 100 },
        ),
    ];
    for (domain, want, verdict) in table {
        let got = rdap.expiry(domain, now).await;
        assert_eq!(got, want, "{domain}");
        assert_eq!(judge(&got, now, 30), verdict, "{domain}");
    }

    let unknown = [
        ("missing.test", "the registry has no record of missing.test"),
        ("noexp.test", "no expiration date"),
        ("broken.test", "HTTP 500"),
        ("busy.test", "HTTP 429"),
        ("junk.test", "not valid JSON"),
        ("huge.test", "1 MiB"),
        ("flood.test", "1 MiB"),
        ("example.org", "no RDAP server for .org"),
        ("not/a domain", "not a domain name"),
    ];
    for (domain, want) in unknown {
        let got = rdap.expiry(domain, now).await;
        let Expiry::Unknown(reason) = &got else {
            panic!("{domain}: {got:?}");
        };
        assert!(reason.contains(want), "{domain}: {reason}");
        assert!(matches!(judge(&got, now, 30), Verdict::Unknown(_)));
    }
    assert_eq!(lab.bootstrap_hits(), 1, "the bootstrap is read once");
}

#[tokio::test]
async fn answers_are_kept_for_a_day() {
    let lab = Lab::start().await;
    let rdap = lab.rdap();
    let now = lab.base;
    let want = Expiry::At(now + 730 * DAY);

    assert_eq!(rdap.expiry("far.example", now).await, want);
    assert_eq!((lab.hits(), lab.bootstrap_hits()), (1, 1));
    assert_eq!(rdap.expiry("far.example", now + HOUR).await, want);
    assert_eq!(rdap.expiry("Far.Example", now + 23 * HOUR).await, want);
    assert_eq!((lab.hits(), lab.bootstrap_hits()), (1, 1));

    // A registry's "no such domain" is an answer too.
    rdap.expiry("missing.test", now).await;
    rdap.expiry("missing.test", now + 2 * HOUR).await;
    assert_eq!(lab.hits(), 2);

    assert_eq!(rdap.expiry("far.example", now + 25 * HOUR).await, want);
    assert_eq!((lab.hits(), lab.bootstrap_hits()), (3, 2));
    assert_eq!(rdap.expiry("far.example", now + 26 * HOUR).await, want);
    assert_eq!(lab.hits(), 3);
}

#[tokio::test]
async fn failures_are_asked_again_after_an_hour() {
    let lab = Lab::start().await;
    let rdap = lab.rdap();
    let now = lab.base;
    for name in ["broken.test", "junk.test"] {
        let before = lab.hits();
        rdap.expiry(name, now).await;
        assert_eq!(lab.hits(), before + 1, "{name}");
        rdap.expiry(name, now + Duration::from_secs(59 * 60)).await;
        assert_eq!(
            lab.hits(),
            before + 1,
            "{name}: asked again within the hour"
        );
        rdap.expiry(name, now + Duration::from_secs(61 * 60)).await;
        assert_eq!(
            lab.hits(),
            before + 2,
            "{name}: not asked again after an hour"
        );
    }
    assert_eq!(lab.bootstrap_hits(), 1);
}

#[tokio::test]
async fn callers_asking_at_once_make_one_request() {
    let lab = Lab::start().await;
    let rdap = lab.rdap();
    let now = lab.base;
    let (a, b, c) = tokio::join!(
        rdap.expiry("soon.test", now),
        rdap.expiry("soon.test", now),
        rdap.expiry("soon.test", now),
    );
    assert_eq!(a, Expiry::At(now + 10 * DAY + HOUR));
    assert_eq!((&a, &a), (&b, &c));
    assert_eq!((lab.hits(), lab.bootstrap_hits()), (1, 1));
}

#[tokio::test]
async fn the_bootstrap_can_be_a_local_file() {
    let lab = Lab::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dns.json");
    std::fs::write(&path, lab.bootstrap_json()).unwrap();
    let now = lab.base;
    for bootstrap in [
        path.display().to_string(),
        format!("file://{}", path.display()),
    ] {
        let rdap = Rdap::new(RdapConfig {
            bootstrap,
            ca_file: None,
        })
        .unwrap();
        assert_eq!(
            rdap.expiry("far.example", now).await,
            Expiry::At(now + 730 * DAY)
        );
    }
    assert_eq!((lab.hits(), lab.bootstrap_hits()), (2, 0));

    // When the file goes, the last good copy is used, and the read retried.
    let rdap = Rdap::new(RdapConfig {
        bootstrap: path.display().to_string(),
        ca_file: None,
    })
    .unwrap();
    assert!(matches!(rdap.expiry("soon.test", now).await, Expiry::At(_)));
    std::fs::remove_file(&path).unwrap();
    let later = now + 25 * HOUR;
    assert!(matches!(
        rdap.expiry("far.example", later).await,
        Expiry::At(_)
    ));
    std::fs::write(&path, r#"{"services": []}"#).unwrap();
    let got = rdap
        .expiry("expired.test", later + Duration::from_secs(30 * 60))
        .await;
    assert!(
        matches!(got, Expiry::At(_)),
        "retried within the hour: {got:?}"
    );
    let got = rdap.expiry("noexp.test", later + 2 * HOUR).await;
    assert_eq!(got, Expiry::Unknown("no RDAP server for .test".into()));
}

#[tokio::test]
async fn a_missing_bootstrap_or_server_is_unknown() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let now = SystemTime::now();

    let rdap = Rdap::new(RdapConfig {
        bootstrap: "/nonexistent/dns.json".into(),
        ca_file: None,
    })
    .unwrap();
    let got = rdap.expiry("example.test", now).await;
    let Expiry::Unknown(reason) = got else {
        panic!("{got:?}")
    };
    assert!(
        reason.contains("bootstrap") && reason.contains("/nonexistent/dns.json"),
        "{reason}"
    );

    let rdap = Rdap::new(RdapConfig {
        bootstrap: format!("http://127.0.0.1:{dead_port}/dns.json"),
        ca_file: None,
    })
    .unwrap();
    let got = rdap.expiry("example.test", now).await;
    let Expiry::Unknown(reason) = got else {
        panic!("{got:?}")
    };
    assert!(
        reason.contains("bootstrap") && reason.contains("cannot connect"),
        "{reason}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dns.json");
    let base = format!("http://127.0.0.1:{dead_port}/rdap/");
    let json = serde_json::json!({"services": [[["test"], [base]]]});
    std::fs::write(&path, json.to_string()).unwrap();
    let rdap = Rdap::new(RdapConfig {
        bootstrap: path.display().to_string(),
        ca_file: None,
    })
    .unwrap();
    let got = rdap.expiry("example.test", now).await;
    let Expiry::Unknown(reason) = got else {
        panic!("{got:?}")
    };
    assert!(reason.contains("cannot connect"), "{reason}");
}
