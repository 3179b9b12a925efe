//! What travels on the streams.
//!
//! - [`RawEnvelope`]: published by the ingress to the raw stream once the body is
//!   durable in S3; small, it points at the body (the claim-check) instead of carrying it.
//! - The unified event: published by the normalizer to the unified stream; its JSON is
//!   the exact body the dispatcher delivers, and the headers named here let the
//!   dispatcher route it without parsing it.
//! - [`DeadLetter`]: anything that could not go on, with the reason.

use serde::{Deserialize, Serialize};

/// NATS header with the unified event type (the dispatcher's routing key).
pub const HEADER_EVENT_TYPE: &str = "Switchyard-Type";
/// NATS header with the ingress receive time in Unix milliseconds (end-to-end latency).
pub const HEADER_RECEIVED_MS: &str = "Switchyard-Received-Ms";
/// NATS header with the tenant id.
pub const HEADER_TENANT: &str = "Switchyard-Tenant";
/// NATS header with the unified event id where the message id is not it: a delivery on
/// the retry stream ([`crate::delivery`]), and an event re-delivered from the
/// undelivered stream, whose message id is its own so the duplicate window does not
/// drop it (the event id, and so the `webhook-id`, stays the original's).
pub const HEADER_EVENT_ID: &str = "Switchyard-Event";
/// NATS header of an undelivered event: why no endpoint received it
/// ([`crate::names::Names::undelivered_stream`]).
pub const HEADER_UNDELIVERED_REASON: &str = "Switchyard-Undelivered";

/// Where one raw body lives: a byte range of an S3 object (bodies that arrive together
/// share one object; see the `switchyard-claimcheck` crate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRef {
    pub key: String,
    pub offset: u64,
    pub len: u64,
}

/// One provider event, durable and verified, on its way to the normalizer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawEnvelope {
    pub connector: String,
    pub account_id: String,
    pub tenant_id: String,
    /// The provider's id of the account (the connector's routing key), where declared.
    /// With an empty `account_id` it names an account not registered when the event
    /// arrived; the normalizer looks it up again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_account: Option<String>,
    /// The provider's event id (or the declared fallback); with connector and account it
    /// forms the idempotency key.
    pub event_id: String,
    /// The provider's event type, e.g. `customer.created`.
    pub event_type: String,
    /// For a body carrying several events (a batch), the index of this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<u32>,
    /// When the provider says the event happened (RFC 3339), where it says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<String>,
    /// When the ingress received the request, in Unix milliseconds.
    pub received_ms: i64,
    pub claim: ClaimRef,
    pub content_type: String,
}

impl RawEnvelope {
    pub fn idempotency_key(&self) -> String {
        let account = crate::ids::account_part(&self.account_id, self.external_account.as_deref());
        crate::ids::idempotency_key(&self.connector, &account, &self.event_id)
    }
}

/// The unified event as delivered to tenant endpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnifiedEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub tenant_id: String,
    pub account_id: String,
    pub connector: String,
    pub occurred_at: String,
    pub received_at: String,
    pub data: serde_json::Value,
}

/// A failure an operator can see and replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Stable id: the same failure of the same event dead-letters once.
    pub id: String,
    /// `normalizer` or `dispatcher`.
    pub stage: String,
    /// A closed set per stage, e.g. `mapping_error`, `unknown_account`, `claim_missing`.
    pub reason: String,
    /// One sentence for the operator; never a secret or a body.
    pub detail: String,
    pub connector: String,
    pub account_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<RawEnvelope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_id: Option<String>,
    /// The unified event's id and type (dispatcher dead letters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// The unified event as it was to be delivered (dispatcher dead letters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<serde_json::Value>,
    /// Every delivery attempt's outcome, oldest first (dispatcher dead letters).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<AttemptOutcome>,
    pub failed_at: String,
}

/// One delivery attempt as dead letters and the attempts log keep it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptOutcome {
    /// Unix milliseconds when the attempt started.
    pub at_ms: i64,
    /// `success`, `http_error`, `timeout`, `connect_error`, `refused_destination`.
    pub class: String,
    /// The response status, when there was a response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// One line for the operator (no body, no secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
