//! How an http:// or https:// site makes its request: `method`, `headers`,
//! `max_redirects` and `app_errors`, checked into [`HttpOptions`].

use super::context::{Cx, int_in};
use super::defaults;
use super::diagnostic::quote;
use super::options::{HttpOptions, Method};

use std::collections::BTreeMap;
use toml::Spanned;

/// The `headers` table as read.
pub(super) type Headers = BTreeMap<String, Spanned<String>>;

/// A site's request keys, each its own or inherited from `[defaults]`.
pub(super) struct Keys<'a> {
    pub(super) method: Option<&'a Spanned<String>>,
    pub(super) headers: Option<&'a Spanned<Headers>>,
    pub(super) max_redirects: Option<&'a Spanned<i64>>,
    pub(super) app_errors: Option<&'a Spanned<bool>>,
    /// The site's own `expect_body` or `forbid_body`, which HEAD cannot check.
    pub(super) body_check: Option<&'a Spanned<String>>,
}

/// The request options of a site.
pub(super) fn options(cx: &mut Cx<'_>, keys: &Keys<'_>) -> HttpOptions {
    let method = match keys.method {
        None => Method::Get,
        Some(m) => match m.get_ref().to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            other => {
                cx.error(
                    m.span(),
                    format!(
                        "`method` must be \"GET\" or \"HEAD\", not \"{}\"",
                        quote(other)
                    ),
                );
                Method::Get
            }
        },
    };
    if method == Method::Head
        && let Some(b) = keys.body_check
    {
        cx.error(
            b.span(),
            "body checks need the body: use method = \"GET\" with `expect_body` or `forbid_body`",
        );
    }
    let max_redirects = keys
        .max_redirects
        .and_then(|v| {
            int_in(
                cx,
                "max_redirects",
                v,
                0,
                defaults::MAX_REDIRECTS_LIMIT.into(),
            )
        })
        .unwrap_or(defaults::MAX_REDIRECTS);
    HttpOptions {
        method,
        headers: keys.headers.map_or_else(Vec::new, |t| headers(cx, t)),
        max_redirects,
        app_errors: keys.app_errors.is_none_or(|v| *v.get_ref()),
        allow_redirects_to: Vec::new(),
    }
}

/// The extra request headers: at most [`defaults::MAX_HEADERS`], each a
/// valid name and value of bounded length, never Host.
fn headers(
    cx: &mut Cx<'_>,
    table: &Spanned<Headers>,
) -> Vec<(http::HeaderName, http::HeaderValue)> {
    let mut out = Vec::new();
    let count = table.get_ref().len();
    if count > defaults::MAX_HEADERS {
        cx.error(
            table.span(),
            format!(
                "`headers` lists {count} headers, above the maximum of {}",
                defaults::MAX_HEADERS
            ),
        );
        return out;
    }
    for (name, value) in table.get_ref() {
        if name.len() > defaults::MAX_HEADER_NAME_BYTES {
            cx.error(
                table.span(),
                format!(
                    "the header name \"{}\" is {} bytes long, above the maximum of {} (allowed: 1 to {} bytes)",
                    quote(name),
                    name.len(),
                    defaults::MAX_HEADER_NAME_BYTES,
                    defaults::MAX_HEADER_NAME_BYTES
                ),
            );
            continue;
        }
        if value.get_ref().len() > defaults::MAX_HEADER_VALUE_BYTES {
            cx.error(
                value.span(),
                format!(
                    "the value of header \"{}\" is {} bytes long, above the maximum of {} (allowed: 0 to {} bytes)",
                    quote(name),
                    value.get_ref().len(),
                    defaults::MAX_HEADER_VALUE_BYTES,
                    defaults::MAX_HEADER_VALUE_BYTES
                ),
            );
            continue;
        }
        let parsed_name = http::HeaderName::from_bytes(name.as_bytes());
        let parsed_value = http::HeaderValue::from_str(value.get_ref());
        match (parsed_name, parsed_value) {
            (Ok(n), Ok(v)) if n != http::header::HOST => out.push((n, v)),
            (Ok(_), Ok(_)) => cx.error(
                value.span(),
                "`headers` cannot set Host: it comes from the url",
            ),
            (Err(_), _) => cx.error(
                table.span(),
                format!(
                    "\"{}\" in `headers` is not a valid header name",
                    quote(name)
                ),
            ),
            (_, Err(_)) => cx.error(
                value.span(),
                format!(
                    "the value of header \"{}\" holds characters a header cannot carry",
                    quote(name)
                ),
            ),
        }
    }
    out
}
