//! An email channel's keys (`type = "email"`).

use super::context::{Cx, int_in, list_len, secret};
use super::defaults;
use super::diagnostic::quote;
use super::model::{EmailSpec, SmtpTls};
use super::raw_channel::{RawChannel, require};

/// Checks the keys of an email channel.
pub(super) fn email(
    cx: &mut Cx<'_>,
    raw: &RawChannel,
    at: &std::ops::Range<usize>,
    ca_file: Option<std::path::PathBuf>,
) -> EmailSpec {
    let host = require(cx, &raw.smtp_host, "smtp_host", "email", at).map(|h| h.get_ref().clone());
    let tls = match raw.tls.as_ref().map(|t| (t.get_ref().as_str(), t.span())) {
        None | Some(("starttls", _)) => SmtpTls::StartTls,
        Some(("tls", _)) => SmtpTls::Tls,
        Some(("none", span)) => {
            if !raw.allow_plain.as_ref().is_some_and(|a| *a.get_ref()) {
                cx.error(span, "tls = \"none\" sends mail (and any password) unencrypted: set allow_plain = true to mean it");
            }
            SmtpTls::None
        }
        Some((other, span)) => {
            cx.error(
                span,
                format!(
                    "`tls` must be \"starttls\", \"tls\" or \"none\", not \"{}\"",
                    quote(other)
                ),
            );
            SmtpTls::StartTls
        }
    };
    let port = match &raw.smtp_port {
        None => match tls {
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        },
        Some(p) => int_in(cx, "smtp_port", p, 1, u16::MAX.into()).unwrap_or(25),
    };
    let password = secret(
        cx,
        "password",
        defaults::MAX_SECRET_BYTES,
        [
            &raw.password,
            &raw.password_file,
            &raw.password_env,
            &raw.password_credential,
        ],
    );
    if password.is_some() && raw.username.is_none() {
        cx.error(at.clone(), "a password needs a `username`");
    }
    let from = require(cx, &raw.from, "from", "email", at).map(|f| f.get_ref().clone());
    if let Some(f) = &raw.from
        && f.get_ref().parse::<lettre::message::Mailbox>().is_err()
    {
        cx.error(
            f.span(),
            format!(
                "\"{}\" is not a mail address like \"sitewatch <sitewatch@example.com>\"",
                quote(f.get_ref())
            ),
        );
    }
    let mut to = Vec::new();
    match require(cx, &raw.to, "to", "email", at) {
        Some(list) if list.get_ref().is_empty() => {
            cx.error(list.span(), "`to` must list at least one address")
        }
        Some(list) if !list_len(cx, "to", "recipients", list, defaults::MAX_RECIPIENTS) => {}
        Some(list) => {
            for addr in list.get_ref() {
                if addr.get_ref().parse::<lettre::message::Mailbox>().is_err() {
                    cx.error(
                        addr.span(),
                        format!("\"{}\" is not a mail address", quote(addr.get_ref())),
                    );
                }
                to.push(addr.get_ref().clone());
            }
        }
        None => {}
    }
    EmailSpec {
        host: host.unwrap_or_default(),
        port,
        tls,
        username: raw.username.as_ref().map(|u| u.get_ref().clone()),
        password,
        from: from.unwrap_or_default(),
        to,
        ca_file,
    }
}
