//! Timestamps on the wire are RFC 3339 strings in UTC with millisecond precision.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// `now` as RFC 3339, e.g. `2026-11-23T09:15:00.123Z`.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.replace_nanosecond(t.millisecond() as u32 * 1_000_000).unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Unix seconds (as providers send them) to RFC 3339; `None` when out of range.
pub fn from_unix_seconds(secs: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp(secs).ok().map(rfc3339)
}

/// Milliseconds since the Unix epoch.
pub fn unix_millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Unix milliseconds to a time; `None` when out of range.
pub fn from_unix_millis(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// An optional time as RFC 3339 ([`rfc3339`]) on the wire. Reading is lenient: a value
/// that is not RFC 3339 reads as absent, so an odd provider timestamp never makes a
/// message unreadable.
pub mod rfc3339_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::format_description::well_known::Rfc3339;
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(v: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(t) => s.serialize_str(&super::rfc3339(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<OffsetDateTime>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        Ok(text.and_then(|t| OffsetDateTime::parse(&t, &Rfc3339).ok()))
    }
}
