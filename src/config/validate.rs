//! Raw TOML → validated [`Config`], collecting every mistake with its place.
//!
//! Each top-level table and each `[[site]]` is deserialized on its own, so a
//! typo in one site does not hide the errors of the next; then every value is
//! checked and the `[defaults]` are inherited. Pure: the text comes in, a
//! `Config` or a list of diagnostics comes out. The tables are checked by
//! [`super::daemon`], [`super::cluster`], [`super::site`] and
//! [`super::alert`], which share [`super::context`].

use super::context::Cx;
use super::diagnostic::quote;
use super::model::*;
use super::{
    Diagnostic, alert, cluster, daemon, events, heartbeat, maintenance, redact, selfcheck, site,
};
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Parses and validates the bytes of one configuration file.
pub(super) fn parse_bytes(path: &Path, bytes: &[u8]) -> Result<Config, Vec<Diagnostic>> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(path, text),
        Err(e) => {
            // The lossy text keeps the valid prefix byte for byte, so the
            // offset of the first invalid byte is the same in both.
            let lossy = String::from_utf8_lossy(bytes);
            let at = e.valid_up_to();
            let mut cx = Cx::new(path, &lossy);
            cx.error(
                at..at,
                format!("invalid UTF-8 at byte offset {at}: the file must be UTF-8 text"),
            );
            Err(cx.finish())
        }
    }
}

