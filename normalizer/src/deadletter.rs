//! Dead letters of the normalizer: an event that cannot be normalized is published to
//! the dead-letter stream, with its reason and its claim-check, before its raw message
//! is acked. Nothing is dropped silently.

use std::future::IntoFuture;

use async_nats::jetstream;
use switchyard_core::envelope::{DeadLetter, RawEnvelope};
use switchyard_core::names::Names;

/// Publish the dead letter and wait for its PubAck.
pub async fn publish(
    js: &jetstream::Context,
    names: &Names,
    reason: &str,
    detail: String,
    env: &RawEnvelope,
) -> Result<(), String> {
    // Unique per failure: a replayed event that fails the same way again is
    // dead-lettered again (a repeated id would be dropped by the duplicate window while
    // the first dead letter is already deleted by its replay).
    let failed_ms = switchyard_core::timefmt::unix_millis(time::OffsetDateTime::now_utc());
    let key = env.idempotency_key();
    // A key a header cannot carry (a line break in an old envelope's event id) is
    // named by its hash, so even such an event reaches the dead letters.
    let key = if key.chars().any(char::is_control) {
        switchyard_core::ids::unified_event_id(&key, 0)
    } else {
        key
    };
    let id = format!("normalizer:{reason}:{key}:{failed_ms}");
    let dl = DeadLetter {
        id: id.clone(),
        stage: "normalizer".into(),
        reason: reason.into(),
        detail,
        connector: env.connector.clone(),
        account_id: env.account_id.clone(),
        tenant_id: Some(env.tenant_id.clone()),
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
    let ack = js
        .publish_with_headers(names.dead_letter_subject("normalizer", reason), headers, payload.into())
        .await
        .map_err(|e| e.to_string())?;
    ack.into_future().await.map(|_| ()).map_err(|e| e.to_string())
}
