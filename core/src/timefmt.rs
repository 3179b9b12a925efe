//! Timestamps on the wire are RFC 3339 strings in UTC with millisecond precision.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// `t` as RFC 3339 in UTC, always with three digits of milliseconds, e.g.
/// `2026-11-23T09:15:00.000Z`: one shape for every time on the wire.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return t.format(&Rfc3339).unwrap_or_else(|_| t.unix_timestamp().to_string());
    }
    format!(
        "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_time_has_milliseconds_and_is_utc() {
        let whole = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(rfc3339(whole), "2023-11-14T22:13:20.000Z");
        let with_ms = from_unix_millis(1_700_000_000_123).unwrap();
        assert_eq!(rfc3339(with_ms), "2023-11-14T22:13:20.123Z");
        let offset = with_ms.to_offset(time::UtcOffset::from_hms(2, 0, 0).unwrap());
        assert_eq!(rfc3339(offset), "2023-11-14T22:13:20.123Z");
    }
}
