//! The segment format that lets many bodies share one S3 object (group commit).
//!
//! One S3 PUT costs far more CPU than verifying a webhook, so the ingress writes the
//! bodies that arrive within a few milliseconds as one object, a *segment*. A segment is
//! a sequence of records, each `SWY1 ‖ header length (u32 BE) ‖ body length (u32 BE) ‖
//! header JSON ‖ body`. An envelope's [`ClaimRef`](switchyard_core::envelope::ClaimRef)
//! names the object and the body's byte range, so a ranged GET returns exactly the
//! provider's bytes; the record header makes a segment self-describing, so raw
//! claim-checks can be re-driven from S3 alone.
//!
//! Keys sort by time: `raw/<YYYY-MM-DD>/<HH>/<unix ms>-<instance>-<seq>.swy`.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::ClaimCheckError;

const MAGIC: &[u8; 4] = b"SWY1";
const PREFIX_LEN: usize = 12;
pub(crate) const SEGMENT_CONTENT_TYPE: &str = "application/vnd.switchyard.segment";

/// Metadata written before each body in a segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordHeader {
    pub connector: String,
    pub account_id: String,
    pub tenant_id: String,
    pub received_ms: i64,
    pub content_type: String,
    /// The provider event ids the body carries.
    pub event_ids: Vec<String>,
    /// The request headers the connector declared it needs later.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// Builds one segment in memory.
#[derive(Debug, Default)]
pub struct SegmentBuilder {
    buf: Vec<u8>,
}

impl SegmentBuilder {
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            buf: Vec::with_capacity(bytes),
        }
    }

    /// Append a record; returns the body's `(offset, len)` within the segment.
    pub fn push(&mut self, header: &RecordHeader, body: &[u8]) -> (u64, u64) {
        let header = serde_json::to_vec(header).expect("a record header always serializes");
        self.buf.extend_from_slice(MAGIC);
        self.buf.extend_from_slice(&(header.len() as u32).to_be_bytes());
        self.buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
        self.buf.extend_from_slice(&header);
        let offset = self.buf.len() as u64;
        self.buf.extend_from_slice(body);
        (offset, body.len() as u64)
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn finish(self) -> Bytes {
        Bytes::from(self.buf)
    }
}

/// One record read back from a segment.
#[derive(Debug, Clone)]
pub struct Record {
    pub header: RecordHeader,
    pub body: Bytes,
    pub offset: u64,
}

/// Every record of a segment, in order.
pub fn read_segment(key: &str, segment: &Bytes) -> Result<Vec<Record>, ClaimCheckError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    let corrupt = |offset| ClaimCheckError::Corrupt {
        key: key.to_string(),
        offset,
    };
    while at < segment.len() {
        let prefix = segment.get(at..at + PREFIX_LEN).ok_or_else(|| corrupt(at))?;
        if &prefix[..4] != MAGIC {
            return Err(corrupt(at));
        }
        let hlen = u32::from_be_bytes(prefix[4..8].try_into().expect("4 bytes")) as usize;
        let blen = u32::from_be_bytes(prefix[8..12].try_into().expect("4 bytes")) as usize;
        let hstart = at + PREFIX_LEN;
        let bstart = hstart.checked_add(hlen).ok_or_else(|| corrupt(at))?;
        let end = bstart.checked_add(blen).ok_or_else(|| corrupt(at))?;
        if end > segment.len() {
            return Err(corrupt(at));
        }
        let header: RecordHeader = serde_json::from_slice(&segment[hstart..bstart]).map_err(|_| corrupt(hstart))?;
        out.push(Record {
            header,
            body: segment.slice(bstart..end),
            offset: bstart as u64,
        });
        at = end;
    }
    Ok(out)
}

/// The key of a new segment.
pub fn segment_key(now: time::OffsetDateTime, instance: &str, seq: u64) -> String {
    format!(
        "raw/{:04}-{:02}-{:02}/{:02}/{:013}-{instance}-{seq:08}.swy",
        now.year(),
        now.month() as u8,
        now.day(),
        now.hour(),
        switchyard_core::timefmt::unix_millis(now),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(id: &str) -> RecordHeader {
        RecordHeader {
            connector: "stripe".into(),
            account_id: "a".into(),
            tenant_id: "t".into(),
            received_ms: 1,
            content_type: "application/json".into(),
            event_ids: vec![id.into()],
            headers: BTreeMap::new(),
        }
    }

    #[test]
    fn segments_round_trip_and_ranges_name_the_body() {
        let mut b = SegmentBuilder::default();
        let (o1, l1) = b.push(&header("e1"), b"{\"a\":1}");
        let (o2, l2) = b.push(&header("e2"), b"");
        let (o3, l3) = b.push(&header("e3"), b"xyz");
        let seg = b.finish();
        assert_eq!(&seg[o1 as usize..(o1 + l1) as usize], b"{\"a\":1}");
        assert_eq!(l2, 0);
        assert_eq!(&seg[o3 as usize..(o3 + l3) as usize], b"xyz");
        let records = read_segment("k", &seg).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[1].offset, o2);
        assert_eq!(records[2].header.event_ids, vec!["e3".to_string()]);
    }

    #[test]
    fn truncated_segments_are_reported_not_panicked_on() {
        let mut b = SegmentBuilder::default();
        b.push(&header("e1"), b"hello");
        let seg = b.finish();
        for cut in 0..seg.len() {
            let part = seg.slice(..cut);
            let r = read_segment("k", &part);
            if cut == 0 {
                assert!(r.unwrap().is_empty());
            } else {
                assert!(r.is_err(), "cut at {cut}");
            }
        }
    }

    #[test]
    fn keys_sort_by_time() {
        let t = time::macros::datetime!(2026-11-23 09:05:07 UTC);
        assert_eq!(
            segment_key(t, "ing-1", 3),
            "raw/2026-11-23/09/1795424707000-ing-1-00000003.swy"
        );
    }
}
