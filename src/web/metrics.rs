//! `GET /metrics`: the Prometheus exposition (OpenMetrics text), encoded by
//! prometheus-client from the store's *current* state at each scrape.
//!
//! A custom [`Collector`] reads [`StatusStore::sites`] and
//! [`StatusStore::health`] when Prometheus scrapes, so there is no second
//! copy of the state to keep in step: a site removed from the configuration
//! is simply not there at the next scrape. Names follow blackbox_exporter
//! where the meaning matches (`probe_success`, `probe_duration_seconds`, …,
//! each with `site` and `url` labels, never `instance` or `job`), and daemon
//! figures carry the `sitewatch_` prefix.

use crate::diagnosis::{Layer, Status};
use crate::store::{SiteView, StatusStore};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::fmt;

/// The content type of the exposition. Prometheus asks for OpenMetrics and
/// parses it; note that `promtool check metrics` (2.42) rejects the
/// OpenMetrics counter layout ("no help text"), which is a promtool limit,
/// not a scrape problem.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The registry that `/metrics` encodes: one collector over the store, plus
/// any [`Metrics::register`] adds.
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// Metrics over `store`, read at every [`Metrics::render`].
    pub fn new(store: StatusStore) -> Metrics {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(StoreCollector { store }));
        Metrics { registry }
    }

    /// Adds series that are not the store's (the API server's own figures),
    /// encoded after the store's at every [`Metrics::render`].
    pub fn register(&mut self, collector: Box<dyn Collector>) {
        self.registry.register_collector(collector);
    }

    /// The exposition as of now, ending with `# EOF`.
    pub fn render(&self) -> Result<String, fmt::Error> {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Reads the store at scrape time.
struct StoreCollector {
    store: StatusStore,
}

impl fmt::Debug for StoreCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreCollector").finish_non_exhaustive()
    }
}

