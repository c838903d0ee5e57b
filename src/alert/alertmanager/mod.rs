//! Prometheus Alertmanager (API v2): the alerts sitewatch posts, and how
//! one post reaches every instance of a cluster.
//!
//! A site that is down fires `SitewatchSiteDown`, a degraded one
//! `SitewatchSiteDegraded`, labelled with the site and the cause code but
//! never with the vantage, so that two sitewatch instances watching the
//! same sites make one alert in Alertmanager. A firing alert ends
//! [`RESEND_ENDS_AFTER`] resend intervals after each post, a resolved one
//! ends now. Every instance is posted to (never a load balancer): a post
//! is accepted when one instance took it, the others are filled in by the
//! next refresh ([`super::dispatch`]). Building alerts is pure (`now` comes
//! in); [`Target::post`] is the only I/O.

use super::channel::{SendError, post_answer};
use super::{Alert, AlertKind, render};
use crate::config::{AlertmanagerSpec, Cluster, RESEND_ENDS_AFTER, is_label_name};
use crate::diagnosis::Cause;
use crate::state::Level;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};
use tokio::task::JoinSet;

/// Where alerts are posted, below each instance's base URL.
pub const ALERTS_PATH: &str = "/api/v2/alerts";
/// `alertname` of a site that is down.
pub const SITE_DOWN: &str = "SitewatchSiteDown";
/// `alertname` of a site that is degraded.
pub const SITE_DEGRADED: &str = "SitewatchSiteDegraded";
/// `alertname` of the always-firing alert of a running sitewatch.
pub const WATCHDOG: &str = "SitewatchWatchdog";
/// `alertname` of `sitewatch notify-test`.
pub const TEST: &str = "SitewatchTest";

/// A label set: what identifies an alert in Alertmanager.
pub type Labels = BTreeMap<String, String>;

/// One alert as Alertmanager's `postableAlert` has it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Postable {
    /// Identifying labels.
    pub labels: Labels,
    /// What people read; not identifying.
    pub annotations: BTreeMap<String, String>,
    /// When the state began.
    #[serde(rename = "startsAt", with = "crate::timefmt")]
    pub starts_at: SystemTime,
    /// When Alertmanager resolves the alert unless it hears again (now,
    /// for a resolved one).
    #[serde(rename = "endsAt", with = "crate::timefmt")]
    pub ends_at: SystemTime,
    /// The site's URL (without credentials).
    #[serde(rename = "generatorURL", skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<String>,
}

impl Postable {
    /// The same alert, resolved at `now`.
    pub fn resolved(&self, now: SystemTime) -> Postable {
        Postable {
            starts_at: self.starts_at.min(now),
            ends_at: now,
            ..self.clone()
        }
    }
}

/// What every alert of one channel shares: its static labels, the
/// instance's vantage and the resend interval.
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    /// Static labels (`labels`), added to every alert.
    pub labels: Labels,
    /// Who sees it (`[cluster] vantage`).
    pub vantage: String,
    /// How often firing alerts are posted again.
    pub resend_interval: Duration,
}

/// A firing alert's `endsAt` after a post at `now`.
fn ends(shape: &Shape, now: SystemTime) -> SystemTime {
    now + shape.resend_interval * RESEND_ENDS_AFTER
}

/// A URL without its `user:password@`, if it has one.
fn public_url(url: &str) -> Option<String> {
    if url.is_empty() {
        return None;
    }
    match url::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            Some(u.to_string())
        }
        _ => Some(url.to_string()),
    }
}

impl Shape {
    /// The shape of a channel of sites.toml in this cluster.
    pub fn new(spec: &AlertmanagerSpec, cluster: &Cluster) -> Shape {
        Shape {
            labels: spec.labels.clone(),
            vantage: cluster.vantage.clone(),
            resend_interval: spec.resend_interval,
        }
    }

    /// The static labels plus `own` (which always win).
    fn labels(&self, own: &[(&str, &str)]) -> Labels {
        let mut l = self.labels.clone();
        for (k, v) in own {
            l.insert((*k).to_string(), (*v).to_string());
        }
        l
    }

