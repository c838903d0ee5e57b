//! The words of every alert: subject, email body, Slack payload and the
//! generic webhook's JSON. Pure: the alert and `now` come in, text comes out.

use super::{Alert, AlertKind};
use crate::diagnosis::Cause;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime};

pub(crate) fn words(c: Option<Cause>) -> String {
    c.map_or_else(
        || "unknown cause".to_string(),
        |c| format!("{} ({c})", c.words()),
    )
}

/// A duration the way people say it: `3h 12m`, `45s`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, mins, secs) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (days, hours, mins) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, _) => format!("{mins}m {secs}s"),
        (0, _, _) => format!("{hours}h {mins}m"),
        _ => format!("{days}d {hours}h"),
    }
}

/// A wall-clock time as `2026-11-25 19:00:00 UTC`.
pub fn when(t: SystemTime) -> String {
    let s = humantime::format_rfc3339_seconds(t).to_string();
    format!("{} UTC", s.trim_end_matches('Z').replace('T', " "))
}

/// The subject line: short and greppable.
pub fn subject(a: &Alert) -> String {
    let site = &a.site;
    match a.kind {
        AlertKind::Down => format!("[sitewatch] DOWN {site} — {}", words(a.cause)),
        AlertKind::CauseChanged => format!(
            "[sitewatch] STILL DOWN {site} — now {}, was {}",
            words(a.cause),
            words(a.previous_cause)
        ),
        AlertKind::Degraded => format!("[sitewatch] DEGRADED {site} — {}", words(a.cause)),
        AlertKind::Recovered => format!(
            "[sitewatch] RECOVERED {site} — up after {}",
            human(Duration::from_secs(a.outage_s.unwrap_or(0)))
        ),
        AlertKind::Resolved => format!(
            "[sitewatch] OK {site} — no longer degraded ({})",
            words(a.previous_cause)
        ),
        AlertKind::Reminder => format!(
            "[sitewatch] STILL DOWN {site} — {} for {}",
            words(a.cause),
            human(a.at.duration_since(a.since).unwrap_or_default())
        ),
        AlertKind::Test => format!("[sitewatch] TEST {site} — this channel works"),
        AlertKind::Storm => format!("[sitewatch] DOWN {site} — {}", words(a.cause)),
        AlertKind::Flapping => format!("[sitewatch] FLAPPING {site} — quiet until it settles"),
        AlertKind::Settled => format!(
            "[sitewatch] SETTLED {site} — now {}",
            a.status.as_str().to_uppercase()
        ),
        AlertKind::Forgotten => format!(
            "[sitewatch] OUTAGE CLOSED {site} — no longer tracked, {}",
            words(a.cause)
        ),
        AlertKind::NetworkLost => {
            format!("[sitewatch] MONITOR {site} LOST ITS NETWORK — sites cannot be verified")
        }
        AlertKind::NetworkBack => format!(
            "[sitewatch] MONITOR {site} NETWORK BACK — after {}",
            human(Duration::from_secs(a.outage_s.unwrap_or(0)))
        ),
        AlertKind::VantageLost => format!("[sitewatch] VANTAGE {site} UNREACHABLE"),
        AlertKind::VantageBack => format!(
            "[sitewatch] VANTAGE {site} BACK — after {}",
            human(Duration::from_secs(a.outage_s.unwrap_or(0)))
        ),
    }
}

