//! The peer API between vantages, over real sockets on loopback: a peer
//! probes only its own sites, answers with its own diagnosis, and refuses a
//! missing or wrong token and a site it does not have; over TLS with a
//! test CA.

mod common;

use common::http::{AcceptClose, closed_addr};
use common::tls::{CertKind, TestCa};
use sitewatch::api::ApiToken;
use sitewatch::cluster::client::{Peer, Peers};
use sitewatch::cluster::server::{Catalog, PeerService, serve, tls_config};
use sitewatch::diagnosis::{Cause, Status};
use sitewatch::probe::ProbeDeps;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "cluster-token-0123456789abcdef";

fn catalog(text: &str) -> Catalog {
    let config = sitewatch::config::parse(std::path::Path::new("p.toml"), text)
        .unwrap_or_else(|e| panic!("{e:?}"));
    let deps = ProbeDeps::new(config.sites.iter().map(|s| s.as_ref())).unwrap();
    Catalog {
        sites: config
            .sites
            .iter()
            .map(|s| (s.name.clone(), Arc::clone(s)))
            .collect::<HashMap<_, _>>(),
        deps: Arc::new(deps),
    }
}

fn secret(text: &str) -> sitewatch::alert::channel::Secret {
    sitewatch::alert::channel::resolve(&sitewatch::config::SecretRef::Value(text.to_string()))
        .unwrap()
}

async fn start_peer(
    name: &str,
    sites: &str,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> (String, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = PeerService::new(
        name.to_string(),
        ApiToken::new(TOKEN).unwrap(),
        catalog(sites),
        sitewatch::selfcheck::Handle::none(),
    );
    let stop = CancellationToken::new();
    tokio::spawn(serve(listener, tls.clone(), svc, stop.clone()));
    let scheme = if tls.is_some() { "https" } else { "http" };
    (format!("{scheme}://localhost:{}", addr.port()), stop)
}

#[tokio::test]
async fn a_peer_probes_its_own_site_and_answers_with_its_diagnosis() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let up = AcceptClose::bind("127.0.0.1:0").await.unwrap();
    let down = closed_addr();
    let sites = format!(
        "[[site]]\nname = \"up\"\nurl = \"tcp://{}\"\n\n[[site]]\nname = \"down\"\nurl = \"tcp://{down}\"\n",
        up.addr
    );
    let (url, stop) = start_peer("ams1", &sites, None).await;
    let peer = Peer {
        name: "ams1".into(),
        url,
    };
    let peers = Peers::new(
        "fra1".into(),
        vec![peer.clone()],
        secret(TOKEN),
        None,
        Duration::from_secs(5),
    )
    .unwrap();
    let view = peers.ask(&peer, "up").await.unwrap();
    assert_eq!(
        (view.vantage.as_str(), view.site.as_str(), view.status),
        ("ams1", "up", Status::Up)
    );
    let config = sitewatch::config::parse(std::path::Path::new("p.toml"), &sites).unwrap();
    assert_eq!(
        view.probe_key,
        sitewatch::config::probe_key(&config.sites[0])
    );
    let view = peers.ask(&peer, "down").await.unwrap();
    assert_eq!(
        (view.status, view.cause),
        (Status::Down, Some(Cause::TcpRefused))
    );
    assert!(view.detail.contains("refused"), "{view:?}");

    // A site it does not have: no URL is ever taken from the network.
    let err = peers.ask(&peer, "http://evil.example/").await.unwrap_err();
    assert!(err.contains("404"), "{err}");

    // Without the token, or with another, nothing.
    for token in ["wrong-token", ""] {
        let stranger = Peers::new(
            "x".into(),
            vec![peer.clone()],
            secret(if token.is_empty() { "-" } else { token }),
            None,
            Duration::from_secs(5),
        )
        .unwrap();
        let err = stranger.ask(&peer, "up").await.unwrap_err();
        assert!(err.contains("401"), "{err}");
        let err = stranger.status(&peer, None).await.unwrap_err();
        assert!(err.contains("401"), "{err}");
    }
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{}/peer/v1/status", peer.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    let status = peers.status(&peer, None).await.unwrap();
    assert_eq!(status.vantage, "ams1");
    stop.cancel();
}

#[tokio::test]
async fn peers_speak_tls_and_an_unreachable_one_is_said_so() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let ca_file = ca.write_root(dir.path());
    let cert = ca.leaf(CertKind::Valid, &["localhost", "127.0.0.1"]);
    let (cert_path, key_path) = (dir.path().join("peer.crt"), dir.path().join("peer.key"));
    std::fs::write(&cert_path, &cert.chain_pem).unwrap();
    std::fs::write(&key_path, &cert.key_pem).unwrap();
    let tls = tls_config(&cert_path, &key_path).unwrap();
    let up = AcceptClose::bind("127.0.0.1:0").await.unwrap();
    let sites = format!("[[site]]\nname = \"up\"\nurl = \"tcp://{}\"\n", up.addr);
    let (url, stop) = start_peer("ams1", &sites, Some(tls)).await;
    assert!(url.starts_with("https://"));
    let gone = Peer {
        name: "nyc1".into(),
        url: format!("https://127.0.0.1:{}", closed_addr().port()),
    };
    let peers = Peers::new(
        "fra1".into(),
        vec![
            Peer {
                name: "ams1".into(),
                url,
            },
            gone,
        ],
        secret(TOKEN),
        Some(&ca_file),
        Duration::from_secs(5),
    )
    .unwrap();
    let answers = peers.ask_all(&[], "up").await;
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0].1.as_ref().unwrap().status, Status::Up);
    let err = answers[1].1.as_ref().unwrap_err();
    assert!(err.starts_with("unreachable"), "{err}");
    stop.cancel();
}