    /// The alert of `site` being at `level` (down or degraded) for `cause`,
    /// told by `a` (its summary, detail, hint and URL).
    fn site(
        &self,
        a: &Alert,
        level: Level,
        cause: Cause,
        starts: SystemTime,
        ends_at: SystemTime,
    ) -> Postable {
        let (alertname, severity) = match level {
            Level::Degraded => (SITE_DEGRADED, "warning"),
            _ => (SITE_DOWN, "critical"),
        };
        let mut notes = BTreeMap::new();
        let summary = render::subject(a);
        notes.insert(
            "summary".to_string(),
            summary.trim_start_matches("[sitewatch] ").to_string(),
        );
        if !a.detail.is_empty() {
            notes.insert("description".to_string(), a.detail.clone());
        }
        if let Some(h) = &a.hint {
            notes.insert("hint".to_string(), h.clone());
        }
        let url = public_url(&a.url);
        if let Some(u) = &url {
            notes.insert("url".to_string(), u.clone());
        }
        notes.insert("vantage".to_string(), self.vantage.clone());
        if !a.seen.is_empty() {
            notes.insert("vantages".to_string(), render::seen_lines(a).join("\n"));
        }
        Postable {
            labels: self.labels(&[
                ("alertname", alertname),
                ("site", &a.site),
                ("cause", cause.as_str()),
                ("severity", severity),
            ]),
            annotations: notes,
            starts_at: starts.min(ends_at),
            ends_at,
            generator_url: url,
        }
    }

    /// What a transition's alert posts: the alert it fires and those it
    /// resolves, in one array (a cause change resolves the old cause's
    /// alert and fires the new one). Reminders, storms, flapping and
    /// settled notices post nothing: the refresh keeps Alertmanager in
    /// step with every site's state, and Alertmanager groups and repeats
    /// notifications itself.
    pub fn for_alert(&self, a: &Alert, now: SystemTime) -> Vec<Postable> {
        let fire = |level, cause| self.site(a, level, cause, a.since, ends(self, now));
        let resolve = |level, cause, starts| self.site(a, level, cause, starts, now);
        let mut out = Vec::new();
        match a.kind {
            AlertKind::Down => {
                // From degraded: that alert ends as this one begins.
                if let Some(p) = a.previous_cause {
                    out.push(resolve(Level::Degraded, p, a.since));
                }
                out.extend(a.cause.map(|c| fire(Level::Down, c)));
            }
            AlertKind::CauseChanged => {
                if let Some(p) = a.previous_cause.filter(|p| Some(*p) != a.cause) {
                    out.push(resolve(Level::Down, p, a.since));
                }
                out.extend(a.cause.map(|c| fire(Level::Down, c)));
            }
            AlertKind::Degraded => {
                if let Some(p) = a.previous_cause.filter(|p| Some(*p) != a.cause) {
                    out.push(resolve(Level::Degraded, p, a.since));
                }
                out.extend(a.cause.map(|c| fire(Level::Degraded, c)));
            }
            AlertKind::Recovered => {
                let outage = Duration::from_secs(a.outage_s.unwrap_or(0));
                let began = a.since.checked_sub(outage).unwrap_or(a.since);
                if let Some(p) = a.previous_cause {
                    out.push(resolve(Level::Down, p, began));
                }
                // Back, but degraded: that alert fires now.
                if let (Level::Degraded, Some(c)) = (a.status, a.cause) {
                    out.push(self.degraded_after_recovery(a, c, now));
                }
            }
            AlertKind::Resolved => {
                out.extend(
                    a.previous_cause
                        .map(|p| resolve(Level::Degraded, p, a.since)),
                );
            }
            AlertKind::Forgotten => {
                out.extend(a.cause.map(|c| resolve(Level::Down, c, a.since)));
            }
            AlertKind::Test => out.push(self.test(a, now)),
            // This monitor's own network: its watchdog alert tells
            // Alertmanager users more reliably than a post that may not
            // get out while the network is down.
            AlertKind::Reminder
            | AlertKind::Storm
            | AlertKind::Flapping
            | AlertKind::Settled
            | AlertKind::NetworkLost
            | AlertKind::NetworkBack
            | AlertKind::VantageLost
            | AlertKind::VantageBack => {}
        }
        out
    }

