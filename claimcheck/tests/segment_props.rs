//! Property tests of the claim-check segment format ([`switchyard_claimcheck`])
//! and of the id alphabet ([`switchyard_core::names::is_valid_id`]).
//!
//! Segments: any records round-trip, each body exactly at the `(offset, len)` its push
//! returned; a segment cut anywhere but between records, or with a byte of its framing
//! changed, is an error naming the segment, never a panic or a shorter list passed off
//! as whole; and any bytes at all read as an error or as records that tile the input.
//! Ids: exactly the documented alphabet passes, and what passes is safe in the NATS
//! subjects, Redis and S3 keys and headers ids are put in.

use bytes::Bytes;
use proptest::prelude::*;
use switchyard_claimcheck::{read_segment, ClaimCheckError, Record, RecordHeader, SegmentBuilder};
use switchyard_core::names::is_valid_id;
use switchyard_tests::proptest_cases;

/// Record framing: `SWY1`, header length, body length (see the module's docs).
const PREFIX_LEN: usize = 12;

fn record_header() -> impl Strategy<Value = RecordHeader> {
    (
        (any::<String>(), "[a-z0-9_-]{0,12}", any::<String>()),
        any::<i64>(),
        any::<String>(),
        prop::collection::vec(any::<String>(), 0..4),
        prop::collection::btree_map("[A-Za-z-]{1,12}", any::<String>(), 0..3),
    )
        .prop_map(
            |((connector, account_id, tenant_id), received_ms, content_type, event_ids, headers)| RecordHeader {
                connector,
                account_id,
                tenant_id,
                received_ms,
                content_type,
                event_ids,
                headers,
            },
        )
}

fn records() -> impl Strategy<Value = Vec<(RecordHeader, Vec<u8>)>> {
    prop::collection::vec((record_header(), prop::collection::vec(any::<u8>(), 0..200)), 1..6)
}

/// The segment of `records`, the `(offset, len)` of each body, and where each record ends.
fn build(records: &[(RecordHeader, Vec<u8>)]) -> (Bytes, Vec<(u64, u64)>, Vec<usize>) {
    let mut b = SegmentBuilder::default();
    let mut ranges = Vec::new();
    let mut ends = Vec::new();
    for (h, body) in records {
        ranges.push(b.push(h, body));
        ends.push(b.len());
    }
    (b.finish(), ranges, ends)
}

fn assert_corrupt(key: &str, r: Result<Vec<Record>, ClaimCheckError>, len: usize) -> Result<(), TestCaseError> {
    match r {
        Err(ClaimCheckError::Corrupt { key: k, offset }) => {
            prop_assert_eq!(k, key);
            prop_assert!(offset <= len, "offset {} past the {} bytes", offset, len);
        }
        other => prop_assert!(false, "not an error: {other:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: proptest_cases(128), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn records_round_trip_at_their_offsets(records in records()) {
        let (seg, ranges, _) = build(&records);
        let read = read_segment("k", &seg).unwrap();
        prop_assert_eq!(read.len(), records.len());
        for (((h, body), (offset, len)), r) in records.iter().zip(&ranges).zip(&read) {
            prop_assert_eq!(&seg[*offset as usize..(*offset + *len) as usize], &body[..]);
            prop_assert_eq!(r.offset, *offset);
            prop_assert_eq!(&r.body[..], &body[..]);
            prop_assert_eq!(&r.header, h);
        }
    }

    /// Cut between two records, a segment holds the records before the cut; cut
    /// anywhere else, it is an error.
    #[test]
    fn a_cut_segment_is_its_whole_records_or_an_error(records in records(), cut in any::<prop::sample::Index>()) {
        let (seg, _, ends) = build(&records);
        let cut = cut.index(seg.len());
        let r = read_segment("k", &seg.slice(..cut));
        match ends.iter().position(|e| *e == cut) {
            Some(i) => prop_assert_eq!(r.unwrap().len(), i + 1),
            None if cut == 0 => prop_assert!(r.unwrap().is_empty()),
            None => assert_corrupt("k", r, cut)?,
        }
    }

    /// A changed byte in a record's framing (its magic or either length) is an error.
    #[test]
    fn a_changed_framing_byte_is_an_error(
        records in records(),
        which in any::<prop::sample::Index>(),
        at in 0..PREFIX_LEN,
        flip in 1..=255u8,
    ) {
        let (seg, _, ends) = build(&records);
        let i = which.index(records.len());
        let start = if i == 0 { 0 } else { ends[i - 1] };
        let mut bytes = seg.to_vec();
        bytes[start + at] ^= flip;
        assert_corrupt("k", read_segment("k", &Bytes::from(bytes)), seg.len())?;
    }

    /// Any bytes, some starting like a record: an error, or records that tile the input.
    #[test]
    fn any_bytes_read_as_an_error_or_records_that_tile_them(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            (0u32..40, 0u32..40, prop::collection::vec(any::<u8>(), 0..100)).prop_map(|(h, b, rest)| {
                let mut v = b"SWY1".to_vec();
                v.extend(h.to_be_bytes());
                v.extend(b.to_be_bytes());
                v.extend(b"{\"connector\":\"\"}");
                v.extend(rest);
                v
            }),
        ],
    ) {
        let seg = Bytes::from(bytes);
        match read_segment("k", &seg) {
            Ok(records) => {
                let mut at = 0u64;
                for r in &records {
                    prop_assert!(r.offset >= at + PREFIX_LEN as u64);
                    at = r.offset + r.body.len() as u64;
                    prop_assert_eq!(&seg[r.offset as usize..at as usize], &r.body[..]);
                }
                prop_assert_eq!(at, seg.len() as u64);
            }
            Err(e) => assert_corrupt("k", Err(e), seg.len())?,
        }
    }

    /// Exactly letters, digits, `_` and `-`, 1 to 64 of them; such an id holds nothing
    /// that splits a NATS subject (`.`), a Redis key (`:`) or an S3 key (`/`), no
    /// wildcard or whitespace, and is a valid NATS header value.
    #[test]
    fn ids_are_exactly_the_safe_alphabet(s in prop_oneof![any::<String>(), "[A-Za-z0-9_.:/* >-]{0,70}", "[a-z0-9_-]{60,68}"]) {
        let alphabet = s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        prop_assert_eq!(is_valid_id(&s), alphabet && (1..=64).contains(&s.len()));
        if is_valid_id(&s) {
            prop_assert!(!s.contains(['.', ':', '/', '*', '>', ' ', '\n']));
            prop_assert!(s.parse::<async_nats::HeaderValue>().is_ok());
        }
    }
}
