//! "See it at a glance", end to end: the daemon in-process with a site that
//! is up (a local HTTP server) and one that is down (tcp://127.0.0.1:9);
//! the status page loaded in a real headless Chromium (DOM and screenshots
//! under target/test-artifacts/), badges parsed as XML, /metrics scraped by
//! a real Prometheus and queried through its HTTP API, every documented API
//! path and error, the bearer token, public mode, and no configured secret
//! in any answer.

mod common;

use common::daemon::{get_json, wait_for, wait_status, write_config};
use common::http::TestHttp;
use serde_json::Value;
use sitewatch::api::{Access, ApiToken};
use sitewatch::store::StatusStore;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const HOOK_SECRET: &str = "hmac-web-SECRET-0123456789";
const SLACK_TOKEN: &str = "T0WEB/B0WEB/xoxbSECRETslack77";
const API_TOKEN: &str = "api-SECRET-token-4242";

/// The daemon under test, with its sites and where its API listens.
struct Daemon {
    running: sitewatch::app::Running,
    api: String,
    config: PathBuf,
    web: TestHttp,
    dir: tempfile::TempDir,
}

/// sites.toml: "web-site" (up) and, if `with_down`, "down-site" (refused),
/// plus two alert channels whose secrets must never show.
fn config_text(dir: &Path, web_url: &str, with_down: bool) -> String {
    let down = if with_down {
        "[[site]]\nname = \"down-site\"\nurl = \"tcp://127.0.0.1:9\"\n"
    } else {
        ""
    };
    format!(
        r#"[daemon]
listen = "127.0.0.1:0"
state_dir = "{}"

[defaults]
interval = "1s"
timeout = "500ms"

[[site]]
name = "web-site"
url = "{web_url}"

{down}
[alert.hook]
type = "webhook"
url = "http://127.0.0.1:9/hook"
secret = "{HOOK_SECRET}"

[alert.chat]
type = "slack"
webhook_url = "http://127.0.0.1:9/services/{SLACK_TOKEN}"
"#,
        dir.join("state").display()
    )
}

impl Daemon {
    /// Starts the daemon in-process on [`config_text`] and waits until both
    /// sites have their status.
    async fn start() -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let web = TestHttp::start(200, "<html><body>hello</body></html>").await;
        let path = write_config(dir.path(), &config_text(dir.path(), &web.url("/"), true));
        let config = sitewatch::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = sitewatch::app::start(&config, listener).unwrap();
        let api = format!("http://{}", running.addr);
        wait_status(&api, "web-site", "up", None, Duration::from_secs(10)).await;
        wait_status(
            &api,
            "down-site",
            "down",
            Some("tcp.refused"),
            Duration::from_secs(10),
        )
        .await;
        Daemon {
            running,
            api,
            config: path,
            web,
            dir,
        }
    }

    fn store(&self) -> StatusStore {
        self.running.store.clone()
    }

    async fn stop(self) {
        self.running.stop();
        self.running.wait().await.unwrap();
    }
}

/// Serves `router_with(store, access)` on a port of its own.
async fn serve_with(store: StatusStore, access: Access) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, sitewatch::api::router_with(store, access)).await;
    });
    (format!("http://{addr}"), task)
}

/// One HTTP answer.
struct Answer {
    status: u16,
    content_type: String,
    www_authenticate: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// GETs `url`, with `Authorization: Bearer <token>` when given.
async fn get(url: &str, token: Option<&str>) -> Answer {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut req = reqwest::Client::new().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header("content-type").unwrap_or_default();
    let www_authenticate = header("www-authenticate");
    Answer {
        status: resp.status().as_u16(),
        content_type,
        www_authenticate,
        body: resp.text().await.unwrap(),
    }
}

/// A tool the test needs: its path, or a loud skip (a failure under CI).
fn tool(name: &str, package: &str, test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let msg = format!(
            "SKIPPED {test}: `{name}` is not installed (Debian package `{package}`; .ci/run installs it)"
        );
        if std::env::var_os("CI").is_some() {
            panic!("{msg} (CI must run every test)");
        }
        eprintln!("\n!!!!!!!! {msg} !!!!!!!!\n");
    }
    found
}

