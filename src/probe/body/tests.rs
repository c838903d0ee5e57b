use super::*;

/// The search as it was done on a whole body held in memory: the reference
/// the streaming search must agree with.
fn reference(body: &[u8], content_type: Option<&str>) -> Option<PageError> {
    let text = String::from_utf8_lossy(body);
    for (needle, error) in &SIGNATURES[..FIRST_DEFAULT_PAGE] {
        if text.contains(needle) {
            return Some(*error);
        }
    }
    for line in text.lines() {
        let line = line.trim_start_matches("<br />").trim_start();
        if line.starts_with("Fatal error: ") || line.starts_with("PHP Fatal error:") {
            return Some(FATAL);
        }
        if line.starts_with("Parse error: ") || line.starts_with("PHP Parse error:") {
            return Some(PARSE);
        }
    }
    for (needle, error) in &SIGNATURES[FIRST_DEFAULT_PAGE..] {
        if text.contains(needle) {
            return Some(*error);
        }
    }
    let html = content_type.is_some_and(|c| c.to_ascii_lowercase().starts_with("text/html"));
    if html && blank_html(&text) {
        return Some(BLANK);
    }
    None
}

const HTML: Option<&str> = Some("text/html; charset=UTF-8");

/// Pages and whether they are application errors.
const PAGES: &[(&str, Option<&str>, bool)] = &[
    (
        "<h1>Error establishing a database connection</h1>",
        HTML,
        true,
    ),
    (
        "<p>There has been a critical error on this website.</p>",
        HTML,
        true,
    ),
    (
        "<br />\n<b>Fatal error</b>:  Uncaught Error: x in /a.php:3",
        HTML,
        true,
    ),
    ("<b>Parse error</b>: syntax error", HTML, true),
    (
        "PHP Fatal error:  Allowed memory size exhausted",
        None,
        true,
    ),
    (
        "Parse error: syntax error, unexpected '}'",
        Some("text/plain"),
        true,
    ),
    ("", HTML, true),
    ("<html><body>  \n </body></html>", HTML, true),
    (
        "<html><body><div id=\"root\"></div></body></html>",
        HTML,
        false,
    ),
    ("", None, false),
    ("", Some("application/json"), false),
    (
        "<p>How to fix a PHP Fatal error: a tutorial</p>",
        HTML,
        false,
    ),
    ("<html><body>Welcome</body></html>", HTML, false),
    (
        "<?php\ndefine('DB_PASSWORD', 'x');",
        Some("text/plain"),
        true,
    ),
    ("<html><body><?php echo 1; ?></body></html>", HTML, true),
    ("<p>&lt;?php echo 1; ?&gt;</p>", HTML, false),
    (
        "<!DOCTYPE html><html><head><title>Welcome to nginx!</title></head><body><h1>Welcome to nginx!</h1></body></html>",
        HTML,
        true,
    ),
    ("<html><body><h1>It works!</h1></body></html>", HTML, true),
    (
        "<title>Apache2 Debian Default Page: It works</title>",
        HTML,
        true,
    ),
];

/// Inputs at the edges of the line rules, for the agreement test.
const EDGES: &[&str] = &[
    "<br /><br />Fatal error: x",
    "<br /> \t Fatal error: x",
    " <br />Fatal error: x",
    "<br Fatal error: x",
    "<br /\nFatal error: x",
    "ok\r\n\u{a0}\u{2003}PHP Parse error: y",
    "ok\n\u{fffd}Parse error: y",
    "ok\n\u{e9}Parse error: y",
    "\u{b}\u{c}Parse error: z",
    "Fatal error:x",
    "Fatal error:",
    "PHP Fatal error",
    "x\nPHP Parse error:\nFatal error: later",
    "Parse error: first\n<b>Fatal error</b>: wins",
    "<title>Welcome to nginx!</title>\nFatal error: the line wins",
    "Fatal error: x\n<?php echo 1;",
    "<?phpinfo",
    "<h1>It works!</h1><br />",
    "<h1>Error establishing a database connection</h1>There has been a critical error on this website",
    "<HTML><BODY>\n</BODY></HTML>",
    "<html><body",
    "   \n\t ",
];

