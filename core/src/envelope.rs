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
    /// The registered account the event belongs to; `None` when none was registered for
    /// it when it arrived (on the wire, an empty string, as before this was typed).
    #[serde(default, with = "empty_as_none")]
    pub account_id: Option<String>,
    /// The account's tenant, set with `account_id`.
    #[serde(default, with = "empty_as_none")]
    pub tenant_id: Option<String>,
    /// The provider's id of the account (the connector's routing key), where declared.
    /// Without an `account_id` it names an account not registered when the event
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
    /// When the provider says the event happened, where it says so (RFC 3339 on the
    /// wire; a value that does not parse reads as absent).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::timefmt::rfc3339_opt"
    )]
    pub occurred_at: Option<time::OffsetDateTime>,
    /// When the ingress received the request, in Unix milliseconds.
    pub received_ms: i64,
    pub claim: ClaimRef,
    pub content_type: String,
}

impl RawEnvelope {
    pub fn idempotency_key(&self) -> String {
        let account = crate::ids::account_part(self.account_id.as_deref(), self.external_account.as_deref());
        crate::ids::idempotency_key(&self.connector, &account, &self.event_id)
    }

    /// The registered account and its tenant, when the event has one.
    pub fn owner(&self) -> Option<(&str, &str)> {
        Some((
            self.account_id.as_deref()?,
            self.tenant_id.as_deref().unwrap_or_default(),
        ))
    }

    /// The event belongs to `account_id` of `tenant_id`.
    pub fn set_owner(&mut self, account_id: &str, tenant_id: &str) {
        self.account_id = Some(account_id.to_string());
        self.tenant_id = Some(tenant_id.to_string());
    }
}

/// An optional id that the wire has always carried as a string, empty when absent.
mod empty_as_none {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.as_deref().unwrap_or_default())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
    }
}

/// The unified event as delivered to tenant endpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnifiedEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// The version of the unified type's schema that `data` follows; absent on a
    /// provider's own `<connector>.<type>` events, which follow the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<u32>,
    pub tenant_id: String,
    pub account_id: String,
    pub connector: String,
    pub occurred_at: String,
    pub received_at: String,
    pub data: serde_json::Value,
    /// Set on a provider event delivered as its own type because its mapping's output
    /// did not match the unified schema: `data` is the provider event, unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping_error: Option<MappingFallback>,
}

/// Why an event went out as the provider's own type rather than its unified one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MappingFallback {
    /// The unified type the mapping was for.
    #[serde(rename = "type")]
    pub unified_type: String,
    /// `schema_violation`.
    pub reason: String,
    /// What did not match, at most 1000 bytes.
    pub detail: String,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> RawEnvelope {
        RawEnvelope {
            connector: "stripe".into(),
            account_id: Some("acct".into()),
            tenant_id: Some("t1".into()),
            external_account: None,
            event_id: "evt_1".into(),
            event_type: "charge.succeeded".into(),
            item: None,
            occurred_at: crate::timefmt::from_unix_millis(1_700_000_000_000),
            received_ms: 1,
            claim: ClaimRef {
                key: "raw/k".into(),
                offset: 0,
                len: 2,
            },
            content_type: "application/json".into(),
        }
    }

    #[test]
    fn the_wire_format_is_what_it_was_before_the_fields_were_typed() {
        let v = serde_json::to_value(envelope()).unwrap();
        assert_eq!(v["account_id"], "acct");
        assert_eq!(v["occurred_at"], "2023-11-14T22:13:20.000Z");
        // Written before every time had milliseconds: still read the same.
        let mut old = v.clone();
        old["occurred_at"] = "2023-11-14T22:13:20Z".into();
        assert_eq!(serde_json::from_value::<RawEnvelope>(old).unwrap(), envelope());
        let mut unowned = envelope();
        unowned.account_id = None;
        unowned.tenant_id = None;
        unowned.occurred_at = None;
        let v = serde_json::to_value(&unowned).unwrap();
        assert_eq!(
            (v["account_id"].as_str(), v["tenant_id"].as_str()),
            (Some(""), Some(""))
        );
        assert!(v.get("occurred_at").is_none());
        let back: RawEnvelope = serde_json::from_value(v).unwrap();
        assert_eq!(back, unowned);
        assert_eq!(back.owner(), None);
    }

    #[test]
    fn an_envelope_written_before_reads_the_same() {
        let old = r#"{"connector":"stripe","account_id":"","tenant_id":"","external_account":"acct_9",
            "event_id":"e","event_type":"t","occurred_at":"not a time","received_ms":5,
            "claim":{"key":"k","offset":1,"len":2},"content_type":"application/json"}"#;
        let env: RawEnvelope = serde_json::from_str(old).unwrap();
        assert_eq!((&env.account_id, &env.tenant_id, env.occurred_at), (&None, &None, None));
        assert_eq!(env.idempotency_key(), "stripe/@acct_9/e");
    }
}
