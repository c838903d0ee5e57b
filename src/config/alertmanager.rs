//! An Alertmanager channel's keys (`type = "alertmanager"`), and the base
//! URLs every HTTP service takes.

use super::context::{Cx, duration_in, list_len, secret, text_len};
use super::defaults;
use super::diagnostic::quote;
use super::model::{AlertmanagerSpec, RESERVED_LABELS, is_label_name};
use super::raw_channel::{RawChannel, Strings, require};
use std::collections::BTreeMap;
use toml::Spanned;

/// Checks the keys of an Alertmanager channel.
pub(super) fn alertmanager(
    cx: &mut Cx<'_>,
    raw: &RawChannel,
    at: &std::ops::Range<usize>,
    ca_file: Option<std::path::PathBuf>,
) -> AlertmanagerSpec {
    let mut urls: Vec<String> = Vec::new();
    match require(cx, &raw.urls, "urls", "alertmanager", at) {
        Some(list) if list.get_ref().is_empty() => cx.error(
            list.span(),
            "`urls` must list at least one Alertmanager instance",
        ),
        Some(list) if !list_len(cx, "urls", "URLs", list, defaults::MAX_ALERTMANAGER_URLS) => {}
        Some(list) => {
            for u in list.get_ref() {
                if let Some(base) = base_url(cx, "urls", u, "this entry of `urls`") {
                    if urls.contains(&base) {
                        // The URL may carry a path someone wants private:
                        // no message quotes it.
                        cx.error(u.span(), "`urls` lists this Alertmanager twice");
                    } else {
                        urls.push(base);
                    }
                }
            }
        }
        None => {}
    }
    let resend_interval = match &raw.resend_interval {
        None => defaults::RESEND_INTERVAL,
        Some(v) => duration_in(
            cx,
            "resend_interval",
            v,
            defaults::MIN_RESEND_INTERVAL,
            defaults::MAX_RESEND_INTERVAL,
        )
        .unwrap_or(defaults::RESEND_INTERVAL),
    };
    let bearer_token = secret(
        cx,
        "bearer_token",
        defaults::MAX_SECRET_BYTES,
        [
            &raw.bearer_token,
            &raw.bearer_token_file,
            &raw.bearer_token_env,
            &raw.bearer_token_credential,
        ],
    );
    let labels = raw
        .labels
        .as_ref()
        .map_or_else(BTreeMap::new, |t| labels(cx, t));
    AlertmanagerSpec {
        urls,
        resend_interval,
        ca_file,
        bearer_token,
        labels,
    }
}

/// A base URL (an entry of `urls`, a service's `url`) without a trailing `/`, or `None`
/// after recording why it is not one.
pub(super) fn base_url(
    cx: &mut Cx<'_>,
    key: &str,
    u: &Spanned<String>,
    what: &str,
) -> Option<String> {
    if !text_len(cx, key, u, defaults::MAX_URL_BYTES) {
        return None;
    }
    let problem = match url::Url::parse(u.get_ref()) {
        Err(_) => Some("is not a URL"),
        Ok(p) if !matches!(p.scheme(), "http" | "https") => {
            Some("is not an http:// or https:// URL")
        }
        Ok(p) if p.host_str().is_none_or(str::is_empty) => Some("has no host"),
        Ok(p) if !p.username().is_empty() || p.password().is_some() => Some(if key == "urls" {
            "carries user:password@: give a token with `bearer_token_file` (or `bearer_token_env`, `bearer_token_credential`)"
        } else {
            "carries user:password@: give the token with the channel's `token_file` (or `token_env`, `token_credential`)"
        }),
        Ok(p) if p.query().is_some() || p.fragment().is_some() => {
            Some("has a ?query or #fragment: give the base URL, like \"http://am1:9093\"")
        }
        Ok(_) => None,
    };
    match problem {
        Some(problem) => {
            cx.error(u.span(), format!("{what} {problem}"));
            None
        }
        None => Some(u.get_ref().trim_end_matches('/').to_string()),
    }
}

/// The static labels: at most [`defaults::MAX_LABELS`], each a valid and
/// unreserved name with a non-empty value of bounded length.
fn labels(cx: &mut Cx<'_>, table: &Spanned<Strings>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let count = table.get_ref().len();
    if count > defaults::MAX_LABELS {
        cx.error(
            table.span(),
            format!(
                "`labels` lists {count} labels, above the maximum of {}",
                defaults::MAX_LABELS
            ),
        );
        return out;
    }
    for (name, value) in table.get_ref() {
        let problem = if name.len() > defaults::MAX_LABEL_NAME_BYTES {
            Some(format!(
                "the label name \"{}\" is {} bytes long, above the maximum of {}",
                quote(name),
                name.len(),
                defaults::MAX_LABEL_NAME_BYTES
            ))
        } else if !is_label_name(name) {
            Some(format!(
                "the label name \"{}\" must be a letter or '_', then letters, digits or '_'",
                quote(name)
            ))
        } else if name.starts_with("__") {
            Some(format!(
                "the label name \"{}\" starts with \"__\", which Prometheus reserves",
                quote(name)
            ))
        } else if RESERVED_LABELS.contains(&name.as_str()) {
            let (last, rest) = RESERVED_LABELS.split_last().unwrap_or((&"", &[]));
            Some(format!(
                "`labels` cannot set \"{name}\": sitewatch sets {} and {last} itself",
                rest.join(", ")
            ))
        } else {
            None
        };
        if let Some(msg) = problem {
            cx.error(table.span(), msg);
            continue;
        }
        let v = value.get_ref();
        if v.is_empty() {
            cx.error(
                value.span(),
                format!(
                    "the label \"{name}\" has an empty value, which Alertmanager reads as no label"
                ),
            );
        } else if v.len() > defaults::MAX_LABEL_VALUE_BYTES {
            cx.error(
                value.span(),
                format!(
                    "the value of label \"{name}\" is {} bytes long, above the maximum of {} (allowed: 1 to {} bytes)",
                    v.len(),
                    defaults::MAX_LABEL_VALUE_BYTES,
                    defaults::MAX_LABEL_VALUE_BYTES
                ),
            );
        } else {
            out.insert(name.clone(), v.clone());
        }
    }
    out
}