fn streamed(body: &[u8], content_type: Option<&str>, piece: usize) -> Option<PageError> {
    let checks = Checks {
        app_errors: true,
        html: is_html(content_type),
        ..Checks::default()
    };
    let mut scan = Scan::new(checks, 1 << 20);
    for chunk in body.chunks(piece.max(1)) {
        scan.feed(chunk);
    }
    scan.finish(End::Complete).app_error
}

#[test]
fn application_error_pages_are_recognised() {
    for &(body, ct, want) in PAGES {
        assert_eq!(
            app_error(body.as_bytes(), ct).is_some(),
            want,
            "{body:?} {ct:?}"
        );
    }
}

#[test]
fn streaming_agrees_with_the_whole_body_search_in_pieces_of_any_size() {
    let mut bodies: Vec<(Vec<u8>, Option<&str>)> = PAGES
        .iter()
        .map(|&(b, ct, _)| (b.as_bytes().to_vec(), ct))
        .collect();
    for edge in EDGES {
        bodies.push((edge.as_bytes().to_vec(), HTML));
        bodies.push((edge.as_bytes().to_vec(), None));
    }
    // Invalid UTF-8 where a line's whitespace is skipped.
    bodies.push((b"ok\n\xc2Fatal error: x".to_vec(), None));
    bodies.push((b"ok\n\xe2\x80Fatal error: x".to_vec(), None));
    bodies.push((b"ok\n\xff Fatal error: x".to_vec(), None));
    let mut cases = 0;
    for (body, ct) in &bodies {
        let want = reference(body, *ct);
        for piece in 1..=body.len().max(1) {
            assert_eq!(
                streamed(body, *ct, piece),
                want,
                "{:?} {ct:?} in pieces of {piece}",
                String::from_utf8_lossy(body)
            );
            cases += 1;
        }
    }
    assert!(cases > 500, "{cases}");
}

fn expecting(text: &str) -> Checks<'_> {
    Checks {
        expect: Some(text),
        ..Checks::default()
    }
}

#[test]
fn a_needle_split_at_any_point_across_pieces_is_found() {
    let body = b"<html><body>all systems go, status: green</body></html>";
    let needle = "status: green";
    let at = body
        .windows(needle.len())
        .position(|w| w == needle.as_bytes());
    let at = at.unwrap();
    for split in at..=at + needle.len() {
        for piece in [1, 2, 3, 7] {
            let mut scan = Scan::new(expecting(needle), 1 << 20);
            scan.feed(&body[..split]);
            for chunk in body[split..].chunks(piece) {
                scan.feed(chunk);
            }
            let v = scan.finish(End::Complete);
            assert!(!v.lacks_expected, "split at {split}, pieces of {piece}");
        }
    }
    // And one that is not there, however it is cut, is not found.
    let mut scan = Scan::new(expecting("status: red"), 1 << 20);
    for chunk in body.chunks(3) {
        scan.feed(chunk);
    }
    assert!(scan.finish(End::Complete).lacks_expected);
}

#[test]
fn a_large_needle_costs_work_linear_in_the_body() {
    const BODY: usize = 1 << 20;
    let needle = "n".repeat(512 * 1024);
    // The body holds the needle only at its very end.
    let mut body = vec![b'x'; BODY - needle.len()];
    body.extend_from_slice(needle.as_bytes());
    let mut scan = Scan::new(expecting(&needle), BODY);
    let mut decided = false;
    for chunk in body.chunks(4096) {
        decided = scan.feed(chunk);
    }
    assert!(decided, "found by the last piece");
    let scanned = scan.scanned();
    // A window scan per piece would go through ~129 MiB here.
    assert!(scanned <= 3 * BODY, "{scanned} bytes scanned");
    assert!(!scan.finish(End::Decided).lacks_expected);

    // Missing: every byte is read, still in linear work.
    let body = vec![b'n'; BODY];
    let mut tail = needle.clone();
    tail.push('!');
    let mut scan = Scan::new(expecting(&tail), BODY);
    for chunk in body.chunks(4096) {
        assert!(!scan.feed(chunk));
    }
    assert!(scan.scanned() <= 3 * BODY, "{}", scan.scanned());
    let v = scan.finish(End::Budget);
    assert!(v.lacks_expected);
    assert_eq!(v.size(), "first 1024 KiB");
}

