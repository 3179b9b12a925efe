//! Dead letters of the dispatcher: a delivery that will not be attempted again goes to
//! the dead-letter stream with the event, the endpoint, every attempt's outcome and the
//! reason, before the message that carried it is acked.

use async_nats::jetstream;
use switchyard_core::delivery::DeliveryJob;
use switchyard_core::envelope::DeadLetter;
use switchyard_core::names::Names;
use switchyard_core::publish::{self, PublishError};

/// Why a delivery will not be attempted again: a closed set. [`Reason::as_str`] is
/// what the wire and the metrics carry (the dead letter's `reason`, its subject
/// `<ns>.dlq.dispatcher.<reason>`, the `reason` label of
/// `switchyard_dispatcher_dead_letters_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The endpoint was deleted before the delivery.
    EndpointDeleted,
    /// The endpoint is disabled (by hand, or by the breaker).
    EndpointDisabled,
    /// The endpoint answered 410 Gone and was disabled.
    EndpointGone,
    /// The last attempt of the schedule failed.
    RetriesExhausted,
    /// The endpoint's content filter could not judge the event.
    FilterError,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::EndpointDeleted => "endpoint_deleted",
            Reason::EndpointDisabled => "endpoint_disabled",
            Reason::EndpointGone => "endpoint_gone",
            Reason::RetriesExhausted => "retries_exhausted",
            Reason::FilterError => "filter_error",
        }
    }
}

/// Publish the dead letter and wait for its PubAck.
pub async fn publish(
    js: &jetstream::Context,
    names: &Names,
    job: &DeliveryJob,
    reason: Reason,
    detail: String,
) -> Result<(), PublishError> {
    let reason = reason.as_str();
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
    let subject = names.dead_letter_subject("dispatcher", reason);
    publish::durably(js, subject, headers, payload.into()).await?;
    Ok(())
}