/// Parses and validates the text of one configuration file.
pub(super) fn parse(path: &Path, text: &str) -> Result<Config, Vec<Diagnostic>> {
    let mut cx = Cx::new(path, text);
    let root = match DeTable::parse(text) {
        Ok(root) => {
            cx.add_secrets(redact::structural(root.get_ref()));
            root
        }
        Err(e) => {
            // The partial table still tells where secrets are.
            let (partial, _) = DeTable::parse_recoverable(text);
            cx.add_secrets(redact::structural(partial.get_ref()));
            cx.toml_error(&e);
            return Err(cx.finish());
        }
    };

    let mut daemon = None;
    let mut self_check = None;
    let mut cluster = None;
    let mut defaults_raw = site::RawSite::default();
    let mut sites_raw: Vec<(Range<usize>, site::RawSite)> = Vec::new();
    let mut heartbeats_raw: Vec<(Range<usize>, heartbeat::RawHeartbeat)> = Vec::new();
    let mut windows_raw: Vec<(Range<usize>, maintenance::RawMaintenance)> = Vec::new();
    let mut channels = Vec::new();
    // Each channel's `sites` and `tags`, checked once every site is read.
    let mut scopes = Vec::new();
    // Each table is taken out of the document as it is read: nothing is
    // copied, and what was read is freed on the way.
    for (key, value) in root.into_inner() {
        match key.get_ref().as_ref() {
            "version" => match value.get_ref().as_integer().map(|i| i.as_str()) {
                Some("1") => {}
                _ => cx.error(
                    value.span(),
                    "unsupported `version`: this sitewatch reads version = 1",
                ),
            },
            "daemon" => daemon = cx.de::<daemon::RawDaemon>(value),
            "self_check" => {
                self_check = cx
                    .de::<selfcheck::RawSelfCheck>(value)
                    .map(|raw| (key.span(), raw))
            }
            "cluster" => {
                cluster = cx
                    .de::<cluster::RawCluster>(value)
                    .map(|raw| (key.span(), raw))
            }
            "defaults" => {
                if let Some(d) = cx.de::<site::RawSite>(value) {
                    for (field, span) in [
                        ("name", d.name.as_ref().map(|s| s.span())),
                        ("url", d.url.as_ref().map(|s| s.span())),
                    ] {
                        if let Some(span) = span {
                            cx.error(
                                span,
                                format!("`{field}` belongs in a [[site]], not in [defaults]"),
                            );
                        }
                    }
                    defaults_raw = d;
                }
            }
            "site" => sites_raw.extend(tables::<site::RawSite>(&mut cx, value, "site", "each site as a [[site]] block")),
            "heartbeat" => heartbeats_raw.extend(tables::<heartbeat::RawHeartbeat>(&mut cx, value, "heartbeat", "each as a [[heartbeat]] block")),
            "maintenance" => windows_raw.extend(tables::<maintenance::RawMaintenance>(&mut cx, value, "maintenance", "each window as a [[maintenance]] block")),
            "alert" => {
                let span = value.span();
                match value.into_inner() {
                    DeValue::Table(table) => {
                        for (name, body) in table {
                            let name = Spanned::new(name.span(), name.get_ref().to_string());
                            let at = body.span();
                            if let Some(raw) = cx.de::<alert::Raw>(body)
                                && let Some(ch) = alert::validate(&mut cx, &name, at, &raw)
                            {
                                scopes.push((raw.sites, raw.tags));
                                channels.push(ch);
                            }
                        }
                    }
                    _ => cx.error(
                        span,
                        "`alert` must hold tables: write each channel as [alert.NAME]",
                    ),
                }
            }
            other => cx.error(
                key.span(),
                format!(
                    "unknown table `{}`, expected `daemon`, `cluster`, `defaults`, `site`, `heartbeat`, `maintenance`, `alert` or `self_check`",
                    quote(other)
                ),
            ),
        }
    }

    let daemon = daemon::validate(&mut cx, daemon);
    let self_check = selfcheck::validate(&mut cx, self_check);
    let cluster = cluster::validate(&mut cx, cluster, &daemon);
    let vantages = cluster.vantages();
    let channel_names: Vec<String> = channels
        .iter()
        .map(|c: &ChannelSpec| c.name.clone())
        .collect();
    // Names are checked for uniqueness even when the rest of a site is
    // invalid, in file order; sites and heartbeats share one namespace (the
    // API, the page and alerts name both the same way).
    let mut named: Vec<(usize, &Spanned<String>, bool)> = sites_raw
        .iter()
        .enumerate()
        .filter_map(|(i, (_, r))| r.name.as_ref().map(|n| (i, n, false)))
        .chain(
            heartbeats_raw
                .iter()
                .enumerate()
                .filter_map(|(i, (_, r))| r.name.as_ref().map(|n| (i, n, true))),
        )
        .collect();
    named.sort_by_key(|(_, n, _)| n.span().start);
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut duplicate = (
        vec![false; sites_raw.len()],
        vec![false; heartbeats_raw.len()],
    );
    for (i, name, is_heartbeat) in named {
        let line = cx.line_of(name.span().start);
        if let Some(first) = seen.get(name.get_ref().as_str()) {
            cx.error(
                name.span(),
                format!(
                    "duplicate site name \"{}\" (first defined on line {first}): names must be unique among sites and heartbeats",
                    quote(name.get_ref())
                ),
            );
            if is_heartbeat {
                duplicate.1[i] = true;
            } else {
                duplicate.0[i] = true;
            }
        } else {
            seen.insert(name.get_ref(), line);
        }
    }
    let mut sites = Vec::with_capacity(sites_raw.len() + heartbeats_raw.len());
    for (i, (span, raw)) in sites_raw.iter().enumerate() {
        if let Some(site) = site::validate(
            &mut cx,
            span.clone(),
            raw,
            &defaults_raw,
            &channel_names,
            &vantages,
        ) && !duplicate.0[i]
        {
            sites.push(Arc::new(site));
        }
    }
    let mut ping_keys = HashMap::new();
    for (i, (span, raw)) in heartbeats_raw.iter().enumerate() {
        if let Some(hb) = heartbeat::validate(
            &mut cx,
            span.clone(),
            raw,
            &defaults_raw,
            &channel_names,
            &vantages,
            &mut ping_keys,
        ) && !duplicate.1[i]
        {
            sites.push(Arc::new(hb));
        }
    }

    if scopes.iter().any(|(s, t)| s.is_some() || t.is_some()) {
        let declared = maintenance::Declared::of(
            sites_raw.iter().map(|(_, r)| (&r.name, &r.tags)),
            heartbeats_raw.iter().map(|(_, r)| (&r.name, &r.tags)),
            &defaults_raw.tags,
        );
        events::scope(&mut cx, &mut channels, &scopes, &declared, &mut sites);
    }

    let mut windows: Vec<Arc<MaintenanceSpec>> = Vec::with_capacity(windows_raw.len());
    if !windows_raw.is_empty() {
        // Indexed once for all windows; a file without any skips it.
        let declared = maintenance::Declared::of(
            sites_raw.iter().map(|(_, r)| (&r.name, &r.tags)),
            heartbeats_raw.iter().map(|(_, r)| (&r.name, &r.tags)),
            &defaults_raw.tags,
        );
        let mut ids: HashSet<String> = HashSet::with_capacity(windows_raw.len());
        for (span, raw) in &windows_raw {
            if let Some(w) = maintenance::validate(&mut cx, span.clone(), raw, &declared) {
                if ids.insert(w.id.clone()) {
                    windows.push(Arc::new(w));
                } else {
                    cx.error(
                        span.clone(),
                        format!(
                            "duplicate maintenance id \"{}\": ids must be unique",
                            quote(&w.id)
                        ),
                    );
                }
            }
        }
    }

    if cx.count() == 0 {
        Ok(Config {
            path: path.to_path_buf(),
            daemon,
            sites,
            channels,
            self_check,
            cluster,
            maintenance: windows,
        })
    } else {
        Err(cx.finish())
    }
}

/// Each table of an array of tables (`[[site]]`, …), deserialized on its
/// own so that a mistake in one does not hide the next; `how` says how to
/// write one when `key` is not an array. The tables are taken out of
/// `value` as they are read.
fn tables<T: for<'de> serde::Deserialize<'de>>(
    cx: &mut Cx<'_>,
    value: Spanned<DeValue<'_>>,
    key: &str,
    how: &str,
) -> Vec<(Range<usize>, T)> {
    let span = value.span();
    match value.into_inner() {
        DeValue::Array(mut list) => list
            .iter_mut()
            .filter_map(|t| {
                let span = t.span();
                let table = std::mem::replace(t.get_mut(), DeValue::Boolean(false));
                cx.de::<T>(Spanned::new(span.clone(), table))
                    .map(|raw| (span, raw))
            })
            .collect(),
        _ => {
            cx.error(
                span,
                format!("`{key}` must be a list of tables: write {how}"),
            );
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests;
