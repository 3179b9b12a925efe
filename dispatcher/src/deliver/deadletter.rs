//! Dead letters of the dispatcher: a delivery that will not be attempted again goes to
//! the dead-letter stream with the event, the endpoint, every attempt's outcome and the
//! reason, before the message that carried it is acked.

use std::future::IntoFuture;

use async_nats::jetstream;
use switchyard_core::delivery::DeliveryJob;
use switchyard_core::envelope::DeadLetter;
use switchyard_core::names::Names;

use super::EngineError;

/// Publish the dead letter and wait for its PubAck.
pub async fn publish(
    js: &jetstream::Context,
    names: &Names,
    job: &DeliveryJob,
    reason: &str,
    detail: String,
) -> Result<(), EngineError> {
    // Unique per failure, so a replayed delivery that fails again dead-letters again
    // (the duplicate window would drop a repeated id); the same failure republished
    // after a crash keeps its id.
    let last = job.history.last().map(|a| a.at_ms).unwrap_or_else(super::now_ms);
    let id = format!("dispatcher:{reason}:{}:{}:{last}", job.event_id, job.endpoint_id);
    let event: Option<serde_json::Value> = serde_json::from_slice(&job.body).ok();
    let field = |name: &str| {
        event
            .as_ref()
            .and_then(|e| e.get(name))
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let dl = DeadLetter {
        id: id.clone(),
        stage: "dispatcher".into(),
        reason: reason.into(),
        detail,
        connector: field("connector"),
        account_id: field("account_id"),
        tenant_id: Some(job.tenant_id.clone()),
        envelope: None,
        endpoint_id: Some(job.endpoint_id.clone()),
        event_id: Some(job.event_id.clone()),
        event_type: Some(job.event_type.clone()),
        event,
        attempts: job.history.clone(),
        failed_at: switchyard_core::timefmt::rfc3339(time::OffsetDateTime::now_utc()),
    };
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
    let payload = serde_json::to_vec(&dl).expect("a dead letter serializes");
    let ack = js
        .publish_with_headers(names.dead_letter_subject("dispatcher", reason), headers, payload.into())
        .await
        .map_err(|e| EngineError::Publish(e.to_string()))?;
    ack.into_future()
        .await
        .map(|_| ())
        .map_err(|e| EngineError::Publish(e.to_string()))
}
