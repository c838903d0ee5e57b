//! The request and its tables, over in-memory streams.
use super::*;
use crate::probe::body::Checks;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[test]
fn statuses_map_to_causes() {
    let default = StatusSet(vec![(200, 399)]);
    let table: &[(u16, Option<Cause>)] = &[
        (200, None),
        (204, None),
        (301, None),
        (399, None),
        (400, Some(Cause::HttpStatus)),
        (401, Some(Cause::HttpStatus)),
        (403, Some(Cause::HttpBlocked)),
        (404, Some(Cause::HttpStatus)),
        (429, Some(Cause::HttpBlocked)),
        (500, Some(Cause::HttpStatus)),
        (502, Some(Cause::HttpBadGateway)),
        (503, Some(Cause::HttpUnavailable)),
        (504, Some(Cause::HttpGatewayTimeout)),
    ];
    for &(status, want) in table {
        assert_eq!(classify_status(status, &default), want, "{status}");
    }
    // An expected status is never a failure, whatever it is.
    let odd = StatusSet(vec![(403, 403), (503, 503)]);
    assert_eq!(classify_status(403, &odd), None);
    assert_eq!(classify_status(503, &odd), None);
    assert_eq!(classify_status(200, &odd), Some(Cause::HttpStatus));
}

fn site() -> crate::config::SiteSpec {
    crate::config::parse(
        std::path::Path::new("t.toml"),
        "[[site]]\nname = \"t\"\nurl = \"http://t.test/x\"\n",
    )
    .unwrap()
    .sites[0]
        .as_ref()
        .clone()
}

fn ask(site: &crate::config::SiteSpec) -> Ask<'_> {
    Ask {
        target: &site.target,
        method: site.http.method,
        headers: &site.http.headers,
    }
}

/// Every check that reads the body to its end.
fn whole() -> Checks<'static> {
    Checks {
        app_errors: true,
        ..Checks::default()
    }
}

/// Asks a server that answers `reply` in pieces of `piece` bytes,
/// searching the body for `checks`.
async fn against_in_pieces(
    reply: &'static [u8],
    piece: usize,
    checks: Checks<'static>,
) -> Result<Response, Failure> {
    let (client, mut server) = tokio::io::duplex(64);
    tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        let _ = server.read(&mut buf).await;
        for chunk in reply.chunks(piece) {
            if server.write_all(chunk).await.is_err() {
                return;
            }
            let _ = server.flush().await;
            // Let the client read each piece on its own.
            tokio::task::yield_now().await;
        }
        let _ = server.shutdown().await;
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    let site = site();
    request(
        client,
        ask(&site),
        move |_, _| Some(Read::Scan(Scan::new(checks, MAX_BODY))),
        deadline,
    )
    .await
}

async fn against(reply: &'static [u8]) -> Result<Response, Failure> {
    against_in_pieces(reply, 4096, whole()).await
}

#[tokio::test]
async fn a_server_that_speaks_first_is_not_http() {
    let (client, mut server) = tokio::io::duplex(4096);
    tokio::spawn(async move {
        let _ = server.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").await;
        let mut buf = [0u8; 1024];
        let _ = server.read(&mut buf).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    });
    let site = site();
    let deadline = Instant::now() + Duration::from_secs(5);
    let err = request(client, ask(&site), |_, _| None, deadline)
        .await
        .unwrap_err();
    assert_eq!(err.cause, Cause::HttpProtocol, "{}", err.what);
}

#[test]
fn host_header_omits_default_ports() {
    let t = |u: &str| crate::config::parse_target(u).unwrap();
    assert_eq!(host_header(&t("https://a.test/")), "a.test");
    assert_eq!(host_header(&t("http://a.test:8080/")), "a.test:8080");
    assert_eq!(host_header(&t("http://[::1]/")), "[::1]");
    assert_eq!(host_header(&t("https://[::1]:8443/")), "[::1]:8443");
}

