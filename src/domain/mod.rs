//! Domains as registries see them: the registrable domain of a host name
//! (public-suffix aware), for telling an offsite redirect from one within
//! the site, and for asking the registry when the registration expires.
//!
//! Pure but for what [`rdap`] asks over the network.
pub mod rdap;
pub mod watch;

/// The registrable domain of `host` ("eTLD+1": `blog.example.co.uk` →
/// `example.co.uk`), lowercased and without a trailing dot; `None` for an
/// address literal, a bare public suffix or a name that is not valid.
pub fn registrable(host: &str) -> Option<String> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() || host.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    let domain = psl::domain(host.as_bytes())?;
    std::str::from_utf8(domain.as_bytes())
        .ok()
        .map(str::to_string)
}

/// Whether the public suffix of `host` is one the Public Suffix List knows
/// (`com`, `co.uk`): names under reserved or private-use suffixes (`.test`,
/// `.internal`, `.lan`) have no registry to ask.
pub fn has_known_suffix(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    psl::suffix(host.as_bytes()).is_some_and(|s| s.is_known())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrable_domains_follow_the_public_suffix_list() {
        let table = [
            ("www.example.com", Some("example.com")),
            ("Blog.Example.CO.UK.", Some("example.co.uk")),
            ("example.com", Some("example.com")),
            ("a.b.lab.test", Some("lab.test")),
            ("user.github.io", Some("user.github.io")),
            ("com", None),
            ("127.0.0.1", None),
            ("::1", None),
            ("", None),
        ];
        for (host, want) in table {
            assert_eq!(registrable(host).as_deref(), want, "{host}");
        }
    }

    #[test]
    fn only_listed_suffixes_have_a_registry() {
        assert!(has_known_suffix("www.example.com"));
        assert!(has_known_suffix("shop.example.co.uk"));
        assert!(!has_known_suffix("www.lab.test"));
        assert!(!has_known_suffix("nas.lan"));
    }
}
