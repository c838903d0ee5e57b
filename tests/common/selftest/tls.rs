//! Self-test of the TLS fixture in `common::tls`: a tokio-rustls client (ring
//! provider, trusting only the test root) against each kind of server, pinning
//! down exactly which rustls error every broken setup produces.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::tls::{
    After, CertKind, GARBAGE, ServerCert, TestCa, TlsServer, connect, garbage_server, rustls_error,
    silent_server,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{CertificateError, Error as TlsError, ProtocolVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NAMES: &[&str] = &["localhost", "127.0.0.1"];

fn client(ca: &TestCa) -> Arc<rustls::ClientConfig> {
    Arc::new(ca.client_config())
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Handshake against a server using `cert`; returns the io::Error.
async fn handshake_error(ca: &TestCa, cert: &ServerCert, sni: &str) -> std::io::Error {
    let server = TlsServer::start(cert, After::Close).await;
    let err = connect(client(ca), server.addr, sni)
        .await
        .expect_err("handshake should fail");
    eprintln!("[{sni}] io kind={:?} err={err} / {err:?}", err.kind());
    err
}

#[tokio::test]
async fn valid_cert_completes_handshake_and_serves_http() {
    let ca = TestCa::new();
    let cert = ca.leaf(CertKind::Valid, NAMES);
    assert_eq!(cert.chain_der.len(), 2, "leaf + intermediate");
    let server = TlsServer::start(
        &cert,
        After::Http {
            status: 503,
            body: "down for maintenance".into(),
        },
    )
    .await;

    for sni in ["localhost", "127.0.0.1"] {
        let mut tls = connect(client(&ca), server.addr, sni)
            .await
            .expect("handshake");
        eprintln!(
            "[{sni}] negotiated {:?}",
            tls.get_ref().1.protocol_version()
        );
        tls.write_all(format!("GET /health HTTP/1.1\r\nHost: {sni}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut response = String::new();
        // The server sends close_notify after the body, so read_to_string
        // ends with Ok rather than UnexpectedEof.
        tls.read_to_string(&mut response)
            .await
            .expect("read response");
        assert!(
            response.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{response}"
        );
        assert!(response.contains("Content-Length: 20\r\n"), "{response}");
        assert!(
            response.ends_with("\r\n\r\ndown for maintenance"),
            "{response}"
        );
    }

    assert_eq!(server.handshakes(), 2);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[0].starts_with("GET /health HTTP/1.1\r\nHost: localhost\r\n"));
    assert!(requests[0].ends_with("\r\n\r\n"));
    assert_eq!(
        server.url("localhost"),
        format!("https://localhost:{}/", server.port())
    );
}

#[tokio::test]
async fn tls12_only_client_also_works() {
    let ca = TestCa::new();
    let cert = ca.leaf(CertKind::Valid, NAMES);
    let server = TlsServer::start(
        &cert,
        After::Http {
            status: 200,
            body: "ok".into(),
        },
    )
    .await;
    let config = rustls::ClientConfig::builder_with_provider(crate::common::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(ca.root_store())
        .with_no_client_auth();
    let mut tls = connect(Arc::new(config), server.addr, "localhost")
        .await
        .expect("handshake");
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(ProtocolVersion::TLSv1_2)
    );
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tls.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n") && response.ends_with("ok"));

    // Expired under TLS 1.2 is the same error as under TLS 1.3.
    let expired = ca.leaf(CertKind::Expired, NAMES);
    let server = TlsServer::start(&expired, After::Close).await;
    let config = rustls::ClientConfig::builder_with_provider(crate::common::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(ca.root_store())
        .with_no_client_auth();
    let err = connect(Arc::new(config), server.addr, "localhost")
        .await
        .unwrap_err();
    assert!(matches!(
        rustls_error(&err),
        Some(TlsError::InvalidCertificate(
            CertificateError::ExpiredContext { .. }
        ))
    ));
}

#[tokio::test]
async fn expired_cert_gives_expired_context() {
    let ca = TestCa::new();
    let cert = ca.leaf(CertKind::Expired, NAMES);
    let err = handshake_error(&ca, &cert, "localhost").await;
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    match rustls_error(&err) {
        Some(TlsError::InvalidCertificate(CertificateError::ExpiredContext {
            time,
            not_after,
        })) => {
            assert_eq!(not_after.as_secs(), unix_secs(cert.not_after));
            assert!(time.as_secs() >= unix_secs(cert.not_after) + 10 * 86400 - 5);
        }
        other => panic!("unexpected: {other:?}"),
    }
    // Note: rustls' PartialEq does NOT treat Expired and ExpiredContext as equal.
    assert_ne!(
        rustls_error(&err),
        Some(&TlsError::InvalidCertificate(CertificateError::Expired))
    );
}

#[tokio::test]
async fn not_yet_valid_cert_gives_not_valid_yet_context() {
    let ca = TestCa::new();
    let cert = ca.leaf(CertKind::NotYetValid, NAMES);
    let err = handshake_error(&ca, &cert, "localhost").await;
    match rustls_error(&err) {
        Some(TlsError::InvalidCertificate(CertificateError::NotValidYetContext {
            time: _,
            not_before,
        })) => assert_eq!(not_before.as_secs(), unix_secs(cert.not_before)),
        other => panic!("unexpected: {other:?}"),
    }
}

#[tokio::test]
async fn expiring_soon_cert_is_accepted() {
    let ca = TestCa::new();
    let cert = ca.leaf(CertKind::ExpiresInDays(5), NAMES);
    let left = cert.not_after.duration_since(SystemTime::now()).unwrap();
    assert!(left > Duration::from_secs(5 * 86400 - 60) && left <= Duration::from_secs(5 * 86400));
    let server = TlsServer::start(&cert, After::CloseNotify).await;
    let tls = connect(client(&ca), server.addr, "localhost")
        .await
        .expect("handshake");
    // The client sees the exact notAfter in the presented leaf.
    let presented = tls.get_ref().1.peer_certificates().unwrap();
    assert_eq!(presented, &cert.chain_der[..]);

    // ExpiresInDays(0) is valid "until now"; negative is already expired.
    let gone = ca.leaf(CertKind::ExpiresInDays(-3), NAMES);
    assert!(gone.not_before < gone.not_after);
    let err = handshake_error(&ca, &gone, "localhost").await;
    assert!(matches!(
        rustls_error(&err),
        Some(TlsError::InvalidCertificate(
            CertificateError::ExpiredContext { .. }
        ))
    ));
}

#[tokio::test]
async fn wrong_name_gives_not_valid_for_name_context() {
    let ca = TestCa::new();
    let cert = ca.leaf(CertKind::Valid, &["good.example", "127.0.0.1"]);
    let err = handshake_error(&ca, &cert, "bad.example").await;
    match rustls_error(&err) {
        Some(TlsError::InvalidCertificate(CertificateError::NotValidForNameContext {
            expected,
            presented,
        })) => {
            assert_eq!(expected, &ServerName::try_from("bad.example").unwrap());
            eprintln!("presented = {presented:?}");
            assert_eq!(
                presented,
                &vec![
                    "DnsName(\"good.example\")".to_string(),
                    "IpAddress(127.0.0.1)".to_string()
                ]
            );
        }
        other => panic!("unexpected: {other:?}"),
    }

    // An IP the cert does not list is the same variant.
    let cert = ca.leaf(CertKind::Valid, &["localhost"]);
    let err = handshake_error(&ca, &cert, "127.0.0.1").await;
    assert!(matches!(
        rustls_error(&err),
        Some(TlsError::InvalidCertificate(
            CertificateError::NotValidForNameContext { .. }
        ))
    ));
}

#[tokio::test]
async fn self_signed_gives_unknown_issuer() {
    let ca = TestCa::new();
    let cert = ca.leaf(CertKind::SelfSigned, NAMES);
    assert_eq!(cert.chain_der.len(), 1);
    let err = handshake_error(&ca, &cert, "localhost").await;
    assert_eq!(
        rustls_error(&err),
        Some(&TlsError::InvalidCertificate(
            CertificateError::UnknownIssuer
        ))
    );
}

#[tokio::test]
async fn missing_intermediate_gives_unknown_issuer() {
    let ca = TestCa::new();
    let cert = ca.leaf(CertKind::MissingIntermediate, NAMES);
    assert_eq!(cert.chain_der.len(), 1);
    let err = handshake_error(&ca, &cert, "localhost").await;
    assert_eq!(
        rustls_error(&err),
        Some(&TlsError::InvalidCertificate(
            CertificateError::UnknownIssuer
        ))
    );
}

#[tokio::test]
async fn untrusted_root_gives_unknown_issuer() {
    // A perfectly good chain from some other CA.
    let ca = TestCa::new();
    let other = TestCa::new();
    let cert = other.leaf(CertKind::Valid, NAMES);
    let err = handshake_error(&ca, &cert, "localhost").await;
    assert_eq!(
        rustls_error(&err),
        Some(&TlsError::InvalidCertificate(
            CertificateError::UnknownIssuer
        ))
    );
}

#[tokio::test]
async fn garbage_server_error() {
    let ca = TestCa::new();
    let (addr, task) = garbage_server().await;
    let err = connect(client(&ca), addr, "localhost").await.unwrap_err();
    eprintln!("garbage: kind={:?} err={err} / {err:?}", err.kind());
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert_eq!(
        rustls_error(&err),
        Some(&TlsError::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType
        ))
    );
    // And the bytes really are plain HTTP.
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"hi").await.unwrap();
    let mut got = Vec::new();
    tcp.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, GARBAGE);
    task.abort();
}

#[tokio::test]
async fn silent_server_hangs_the_handshake() {
    let ca = TestCa::new();
    let (addr, task) = silent_server().await;
    let res = tokio::time::timeout(
        Duration::from_millis(500),
        connect(client(&ca), addr, "localhost"),
    )
    .await;
    assert!(
        res.is_err(),
        "handshake should still be pending after 500 ms"
    );
    task.abort();
}

#[tokio::test]
async fn close_without_close_notify() {
    let ca = TestCa::new();
    let cert = ca.leaf(CertKind::Valid, NAMES);
    let server = TlsServer::start(&cert, After::Close).await;
    let mut tls = connect(client(&ca), server.addr, "localhost")
        .await
        .expect("handshake");
    let mut buf = Vec::new();
    let err = tls.read_to_end(&mut buf).await.unwrap_err();
    eprintln!("Close: read kind={:?} err={err} / {err:?}", err.kind());
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    assert!(rustls_error(&err).is_none());
    assert!(buf.is_empty());
}

#[tokio::test]
async fn close_notify_is_clean_eof() {
    let ca = TestCa::new();
    let cert = ca.leaf(CertKind::Valid, NAMES);
    let server = TlsServer::start(&cert, After::CloseNotify).await;
    let mut tls = connect(client(&ca), server.addr, "localhost")
        .await
        .expect("handshake");
    let mut buf = Vec::new();
    let n = tls.read_to_end(&mut buf).await.expect("clean EOF");
    assert_eq!(n, 0);
}

#[tokio::test]
async fn pem_outputs_round_trip() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let path = ca.write_root(dir.path());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), ca.root_pem());
    let from_file: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&path)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(from_file, vec![ca.root_der()]);

    let cert = ca.leaf(CertKind::Valid, NAMES);
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert.chain_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    assert_eq!(chain, cert.chain_der);
    assert_eq!(
        CertificateDer::from_pem_slice(cert.leaf_pem.as_bytes()).unwrap(),
        cert.chain_der[0]
    );
    assert!(cert.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap();
    assert_eq!(key.secret_der(), cert.key_der.secret_pkcs8_der());

    // A server built purely from the PEM strings works with a root store
    // built purely from the written root file.
    let config = rustls::ServerConfig::builder_with_provider(crate::common::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let server = TlsServer::start_with_config(Arc::new(config), After::CloseNotify).await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(from_file);
    let client = rustls::ClientConfig::builder_with_provider(crate::common::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    connect(Arc::new(client), server.addr, "127.0.0.1")
        .await
        .expect("handshake");
}

#[tokio::test]
async fn dropping_the_server_stops_it() {
    let ca = TestCa::new();
    let cert = ca.leaf(CertKind::Valid, NAMES);
    let server = TlsServer::start(&cert, After::Close).await;
    let addr = server.addr;
    tokio::net::TcpStream::connect(addr)
        .await
        .expect("listening");
    drop(server);
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("server still accepting after drop");
}