#[tokio::test]
async fn parser_outcomes_map_to_causes() {
    let ok = against(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello")
        .await
        .unwrap();
    assert_eq!(ok.status, 200);
    let body = ok.body.unwrap();
    assert_eq!((body.read, body.end), (5, End::Complete));
    assert_eq!(
        against(b"SSH-2.0-OpenSSH_9.2\r\n").await.unwrap_err().cause,
        Cause::HttpProtocol
    );
    assert_eq!(against(b"").await.unwrap_err().cause, Cause::HttpEmpty);
    assert_eq!(
        against(b"HTTP/1.1 200 OK\r\ncontent-le")
            .await
            .unwrap_err()
            .cause,
        Cause::HttpEmpty
    );
    assert_eq!(
        against(b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\nshort")
            .await
            .unwrap_err()
            .cause,
        Cause::HttpEmpty
    );
}

#[tokio::test]
async fn a_needle_cut_across_the_pieces_of_a_body_is_found() {
    const PAGE: &[u8] =
        b"HTTP/1.1 200 OK\r\ncontent-length: 43\r\n\r\n<html><body>status: all green</body></html>";
    let checks = |expect, forbid| Checks {
        expect,
        forbid,
        ..Checks::default()
    };
    for piece in [1, 2, 3, 5, 7] {
        let found = against_in_pieces(PAGE, piece, checks(Some("status: all green"), None))
            .await
            .unwrap()
            .body
            .unwrap();
        assert!(!found.lacks_expected, "pieces of {piece}: {found:?}");
        let missing = against_in_pieces(PAGE, piece, checks(Some("status: red"), None))
            .await
            .unwrap()
            .body
            .unwrap();
        assert!(missing.lacks_expected, "pieces of {piece}");
        assert_eq!(missing.size(), "43 bytes");
        let forbidden = against_in_pieces(PAGE, piece, checks(None, Some("all green")))
            .await
            .unwrap()
            .body
            .unwrap();
        assert!(forbidden.holds_forbidden, "pieces of {piece}");
    }
    // Chunked transfer encoding, cut inside the needle and the chunk sizes.
    const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n9\r\nstatus: a\r\n8\r\nll green\r\n0\r\n\r\n";
    let v = against_in_pieces(CHUNKED, 3, checks(Some("status: all green"), None))
        .await
        .unwrap()
        .body
        .unwrap();
    assert!(!v.lacks_expected, "{v:?}");
    assert_eq!(v.read, 17);
}

#[tokio::test]
async fn reading_stops_at_the_forbidden_text_even_if_the_rest_is_broken() {
    // The body claims more than is sent: once the forbidden text is
    // found nothing after it matters.
    const REPLY: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n<h1>Maintenance</h1><p>back soon, we promise</p>";
    let checks = Checks {
        forbid: Some("Maintenance"),
        ..Checks::default()
    };
    let v = against_in_pieces(REPLY, 4096, checks)
        .await
        .unwrap()
        .body
        .unwrap();
    assert!(v.holds_forbidden);
    assert_eq!(v.end, End::Decided);
}

#[test]
fn configured_headers_replace_the_defaults() {
    let t = crate::config::parse_target("http://a.test:8080/").unwrap();
    let h = |n: &str, v: &str| {
        (
            HeaderName::from_bytes(n.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        )
    };
    let headers = request_headers(
        &t,
        &[
            h("User-Agent", "probe/2"),
            h("Host", "b.test"),
            h("X-Probe", "1"),
            h("x-probe", "2"),
        ],
    )
    .unwrap();
    let all = |name| {
        headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(all(USER_AGENT), ["probe/2"]);
    assert_eq!(all(HOST), ["b.test"]);
    assert_eq!(all(ACCEPT), ["*/*"]);
    assert_eq!(all(CONNECTION), ["close"]);
    assert_eq!(all(HeaderName::from_static("x-probe")), ["1", "2"]);
    let plain = request_headers(&t, &[]).unwrap();
    assert_eq!(plain.get(HOST).unwrap(), "a.test:8080");
    assert_eq!(plain.get(USER_AGENT).unwrap(), USER_AGENT_VALUE);
    assert_eq!(plain.len(), 4);
}
