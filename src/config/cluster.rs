//! The `[cluster]` table: raw form and validation into [`Cluster`].
//!
//! Today it names this instance (`vantage`); peers will join it later.
//! Builds on [`super::context`] only. The one thing read from outside the
//! file is the host's name, the default vantage.

use super::context::Cx;
use super::defaults;
use super::diagnostic::quote;
use super::model::Cluster;
use toml::Spanned;

/// The `[cluster]` table before validation.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    vantage: Option<Spanned<String>>,
}

/// Checks `[cluster]` and fills in its defaults.
pub(super) fn validate(cx: &mut Cx<'_>, raw: Option<RawCluster>) -> Cluster {
    let vantage = match raw.and_then(|r| r.vantage) {
        None => host_vantage(),
        Some(v) => {
            if let Err(msg) = check_vantage(v.get_ref()) {
                cx.error(v.span(), msg);
            }
            v.into_inner()
        }
    };
    Cluster { vantage }
}

fn vantage_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Checks a vantage name: `[a-zA-Z0-9_.-]`, 1 to
/// [`defaults::MAX_VANTAGE_CHARS`] characters.
fn check_vantage(name: &str) -> Result<(), String> {
    if !name.is_empty()
        && name.chars().count() <= defaults::MAX_VANTAGE_CHARS
        && name.chars().all(vantage_char)
    {
        Ok(())
    } else {
        Err(format!(
            "`vantage` \"{}\" must be 1 to {} letters, digits, '_', '.' or '-'",
            quote(name),
            defaults::MAX_VANTAGE_CHARS
        ))
    }
}

/// The host's name (gethostname(2)) as a vantage: other characters become
/// `_`, it is cut to [`defaults::MAX_VANTAGE_CHARS`], and a host without a
/// name is `sitewatch`.
pub(super) fn host_vantage() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname(2) writes at most `buf.len()` bytes into `buf`,
    // which outlives the call.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let len = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name: String = if rc == 0 {
        String::from_utf8_lossy(&buf[..len])
            .chars()
            .map(|c| if vantage_char(c) { c } else { '_' })
            .take(defaults::MAX_VANTAGE_CHARS)
            .collect()
    } else {
        String::new()
    };
    if name.is_empty() {
        "sitewatch".to_string()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_vantage_is_the_host_name() {
        let v = host_vantage();
        assert!(check_vantage(&v).is_ok(), "{v}");
        if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
            let h = h.trim();
            if !h.is_empty() && h.chars().all(vantage_char) && h.len() <= 64 {
                assert_eq!(v, h);
            }
        }
    }

    #[test]
    fn vantage_names_are_checked() {
        assert!(check_vantage("fra1").is_ok());
        assert!(check_vantage("eu-west_2.b").is_ok());
        assert!(check_vantage(&"v".repeat(64)).is_ok());
        assert!(check_vantage(&"v".repeat(65)).is_err());
        assert!(check_vantage("").is_err());
        assert!(check_vantage("fra 1").is_err());
        assert!(check_vantage("frä").is_err());
    }
}