    fn degraded_after_recovery(&self, a: &Alert, cause: Cause, now: SystemTime) -> Postable {
        let told = Alert {
            kind: AlertKind::Degraded,
            ..a.clone()
        };
        self.site(&told, Level::Degraded, cause, a.since, ends(self, now))
    }

    /// The firing alert of a site whose latest alert is `a` (a down alert
    /// of an open outage, or the alert that made it degraded), posted
    /// again at `now`; `None` for an alert of another state.
    pub fn firing(&self, a: &Alert, now: SystemTime) -> Option<Postable> {
        let cause = a.cause?;
        match (a.status, a.kind) {
            (Level::Down, _) => Some(self.site(a, Level::Down, cause, a.since, ends(self, now))),
            (Level::Degraded, AlertKind::Recovered) => {
                Some(self.degraded_after_recovery(a, cause, now))
            }
            (Level::Degraded, _) => {
                Some(self.site(a, Level::Degraded, cause, a.since, ends(self, now)))
            }
            _ => None,
        }
    }

    /// The always-firing alert of this running sitewatch (`started` at its
    /// start): when sitewatch stops, it resolves, and a dead man's switch
    /// routed on it fires.
    pub fn watchdog(&self, started: SystemTime, now: SystemTime) -> Postable {
        let mut notes = BTreeMap::new();
        notes.insert(
            "summary".to_string(),
            format!("sitewatch {} is running", self.vantage),
        );
        notes.insert(
            "description".to_string(),
            format!(
                "Fires while sitewatch {} runs and reaches this Alertmanager; it resolves when sitewatch stops. Route it to a dead man's switch.",
                self.vantage
            ),
        );
        notes.insert("vantage".to_string(), self.vantage.clone());
        let ends_at = ends(self, now);
        Postable {
            labels: self.labels(&[
                ("alertname", WATCHDOG),
                ("vantage", &self.vantage),
                ("severity", "none"),
            ]),
            annotations: notes,
            starts_at: started.min(ends_at),
            ends_at,
            generator_url: None,
        }
    }

    /// `sitewatch notify-test`: an alert that ends as it begins, so that it
    /// checks the post without paging anyone.
    fn test(&self, a: &Alert, now: SystemTime) -> Postable {
        let mut notes = BTreeMap::new();
        notes.insert(
            "summary".to_string(),
            render::subject(a)
                .trim_start_matches("[sitewatch] ")
                .to_string(),
        );
        notes.insert(
            "description".to_string(),
            format!(
                "A test alert from sitewatch {} for channel {}; it ends at once.",
                self.vantage, a.site
            ),
        );
        notes.insert("vantage".to_string(), self.vantage.clone());
        Postable {
            labels: self.labels(&[
                ("alertname", TEST),
                ("vantage", &self.vantage),
                ("severity", "none"),
            ]),
            annotations: notes,
            starts_at: now,
            ends_at: now,
            generator_url: None,
        }
    }
}

/// Checks what is about to be sent (Alertmanager 0.25 takes an alert
/// without `alertname`): every alert has one, every label name is valid,
/// no value is empty, and none ends before it starts.
pub fn validate(alerts: &[Postable]) -> Result<(), String> {
    for a in alerts {
        if a.labels.get("alertname").is_none_or(String::is_empty) {
            return Err(format!("an alert without alertname: {:?}", a.labels));
        }
        for (k, v) in &a.labels {
            if !is_label_name(k) {
                return Err(format!("invalid label name {k:?}"));
            }
            if v.is_empty() {
                return Err(format!("label {k:?} has an empty value"));
            }
        }
        if a.ends_at < a.starts_at {
            return Err(format!("alert {:?} ends before it starts", a.labels));
        }
    }
    Ok(())
}

/// The Alertmanager side of a channel: its instances and how to reach them.
pub struct Target {
    /// What its alerts share.
    pub shape: Shape,
    /// Base URLs of every instance.
    urls: Vec<String>,
    /// `Authorization: Bearer` value, if any.
    token: Option<super::channel::Secret>,
    client: reqwest::Client,
}

