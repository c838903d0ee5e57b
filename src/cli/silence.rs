//! `sitewatch silence add|list|expire`: silences on the running daemon,
//! through its API (`/api/v1/silences`). The API's address and token come
//! from the sites file (`[daemon] listen`, `api_token_file`), or from
//! `--api` and `$SITEWATCH_API_TOKEN`.

use super::ConfigArg;
use super::log;
use crate::silence::Matcher;
use clap::{Args, Subcommand};
use std::time::{Duration, SystemTime};

/// Options of `sitewatch silence`.
#[derive(Args, Debug)]
pub struct SilenceArgs {
    /// What to do.
    #[command(subcommand)]
    pub what: SilenceCommand,
    /// The daemon's API (http://HOST:PORT) instead of the sites file's `listen`
    #[arg(long, global = true, env = "SITEWATCH_API", value_name = "URL")]
    pub api: Option<String>,
    /// The sites file, for the API's address and token [default: $CONFIGURATION_DIRECTORY/sites.toml, else /etc/sitewatch/sites.toml]
    #[arg(long, global = true, env = "SITEWATCH_CONFIG", value_name = "PATH")]
    pub config: Option<std::path::PathBuf>,
}

/// The silence subcommands.
#[derive(Subcommand, Debug)]
pub enum SilenceCommand {
    /// Mute the alerts that match every MATCHER (site=blog, tag=~"wp-.*", cause!=http.slow, heartbeat=backup)
    Add {
        /// label=value, label!=value, label=~regex or label!~regex; labels: site, tag, cause, heartbeat
        #[arg(required = true, value_name = "MATCHER")]
        matchers: Vec<String>,
        /// How long it lasts from now (e.g. 30m, 2h)
        #[arg(long = "for", value_name = "DURATION", conflicts_with = "until")]
        duration: Option<String>,
        /// When it ends (RFC 3339, e.g. 2026-12-01T06:00:00+01:00)
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// Why
        #[arg(long, short = 'c', default_value = "")]
        comment: String,
        /// Who makes it [default: $USER]
        #[arg(long)]
        author: Option<String>,
    },
    /// List the silences (active, pending and recently expired)
    List,
    /// End a silence now
    Expire {
        /// Its id
        id: String,
    },
}

/// Parses `site=blog`, `site!=blog`, `tag=~"wp-.*"`, `cause!~"http\..*"`.
pub fn parse_matcher(text: &str) -> Result<Matcher, String> {
    for (op, is_regex, is_equal) in [
        ("!~", true, false),
        ("=~", true, true),
        ("!=", false, false),
        ("=", false, true),
    ] {
        if let Some((name, value)) = text.split_once(op) {
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            let name = name.trim();
            if name.is_empty() {
                break;
            }
            return Ok(Matcher {
                name: name.to_string(),
                value: value.to_string(),
                is_regex,
                is_equal,
            });
        }
    }
    Err(format!(
        "\"{text}\" is not a matcher: write label=value, label!=value, label=~regex or label!~regex"
    ))
}

/// The API's base URL and token.
fn target(args: &SilenceArgs) -> Result<(String, Option<String>), String> {
    let token_env = std::env::var(crate::api::TOKEN_ENV)
        .ok()
        .filter(|t| !t.is_empty());
    if let Some(api) = &args.api {
        return Ok((api.trim_end_matches('/').to_string(), token_env));
    }
    let path = ConfigArg {
        config: args.config.clone(),
    }
    .path();
    let config = crate::config::load(&path).map_err(|e| e.to_string())?;
    let addr = super::reachable(config.daemon.listen);
    let token = match (&config.daemon.api_token_file, token_env) {
        (_, Some(t)) => Some(t),
        (Some(file), None) => Some(
            std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read api_token_file {}: {e}", file.display()))?
                .trim()
                .to_string(),
        ),
        (None, None) => None,
    };
    Ok((format!("http://{addr}"), token))
}

async fn call(
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let mut req = client.request(method, &url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("cannot reach the daemon at {url}: {}", e.without_url()))?;
    let status = resp.status();
    let json: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
    if status.is_success() {
        Ok(json)
    } else {
        Err(format!(
            "the daemon answered {status}: {}",
            json["error"].as_str().unwrap_or("no reason given")
        ))
    }
}