/// One line per layer: `dns ok 3.1 ms · tcp FAIL 0.4 ms`.
pub(crate) fn layers_line(a: &Alert) -> String {
    a.layers
        .iter()
        .map(|l| {
            format!(
                "{} {} {:.1} ms",
                l.layer.as_str(),
                if l.ok { "ok" } else { "FAIL" },
                l.ms
            )
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

pub(crate) fn headline(a: &Alert) -> String {
    let site = &a.site;
    match a.kind {
        AlertKind::Down => format!("{site} is DOWN: {}", words(a.cause)),
        AlertKind::CauseChanged => format!(
            "{site} is still DOWN, for another reason: {} (was {})",
            words(a.cause),
            words(a.previous_cause)
        ),
        AlertKind::Degraded => format!("{site} is DEGRADED: {}", words(a.cause)),
        AlertKind::Recovered => format!(
            "{site} is UP again after {} down",
            human(Duration::from_secs(a.outage_s.unwrap_or(0)))
        ),
        AlertKind::Resolved => format!(
            "{site} is fully UP again (was degraded: {})",
            words(a.previous_cause)
        ),
        AlertKind::Reminder => format!("{site} is still DOWN: {}", words(a.cause)),
        AlertKind::Test => format!(
            "This is a test message from sitewatch for channel {}.",
            a.site
        ),
        AlertKind::Storm => format!("{} are DOWN: {}", a.site, words(a.cause)),
        AlertKind::Flapping => format!(
            "{site} changed state {} times in {} minutes; further changes are not alerted until it has been stable for {} minutes",
            super::policy::FLAP_CHANGES,
            super::policy::FLAP_WINDOW.as_secs() / 60,
            super::policy::FLAP_SETTLE.as_secs() / 60
        ),
        AlertKind::Settled => format!(
            "{site} has stopped flapping and is {}",
            a.status.as_str().to_uppercase()
        ),
        AlertKind::Forgotten => format!(
            "{site}: the outage that began {} is no longer tracked; no verdict on whether it is over",
            when(a.since)
        ),
        AlertKind::NetworkLost => format!(
            "sitewatch at {site} lost its network at {}: no site alert is sent until it is back",
            when(a.since)
        ),
        AlertKind::NetworkBack => {
            format!("sitewatch at {site} has its network back at {}", when(a.at))
        }
        AlertKind::VantageLost => format!(
            "the sitewatch vantage {site} has been unreachable since {}: its sites are watched by the others only, and it cannot page anyone",
            when(a.since)
        ),
        AlertKind::VantageBack => format!(
            "the sitewatch vantage {site} answers again at {}",
            when(a.at)
        ),
    }
}

/// The plain-text email body.
pub fn body(a: &Alert, now: SystemTime) -> String {
    let mut out = headline(a);
    out.push_str("\n\n");
    if a.kind == AlertKind::Test {
        out.push_str("If you can read this, alerts sent through it will reach you.\n");
        out.push_str(&format!("\n-- \nsitewatch · {}\n", a.id));
        return out;
    }
    let mut row = |k: &str, v: &str| out.push_str(&format!("{k:<9} {v}\n"));
    if !a.url.is_empty() {
        row("URL:", &a.url);
    }
    let ago = human(now.duration_since(a.since).unwrap_or_default());
    match a.kind {
        AlertKind::Recovered | AlertKind::Resolved => row("Back at:", &when(a.since)),
        _ => row("Since:", &format!("{} ({ago} ago)", when(a.since))),
    }
    row("Detail:", &a.detail);
    if let Some(h) = &a.hint {
        row("Check:", h);
    }
    if let Some(addr) = &a.addr {
        row("Address:", &addr.to_string());
    }
    if !a.layers.is_empty() {
        row("Layers:", &layers_line(a));
    }
    if !a.seen.is_empty() {
        out.push_str("\nSeen from:\n");
        for line in seen_lines(a) {
            out.push_str(&format!("  {line}\n"));
        }
    }
    if matches!(a.kind, AlertKind::Recovered | AlertKind::Forgotten) {
        if !a.timeline.is_empty() {
            out.push_str("\nCauses during the outage:\n");
            for (t, c) in &a.timeline {
                out.push_str(&format!("  {}  {}\n", when(*t), words(Some(*c))));
            }
        }
        if let Some(e) = &a.first_error {
            out.push_str(&format!("First error: {e}\n"));
        }
        if let Some(e) = &a.last_error {
            out.push_str(&format!("Last error:  {e}\n"));
        }
    }
    out.push_str(&format!("\n-- \nsitewatch · alert {}\n", a.id));
    out
}

/// One line per vantage that voted: `fra1  down  connection refused (tcp.refused): …`.
pub(crate) fn seen_lines(a: &Alert) -> Vec<String> {
    a.seen
        .iter()
        .map(|s| {
            let what = match s.cause {
                Some(c) => format!("{} ({c})", c.words()),
                None => s.verdict.clone(),
            };
            if s.detail.is_empty() {
                format!("{}  {}  {what}", s.vantage, s.verdict)
            } else {
                format!("{}  {}  {what}: {}", s.vantage, s.verdict, s.detail)
            }
        })
        .collect()
}

/// Escapes text for Slack's mrkdwn (`&`, `<`, `>`), so that site text can
/// never ping a channel or forge a link.
pub fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut t: String = text.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// The Slack incoming-webhook payload: `text` (the notification fallback)
/// plus Block Kit blocks.
pub fn slack(a: &Alert, now: SystemTime) -> Value {
    let icon = match a.kind {
        AlertKind::Down | AlertKind::CauseChanged | AlertKind::Reminder => "🔴",
        AlertKind::Degraded => "🟡",
        AlertKind::Recovered | AlertKind::Resolved => "🟢",
        AlertKind::Test => "🔧",
        AlertKind::Storm => "🔴",
        AlertKind::Flapping => "🟠",
        AlertKind::Settled => "🔵",
        AlertKind::Forgotten => "⚪",
        AlertKind::NetworkLost => "⚫",
        AlertKind::NetworkBack => "🔵",
        AlertKind::VantageLost => "⚫",
        AlertKind::VantageBack => "🔵",
    };
    let header = truncate(
        &format!("{icon} {}", subject(a).trim_start_matches("[sitewatch] ")),
        150,
    );
    let mut fields = vec![
        json!({"type": "mrkdwn", "text": truncate(&format!("*URL*\n{}", slack_escape(&a.url)), 2000)}),
    ];
    if a.kind != AlertKind::Test {
        let since = match a.kind {
            AlertKind::Recovered | AlertKind::Resolved => format!("*Back at*\n{}", when(a.since)),
            _ => format!(
                "*Since*\n{} ({} ago)",
                when(a.since),
                human(now.duration_since(a.since).unwrap_or_default())
            ),
        };
        fields.push(json!({"type": "mrkdwn", "text": since}));
        if let Some(c) = a.cause {
            fields.push(json!({"type": "mrkdwn", "text": format!("*Cause*\n{} (`{c}`)", slack_escape(c.words()))}));
        }
    }
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": header, "emoji": true}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&slack_escape(&headline(a)), 3000)}, "fields": fields}),
    ];
    if a.kind != AlertKind::Test {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&format!("*Detail*\n{}", slack_escape(&a.detail)), 3000)}}));
        if let Some(h) = &a.hint {
            blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&format!("*Check first*\n{}", slack_escape(h)), 3000)}}));
        }
        if !a.seen.is_empty() {
            blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&format!("*Seen from*\n{}", slack_escape(&seen_lines(a).join("\n"))), 3000)}}));
        }
    }
    let mut context = Vec::new();
    if !a.layers.is_empty() {
        context.push(
            json!({"type": "mrkdwn", "text": truncate(&slack_escape(&layers_line(a)), 2000)}),
        );
    }
    context.push(
        json!({"type": "mrkdwn", "text": format!("sitewatch · alert {}", slack_escape(&a.id))}),
    );
    blocks.push(json!({"type": "context", "elements": context}));
    json!({"text": slack_escape(&subject(a)), "blocks": blocks})
}