/// How one post went: accepted by some instances, refused by others.
#[derive(Debug)]
pub struct Outcome {
    /// Instances that took it.
    pub accepted: Vec<String>,
    /// Instances that did not: the status they answered (if they did) and
    /// what it means.
    pub failed: Vec<(String, Option<u16>, SendError)>,
}

impl Outcome {
    /// Accepted when one instance took it (the refresh fills in the
    /// others). Otherwise permanent when an instance refused the alerts
    /// themselves (400: Alertmanager says why), else transient.
    pub fn verdict(&self) -> Result<(), SendError> {
        if !self.accepted.is_empty() || self.failed.is_empty() {
            return Ok(());
        }
        let message = self.failed_text();
        let refused = self
            .failed
            .iter()
            .any(|(_, status, _)| *status == Some(400));
        let transient = self
            .failed
            .iter()
            .any(|(_, _, e)| matches!(e, SendError::Transient { .. }));
        if transient && !refused {
            let retry_after = self
                .failed
                .iter()
                .filter_map(|(_, _, e)| match e {
                    SendError::Transient { retry_after, .. } => *retry_after,
                    SendError::Permanent(_) => None,
                })
                .min();
            Err(SendError::Transient {
                message,
                retry_after,
            })
        } else {
            Err(SendError::Permanent(message))
        }
    }

    /// `URL: error; URL: error`, for messages and logs.
    pub fn failed_text(&self) -> String {
        self.failed
            .iter()
            .map(|(url, _, e)| match e {
                SendError::Transient { message, .. } => format!("{url}: {message}"),
                SendError::Permanent(m) => format!("{url}: {m}"),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl Target {
    /// The instances of `spec`, reached through `client`.
    pub fn new(
        spec: &AlertmanagerSpec,
        cluster: &Cluster,
        token: Option<super::channel::Secret>,
        client: reqwest::Client,
    ) -> Target {
        Target {
            shape: Shape::new(spec, cluster),
            urls: spec.urls.clone(),
            token,
            client,
        }
    }

    /// Posts `alerts` (one JSON array) to every instance at once.
    pub async fn post(&self, alerts: &[Postable]) -> Result<Outcome, SendError> {
        validate(alerts).map_err(|e| SendError::Permanent(format!("not sent: {e}")))?;
        let body = serde_json::to_vec(alerts).map_err(|e| SendError::Permanent(e.to_string()))?;
        let mut headers = Vec::new();
        if let Some(t) = &self.token {
            headers.push((
                "authorization".to_string(),
                format!("Bearer {}", t.expose()),
            ));
        }
        let mut posts = JoinSet::new();
        let mut which = std::collections::HashMap::new();
        for (i, base) in self.urls.iter().enumerate() {
            let (client, url, body, headers) = (
                self.client.clone(),
                format!("{base}{ALERTS_PATH}"),
                body.clone(),
                headers.clone(),
            );
            let task = posts.spawn(async move { post_answer(&client, &url, body, &headers).await });
            which.insert(task.id(), i);
        }
        let mut results = Vec::new();
        while let Some(done) = posts.join_next_with_id().await {
            results.push(match done {
                Ok((task, r)) => (which.get(&task).copied(), r),
                // A post that panicked is a failed post.
                Err(e) => (
                    which.get(&e.id()).copied(),
                    Err(super::channel::PostFailure {
                        status: None,
                        error: SendError::Transient {
                            message: format!("the post failed: {e}"),
                            retry_after: None,
                        },
                    }),
                ),
            });
        }
        results.sort_by_key(|(i, _)| *i);
        let mut outcome = Outcome {
            accepted: Vec::new(),
            failed: Vec::new(),
        };
        for (i, r) in results {
            let url = i
                .and_then(|i| self.urls.get(i))
                .cloned()
                .unwrap_or_default();
            match r {
                Ok(()) => outcome.accepted.push(url),
                Err(f) => outcome.failed.push((url, f.status, f.error)),
            }
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests;
