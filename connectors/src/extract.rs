//! Event ids, types and times out of a verified request, as the connector file says.

use http::HeaderMap;
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::model::{EventSpec, TimeFormat, ValueSource};
use crate::signature::{header_str, VerifiedWebhook};

/// One provider event found in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractedEvent {
    pub id: String,
    pub event_type: String,
    /// When the provider says it happened, in Unix milliseconds.
    pub occurred_ms: Option<i64>,
    /// Index within a batch body; `None` for a body that is one event.
    pub item: Option<u32>,
    /// The provider's account id, where the connector declares `event.account`.
    pub account: Option<String>,
}

/// Why the events could not be read: the request is malformed (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("the body is not valid JSON")]
    NotJson,
    #[error("the event id is missing ({0})")]
    MissingId(String),
    #[error("the event type is missing ({0})")]
    MissingType(String),
    #[error("the body does not hold the declared array of events (1 to 1000 items)")]
    NotABatch,
    #[error("two events in the request share one id")]
    DuplicateIds,
}

impl ExtractError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotJson => "malformed_json",
            Self::MissingId(_) => "missing_event_id",
            Self::MissingType(_) => "missing_event_type",
            Self::NotABatch => "malformed_batch",
            Self::DuplicateIds => "duplicate_event_ids",
        }
    }
}

/// Longest event id or type accepted (they end up in keys and headers).
const MAX_ID_LEN: usize = 256;

/// Most events one request may carry.
pub const MAX_ITEMS: usize = 1000;

pub fn extract(spec: &EventSpec, webhook: &VerifiedWebhook) -> Result<Vec<ExtractedEvent>, ExtractError> {
    extract_from(spec, webhook.headers(), webhook.body())
}

/// [`extract`] for a body whose signature is not in question: a connector's fixtures and
/// `switchyard connectors map` read events exactly as the ingress does.
pub fn extract_from(spec: &EventSpec, headers: &HeaderMap, body: &[u8]) -> Result<Vec<ExtractedEvent>, ExtractError> {
    let needs_json = spec.items.is_some()
        || matches!(spec.id, ValueSource::Json(_))
        || matches!(spec.event_type, ValueSource::Json(_))
        || matches!(spec.account, Some(ValueSource::Json(_)))
        || spec.occurred_at.is_some();
    let content_type = header_str(headers, "content-type").unwrap_or("application/json");
    let doc: Option<serde_json::Value> = if needs_json {
        Some(crate::body::to_json(body, content_type).ok_or(ExtractError::NotJson)?)
    } else {
        None
    };
    let items: Vec<(Option<u32>, Option<&serde_json::Value>)> = match (&spec.items, &doc) {
        (Some(path), Some(doc)) => {
            let arr = path
                .get(doc)
                .and_then(|v| v.as_array())
                .ok_or(ExtractError::NotABatch)?;
            if arr.is_empty() || arr.len() > MAX_ITEMS {
                return Err(ExtractError::NotABatch);
            }
            arr.iter().enumerate().map(|(i, v)| (Some(i as u32), Some(v))).collect()
        }
        _ => vec![(None, doc.as_ref())],
    };
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items {
        let read = |src: &ValueSource| -> Option<String> {
            let v = match src {
                ValueSource::Json(p) => p.get_string(item?),
                ValueSource::Header(h) => header_str(headers, h).map(str::to_string),
                ValueSource::Literal(s) => Some(s.clone()),
                ValueSource::BodySha256(_) => {
                    let digest = hex::encode(Sha256::digest(body));
                    Some(match index {
                        Some(i) => format!("{digest}:{i}"),
                        None => digest,
                    })
                }
            }?;
            (!v.is_empty() && v.len() <= MAX_ID_LEN).then_some(v)
        };
        let id = read(&spec.id).ok_or_else(|| ExtractError::MissingId(describe(&spec.id)))?;
        let event_type = read(&spec.event_type).ok_or_else(|| ExtractError::MissingType(describe(&spec.event_type)))?;
        let occurred_ms = match (&spec.occurred_at, item) {
            (Some(t), Some(item)) => t.json.get(item).and_then(|v| to_millis(v, t.format)),
            _ => None,
        };
        let account = spec.account.as_ref().and_then(read);
        out.push(ExtractedEvent {
            id,
            event_type,
            occurred_ms,
            item: index,
            account,
        });
    }
    // Two items with one id would be one event twice: refuse the request rather than
    // guess which to keep.
    let mut ids: Vec<&str> = out.iter().map(|e| e.id.as_str()).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(ExtractError::DuplicateIds);
    }
    Ok(out)
}

fn describe(src: &ValueSource) -> String {
    match src {
        ValueSource::Json(p) => format!("JSON path {p}"),
        ValueSource::Header(h) => format!("header {h}"),
        ValueSource::Literal(_) => "literal".into(),
        ValueSource::BodySha256(_) => "body SHA-256".into(),
    }
}

fn to_millis(v: &serde_json::Value, format: TimeFormat) -> Option<i64> {
    match format {
        TimeFormat::UnixSeconds => v.as_i64().map(|s| s.saturating_mul(1000)),
        TimeFormat::UnixMilliseconds => v.as_i64(),
        TimeFormat::Rfc3339 => {
            let t = OffsetDateTime::parse(v.as_str()?, &Rfc3339).ok()?;
            Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
        }
    }
}
