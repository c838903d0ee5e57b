//! A configuration at scale: a generated sites.toml with 100,000 sites
//! loads whole, and a mistake at its far end is reported at the right
//! place. Behaviour only: how long it takes is measured by
//! benches/config_scale.rs, not here.

#[path = "common/sites_gen.rs"]
mod sites_gen;

use sitewatch::config;
use std::collections::HashSet;
use std::path::Path;

/// The size the tests load. A debug build checks it in a few seconds.
const SITES: usize = 100_000;

/// The 1-based line of the first line of `text` that is exactly `line`,
/// searching from byte `from`.
fn line_of(text: &str, line: &str, from: usize) -> usize {
    let at = from
        + text[from..]
            .find(&format!("\n{line}\n"))
            .expect("the line is in the text")
        + 1;
    text[..at].matches('\n').count() + 1
}

#[test]
fn a_hundred_thousand_sites_load_whole_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sites.toml");
    // One maintenance window per 100 sites, each listing its sites.
    let text = sites_gen::sites_toml_with_windows(SITES, 9, "", SITES / 100);
    std::fs::write(&path, &text).unwrap();
    let c = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.sites.len(), SITES);
    for (i, site) in c.sites.iter().enumerate() {
        assert_eq!(site.name, sites_gen::site_name(i + 1, SITES));
    }
    let names: HashSet<&str> = c.sites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names.len(), SITES, "names are unique");
    // Every third site is tcp://, the others http:// and https://, all on
    // loopback; each site has the tags of its own or of [defaults].
    let last = &c.sites[SITES - 1];
    assert_eq!(last.target.url, format!("http://127.0.0.1:9/path-{SITES}"));
    assert!(c.sites.iter().all(|s| !s.tags.is_empty()));
    assert_eq!(c.maintenance.len(), SITES / 100);
    let w = &c.maintenance[SITES / 100 - 1];
    assert_eq!(w.sites.len(), 100);
    assert_eq!(w.sites.last(), Some(&sites_gen::site_name(SITES, SITES)));
}

#[test]
fn mistakes_at_the_far_end_are_reported_on_their_lines() {
    let first = sites_gen::site_name(1, SITES);
    let before_last = sites_gen::site_name(SITES - 1, SITES);
    let last = sites_gen::site_name(SITES, SITES);
    let mut text = sites_gen::sites_toml(SITES, 9, "");
    let first_line = line_of(&text, &format!("name = \"{first}\""), 0);
    let last_at = text.find(&format!("name = \"{last}\"")).unwrap();
    let last_line = line_of(&text, &format!("name = \"{last}\""), last_at - 1);
    assert!(last_line > 400_000, "{last_line}");
    // The last site takes the first one's name.
    text = text.replace(
        &format!("name = \"{last}\""),
        &format!("name = \"{first}\""),
    );
    // A window after every site names one near the end, and what is not there.
    let window_line = text.matches('\n').count() + 1;
    text.push_str(&format!(
        "\n[[maintenance]]\nid = \"far\"\nsites = [\"{before_last}\", \"no-such-site\"]\ntags = [\"group-49\", \"no-such-tag\"]\nstart = \"2026-12-01T02:00:00Z\"\nend = \"2026-12-01T03:00:00Z\"\n"
    ));
    let errors = config::parse(Path::new("sites.toml"), &text).expect_err("mistakes");
    let shown: Vec<String> = errors.iter().map(|d| d.to_string()).collect();
    let sites_col = "sites = [\"\", ".len() + before_last.len() + 1;
    let tags_col = "tags = [\"group-49\", ".len() + 1;
    assert_eq!(
        shown,
        [
            format!(
                "sites.toml:{last_line}:8: duplicate site name \"{first}\" (first defined on line {first_line}): names must be unique among sites and heartbeats"
            ),
            format!(
                "sites.toml:{}:{sites_col}: `sites` names \"no-such-site\", which is not a [[site]] in this file",
                window_line + 3
            ),
            format!(
                "sites.toml:{}:{tags_col}: no site or heartbeat has the tag \"no-such-tag\": add it to their `tags`, or fix the spelling",
                window_line + 4
            ),
        ]
    );
    assert_eq!(errors[0].source_line, format!("name = \"{first}\""));
}