/// Where screenshots go: target/test-artifacts/.
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs headless Chromium with a fresh profile and `args`; returns stdout.
async fn chromium(bin: &Path, args: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(args)
    .stdin(Stdio::null())
    .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .expect("chromium did not finish within 90 s")
        .expect("chromium could not start");
    assert!(
        out.status.success(),
        "chromium {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `<article>` of one site in a page's HTML.
fn article<'a>(html: &'a str, site: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"site-{site}\""))
        .unwrap_or_else(|| panic!("no article for {site} in\n{html}"));
    let end = html[start..].find("</article>").unwrap() + start;
    &html[start..end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_renders_in_headless_chromium() {
    let Some(bin) = tool(
        "chromium",
        "chromium",
        "the_page_renders_in_headless_chromium",
    ) else {
        return;
    };
    let d = Daemon::start().await;
    let page = format!("{}/", d.api);

    let dom = chromium(&bin, &["--dump-dom".to_string(), page.clone()]).await;
    let down = article(&dom, "down-site");
    assert!(down.contains("data-status=\"down\""), "{down}");
    assert!(down.contains("Down</span>"), "status word: {down}");
    assert!(down.contains("connection refused"), "cause words: {down}");
    assert!(down.contains("<details"), "hint behind details: {down}");
    assert!(
        down.contains("nothing is listening on 127.0.0.1:9"),
        "hint: {down}"
    );
    assert!(down.contains("tcp://127.0.0.1:9"), "target: {down}");
    assert!(down.contains("Last probe: <time"), "{down}");
    let up = article(&dom, "web-site");
    assert!(up.contains("data-status=\"up\""), "{up}");
    assert!(up.contains("Up</span>"), "status word: {up}");
    assert!(!up.contains("connection refused"), "{up}");
    // 90 day cells and a sparkline per site; the page asks for nothing elsewhere.
    assert!(up.contains("class=\"days\""), "{up}");
    assert!(up.contains("class=\"spark\""), "{up}");
    assert!(
        dom.contains("http-equiv=\"refresh\" content=\"30\""),
        "{dom}"
    );
    assert!(dom.contains("name=\"viewport\""), "{dom}");
    assert!(dom.contains("Last incidents"), "{dom}");
    for external in [
        "src=\"http",
        "href=\"http",
        "<script",
        "@import",
        "url(http",
    ] {
        assert!(!dom.contains(external), "{external} in\n{dom}");
    }

    // Screenshots, desktop and phone, to look at.
    let dir = artifacts();
    for (file, size) in [
        ("status-page.png", "1280,900"),
        ("status-page-phone.png", "390,844"),
    ] {
        let png = dir.join(file);
        let _ = std::fs::remove_file(&png);
        chromium(
            &bin,
            &[
                format!("--screenshot={}", png.display()),
                format!("--window-size={size}"),
                page.clone(),
            ],
        )
        .await;
        let bytes = std::fs::read(&png).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
            "{file}"
        );
    }

    // Public mode: names, statuses and causes; no targets, addresses or hints.
    let (public, task) = serve_with(
        d.store(),
        Access {
            token: None,
            public_page: true,
        },
    )
    .await;
    let dom = chromium(&bin, &["--dump-dom".to_string(), format!("{public}/")]).await;
    let down = article(&dom, "down-site");
    assert!(
        down.contains("Down</span>") && down.contains("connection refused"),
        "{down}"
    );
    assert!(
        !dom.contains("127.0.0.1"),
        "public page shows an address:\n{dom}"
    );
    assert!(
        !dom.contains("nothing is listening"),
        "public page shows a hint:\n{dom}"
    );
    let png = dir.join("status-page-public.png");
    chromium(
        &bin,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1280,900".to_string(),
            format!("{public}/"),
        ],
    )
    .await;
    assert!(png.is_file());
    task.abort();
    d.stop().await;
}

