//! Wall-clock times as RFC 3339 strings (UTC, milliseconds) in every JSON
//! sitewatch writes, so they read the same in the API, the CLI and logs.

use serde::Serializer;
use std::time::SystemTime;

/// Formats a time as `2026-11-25T18:46:10.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// `#[serde(with = "crate::timefmt")]` for a `SystemTime` field.
pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*t))
}

/// Reads a time written by [`serialize`] (RFC 3339).
pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
    let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
    humantime::parse_rfc3339(&text).map_err(serde::de::Error::custom)
}

/// `#[serde(with = "crate::timefmt::option")]` for an `Option<SystemTime>` field.
pub mod option {
    use serde::Serializer;
    use std::time::SystemTime;

    /// Serializes `None` as null.
    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.collect_str(&humantime::format_rfc3339_millis(*t)),
            None => s.serialize_none(),
        }
    }

    /// Reads a time written by [`serialize`] (RFC 3339, or null).
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        let text = <Option<std::borrow::Cow<'de, str>> as serde::Deserialize>::deserialize(d)?;
        text.map(|t| humantime::parse_rfc3339(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}
