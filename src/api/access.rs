//! Who may see what: the bearer token that guards the JSON API and
//! `/metrics`, and public mode for the page and badges. Reads the
//! environment once, at start; knows nothing of the routes it guards.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use std::fmt;
use std::sync::Arc;

/// A bearer token for the API, compared in constant time and never
/// printed (its `Debug` shows `***`).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl ApiToken {
    /// A token; surrounding whitespace (a trailing newline from a file) is
    /// dropped, and an empty token is none.
    pub fn new(token: &str) -> Option<ApiToken> {
        let t = token.trim();
        (!t.is_empty()).then(|| ApiToken(t.to_string()))
    }

    /// Whether `presented` is this token. Compares SHA-256 digests byte by
    /// byte without stopping early, so the time taken tells nothing about
    /// the token's content or length.
    pub(crate) fn matches(&self, presented: &str) -> bool {
        use ring::digest::{SHA256, digest};
        let (a, b) = (
            digest(&SHA256, self.0.as_bytes()),
            digest(&SHA256, presented.as_bytes()),
        );
        a.as_ref()
            .iter()
            .zip(b.as_ref())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(***)")
    }
}

/// Who may see what.
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// When set, the JSON API and `/metrics` answer `401` unless the request
    /// carries `Authorization: Bearer <token>`. The page and badges stay open.
    pub token: Option<ApiToken>,
    /// Public mode: the page and badges show no targets (URLs), addresses
    /// or details (hints, probe facts, error texts), only names, statuses,
    /// causes in words, graphs and times.
    pub public_page: bool,
}

/// The environment variable holding the API token.
pub const TOKEN_ENV: &str = "SITEWATCH_API_TOKEN";
/// The environment variable that turns public mode on (`1`, `true` or `yes`).
pub const PUBLIC_ENV: &str = "SITEWATCH_PUBLIC_PAGE";

impl Access {
    /// Access as the environment sets it: [`TOKEN_ENV`] and [`PUBLIC_ENV`].
    pub fn from_env() -> Access {
        let token = std::env::var(TOKEN_ENV)
            .ok()
            .and_then(|t| ApiToken::new(&t));
        let public_page = std::env::var(PUBLIC_ENV)
            .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
            .unwrap_or(false);
        Access { token, public_page }
    }
}

/// Answers `401` unless the request carries the bearer token (when one is set).
pub(super) async fn require_token(
    State(access): State<Arc<Access>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = &access.token else {
        return next.run(request).await;
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
    if presented.is_some_and(|p| token.matches(p)) {
        return next.run(request).await;
    }
    let mut response = super::routes::error(
        StatusCode::UNAUTHORIZED,
        "this endpoint needs `Authorization: Bearer <token>` (see docs/http-api.md, \"Access\")"
            .to_string(),
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"sitewatch\""),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_exactly_and_never_print() {
        let token = ApiToken::new(" s3cret\n").unwrap();
        assert!(token.matches("s3cret"));
        for wrong in ["s3cre", "s3cret2", "S3CRET", ""] {
            assert!(!token.matches(wrong), "{wrong}");
        }
        assert!(ApiToken::new(" \n").is_none());
        let access = Access {
            token: Some(token),
            public_page: false,
        };
        assert!(!format!("{access:?}").contains("s3cret"), "{access:?}");
    }
}