/// Every text node of an SVG, parsed as XML.
fn svg_texts(body: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg", "{body}");
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn badges_are_svg_with_the_name_and_status() {
    let d = Daemon::start().await;
    let a = get(&format!("{}/badge/down-site/status.svg", d.api), None).await;
    assert_eq!(a.status, 200);
    assert!(
        a.content_type.starts_with("image/svg+xml"),
        "{}",
        a.content_type
    );
    let texts = svg_texts(&a.body);
    assert!(texts.iter().any(|t| t == "down-site"), "{texts:?}");
    assert!(
        texts.iter().any(|t| t == "down: connection refused"),
        "{texts:?}"
    );

    let a = get(&format!("{}/badge/web-site/status.svg", d.api), None).await;
    let texts = svg_texts(&a.body);
    assert!(texts.iter().any(|t| t == "web-site"), "{texts:?}");
    assert!(texts.iter().any(|t| t == "up"), "{texts:?}");

    for window in ["", "?window=24h", "?window=90d"] {
        let a = get(
            &format!("{}/badge/web-site/uptime.svg{window}", d.api),
            None,
        )
        .await;
        assert_eq!(a.status, 200, "{window}");
        let texts = svg_texts(&a.body);
        assert!(texts.iter().any(|t| t == "web-site"), "{texts:?}");
        assert!(
            texts.iter().any(|t| t.ends_with('d') || t.ends_with('h')),
            "{texts:?}"
        );
    }

    // A long name gets a wider badge than a short one (text widths, not a guess).
    let width = |svg: &str| -> f64 {
        let doc = roxmltree::Document::parse(svg).unwrap();
        doc.root_element()
            .attribute("width")
            .unwrap()
            .parse()
            .unwrap()
    };
    let short = get(&format!("{}/badge/web-site/status.svg", d.api), None).await;
    let long = get(&format!("{}/badge/down-site/status.svg", d.api), None).await;
    assert!(width(&long.body) > width(&short.body));

    for (path, code) in [
        ("/badge/nope/status.svg", 404),
        ("/badge/nope/uptime.svg", 404),
        ("/badge/web-site/uptime.svg?window=1y", 400),
    ] {
        let a = get(&format!("{}{path}", d.api), None).await;
        assert_eq!(a.status, code, "{path}");
        assert!(a.content_type.starts_with("application/json"), "{path}");
        assert!(a.json()["error"].is_string(), "{path}");
    }
    let a = get(&format!("{}/badge/nope/status.svg", d.api), None).await;
    assert_eq!(a.json()["error"], "no site named \"nope\"");

    // Public mode: the status word, not the cause.
    let (public, task) = serve_with(
        d.store(),
        Access {
            token: None,
            public_page: true,
        },
    )
    .await;
    let a = get(&format!("{public}/badge/down-site/status.svg"), None).await;
    let texts = svg_texts(&a.body);
    assert!(texts.iter().any(|t| t == "down"), "{texts:?}");
    assert!(!a.body.contains("refused"), "{}", a.body);
    task.abort();
    d.stop().await;
}

/// A Prometheus server this test started, killed (by PID) on drop.
struct Prometheus {
    child: tokio::process::Child,
    url: String,
    log: PathBuf,
}

impl Prometheus {
    async fn start(bin: &Path, dir: &Path, config: &str) -> Prometheus {
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        // A free loopback port: bind, read it, release it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join("prometheus.log");
        let child = tokio::process::Command::new(bin)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("cannot start prometheus");
        let p = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        let ready = format!("{}/-/ready", p.url);
        let log = p.log.clone();
        wait_for("prometheus to be ready", Duration::from_secs(30), || {
            let ready = ready.clone();
            let log = log.clone();
            async move {
                let ok = reqwest::get(&ready)
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if !ok && std::fs::read_to_string(&log).is_ok_and(|l| l.contains("level=error")) {
                    panic!(
                        "prometheus failed: {}",
                        std::fs::read_to_string(&log).unwrap()
                    );
                }
                ok.then_some(())
            }
        })
        .await;
        p
    }

    /// The vector result of an instant query.
    async fn query(&self, q: &str) -> Vec<Value> {
        let url =
            url::Url::parse_with_params(&format!("{}/api/v1/query", self.url), [("query", q)])
                .unwrap();
        let resp = reqwest::get(url).await.unwrap();
        let j: Value = resp.json().await.unwrap();
        assert_eq!(j["status"], "success", "{q}: {j}");
        j["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// Polls `q` until one series has `value`.
    async fn wait_value(&self, q: &str, value: &str) -> Value {
        let mut last = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let result = self.query(q).await;
            if let Some(s) = result.iter().find(|s| s["value"][1] == value) {
                return s.clone();
            }
            last = if result.is_empty() { last } else { result };
            if tokio::time::Instant::now() >= deadline {
                let targets = reqwest::get(format!("{}/api/v1/targets", self.url))
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                panic!("{q} never reached {value}; last {last:?}; targets {targets}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn stop(mut self) {
        // Our own child, by its PID.
        self.child.kill().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_metrics() {
    let Some(bin) = tool(
        "prometheus",
        "prometheus",
        "a_real_prometheus_scrapes_the_metrics",
    ) else {
        return;
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let d = Daemon::start().await;
    // The same store behind a token, scraped with Prometheus's bearer auth.
    let (guarded, task) = serve_with(
        d.store(),
        Access {
            token: ApiToken::new(API_TOKEN),
            public_page: false,
        },
    )
    .await;
    let open_target = d.api.trim_start_matches("http://");
    let guarded_target = guarded.trim_start_matches("http://");
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: sitewatch
    static_configs:
      - targets: ["{open_target}"]
  - job_name: sitewatch-token
    authorization:
      type: Bearer
      credentials: "{API_TOKEN}"
    static_configs:
      - targets: ["{guarded_target}"]
"#
    );
    let prom = Prometheus::start(&bin, dir.path(), &config).await;

    prom.wait_value(r#"up{job="sitewatch"}"#, "1").await;
    prom.wait_value(r#"up{job="sitewatch-token"}"#, "1").await;
    let s = prom
        .wait_value(r#"probe_success{site="down-site"}"#, "0")
        .await;
    assert_eq!(s["metric"]["url"], "tcp://127.0.0.1:9", "{s}");
    let keys: Vec<&String> = s["metric"].as_object().unwrap().keys().collect();
    assert!(
        !keys.iter().any(|k| k.starts_with("exported_")),
        "a label clashes with Prometheus's own: {keys:?}"
    );
    prom.wait_value(r#"probe_success{site="web-site"}"#, "1")
        .await;
    let s = prom
        .wait_value(
            r#"sitewatch_site_status{site="down-site",status="down"}"#,
            "1",
        )
        .await;
    assert_eq!(s["metric"]["cause"], "tcp.refused", "{s}");
    prom.wait_value(r#"probe_http_status_code{site="web-site"}"#, "200")
        .await;
    let phases = prom
        .query(r#"probe_http_duration_seconds{site="web-site",job="sitewatch"}"#)
        .await;
    let mut names: Vec<&str> = phases
        .iter()
        .filter_map(|s| s["metric"]["phase"].as_str())
        .collect();
    names.sort();
    assert_eq!(names, ["connect", "processing"], "{phases:?}");
    prom.wait_value(r#"sitewatch_build_info{version!=""}"#, "1")
        .await;
    prom.wait_value("sitewatch_config_last_reload_successful", "1")
        .await;
    let probes = prom.query("sitewatch_probes_total").await;
    assert!(!probes.is_empty());
    // Both channels fail (127.0.0.1:9 refuses): their failed deliveries count.
    for channel in ["chat", "hook"] {
        let q = format!(
            r#"sitewatch_alert_deliveries_total{{channel="{channel}",result="failed"}} > 0"#
        );
        wait_for(&q, Duration::from_secs(30), || {
            let q = q.clone();
            let prom = &prom;
            async move { (!prom.query(&q).await.is_empty()).then_some(()) }
        })
        .await;
    }
    let lag = prom
        .query(r#"sitewatch_scheduler_lag_seconds{job="sitewatch"}"#)
        .await;
    assert_eq!(lag.len(), 3, "{lag:?}");

    prom.stop().await;
    task.abort();
    d.stop().await;
}

/// The documented fields of each JSON answer (docs/http-api.md).
const SITE_FIELDS: &[&str] = &[
    "name",
    "url",
    "status",
    "cause",
    "cause_text",
    "since",
    "interval_s",
    "last_probe",
    "duration_ms",
    "probe_status",
    "probe_cause",
    "detail",
    "hint",
    "layers",
    "error",
    "last_change",
    "uptime",
    "http_status",
    "cert",
    "addr",
    "transitions",
];
const HEALTH_FIELDS: &[&str] = &[
    "status",
    "storage_error",
    "version",
    "started_at",
    "sites",
    "up",
    "degraded",
    "down",
    "unknown",
    "scheduler",
    "alerts",
    "config",
];
const INCIDENT_FIELDS: &[&str] = &[
    "id",
    "site",
    "started_at",
    "ended_at",
    "duration_s",
    "causes",
    "first_error",
    "last_error",
];

fn has_fields(j: &Value, fields: &[&str]) {
    for f in fields {
        assert!(j.get(f).is_some(), "no `{f}` in {j}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_path_answers_and_the_token_guards_the_api() {
    let d = Daemon::start().await;
    let (api, task) = serve_with(
        d.store(),
        Access {
            token: ApiToken::new(API_TOKEN),
            public_page: false,
        },
    )
    .await;
    let tok = Some(API_TOKEN);
    let guarded = [
        "/status",
        "/status/down-site",
        "/status/down-site/history",
        "/status/down-site/history?resolution=hour&from=2026-01-01T00:00:00Z",
        "/incidents",
        "/incidents?site=down-site&limit=1",
        "/healthz",
        "/metrics",
    ];
    for path in guarded {
        let a = get(&format!("{api}{path}"), None).await;
        assert_eq!(a.status, 401, "{path} without a token");
        assert!(
            a.json()["error"].as_str().unwrap().contains("Bearer"),
            "{path}"
        );
        assert_eq!(
            a.www_authenticate.as_deref(),
            Some("Bearer realm=\"sitewatch\""),
            "{path}"
        );
        let a = get(&format!("{api}{path}"), Some("wrong-token")).await;
        assert_eq!(a.status, 401, "{path} with a wrong token");
        let a = get(&format!("{api}{path}"), tok).await;
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        // And without a token configured, the daemon's own API answers.
        let a = get(&format!("{}{path}", d.api), None).await;
        assert_eq!(a.status, 200, "{path}: {}", a.body);
    }
    for path in [
        "/",
        "/badge/down-site/status.svg",
        "/badge/down-site/uptime.svg",
    ] {
        let a = get(&format!("{api}{path}"), None).await;
        assert_eq!(a.status, 200, "{path} is open: {}", a.body);
    }
    let a = get(&format!("{api}/"), None).await;
    assert!(
        a.content_type.starts_with("text/html"),
        "{}",
        a.content_type
    );

    // Every path docs/http-api.md documents answers (and the docs are not empty).
    let docs = include_str!("../docs/http-api.md");
    let documented: Vec<&str> = docs
        .lines()
        .filter_map(|l| l.strip_prefix("## `GET ")?.strip_suffix('`'))
        .collect();
    assert!(documented.len() >= 9, "{documented:?}");
    for path in &documented {
        let url = format!("{api}{}", path.replace("{name}", "down-site"));
        let a = get(&url, tok).await;
        assert_eq!(a.status, 200, "documented {path}: {}", a.body);
    }

    // The documented shapes.
    let j = get(&format!("{api}/status"), tok).await.json();
    assert!(
        j["generated_at"].is_string() && j["alerts"].is_object(),
        "{j}"
    );
    let sites = j["sites"].as_array().unwrap();
    assert_eq!(sites.len(), 2);
    for s in sites {
        has_fields(s, SITE_FIELDS);
    }
    let j = get(&format!("{api}/status/down-site"), tok).await.json();
    has_fields(&j, SITE_FIELDS);
    let j = get(&format!("{api}/healthz"), tok).await.json();
    has_fields(&j, HEALTH_FIELDS);
    has_fields(
        &j["scheduler"],
        &["probes", "probe_errors", "skipped", "in_flight", "lag_ms"],
    );
    has_fields(
        &j["config"],
        &[
            "path",
            "loaded_at",
            "last_reload_ok",
            "last_reload_at",
            "last_reload_error",
        ],
    );
    has_fields(&j["alerts"], &["pending", "channels"]);
    let raw = wait_for("raw history points", Duration::from_secs(10), || {
        let url = format!("{api}/status/down-site/history?resolution=raw");
        async move {
            let j = get(&url, Some(API_TOKEN)).await.json();
            (!j["points"].as_array().unwrap().is_empty()).then_some(j)
        }
    })
    .await;
    has_fields(&raw, &["site", "from", "to", "resolution", "points"]);
    has_fields(&raw["points"][0], &["at", "status", "cause", "ms"]);
    let incidents = wait_for("an incident", Duration::from_secs(10), || {
        let url = format!("{api}/incidents?site=down-site");
        async move {
            let j = get(&url, Some(API_TOKEN)).await.json();
            let first = j["incidents"][0].clone();
            (!first.is_null()).then_some(first)
        }
    })
    .await;
    has_fields(&incidents, INCIDENT_FIELDS);
    assert_eq!(incidents["site"], "down-site");
    assert!(incidents["ended_at"].is_null(), "{incidents}");
    let a = get(&format!("{api}/metrics"), tok).await;
    assert_eq!(
        a.content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(a.body.ends_with("# EOF\n"));

    // Every error is JSON with a message.
    for (path, code) in [
        ("/status/nope", 404),
        ("/status/nope/history", 404),
        ("/status/down-site/history?from=yesterday", 400),
        ("/status/down-site/history?to=2026-13-01T00:00:00Z", 400),
        ("/status/down-site/history?resolution=minute", 400),
        (
            "/status/down-site/history?from=2026-11-25T10:00:00Z&to=2026-11-25T09:00:00Z",
            400,
        ),
        ("/incidents?limit=0", 400),
        ("/incidents?limit=1001", 400),
        ("/incidents?site=nope", 404),
        ("/badge/nope/status.svg", 404),
        ("/no-such-path", 404),
    ] {
        let a = get(&format!("{api}{path}"), tok).await;
        assert_eq!(a.status, code, "{path}: {}", a.body);
        assert!(
            a.content_type.starts_with("application/json"),
            "{path}: {}",
            a.content_type
        );
        assert!(a.json()["error"].is_string(), "{path}: {}", a.body);
    }
    let a = get(&format!("{api}/status/nope"), tok).await;
    assert_eq!(a.json()["error"], "no site named \"nope\"");
    // An unknown path is 404, not 401, even without a token.
    assert_eq!(get(&format!("{api}/no-such-path"), None).await.status, 404);

    task.abort();
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_configured_secret_leaves_through_any_endpoint() {
    let d = Daemon::start().await;
    // Both channels have failed at least once (127.0.0.1:9 refuses), so
    // their last errors, which name the URLs, are on /healthz and /status.
    wait_for(
        "both channels to fail a delivery",
        Duration::from_secs(20),
        || {
            let url = format!("{}/healthz", d.api);
            async move {
                let (_, h) = get_json(&url).await;
                let ch = &h["alerts"]["channels"];
                (ch["hook"]["failed_attempts"].as_u64() >= Some(1)
                    && ch["chat"]["failed_attempts"].as_u64() >= Some(1))
                .then_some(())
            }
        },
    )
    .await;
    let (public, t1) = serve_with(
        d.store(),
        Access {
            token: None,
            public_page: true,
        },
    )
    .await;
    let (guarded, t2) = serve_with(
        d.store(),
        Access {
            token: ApiToken::new(API_TOKEN),
            public_page: false,
        },
    )
    .await;
    let paths = [
        "/",
        "/status",
        "/status/down-site",
        "/status/web-site",
        "/status/down-site/history",
        "/status/down-site/history?resolution=hour&from=2026-01-01T00:00:00Z",
        "/incidents",
        "/healthz",
        "/metrics",
        "/badge/down-site/status.svg",
        "/badge/down-site/uptime.svg",
        "/badge/web-site/status.svg",
        "/no-such-path",
    ];
    let mut checked = 0;
    for base in [&d.api, &public, &guarded] {
        for path in paths {
            for token in [None, Some(API_TOKEN)] {
                let a = get(&format!("{base}{path}"), token).await;
                for secret in [HOOK_SECRET, SLACK_TOKEN, API_TOKEN, "SECRET"] {
                    assert!(
                        !a.body.contains(secret),
                        "{secret} leaked by {base}{path}: {}",
                        a.body
                    );
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 3 * paths.len() * 2);
    // The channels' errors are there, scrubbed.
    let (_, h) = get_json(&format!("{}/healthz", d.api)).await;
    assert!(
        h["alerts"]["channels"]["chat"]["last_error"].is_string(),
        "{h}"
    );
    t1.abort();
    t2.abort();
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_removed_by_a_reload_leaves_the_metrics_page_and_badges() {
    let d = Daemon::start().await;
    let text = config_text(d.dir.path(), &d.web.url("/"), false);
    std::fs::write(&d.config, text).unwrap();
    let config = sitewatch::config::load(&d.config).unwrap();
    d.running.reload(&config).await.unwrap();
    let metrics = wait_for(
        "down-site to leave /metrics",
        Duration::from_secs(10),
        || {
            let url = format!("{}/metrics", d.api);
            async move {
                let body = get(&url, None).await.body;
                (!body.contains("down-site")).then_some(body)
            }
        },
    )
    .await;
    assert!(
        metrics.contains(r#"sitewatch_site_status{site="web-site",status="up",cause=""} 1"#),
        "{metrics}"
    );
    let page = get(&format!("{}/", d.api), None).await.body;
    assert!(page.contains("id=\"site-web-site\""), "{page}");
    assert!(!page.contains("down-site"), "{page}");
    let a = get(&format!("{}/badge/down-site/status.svg", d.api), None).await;
    assert_eq!(a.status, 404);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_reload_shows_in_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let web = TestHttp::start(200, "ok").await;
    let path = write_config(dir.path(), &config_text(dir.path(), &web.url("/"), false));
    let (child, api, _log) = common::daemon::spawn_daemon(&path).await;
    let metric = |value: &'static str| {
        let url = format!("{api}/metrics");
        move || {
            let url = url.clone();
            async move {
                let body = get(&url, None).await.body;
                body.lines()
                    .any(|l| l == format!("sitewatch_config_last_reload_successful {value}"))
                    .then_some(body)
            }
        }
    };
    wait_for("a successful load", Duration::from_secs(10), metric("1")).await;
    wait_status(&api, "web-site", "up", None, Duration::from_secs(10)).await;
    std::fs::write(&path, "[[site]]\nname = \"broken\"\n").unwrap();
    common::daemon::signal(&child, libc::SIGHUP);
    let body = wait_for("the failed reload", Duration::from_secs(10), metric("0")).await;
    // The old configuration keeps running.
    assert!(body.contains(r#"probe_success{site="web-site""#), "{body}");
    common::daemon::signal(&child, libc::SIGTERM);
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("the daemon stops within 20 s")
        .unwrap()
        .status;
    assert!(status.success(), "{status}");
}
