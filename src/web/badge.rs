//! Shields-style SVG badges: `/badge/{site}/status.svg` and
//! `/badge/{site}/uptime.svg`, rendered by the `shields` crate (the same
//! layout and Verdana 11 px text widths as shields.io, so arbitrary site
//! names fit). Pure: a [`SiteView`] in, SVG text out.

use crate::state::Level;
use crate::store::SiteView;
use shields::{BadgeParams, BadgeStyle};

/// The media type of a badge.
pub const CONTENT_TYPE: &str = "image/svg+xml; charset=utf-8";

/// A window of the uptime badge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// The last 24 hours.
    Day,
    /// The last 7 days.
    Week,
    /// The last 30 days (the default).
    Month,
    /// The last 90 days.
    Quarter,
}

impl Window {
    /// Parses `24h`, `7d`, `30d` or `90d`.
    pub fn parse(text: &str) -> Option<Window> {
        match text {
            "24h" => Some(Window::Day),
            "7d" => Some(Window::Week),
            "30d" => Some(Window::Month),
            "90d" => Some(Window::Quarter),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Window::Day => "24h",
            Window::Week => "7d",
            Window::Month => "30d",
            Window::Quarter => "90d",
        }
    }
}

/// The shields colour of a status.
fn status_color(status: Level) -> &'static str {
    match status {
        Level::Up => "brightgreen",
        Level::Degraded => "yellow",
        Level::Down => "red",
        Level::Unknown => "lightgrey",
    }
}

/// The status badge: the site's name, then its status word and, unless
/// `public`, the cause in plain words ("down: connection refused").
pub fn status(site: &SiteView, public: bool) -> String {
    let message = match (site.cause_text, public) {
        (Some(words), false) => format!("{}: {words}", site.status),
        _ => site.status.to_string(),
    };
    render(&site.name, &message, status_color(site.status))
}

/// The uptime badge: the site's name, then its uptime over `window` ("99.95% 30d").
pub fn uptime(site: &SiteView, window: Window) -> String {
    let pct = site.uptime.and_then(|u| match window {
        Window::Day => u.d1,
        Window::Week => u.d7,
        Window::Month => u.d30,
        Window::Quarter => u.d90,
    });
    let (message, color) = match pct {
        Some(p) => (
            format!("{} {}", percent(p), window.as_str()),
            uptime_color(p),
        ),
        None => (format!("no data {}", window.as_str()), "lightgrey"),
    };
    render(&site.name, &message, color)
}

/// A percentage with as many decimals as it needs to be honest: 100% only
/// when nothing failed, 99.99% rather than a rounded-up 100%.
pub fn percent(p: f64) -> String {
    if p >= 100.0 {
        "100%".to_string()
    } else {
        // Truncate, never round up: 99.996 is not "100.00".
        let t = (p * 100.0).floor() / 100.0;
        format!("{t:.2}%")
    }
}

fn uptime_color(p: f64) -> &'static str {
    match p {
        p if p >= 99.9 => "brightgreen",
        p if p >= 99.0 => "green",
        p if p >= 97.0 => "yellowgreen",
        p if p >= 95.0 => "yellow",
        p if p >= 90.0 => "orange",
        _ => "red",
    }
}

fn render(label: &str, message: &str, color: &str) -> String {
    shields::render_badge_svg(&BadgeParams {
        style: BadgeStyle::Flat,
        message_color: Some(color),
        ..BadgeParams::new(label, message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_never_rounds_up_to_a_perfect_score() {
        assert_eq!(percent(100.0), "100%");
        assert_eq!(percent(99.996), "99.99%");
        assert_eq!(percent(97.5), "97.50%");
        assert_eq!(percent(0.0), "0.00%");
    }

    #[test]
    fn windows_parse_and_name_themselves() {
        for w in ["24h", "7d", "30d", "90d"] {
            assert_eq!(Window::parse(w).unwrap().as_str(), w);
        }
        assert_eq!(Window::parse("1y"), None);
    }

    #[test]
    fn names_are_escaped_and_widths_follow_the_text() {
        let short = render("a", "up", "brightgreen");
        let long = render("a-much-longer-site-name", "up", "brightgreen");
        let width = |svg: &str| -> f64 {
            let w = svg.split("width=\"").nth(1).unwrap();
            w[..w.find('"').unwrap()].parse().unwrap()
        };
        assert!(width(&long) > width(&short) + 100.0, "{short}\n{long}");
        let odd = render("a<b&c", "up", "brightgreen");
        assert!(odd.contains("a&lt;b&amp;c"), "{odd}");
    }
}
