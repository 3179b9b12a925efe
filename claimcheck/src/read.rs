//! Reading claim-checks back by time, for re-driving raw events from S3 alone
//! (`switchyard replay raw`).
//!
//! Segment keys sort by time (`raw/<YYYY-MM-DD>/<HH>/<unix ms>-<instance>-<seq>.swy`, see
//! [`crate::segment_key`]), so a time range is a handful of hour prefixes
//! to list. A segment is written a little after its bodies arrive (the group commit's
//! linger, then the S3 PUT, all within the ingress's durable deadline), so the keys
//! that may hold bodies received up to `until` run a little past it: [`WRITE_SLACK_MS`].
//! Which records of those segments fall in the range is for the caller to decide from
//! each record header's `received_ms`.

use time::OffsetDateTime;

use crate::{ClaimCheckError, ClaimCheckStore};

/// How long after a body is received its segment may be written. Generous: the ingress
/// answers 503 for anything not durable within its deadline (seconds).
pub const WRITE_SLACK_MS: i64 = 60_000;

/// The hour prefixes (`raw/<YYYY-MM-DD>/<HH>/`) covering `[since_ms, until_ms]`, oldest
/// first; empty when the range is empty or out of range.
pub fn hour_prefixes(since_ms: i64, until_ms: i64) -> Vec<String> {
    const HOUR_MS: i64 = 3_600_000;
    let mut out = Vec::new();
    if until_ms < since_ms {
        return out;
    }
    let mut hour = since_ms.div_euclid(HOUR_MS);
    while hour <= until_ms.div_euclid(HOUR_MS) {
        let Ok(t) = OffsetDateTime::from_unix_timestamp(hour * 3600) else {
            break;
        };
        out.push(format!(
            "raw/{:04}-{:02}-{:02}/{:02}/",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour()
        ));
        hour += 1;
    }
    out
}

/// When a segment was written, in Unix milliseconds, from its key; `None` for a key
/// that is not a segment key.
pub fn key_millis(key: &str) -> Option<i64> {
    let name = key.strip_prefix("raw/")?.rsplit('/').next()?;
    name.split('-').next()?.parse().ok()
}

/// Every segment key that may hold a body received in `[since_ms, until_ms]`, in time
/// order.
pub async fn keys_between(
    store: &ClaimCheckStore,
    since_ms: i64,
    until_ms: i64,
) -> Result<Vec<String>, ClaimCheckError> {
    let last = until_ms.saturating_add(WRITE_SLACK_MS);
    let mut keys = Vec::new();
    for prefix in hour_prefixes(since_ms, last) {
        for key in store.list(&prefix, usize::MAX).await? {
            if key_millis(&key).is_some_and(|ms| (since_ms..=last).contains(&ms)) {
                keys.push(key);
            }
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment_key;

    #[test]
    fn a_range_is_its_hour_prefixes() {
        let t = time::macros::datetime!(2026-11-23 23:59:00 UTC);
        let since = switchyard_core::timefmt::unix_millis(t);
        assert_eq!(
            hour_prefixes(since, since + 120_000),
            vec!["raw/2026-11-23/23/", "raw/2026-11-24/00/"]
        );
        assert_eq!(hour_prefixes(since, since), vec!["raw/2026-11-23/23/"]);
        assert!(hour_prefixes(since, since - 1).is_empty());
    }

    #[test]
    fn a_keys_time_reads_back() {
        let t = time::macros::datetime!(2026-11-23 09:05:07.250 UTC);
        let key = segment_key(t, "ing-1", 3);
        assert_eq!(key_millis(&key), Some(switchyard_core::timefmt::unix_millis(t)));
        assert!(hour_prefixes(key_millis(&key).unwrap(), key_millis(&key).unwrap())[0]
            .starts_with(key.rsplit_once('/').unwrap().0));
        assert_eq!(key_millis("other/thing"), None);
    }
}