/// The generic webhook's body, version 1 (docs/alerts.md documents it).
pub fn webhook(a: &Alert) -> Value {
    json!({
        "version": 1,
        "id": a.id,
        "event": a.kind.as_str(),
        "site": a.site,
        "url": a.url,
        "status": a.status,
        "cause": a.cause,
        "previous_cause": a.previous_cause,
        "detail": a.detail,
        "hint": a.hint,
        "since": crate::timefmt::rfc3339(a.since),
        "at": crate::timefmt::rfc3339(a.at),
        "outage_s": a.outage_s,
        "address": a.addr.map(|x| x.to_string()),
        "layers": a.layers,
        "causes": a.timeline.iter().map(|(t, c)| json!({"at": crate::timefmt::rfc3339(*t), "cause": c})).collect::<Vec<_>>(),
        "first_error": a.first_error,
        "last_error": a.last_error,
        "vantages": a.seen,
        "subject": subject(a),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::Layer;
    use crate::probe::LayerReport;
    use std::time::UNIX_EPOCH;

    fn t(secs: u64) -> SystemTime {
        // 2026-11-25 19:00:00 UTC
        UNIX_EPOCH + Duration::from_secs(1_795_633_200 + secs)
    }

    fn alert(kind: AlertKind) -> Alert {
        Alert {
            id: "blog-down-1795633200000".into(),
            kind,
            site: "blog".into(),
            url: "https://blog.example.com/".into(),
            status: crate::state::Level::Down,
            cause: Some(Cause::TcpRefused),
            previous_cause: Some(Cause::HttpBadGateway),
            detail: "203.0.113.7:443 refused the connection".into(),
            hint: Some(
                "nothing is listening on 203.0.113.7:443: is the web server running?".into(),
            ),
            since: t(0),
            at: t(312),
            outage_s: Some(725),
            timeline: vec![(t(0), Cause::HttpBadGateway), (t(180), Cause::TcpRefused)],
            first_error: Some("https://blog.example.com/ answered 502".into()),
            last_error: Some("203.0.113.7:443 refused the connection".into()),
            layers: vec![
                LayerReport {
                    layer: Layer::Dns,
                    ok: true,
                    ms: 3.12,
                    detail: String::new(),
                },
                LayerReport {
                    layer: Layer::Tcp,
                    ok: false,
                    ms: 0.41,
                    detail: String::new(),
                },
            ],
            addr: Some("203.0.113.7:443".parse().unwrap()),
            seen: Vec::new(),
        }
    }

    #[test]
    fn subjects_are_pinned() {
        let table = [
            (
                AlertKind::Down,
                "[sitewatch] DOWN blog — connection refused (tcp.refused)",
            ),
            (
                AlertKind::CauseChanged,
                "[sitewatch] STILL DOWN blog — now connection refused (tcp.refused), was bad gateway (502) (http.bad_gateway)",
            ),
            (
                AlertKind::Recovered,
                "[sitewatch] RECOVERED blog — up after 12m 5s",
            ),
            (
                AlertKind::Reminder,
                "[sitewatch] STILL DOWN blog — connection refused (tcp.refused) for 5m 12s",
            ),
            (
                AlertKind::Test,
                "[sitewatch] TEST blog — this channel works",
            ),
        ];
        for (kind, want) in table {
            assert_eq!(subject(&alert(kind)), want);
        }
        let mut d = alert(AlertKind::Degraded);
        d.cause = Some(Cause::TlsExpiring);
        assert_eq!(
            subject(&d),
            "[sitewatch] DEGRADED blog — certificate expires soon (tls.expiring)"
        );
        d.kind = AlertKind::Resolved;
        d.previous_cause = Some(Cause::TlsExpiring);
        assert_eq!(
            subject(&d),
            "[sitewatch] OK blog — no longer degraded (certificate expires soon (tls.expiring))"
        );
    }

    #[test]
    fn down_body_is_pinned() {
        assert_eq!(
            body(&alert(AlertKind::Down), t(312)),
            "blog is DOWN: connection refused (tcp.refused)\n\
             \n\
             URL:      https://blog.example.com/\n\
             Since:    2026-11-25 19:00:00 UTC (5m 12s ago)\n\
             Detail:   203.0.113.7:443 refused the connection\n\
             Check:    nothing is listening on 203.0.113.7:443: is the web server running?\n\
             Address:  203.0.113.7:443\n\
             Layers:   dns ok 3.1 ms · tcp FAIL 0.4 ms\n\
             \n\
             -- \n\
             sitewatch · alert blog-down-1795633200000\n"
        );
    }

    #[test]
    fn recovered_body_has_the_outage_its_causes_and_errors() {
        let mut a = alert(AlertKind::Recovered);
        a.since = t(725);
        let b = body(&a, t(730));
        assert!(
            b.starts_with("blog is UP again after 12m 5s down\n\n"),
            "{b}"
        );
        assert!(b.contains("Back at:  2026-11-25 19:12:05 UTC\n"), "{b}");
        assert!(b.contains("Causes during the outage:\n  2026-11-25 19:00:00 UTC  bad gateway (502) (http.bad_gateway)\n  2026-11-25 19:03:00 UTC  connection refused (tcp.refused)\n"), "{b}");
        assert!(b.contains("First error: https://blog.example.com/ answered 502\nLast error:  203.0.113.7:443 refused the connection\n"), "{b}");
    }

    #[test]
    fn slack_escapes_and_keeps_within_limits() {
        let mut a = alert(AlertKind::Down);
        a.detail = "body lacks \"<b>Welcome</b>\" & says <!channel>".into();
        let p = slack(&a, t(312));
        let text = serde_json::to_string(&p).unwrap();
        assert!(
            !text.contains("<!channel>") && text.contains("&lt;!channel&gt;"),
            "{text}"
        );
        assert!(text.contains("&lt;b&gt;Welcome&lt;/b&gt;"), "{text}");
        assert_eq!(
            p["text"],
            "[sitewatch] DOWN blog — connection refused (tcp.refused)"
        );
        assert_eq!(p["blocks"][0]["type"], "header");
        assert!(
            p["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap()
                .chars()
                .count()
                <= 150
        );
        let long = Alert {
            site: "x".repeat(300),
            ..alert(AlertKind::Down)
        };
        assert!(
            slack(&long, t(0))["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap()
                .chars()
                .count()
                <= 150
        );
    }

    #[test]
    fn webhook_body_is_versioned() {
        let w = webhook(&alert(AlertKind::Down));
        assert_eq!(w["version"], 1);
        assert_eq!(w["event"], "down");
        assert_eq!(w["cause"], "tcp.refused");
        assert_eq!(w["since"], "2026-11-25T19:00:00.000Z");
        assert_eq!(w["id"], "blog-down-1795633200000");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human(Duration::from_secs(45)), "45s");
        assert_eq!(human(Duration::from_secs(725)), "12m 5s");
        assert_eq!(human(Duration::from_secs(3 * 3600 + 720)), "3h 12m");
        assert_eq!(human(Duration::from_secs(2 * 86_400 + 3600)), "2d 1h");
    }
}
