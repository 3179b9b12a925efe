//! A delivery on the retry stream: one unified event for one endpoint, with its attempt
//! number, its history and when it may be tried. The dispatcher writes these when an
//! attempt fails (or an endpoint's lane is full); the replay CLI writes them to bring a
//! dead letter back.
//!
//! The body is the unified event exactly as delivered; everything else travels in
//! headers, so the dispatcher never parses the body to route it.

use async_nats::HeaderMap;
use bytes::Bytes;

use crate::envelope::{AttemptOutcome, HEADER_EVENT_ID, HEADER_EVENT_TYPE, HEADER_RECEIVED_MS, HEADER_TENANT};
use crate::names::Names;

pub const HEADER_ENDPOINT: &str = "Switchyard-Endpoint";
pub const HEADER_ATTEMPT: &str = "Switchyard-Attempt";
pub const HEADER_NOT_BEFORE: &str = "Switchyard-Not-Before";
pub const HEADER_HISTORY: &str = "Switchyard-History";

#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryJob {
    pub event_id: String,
    pub event_type: String,
    pub tenant_id: String,
    pub endpoint_id: String,
    /// When the ingress received the event (end-to-end latency), where known.
    pub received_ms: Option<i64>,
    /// The number of the attempt this job is for, from 1.
    pub attempt: u32,
    /// Unix milliseconds before which it must not be tried.
    pub not_before_ms: i64,
    /// Earlier attempts, oldest first.
    pub history: Vec<AttemptOutcome>,
    pub body: Bytes,
}

#[derive(Debug, thiserror::Error)]
#[error("retry message without a valid {0} header")]
pub struct MissingHeader(pub &'static str);

impl DeliveryJob {
    /// Subject, headers and payload on the retry stream. `msg_id` deduplicates
    /// republishing of the same step (e.g. `<event>:<endpoint>:<attempt>`).
    pub fn to_message(&self, names: &Names, msg_id: &str) -> (String, HeaderMap, Bytes) {
        let mut h = HeaderMap::new();
        h.insert(async_nats::header::NATS_MESSAGE_ID, msg_id);
        h.insert(HEADER_EVENT_ID, self.event_id.as_str());
        h.insert(HEADER_EVENT_TYPE, self.event_type.as_str());
        h.insert(HEADER_TENANT, self.tenant_id.as_str());
        h.insert(HEADER_ENDPOINT, self.endpoint_id.as_str());
        if let Some(r) = self.received_ms {
            h.insert(HEADER_RECEIVED_MS, r.to_string().as_str());
        }
        h.insert(HEADER_ATTEMPT, self.attempt.to_string().as_str());
        h.insert(HEADER_NOT_BEFORE, self.not_before_ms.to_string().as_str());
        if !self.history.is_empty() {
            let json = serde_json::to_string(&self.history).expect("attempts serialize");
            h.insert(HEADER_HISTORY, json.as_str());
        }
        (names.retry_subject(&self.endpoint_id), h, self.body.clone())
    }

    pub fn from_message(headers: Option<&HeaderMap>, payload: Bytes) -> Result<Self, MissingHeader> {
        let get = |name: &'static str| {
            headers
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_string())
                .filter(|v| !v.is_empty())
        };
        let need = |name: &'static str| get(name).ok_or(MissingHeader(name));
        let number = |name: &'static str| need(name)?.parse::<i64>().map_err(|_| MissingHeader(name));
        Ok(Self {
            event_id: need(HEADER_EVENT_ID)?,
            event_type: need(HEADER_EVENT_TYPE)?,
            tenant_id: need(HEADER_TENANT)?,
            endpoint_id: need(HEADER_ENDPOINT)?,
            received_ms: get(HEADER_RECEIVED_MS).and_then(|v| v.parse().ok()),
            attempt: number(HEADER_ATTEMPT)?.clamp(1, u32::MAX as i64) as u32,
            not_before_ms: number(HEADER_NOT_BEFORE)?,
            history: match get(HEADER_HISTORY) {
                Some(json) => serde_json::from_str(&json).map_err(|_| MissingHeader(HEADER_HISTORY))?,
                None => Vec::new(),
            },
            body: payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_a_message() {
        let job = DeliveryJob {
            event_id: "evt_1".into(),
            event_type: "crm.contact.updated".into(),
            tenant_id: "t1".into(),
            endpoint_id: "ep_1".into(),
            received_ms: Some(1_700_000_000_000),
            attempt: 3,
            not_before_ms: 1_700_000_005_000,
            history: vec![AttemptOutcome {
                at_ms: 1,
                class: "http_error".into(),
                status: Some(500),
                latency_ms: 3,
                error: Some("the endpoint answered 500".into()),
            }],
            body: Bytes::from_static(b"{}"),
        };
        let (subject, headers, payload) = job.to_message(&Names::new("ns"), "evt_1:ep_1:3");
        assert_eq!(subject, "ns.retry.ep_1");
        assert_eq!(DeliveryJob::from_message(Some(&headers), payload).unwrap(), job);
        assert!(DeliveryJob::from_message(None, Bytes::new()).is_err());
    }
}
