//! What a start reads back: saved states, and the outages the configuration
//! no longer matches (closed as forgotten), then the alerts still due, the
//! deliveries still pending and the outages still open.

use super::super::{Record, Resumed, journal, kept};
use super::Writer;
use crate::alert::Forget;
use crate::config::SiteSpec;
use crate::state::SiteState;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

impl Writer {
    /// Loads what the last run left and settles what the configuration no
    /// longer matches: an outage of a site that is gone, or whose probe
    /// settings changed while sitewatch was stopped, is closed as forgotten
    /// (as a reload would), and the alerts that were due are resumed.
    pub(super) fn resume(&mut self, dir: &Path, sites: &[Arc<SiteSpec>]) -> Resumed {
        let mut out = Resumed::default();
        let now = (self.clock)();
        let Some(conn) = self.conn.as_mut() else {
            return out;
        };
        match journal::import_legacy_outbox(conn, dir, now) {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                deliveries = n,
                "took over the pending alerts of the old outbox.db"
            ),
            Err(e) => {
                tracing::error!(error = %e, "cannot take over the old outbox.db; it is left in place")
            }
        }
        let loaded = self.load_states(sites);
        let (states, stale) = match loaded {
            Ok(v) => v,
            Err(e) => {
                self.fail(format!("cannot read saved states: {e}"));
                return out;
            }
        };
        out.states = states;
        let configured: HashSet<&str> = sites.iter().map(|s| s.name.as_str()).collect();
        for site in stale {
            self.pending.push_back(Record::Reset {
                state: Some(SiteState::new(now)),
                site,
                why: Forget::Changed,
                at: now,
                forwarded: false,
            });
        }
        let gone = self
            .conn
            .as_ref()
            .map(journal::sites_with_open_outage)
            .transpose();
        match gone {
            Ok(list) => {
                for (_, name) in list.unwrap_or_default() {
                    if !configured.contains(name.as_str()) {
                        tracing::info!(site = %name, "the site is no longer configured: its open outage is closed");
                        self.pending.push_back(Record::Reset {
                            site: Arc::new(placeholder(&name)),
                            state: None,
                            why: Forget::Removed,
                            at: now,
                            forwarded: false,
                        });
                    }
                }
            }
            Err(e) => self.fail(format!("cannot read open outages: {e}")),
        }
        // Written now; their notices are read back below with every other
        // due alert rather than handed on twice.
        let events = self.events.take();
        self.flush(true);
        self.events = events;
        let Some(conn) = self.conn.as_ref() else {
            return out;
        };
        let read = journal::due(conn).and_then(|mut due| {
            due.extend(journal::due_network(conn)?);
            due.sort_by_key(|e| e.alert.at);
            Ok((
                due,
                journal::pending(conn)?,
                journal::outages(conn, &configured)?,
                kept::network_state(conn)?,
                kept::peers_lost(conn)?,
                kept::heartbeats(conn)?,
                kept::silences(conn, now)?,
                journal::threads(conn)?,
            ))
        });
        match read {
            Ok((due, deliveries, outages, network, peers_lost, heartbeats, silences, threads)) => {
                out.threads = threads;
                out.heartbeats = heartbeats;
                out.silences = silences;
                out.due = due;
                out.deliveries = deliveries;
                out.outages = outages;
                out.network = network;
                out.peers_lost = peers_lost;
            }
            Err(e) => self.fail(format!("cannot read the alert journal: {e}")),
        }
        out
    }

    /// Saved states of `sites`, and the sites whose saved state was observed
    /// with other probe settings (to be reset).
    #[allow(clippy::type_complexity)]
    fn load_states(
        &mut self,
        sites: &[Arc<SiteSpec>],
    ) -> Result<(HashMap<String, SiteState>, Vec<Arc<SiteSpec>>), rusqlite::Error> {
        let mut out = HashMap::new();
        let mut stale = Vec::new();
        let Some(conn) = &self.conn else {
            return Ok((out, stale));
        };
        let rows: Vec<(String, String, Option<String>, String)> = conn
            .prepare("SELECT s.name, st.url, st.probe_key, st.state FROM site_state st JOIN site s ON s.id = st.site_id")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?;
        let saved: HashMap<String, (String, Option<String>, String)> = rows
            .into_iter()
            .map(|(n, u, k, s)| (n, (u, k, s)))
            .collect();
        for site in sites {
            let Some((url, key, json)) = saved.get(&site.name) else {
                continue;
            };
            // States saved before probe keys existed are matched by url.
            let same = match key {
                Some(k) => *k == crate::config::probe_key(site),
                None => *url == site.target.url,
            };
            if !same {
                tracing::info!(site = %site.name, "the site's probe settings changed while sitewatch was stopped: it starts over");
                stale.push(Arc::clone(site));
                continue;
            }
            match serde_json::from_str::<SiteState>(json) {
                Ok(state) => {
                    out.insert(site.name.clone(), state);
                }
                Err(e) => {
                    tracing::warn!(site = %site.name, error = %e, "unreadable saved state, starting unknown")
                }
            }
        }
        if !out.is_empty() {
            tracing::info!(resumed = out.len(), "resumed saved site states");
        }
        Ok((out, stale))
    }
}

/// A spec that only names a site: for closing the outage of a site that is
/// no longer configured.
fn placeholder(name: &str) -> SiteSpec {
    let target = crate::config::Target {
        url: String::new(),
        scheme: crate::config::Scheme::Tcp,
        host: crate::config::Host::Name(String::new()),
        host_str: String::new(),
        port: 0,
        path: String::new(),
    };
    SiteSpec::with_defaults(name, target, crate::config::TIMEOUT)
}
