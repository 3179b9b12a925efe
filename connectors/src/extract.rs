//! Event ids, types and times out of a verified request, as the connector file says.

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
}

impl ExtractError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotJson => "malformed_json",
            Self::MissingId(_) => "missing_event_id",
            Self::MissingType(_) => "missing_event_type",
        }
    }
}

/// Longest event id or type accepted (they end up in keys and headers).
const MAX_ID_LEN: usize = 256;

pub fn extract(spec: &EventSpec, webhook: &VerifiedWebhook) -> Result<Vec<ExtractedEvent>, ExtractError> {
    let needs_json = matches!(spec.id, ValueSource::Json(_))
        || matches!(spec.event_type, ValueSource::Json(_))
        || spec.occurred_at.is_some();
    let doc: Option<serde_json::Value> = if needs_json {
        Some(serde_json::from_slice(webhook.body()).map_err(|_| ExtractError::NotJson)?)
    } else {
        None
    };
    let read = |src: &ValueSource| -> Option<String> {
        let v = match src {
            ValueSource::Json(p) => p.get_string(doc.as_ref()?),
            ValueSource::Header(h) => header_str(webhook.headers(), h).map(str::to_string),
            ValueSource::Literal(s) => Some(s.clone()),
            ValueSource::BodySha256(_) => Some(hex::encode(Sha256::digest(webhook.body()))),
        }?;
        (!v.is_empty() && v.len() <= MAX_ID_LEN).then_some(v)
    };
    let id = read(&spec.id).ok_or_else(|| ExtractError::MissingId(describe(&spec.id)))?;
    let event_type = read(&spec.event_type).ok_or_else(|| ExtractError::MissingType(describe(&spec.event_type)))?;
    let occurred_ms = match (&spec.occurred_at, &doc) {
        (Some(t), Some(doc)) => t.json.get(doc).and_then(|v| to_millis(v, t.format)),
        _ => None,
    };
    Ok(vec![ExtractedEvent {
        id,
        event_type,
        occurred_ms,
        item: None,
    }])
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
