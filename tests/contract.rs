//! The diagnosis contract: the cause codes match shared/DIAGNOSIS.md
//! exactly (code, status, layer), and every hint is pinned word for word by
//! tests/fixtures/hints.txt.

use sitewatch::diagnosis::{Cause, HintFacts, Sign, hint};
use std::path::Path;

fn facts() -> HintFacts<'static> {
    HintFacts {
        host: "blog.example.com",
        port: 443,
        addr: Some("203.0.113.7:443".parse().unwrap()),
        http_status: Some(403),
        source: None,
        sign: None,
    }
}

#[test]
fn every_hint_is_pinned() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hints.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    let pinned: Vec<(&str, &str)> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_once('\t').expect("code<TAB>hint"))
        .collect();
    assert_eq!(
        pinned.len(),
        Cause::ALL.len() + Sign::ALL.len(),
        "one pinned hint per cause and one per face of a cause"
    );
    for (key, want) in pinned {
        let (code, sign) = match key.split_once('+') {
            Some((code, sign)) => (
                code,
                Some(
                    *Sign::ALL
                        .iter()
                        .find(|s| s.as_str() == sign)
                        .unwrap_or_else(|| panic!("unknown sign {sign}")),
                ),
            ),
            None => (key, None),
        };
        let cause = Cause::from_code(code).unwrap_or_else(|| panic!("unknown code {code}"));
        if let Some(sign) = sign {
            assert_eq!(sign.cause(), cause, "{key}: the sign is of another cause");
        }
        let facts = HintFacts { sign, ..facts() };
        assert_eq!(hint(cause, &facts), want, "{key}");
        if sign.is_some() {
            assert_ne!(
                hint(cause, &facts),
                hint(cause, &self::facts()),
                "{key}: a face of a cause must say more than the cause"
            );
        }
    }
}

#[test]
fn codes_match_the_contract_document() {
    // CI lays shared/ beside the project; a developer checkout may not have it.
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/DIAGNOSIS.md");
    let Ok(text) = std::fs::read_to_string(&doc) else {
        if std::env::var_os("CI").is_some() {
            panic!("{} is missing under CI", doc.display());
        }
        eprintln!(
            "\n!!!!!!!! SKIPPED codes_match_the_contract_document: {} not found !!!!!!!!\n",
            doc.display()
        );
        return;
    };
    // The main table's rows start with "| `"; the additions in progress
    // with "| + `". A built code must match its row wherever it stands; an
    // addition not built yet is pending, not failed.
    let mut rows = Vec::new();
    let mut additions = Vec::new();
    for line in text.lines() {
        let (row, list) = if let Some(rest) = line.strip_prefix("| + `") {
            (format!("| `{rest}"), &mut additions)
        } else if line.starts_with("| `") {
            (line.to_string(), &mut rows)
        } else {
            continue;
        };
        let cells: Vec<String> = row.split('|').map(|c| c.trim().to_string()).collect();
        let code = cells[1].trim_matches('`').to_string();
        // The cause tables' codes are layer.name; the result-field table's are not.
        if code.contains('.') {
            list.push((code, cells[2].clone(), cells[3].clone()));
        }
    }
    assert!(!rows.is_empty() && !additions.is_empty());
    let built: Vec<&(String, String, String)> = additions
        .iter()
        .filter(|(code, _, _)| Cause::from_code(code).is_some())
        .collect();
    let pending: Vec<&str> = additions
        .iter()
        .filter(|(code, _, _)| Cause::from_code(code).is_none())
        .map(|(code, _, _)| code.as_str())
        .collect();
    eprintln!("additions built: {}; pending: {pending:?}", built.len());
    assert_eq!(
        rows.len() + built.len(),
        Cause::ALL.len(),
        "the document lists {} codes and {} built additions; sitewatch has {}",
        rows.len(),
        built.len(),
        Cause::ALL.len()
    );
    for (code, status, layer) in rows.iter().chain(built) {
        let cause = Cause::from_code(code)
            .unwrap_or_else(|| panic!("{code} is in the contract but not in sitewatch"));
        assert_eq!(cause.status().as_str(), status, "{code}");
        assert_eq!(cause.layer().as_str(), layer, "{code}");
    }
}