#[test]
fn only_what_a_check_needs_is_held() {
    let mut scan = Scan::new(
        Checks {
            expect: Some("needle"),
            app_errors: true,
            html: true,
            ..Checks::default()
        },
        1 << 20,
    );
    for _ in 0..100 {
        scan.feed(&[b'a'; 4096]);
    }
    // The overlap: the longest signature less one byte.
    let longest = SIGNATURES.iter().map(|(s, _)| s.len()).max().unwrap();
    assert!(scan.window.len() < longest, "{}", scan.window.len());
    assert!(matches!(scan.blank, Blank::TooLong));
}

#[test]
fn reading_stops_once_every_check_is_decided() {
    let forbid = Checks {
        forbid: Some("Maintenance"),
        ..Checks::default()
    };
    let mut scan = Scan::new(forbid, 1 << 20);
    assert!(!scan.feed(b"<h1>Under Mainte"));
    // Decided within a needle's length of its end (the search waits for
    // that many new bytes, which keeps its work linear).
    assert!(scan.feed(b"nance</h1><p>Back soon</p>"));
    let v = scan.finish(End::Decided);
    assert!(v.holds_forbidden);
    assert_eq!(v.size(), "first 42 bytes");

    // A missing expected text outranks the forbidden one: read on.
    let both = Checks {
        expect: Some("welcome"),
        forbid: Some("Maintenance"),
        ..Checks::default()
    };
    let mut scan = Scan::new(both, 1 << 20);
    assert!(!scan.feed(b"Maintenance"));
    assert!(scan.feed(b" welcome"));

    // A broken page is decided once nothing that ranks above what was
    // found can still be: PHP source at once; a database error only at
    // the end, as PHP source could still follow.
    let app = Checks {
        app_errors: true,
        ..Checks::default()
    };
    let mut scan = Scan::new(app, 1 << 20);
    assert!(!scan.feed(b"<b>Fatal error</b>: x"));
    assert!(!scan.feed(b"Error establishing a database connection"));
    let v = scan.finish(End::Complete);
    assert_eq!(v.app_error, Some(SIGNATURES[3].1));
    assert_eq!(v.app_error.unwrap().sign, Some(Sign::WpDatabase));
    let mut scan = Scan::new(app, 1 << 20);
    assert!(!scan.feed(b"<html><body>Error establishing a database connection"));
    assert!(scan.feed(b"<?php\ndefine('DB_PASSWORD', 'secret'); // and the rest of wp-config.php"));
    let v = scan.finish(End::Decided);
    assert_eq!(v.app_error, Some(PHP_SOURCE));

    // Expected text alone: decided when found.
    let mut scan = Scan::new(expecting("ok"), 1 << 20);
    assert!(scan.feed(b"all ok"));
}

#[test]
fn a_page_longer_than_the_blank_prefix_is_not_blank() {
    let mut page = b"<html><head><style>".to_vec();
    page.extend(std::iter::repeat_n(b'a', BLANK_PREFIX));
    page.extend_from_slice(b"</style></head><body> </body></html>");
    assert_eq!(app_error(&page, HTML), None);
    let small = b"<html><head><style>a</style></head><body> </body></html>";
    assert_eq!(app_error(small, HTML), Some(BLANK));
}

#[test]
fn sizes_read_as_before() {
    let v = |read, end| Verdict {
        read,
        end,
        lacks_expected: true,
        holds_forbidden: false,
        app_error: None,
    };
    assert_eq!(v(5, End::Complete).size(), "5 bytes");
    assert_eq!(v(1 << 20, End::Budget).size(), "first 1024 KiB");
    assert_eq!(v(3000, End::Decided).size(), "first 2 KiB");
}

#[test]
fn html_is_told_by_its_content_type() {
    assert!(is_html(Some("text/html")));
    assert!(is_html(Some("Text/HTML; charset=utf-8")));
    assert!(!is_html(Some("text/plain")));
    assert!(!is_html(Some("text/ht")));
    assert!(!is_html(None));
}
