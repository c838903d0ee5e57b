//! `/status` for a fleet: a configuration of many sites starts, answers
//! `?status=down` with exactly the sites that are down, filters by tag and
//! text, and pages through every site exactly once. Every target is on
//! loopback: one site in ten is a closed port (down at its first probe),
//! the rest a port that accepts, probed once a day (unknown until then,
//! up after).

mod common;

use common::daemon::{get_json, wait_for, write_config};
use std::collections::BTreeSet;
use std::fmt::Write;
use std::time::Duration;
use tokio::net::TcpListener;

/// Sites in the fleet.
const SITES: usize = 100_000;

fn fleet(state: &std::path::Path, open: std::net::SocketAddr) -> String {
    let mut text = format!(
        "[daemon]\nstate_dir = \"{}\"\n\n[defaults]\ninterval = \"24h\"\ntimeout = \"1s\"\nconfirm_down = 1\n",
        state.display()
    );
    for i in 0..SITES {
        let refused = i % 10 == 0;
        let _ = write!(
            text,
            "\n[[site]]\nname = \"site-{i:06}\"\nurl = \"tcp://{}\"\ntags = [\"{}\"]\n{}",
            if refused {
                "127.0.0.1:1".to_string()
            } else {
                open.to_string()
            },
            if refused { "refused" } else { "quiet" },
            if refused { "interval = \"2s\"\n" } else { "" }
        );
    }
    text
}

#[tokio::test]
async fn a_fleet_filters_and_pages_every_site_once() {
    // Accepts and closes: the quiet sites that happen to be probed are up.
    let open = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open_addr = open.local_addr().unwrap();
    let acceptor = tokio::spawn(async move {
        while let Ok((s, _)) = open.accept().await {
            drop(s);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &fleet(&dir.path().join("state"), open_addr));
    let config = sitewatch::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.sites.len(), SITES);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = sitewatch::app::start(&config, listener).unwrap();
    let api = format!("http://{}", running.addr);

    // Down: exactly the refused tenth, once each has been probed.
    let want: BTreeSet<String> = (0..SITES)
        .filter(|i| i % 10 == 0)
        .map(|i| format!("site-{i:06}"))
        .collect();
    let down = wait_for("every refused site down", Duration::from_secs(60), || {
        let url = format!("{api}/status?status=down&limit=10000");
        let want = want.len();
        async move {
            let (code, j) = get_json(&url).await;
            assert_eq!(code, 200, "{j}");
            (j["total"].as_u64() == Some(want as u64)).then_some(j)
        }
    })
    .await;
    let names: BTreeSet<String> = down["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, want);
    assert!(down["next_cursor"].is_null(), "one page holds them all");
    assert!(
        down["sites"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["cause"] == "tcp.refused")
    );

    // By tag and by text.
    let (_, j) = get_json(&format!("{api}/status?tag=refused&limit=1")).await;
    assert_eq!(
        j["total"].as_u64(),
        Some(want.len() as u64),
        "{}",
        j["total"]
    );
    assert_eq!(j["sites"].as_array().unwrap().len(), 1);
    let (_, j) = get_json(&format!("{api}/status?q=SITE-00004")).await;
    let found: Vec<&str> = j["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(found.len(), 10, "site-000040 … site-000049: {found:?}");
    assert!(found.iter().all(|n| n.starts_with("site-00004")));
    let (_, j) = get_json(&format!("{api}/status?tag=quiet,other&limit=5")).await;
    assert_eq!(j["total"].as_u64(), Some((SITES - want.len()) as u64));
    let (_, j) = get_json(&format!("{api}/status?status=down&tag=quiet")).await;
    assert_eq!(j["total"].as_u64(), Some(0), "{j}");

    // The default page stays small.
    let (_, j) = get_json(&format!("{api}/status")).await;
    assert_eq!(j["sites"].as_array().unwrap().len(), 1000);
    assert_eq!(j["total"].as_u64(), Some(SITES as u64));

    // Paging: every site exactly once, in file order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..=(SITES / 997 + 1) {
        let url = match &cursor {
            Some(c) => format!("{api}/status?limit=997&cursor={c}"),
            None => format!("{api}/status?limit=997"),
        };
        let (code, j) = get_json(&url).await;
        assert_eq!(code, 200, "{j}");
        for s in j["sites"].as_array().unwrap() {
            seen.push(s["name"].as_str().unwrap().to_string());
        }
        match j["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let expected: Vec<String> = (0..SITES).map(|i| format!("site-{i:06}")).collect();
    assert_eq!(seen.len(), SITES, "every site once");
    assert_eq!(seen, expected, "in file order, none twice");

    // The page: problems first, at most 500 drawn, a summary per tag,
    // and search.
    let page = reqwest::get(format!("{api}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let articles: Vec<&str> = page.split("<article class=\"site ").skip(1).collect();
    assert_eq!(articles.len(), 500, "at most 500 sites are drawn");
    assert!(
        articles.iter().all(|a| a.starts_with("down")),
        "problems first"
    );
    assert!(
        page.contains(&format!("Showing 500 of {SITES} sites, problems first")),
        "the page says what it left out"
    );
    let refused = format!(
        "<a href=\"/?tag=refused\">refused</a> <span class=\"status down\">{} down</span>",
        want.len()
    );
    assert!(page.contains(&refused), "the summary per tag");
    let one = reqwest::get(format!("{api}/?q=site-000042"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(one.matches("<article class=\"site ").count(), 1);
    assert!(one.contains("id=\"site-site-000042\""));
    assert!(
        one.contains("value=\"site-000042\""),
        "the search box keeps the query"
    );
    let tagged = reqwest::get(format!("{api}/?tag=refused"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(tagged.matches("<article class=\"site down").count() == 500);

    // A bad query is refused with a reason.
    for q in ["status=sideways", "limit=0", "limit=10001", "colour=red"] {
        let resp = reqwest::get(format!("{api}/status?{q}")).await.unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{q}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{q}: {body}"
        );
    }
    running.stop();
    running.wait().await.unwrap();
    acceptor.abort();
}
