//! Dead letters of the normalizer: an event that cannot be normalized is published to
//! the dead-letter stream, with its reason and its claim-check, before its raw message
//! is acked. Nothing is dropped silently.

use async_nats::jetstream;
use switchyard_core::envelope::{DeadLetter, RawEnvelope};
use switchyard_core::names::Names;
use switchyard_core::publish::{self, PublishError};

use crate::reason::Reason;

/// Publish the dead letter and wait for its PubAck.
pub async fn publish(
    js: &jetstream::Context,
    names: &Names,
    reason: Reason,
    detail: String,
    env: &RawEnvelope,
) -> Result<(), PublishError> {
    let failed_ms = switchyard_core::timefmt::unix_millis(time::OffsetDateTime::now_utc());
    let id = message_id(reason, &env.idempotency_key(), failed_ms);
    let dl = DeadLetter {
        id: id.clone(),
        stage: "normalizer".into(),
        reason: reason.as_str().into(),
        detail,
        connector: env.connector.clone(),
        account_id: env.account_id.clone().unwrap_or_default(),
        tenant_id: env.tenant_id.clone(),
        envelope: Some(env.clone()),
        endpoint_id: None,
        event_id: None,
        event_type: None,
        event: None,
        attempts: Vec::new(),
        failed_at: switchyard_core::timefmt::rfc3339(time::OffsetDateTime::now_utc()),
    };
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
    let payload = serde_json::to_vec(&dl).expect("a dead letter serializes");
    let subject = names.dead_letter_subject("normalizer", reason.as_str());
    publish::durably(js, subject, headers, payload.into()).await?;
    Ok(())
}

/// Unique per failure: a replayed event that fails the same way again is dead-lettered
/// again (a repeated id would be dropped by the duplicate window while the first dead
/// letter is already deleted by its replay). A key a header cannot carry (a line break
/// in an old envelope's event id) is named by its hash, so even such an event reaches
/// the dead letters.
fn message_id(reason: Reason, key: &str, failed_ms: i64) -> String {
    let key = if key.chars().any(char::is_control) {
        switchyard_core::ids::unified_event_id(key, 0)
    } else {
        key.to_string()
    };
    format!("normalizer:{reason}:{key}:{failed_ms}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_name_the_reason_and_never_hold_a_line_break() {
        assert_eq!(
            message_id(Reason::ClaimMissing, "stripe/acct/evt_1", 7),
            "normalizer:claim_missing:stripe/acct/evt_1:7"
        );
        let id = message_id(Reason::InvalidHeader, "stripe/acct/evt\n1", 7);
        assert!(
            id.starts_with("normalizer:invalid_header:") && !id.contains('\n'),
            "{id}"
        );
        assert!(id.parse::<async_nats::HeaderValue>().is_ok());
    }
}
