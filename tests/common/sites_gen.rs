//! A generated sites.toml with any number of sites, for tests and
//! benchmarks at scale (tests/config_scale.rs, benches/config_scale.rs).
//!
//! Every target is on loopback (127.0.0.1): `http://`, `https://` and
//! `tcp://` in turn, all on one port, so a daemon started on the file only
//! ever sends traffic to this machine. The file also has a `[defaults]`
//! table, tags on most sites, one webhook channel (`[alert.x]`, to
//! 127.0.0.1:9, the discard port) that some sites name in `notify`, and one
//! `[[maintenance]]` window that lists sites by name and by tag, so that the
//! cross-checks between tables run too.

use std::fmt::Write as _;

/// The name of the `i`-th site (1-based) of a file of `n` sites:
/// `site-00001`, zero-padded to at least five digits and to the width of `n`.
pub fn site_name(i: usize, n: usize) -> String {
    let width = n.to_string().len().max(5);
    format!("site-{i:0width$}")
}

/// The text of a sites.toml with `n` sites whose targets use `port` on
/// 127.0.0.1 and one maintenance window. `daemon` is put as it is inside
/// the `[daemon]` table (e.g. `listen` and `state_dir`).
pub fn sites_toml(n: usize, port: u16, daemon: &str) -> String {
    sites_toml_with_windows(n, port, daemon, 1)
}

/// [`sites_toml`] with `windows` maintenance windows (at least one): the
/// sites are shared out among them in turn, each window listing at most
/// the 1000 names a window may list, and one tag.
pub fn sites_toml_with_windows(n: usize, port: u16, daemon: &str, windows: usize) -> String {
    let mut out = String::with_capacity(n * 110 + 4096);
    let _ = write!(
        out,
        r#"# Generated: {n} sites, every target on 127.0.0.1.
version = 1

[daemon]
{daemon}

[defaults]
interval = "60s"
timeout = "5s"
confirm_down = 3
tags = ["generated"]

[alert.x]
type = "webhook"
url = "http://127.0.0.1:9/hook"

"#
    );
    for i in 1..=n {
        let name = site_name(i, n);
        let url = match i % 3 {
            0 => format!("tcp://127.0.0.1:{port}"),
            1 => format!("http://127.0.0.1:{port}/path-{i}"),
            _ => format!("https://127.0.0.1:{port}/path-{i}"),
        };
        let _ = write!(out, "[[site]]\nname = \"{name}\"\nurl = \"{url}\"\n");
        if i % 4 != 0 {
            let _ = writeln!(out, "tags = [\"group-{}\", \"generated\"]", i % 50);
        }
        if i % 10 == 0 {
            out.push_str("notify = [\"x\"]\n");
        }
        out.push('\n');
    }
    let windows = windows.max(1);
    for w in 0..windows {
        // Window w lists sites w+1, w+1+windows, w+1+2*windows, ...
        let listed: Vec<String> = (w + 1..=n)
            .step_by(windows)
            .take(1000)
            .map(|i| format!("\"{}\"", site_name(i, n)))
            .collect();
        // With 100 sites or more every group-K tag is on some site.
        let tag = if n >= 100 {
            format!("group-{}", w % 50)
        } else {
            "generated".to_string()
        };
        let _ = write!(
            out,
            r#"[[maintenance]]
id = "generated-window-{w}"
sites = [{}]
tags = ["{tag}"]
schedule = "0 3 * * SUN"
duration = "1h"

"#,
            listed.join(", ")
        );
    }
    out
}
