//! Asking peers: "probe this site now" to every other vantage of a site at
//! once, each within the peer timeout; "are you there?" for liveness. The
//! token goes in an `Authorization: Bearer` header, over TLS (the system's
//! roots plus the cluster's `ca_file`).

use super::vote::Answer;
use super::{Ask, PROBE_PATH, PeerStatus, STATUS_PATH, View};
use crate::alert::channel::Secret;
use std::time::Duration;

/// The most of a peer's answer that is read.
const MAX_ANSWER: usize = 256 * 1024;

/// One peer: its name and the base URL of its peer API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its vantage name.
    pub name: String,
    /// `https://host:port` of its peer API.
    pub url: String,
}

/// The other vantages, and how to reach them.
pub struct Peers {
    vantage: String,
    peers: Vec<Peer>,
    client: reqwest::Client,
    token: Secret,
    timeout: Duration,
}

impl Peers {
    /// Peers of vantage `vantage`, asked with `token` and trusting the
    /// system's roots plus `ca_file`; each question ends within `timeout`.
    pub fn new(
        vantage: String,
        peers: Vec<Peer>,
        token: Secret,
        ca_file: Option<&std::path::Path>,
        timeout: Duration,
    ) -> Result<Peers, String> {
        let client = crate::alert::channel::http_client(ca_file)?;
        Ok(Peers {
            vantage,
            peers,
            client,
            token,
            timeout,
        })
    }

    /// This vantage's name.
    pub fn vantage(&self) -> &str {
        &self.vantage
    }

    /// Every peer.
    pub fn all(&self) -> &[Peer] {
        &self.peers
    }

    async fn read<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> Result<T, String> {
        let status = resp.status();
        let mut buf = Vec::new();
        let mut resp = resp;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| e.without_url().to_string())?
        {
            if buf.len() + chunk.len() > MAX_ANSWER {
                return Err("its answer is too large".to_string());
            }
            buf.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&buf);
            return Err(format!(
                "it answered {status}: {}",
                crate::probe::text::cap(text.trim(), 200)
            ));
        }
        serde_json::from_slice(&buf).map_err(|e| format!("its answer is not understood: {e}"))
    }

    /// Asks `peer` to probe `site` now.
    pub async fn ask(&self, peer: &Peer, site: &str) -> Answer {
        let url = format!("{}{PROBE_PATH}", peer.url.trim_end_matches('/'));
        let ask = Ask {
            site: site.to_string(),
            from: self.vantage.clone(),
        };
        let sent = self
            .client
            .post(&url)
            .bearer_auth(self.token.expose())
            .json(&ask)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    format!("no answer within {} s", self.timeout.as_secs_f64())
                } else {
                    format!("unreachable: {}", e.without_url())
                }
            })?;
        let view: View = Self::read(sent).await?;
        if view.vantage != peer.name || view.site != site {
            return Err(format!(
                "it answered as {} about {}",
                view.vantage, view.site
            ));
        }
        Ok(view)
    }

    /// Asks every peer named in `names` (all peers when empty) to probe
    /// `site` now, all at once.
    pub async fn ask_all(&self, names: &[String], site: &str) -> Vec<(String, Answer)> {
        let asked: Vec<&Peer> = self
            .peers
            .iter()
            .filter(|p| names.is_empty() || names.contains(&p.name))
            .collect();
        let answers = futures_util::future::join_all(asked.iter().map(|p| self.ask(p, site))).await;
        asked
            .into_iter()
            .map(|p| p.name.clone())
            .zip(answers)
            .collect()
    }

    /// Asks `peer` how it is (and how it judges `site`, when given).
    pub async fn status(&self, peer: &Peer, site: Option<&str>) -> Result<PeerStatus, String> {
        let mut url = url::Url::parse(&format!("{}{STATUS_PATH}", peer.url.trim_end_matches('/')))
            .map_err(|e| format!("its URL is not usable: {e}"))?;
        if let Some(s) = site {
            url.query_pairs_mut().append_pair("site", s);
        }
        let sent = self
            .client
            .get(url)
            .bearer_auth(self.token.expose())
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| format!("unreachable: {}", e.without_url()))?;
        Self::read(sent).await
    }

    /// Asks every peer how it is, all at once.
    pub async fn status_all(&self) -> Vec<(String, Result<PeerStatus, String>)> {
        let answers =
            futures_util::future::join_all(self.peers.iter().map(|p| self.status(p, None))).await;
        self.peers
            .iter()
            .map(|p| p.name.clone())
            .zip(answers)
            .map(|(name, a)| {
                let a = a.and_then(|s| {
                    if s.vantage == name {
                        Ok(s)
                    } else {
                        Err(format!("it answered as {}", s.vantage))
                    }
                });
                (name, a)
            })
            .collect()
    }

    /// Asks the peer named `name` how it judges `site`.
    pub async fn site_at(&self, name: &str, site: &str) -> Result<PeerStatus, String> {
        let peer = self
            .peers
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| format!("{name} is not a peer"))?;
        self.status(peer, Some(site)).await
    }
}
