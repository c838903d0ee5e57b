//! Plain validated types that the model and the checks of their keys
//! share: how the HTTP layer makes its request ([`HttpOptions`]), and what
//! an exec channel runs ([`ExecSpec`]).

/// How the HTTP layer makes its request.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpOptions {
    /// GET (default) or HEAD.
    pub method: Method,
    /// Extra request headers, in file order.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// Redirects followed (each hop probed layer by layer); 0 = judge the 3xx itself.
    pub max_redirects: u32,
    /// Whether a success page that is really an application error is down (`http.app_error`).
    pub app_errors: bool,
    /// Hosts a redirect may end on although they are on another registrable
    /// domain than the site's (`allow_redirects_to`): a name as written, or
    /// `*.domain` for every name under it. Lowercase.
    pub allow_redirects_to: Vec<String>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            method: Method::Get,
            headers: Vec::new(),
            max_redirects: super::defaults::MAX_REDIRECTS,
            app_errors: true,
            allow_redirects_to: Vec::new(),
        }
    }
}

/// The request method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Fetch the page.
    Get,
    /// Fetch the head only (no body checks possible).
    Head,
}

/// An `exec` channel.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecSpec {
    /// The program (an absolute path, or a name looked up in `PATH`) and
    /// its arguments.
    pub command: Vec<String>,
    /// Killed (with everything it started) after this long.
    pub timeout: std::time::Duration,
}