/// `site` and `url`, the labels of every per-site probe series.
fn site_labels(s: &SiteView) -> [(&'static str, String); 2] {
    [("site", s.name.clone()), ("url", s.url.clone())]
}

/// Encodes one metric family: a descriptor, then one sample per row.
pub(crate) fn family<L, M>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    kind: MetricType,
    rows: impl IntoIterator<Item = (L, M)>,
) -> fmt::Result
where
    L: EncodeLabelSet,
    M: EncodeMetric,
{
    let mut metric = enc.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in rows {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Encodes one metric without labels.
pub(crate) fn single(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: impl EncodeMetric,
) -> fmt::Result {
    value.encode(enc.encode_descriptor(name, help, None, value.metric_type())?)
}

fn gauge(v: f64) -> ConstGauge<f64> {
    ConstGauge::new(v)
}

/// Milliseconds as seconds, to the microsecond (no float noise such as 0.00028399999999999996).
fn seconds(ms: f64) -> ConstGauge<f64> {
    ConstGauge::new((ms * 1000.0).round() / 1e6)
}

/// Blackbox's phase of each of our layers.
fn phase(layer: Layer) -> &'static str {
    match layer {
        Layer::Dns => "resolve",
        Layer::Tcp => "connect",
        Layer::Tls => "tls",
        Layer::Http => "processing",
        Layer::Vantage => "vantages",
        Layer::Heartbeat => "heartbeat",
        Layer::Site => "site",
        Layer::Domain => "domain",
    }
}

fn is_http(s: &SiteView) -> bool {
    s.url.starts_with("http://") || s.url.starts_with("https://")
}

impl Collector for StoreCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
        let sites = self.store.sites();
        let health = self.store.health();
        // Sites probed at least once: the probe_* series describe the last probe.
        let probed: Vec<&SiteView> = sites.iter().filter(|s| s.last_probe.is_some()).collect();

        family(
            &mut enc,
            "probe_success",
            "Whether the last probe reached the site (1) or found it down (0); degraded counts as reached",
            MetricType::Gauge,
            probed.iter().map(|s| {
                let ok = s.probe_status != Some(Status::Down);
                (site_labels(s), gauge(if ok { 1.0 } else { 0.0 }))
            }),
        )?;
        family(
            &mut enc,
            "probe_duration_seconds",
            "How long the last probe took, in seconds",
            MetricType::Gauge,
            probed
                .iter()
                .filter_map(|s| Some((site_labels(s), seconds(s.duration_ms?)))),
        )?;
        family(
            &mut enc,
            "probe_dns_lookup_time_seconds",
            "How long the last probe's DNS lookup took, in seconds",
            MetricType::Gauge,
            probed.iter().filter_map(|s| {
                let dns = s.layers.iter().find(|l| l.layer == Layer::Dns)?;
                Some((site_labels(s), seconds(dns.ms)))
            }),
        )?;
        family(
            &mut enc,
            "probe_http_status_code",
            "The HTTP status of the last probe's response, 0 if none was received",
            MetricType::Gauge,
            probed
                .iter()
                .filter(|s| is_http(s))
                .map(|s| (site_labels(s), gauge(f64::from(s.http_status.unwrap_or(0))))),
        )?;
        family(
            &mut enc,
            "probe_http_duration_seconds",
            "Duration of each phase the last HTTP probe reached, in seconds (resolve, connect, tls, processing)",
            MetricType::Gauge,
            probed.iter().filter(|s| is_http(s)).flat_map(|s| {
                s.layers.iter().map(|l| {
                    (
                        [
                            ("site", s.name.clone()),
                            ("url", s.url.clone()),
                            ("phase", phase(l.layer).to_string()),
                        ],
                        seconds(l.ms),
                    )
                })
            }),
        )?;
        family(
            &mut enc,
            "probe_ssl_earliest_cert_expiry",
            "When the leaf certificate the last probe saw expires, in Unix seconds",
            MetricType::Gauge,
            probed.iter().filter_map(|s| {
                let cert = s.cert.as_ref()?;
                Some((site_labels(s), gauge(super::unix_secs(cert.not_after))))
            }),
        )?;

        family(
            &mut enc,
            "sitewatch_site_status",
            "The confirmed status of each site (1 for the current status and cause)",
            MetricType::Gauge,
            sites.iter().map(|s| {
                (
                    [
                        ("site", s.name.clone()),
                        ("status", s.status.to_string()),
                        (
                            "cause",
                            s.cause.map(|c| c.as_str()).unwrap_or("").to_string(),
                        ),
                    ],
                    gauge(1.0),
                )
            }),
        )?;
        family(
            &mut enc,
            "sitewatch_transitions",
            "Confirmed status changes of each site since sitewatch started",
            MetricType::Counter,
            sites
                .iter()
                .map(|s| ([("site", s.name.clone())], ConstCounter::new(s.transitions))),
        )?;

        family(
            &mut enc,
            "sitewatch_recent_failure_ratio",
            "Share of the site's latest probes that failed (its intermittent_window, since the last confirmed outage)",
            MetricType::Gauge,
            sites
                .iter()
                .map(|s| ([("site", s.name.clone())], gauge(s.recent.failure_rate))),
        )?;
        family(
            &mut enc,
            "sitewatch_site_flapping",
            "Whether the site changes state so often that its alerts are held back (1) or not (0)",
            MetricType::Gauge,
            sites.iter().map(|s| {
                (
                    [("site", s.name.clone())],
                    gauge(if s.flapping { 1.0 } else { 0.0 }),
                )
            }),
        )?;
        family(
            &mut enc,
            "sitewatch_domain_expiry_timestamp_seconds",
            "When the registration of the site's domain expires (RDAP), in Unix seconds; absent while unknown",
            MetricType::Gauge,
            sites.iter().filter_map(|s| {
                let d = s.domain.as_ref()?;
                Some((
                    [("site", s.name.clone()), ("domain", d.name.clone())],
                    gauge(super::unix_secs(d.expires?)),
                ))
            }),
        )?;
        family(
            &mut enc,
            "sitewatch_maintenance_active",
            "Whether a maintenance window covers the site now (1) or not (0)",
            MetricType::Gauge,
            sites.iter().map(|s| {
                (
                    [("site", s.name.clone())],
                    gauge(if s.maintenance.is_some() { 1.0 } else { 0.0 }),
                )
            }),
        )?;
        let beats: Vec<(&SiteView, &crate::heartbeat::ledger::HeartbeatView)> = sites
            .iter()
            .filter_map(|s| Some((s, s.heartbeat.as_ref()?)))
            .collect();
        family(
            &mut enc,
            "sitewatch_heartbeat_last_ping_timestamp_seconds",
            "When each heartbeat last signalled (start, success or failure), in Unix seconds",
            MetricType::Gauge,
            beats.iter().filter_map(|(s, h)| {
                Some((
                    [("site", s.name.clone())],
                    gauge(super::unix_secs(h.last_ping?)),
                ))
            }),
        )?;
        family(
            &mut enc,
            "sitewatch_heartbeat_last_success_timestamp_seconds",
            "When each heartbeat's job last reported success, in Unix seconds",
            MetricType::Gauge,
            beats.iter().filter_map(|(s, h)| {
                Some((
                    [("site", s.name.clone())],
                    gauge(super::unix_secs(h.last_success?)),
                ))
            }),
        )?;
        family(
            &mut enc,
            "sitewatch_heartbeat_last_duration_seconds",
            "How long each heartbeat's latest run took from start to end, in seconds",
            MetricType::Gauge,
            beats
                .iter()
                .filter_map(|(s, h)| Some(([("site", s.name.clone())], gauge(h.last_duration_s?)))),
        )?;
        family(
            &mut enc,
            "sitewatch_heartbeat_running",
            "Runs of each heartbeat's job started and not yet finished",
            MetricType::Gauge,
            beats
                .iter()
                .map(|(s, h)| ([("site", s.name.clone())], gauge(h.open_runs as f64))),
        )?;

        let mut channels: Vec<(String, crate::alert::ChannelStats)> = health
            .alerts
            .as_ref()
            .map(|a| a.channels.clone().into_iter().collect())
            .unwrap_or_default();
        channels.sort_by(|a, b| a.0.cmp(&b.0));
        family(
            &mut enc,
            "sitewatch_alert_deliveries",
            "Alert deliveries per channel: sent, failed (attempts, retried or not), given_up, and delegated (sent by another vantage, the site's owner)",
            MetricType::Counter,
            channels.iter().flat_map(|(name, c)| {
                [
                    ("sent", c.sent),
                    ("failed", c.failed_attempts),
                    ("given_up", c.given_up),
                    ("delegated", c.delegated),
                ]
                .map(|(result, n)| {
                    (
                        [("channel", name.clone()), ("result", result.to_string())],
                        ConstCounter::new(n),
                    )
                })
            }),
        )?;
        family(
            &mut enc,
            "sitewatch_notifications",
            "Alerts delivered, per channel and event (down, recovered, ...)",
            MetricType::Counter,
            channels.iter().flat_map(|(name, c)| {
                c.sent_events.iter().map(|(event, n)| {
                    (
                        [("channel", name.clone()), ("event", event.clone())],
                        ConstCounter::new(*n),
                    )
                })
            }),
        )?;
        family(
            &mut enc,
            "sitewatch_notification_failures",
            "Failed delivery attempts, per channel and reason: transient (retried), permanent (refused for good), expired (given up after 24 h)",
            MetricType::Counter,
            channels.iter().flat_map(|(name, c)| {
                c.failures.iter().map(|(reason, n)| {
                    (
                        [("channel", name.clone()), ("reason", reason.clone())],
                        ConstCounter::new(*n),
                    )
                })
            }),
        )?;
        single(
            &mut enc,
            "sitewatch_notifications_pending",
            "Alert deliveries waiting for their first attempt or a retry",
            ConstGauge::new(health.alerts.as_ref().map_or(0, |a| a.pending) as i64),
        )?;

        single(
            &mut enc,
            "sitewatch_config_last_reload_successful",
            "Whether the last configuration load or reload succeeded",
            ConstGauge::new(i64::from(health.config.last_reload_ok)),
        )?;
        single(
            &mut enc,
            "sitewatch_config_last_reload_success_timestamp_seconds",
            "When the configuration in use was loaded, in Unix seconds",
            gauge(super::unix_secs(health.config.loaded_at)),
        )?;
        if let Some(net) = &health.network {
            single(
                &mut enc,
                "sitewatch_self_check_up",
                "Whether this monitor's own network works (1), as its self-check finds; while 0, failed probes are not believed",
                ConstGauge::new(i64::from(net.state == crate::selfcheck::NetState::Ok)),
            )?;
            single(
                &mut enc,
                "sitewatch_self_check",
                "The self-check's verdict: ok, offline, dns_broken or ipv6_broken",
                Info::new([("state", net.state.as_str())]),
            )?;
            single(
                &mut enc,
                "sitewatch_self_check_since_timestamp_seconds",
                "When the self-check's verdict last changed, in Unix seconds",
                gauge(super::unix_secs(net.since)),
            )?;
        }
        if let Some(peers) = &health.peers {
            family(
                &mut enc,
                "sitewatch_peer_up",
                "Whether each peer vantage answered its last check (1) or not (0)",
                MetricType::Gauge,
                peers.iter().filter_map(|p| {
                    Some((
                        [("peer", p.name.clone())],
                        ConstGauge::new(i64::from(p.up?)),
                    ))
                }),
            )?;
            family(
                &mut enc,
                "sitewatch_peer_last_seen_timestamp_seconds",
                "When each peer vantage last answered, in Unix seconds",
                MetricType::Gauge,
                peers.iter().filter_map(|p| {
                    Some((
                        [("peer", p.name.clone())],
                        gauge(super::unix_secs(p.last_seen?)),
                    ))
                }),
            )?;
        }
        family(
            &mut enc,
            "sitewatch_site_vantage_up",
            "What each vantage saw of each site at the last vote: 1 up, 0 down (a vantage that abstained is left out)",
            MetricType::Gauge,
            sites.iter().flat_map(|s| {
                s.vantages.iter().filter_map(move |v| {
                    let up = match v.verdict.as_str() {
                        "up" => 1,
                        "down" => 0,
                        _ => return None,
                    };
                    Some((
                        [("site", s.name.clone()), ("vantage", v.vantage.clone())],
                        ConstGauge::new(up),
                    ))
                })
            }),
        )?;
        single(
            &mut enc,
            "sitewatch_build",
            "sitewatch's version",
            Info::new([("version", health.version)]),
        )?;

        let sched = &health.scheduler;
        single(
            &mut enc,
            "sitewatch_probes",
            "Probes completed since sitewatch started",
            ConstCounter::new(sched.probes),
        )?;
        single(
            &mut enc,
            "sitewatch_probe_errors",
            "Probes sitewatch itself could not make (e.g. out of file descriptors)",
            ConstCounter::new(sched.probe_errors),
        )?;
        single(
            &mut enc,
            "sitewatch_probes_skipped",
            "Probe slots skipped because the site's previous probe still ran",
            ConstCounter::new(sched.skipped),
        )?;
        single(
            &mut enc,
            "sitewatch_probes_in_flight",
            "Probes running now",
            ConstGauge::new(sched.in_flight as i64),
        )?;
        family(
            &mut enc,
            "sitewatch_scheduler_lag_seconds",
            "Scheduling lag (actual minus planned probe start) since start-up: median, 99th percentile and largest (quantile 1)",
            MetricType::Gauge,
            [
                ("0.5", sched.lag_ms.p50),
                ("0.99", sched.lag_ms.p99),
                ("1", sched.lag_ms.max),
            ]
            .map(|(q, ms)| ([("quantile", q)], seconds(ms))),
        )?;
        single(
            &mut enc,
            "sitewatch_history_ok",
            "Whether sitewatch can keep its history (0: the disk is full or read-only, the database unreadable)",
            ConstGauge::new(i64::from(health.storage_error.is_none())),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SiteSpec;
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::time::SystemTime;

    fn store(dir: &std::path::Path, names: &[(&str, &str)]) -> StatusStore {
        let text: String = names
            .iter()
            .map(|(n, u)| format!("[[site]]\nname = \"{n}\"\nurl = \"{u}\"\n\n"))
            .collect();
        let path = dir.join("sites.toml");
        std::fs::write(&path, text).unwrap();
        let config = crate::config::load(&path).unwrap();
        let sites: Vec<Arc<SiteSpec>> = config.sites.clone();
        StatusStore::new(&sites, SystemTime::now(), &HashMap::new(), None)
    }

    #[test]
    fn unprobed_sites_have_a_status_but_no_probe_series() {
        let dir = tempfile::tempdir().unwrap();
        let m = Metrics::new(store(dir.path(), &[("shop", "https://shop.example.com/")]));
        let text = m.render().unwrap();
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(
            text.contains(r#"sitewatch_site_status{site="shop",status="unknown",cause=""} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"sitewatch_transitions_total{site="shop"} 0"#),
            "{text}"
        );
        assert!(!text.contains("probe_success{"), "{text}");
        assert!(text.contains(r#"sitewatch_build_info{version=""#), "{text}");
        assert!(
            text.contains(r#"sitewatch_scheduler_lag_seconds{quantile="0.99"} 0"#),
            "{text}"
        );
        assert!(!text.contains("instance="), "{text}");
        assert!(!text.contains("job="), "{text}");
    }
}