fn line(s: &serde_json::Value) -> String {
    let matchers: Vec<String> = s["matchers"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    let op = match (m["isRegex"].as_bool(), m["isEqual"].as_bool()) {
                        (Some(true), Some(false)) => "!~",
                        (Some(true), _) => "=~",
                        (_, Some(false)) => "!=",
                        _ => "=",
                    };
                    format!(
                        "{}{op}{}",
                        m["name"].as_str().unwrap_or(""),
                        m["value"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{}  {:<8} {} .. {}  {}  by {}: {}\n",
        s["id"].as_str().unwrap_or(""),
        s["status"]["state"].as_str().unwrap_or(""),
        s["startsAt"].as_str().unwrap_or(""),
        s["endsAt"].as_str().unwrap_or(""),
        matchers.join(" "),
        s["createdBy"].as_str().unwrap_or(""),
        s["comment"].as_str().unwrap_or("")
    )
}

async fn run_async(args: &SilenceArgs) -> Result<String, String> {
    let (api, token) = target(args)?;
    let token = token.as_deref();
    match &args.what {
        SilenceCommand::Add {
            matchers,
            duration,
            until,
            comment,
            author,
        } => {
            let matchers = matchers
                .iter()
                .map(|m| parse_matcher(m))
                .collect::<Result<Vec<_>, _>>()?;
            let now = SystemTime::now();
            let ends = match (duration, until) {
                (Some(d), _) => {
                    now + crate::config::parse_duration(d).map_err(|e| format!("--for: {e}"))?
                }
                (None, Some(t)) => chrono::DateTime::parse_from_rfc3339(t)
                    .map(SystemTime::from)
                    .map_err(|_| {
                        format!("--until \"{t}\" is not an RFC 3339 time with its offset")
                    })?,
                (None, None) => now + Duration::from_secs(3600),
            };
            let author = author
                .clone()
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "sitewatch silence".to_string());
            let body = serde_json::json!({
                "matchers": matchers,
                "startsAt": crate::timefmt::rfc3339(now),
                "endsAt": crate::timefmt::rfc3339(ends),
                "createdBy": author,
                "comment": comment,
            });
            let answer = call(
                reqwest::Method::POST,
                format!("{api}/api/v1/silences"),
                token,
                Some(body),
            )
            .await?;
            Ok(format!("{}\n", answer["silenceID"].as_str().unwrap_or("")))
        }
        SilenceCommand::List => {
            let all = call(
                reqwest::Method::GET,
                format!("{api}/api/v1/silences"),
                token,
                None,
            )
            .await?;
            Ok(all
                .as_array()
                .map(|a| a.iter().map(line).collect())
                .unwrap_or_default())
        }
        SilenceCommand::Expire { id } => {
            let s = call(
                reqwest::Method::DELETE,
                format!("{api}/api/v1/silence/{id}"),
                token,
                None,
            )
            .await?;
            Ok(line(&s))
        }
    }
}

/// `sitewatch silence`: 0 done, 1 refused or unreachable, 3 an internal error.
pub fn run(args: &SilenceArgs) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            log::error(&format!(
                "sitewatch silence: cannot start the async runtime: {e}"
            ));
            return super::check::EXIT_UNKNOWN;
        }
    };
    match runtime.block_on(run_async(args)) {
        Ok(text) => super::print_or_unknown("silence", &text).unwrap_or(0),
        Err(e) => {
            log::error(&format!("sitewatch silence: {e}"));
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_read_like_alertmanagers() {
        let m = parse_matcher("site=blog").unwrap();
        assert_eq!(
            (m.name.as_str(), m.value.as_str(), m.is_regex, m.is_equal),
            ("site", "blog", false, true)
        );
        let m = parse_matcher("tag=~\"wp-.*\"").unwrap();
        assert_eq!(
            (m.value.as_str(), m.is_regex, m.is_equal),
            ("wp-.*", true, true)
        );
        let m = parse_matcher("cause!=http.slow").unwrap();
        assert_eq!((m.is_regex, m.is_equal), (false, false));
        let m = parse_matcher("site!~a.*").unwrap();
        assert_eq!((m.is_regex, m.is_equal), (true, false));
        assert!(parse_matcher("blog").is_err());
        assert!(parse_matcher("=blog").is_err());
    }
}
