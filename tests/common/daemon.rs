//! Helpers to run the daemon in-process or as a child process, and to poll
//! its API until a condition holds (bounded in time, never a blind sleep).
#![allow(dead_code)]

use serde_json::Value;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Writes `text` as sites.toml in `dir`.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("sites.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// GETs `url` and parses JSON; returns the status code too.
pub async fn get_json(url: &str) -> (u16, Value) {
    let resp = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `limit`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `/status/{site}` until its `status` (and `cause`, if given) match.
pub async fn wait_status(
    api: &str,
    site: &str,
    status: &str,
    cause: Option<&str>,
    limit: Duration,
) -> Value {
    let url = format!("{api}/status/{site}");
    wait_for(&format!("{site} to be {status} {cause:?}"), limit, || {
        let url = url.clone();
        async move {
            let (_, j) = get_json(&url).await;
            (j["status"] == status && j["cause"].as_str() == cause).then_some(j)
        }
    })
    .await
}
