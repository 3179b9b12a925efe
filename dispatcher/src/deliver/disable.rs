//! Disabling an endpoint from the delivery path (410 Gone, or the circuit breaker):
//! mark it disabled with the reason, dead-letter its pending retries, and deliver a
//! signed `switchyard.endpoint.disabled` event to the tenant's other endpoints that
//! subscribe to it. `POST …/endpoints/{id}/enable` re-enables it.

use switchyard_core::delivery::DeliveryJob;
use switchyard_core::envelope::{UnifiedEvent, HEADER_EVENT_TYPE, HEADER_RECEIVED_MS, HEADER_TENANT};
use switchyard_core::publish;
use switchyard_registry::cache::{announce, endpoints_changed};
use switchyard_registry::store::Replaced;
use switchyard_registry::Endpoint;

use super::{now_ms, Engine, Reason};

/// The event type telling a tenant one of its endpoints was disabled.
pub const ENDPOINT_DISABLED: &str = "switchyard.endpoint.disabled";
/// Pending retries dead-lettered per disable, at most (the rest go when they come due).
const DRAIN_AT_MOST: usize = 100_000;

impl Engine {
    /// Disable `ep` for `reason` (`gone`, `failing`). Failures here are logged: the
    /// delivery that triggered it is dead-lettered either way.
    pub(super) async fn disable(&self, ep: &Endpoint, reason: &str, detail: &str) {
        let store = self.registry.store();
        // Compare-and-set: an admin change made meanwhile wins, and a deleted endpoint
        // stays deleted; a few tries settle a race with another delivery.
        let mut written = false;
        for _ in 0..3 {
            let (mut current, version) = match store.get_endpoint_versioned(&ep.tenant_id, &ep.id).await {
                Ok(Some((e, v))) if e.enabled => (e, v),
                Ok(_) => return, // deleted, or already disabled
                Err(e) => {
                    tracing::error!(error = %e, endpoint_id = %ep.id, "Could not disable the endpoint (Redis); it stays enabled and is tried again at its next failure.");
                    return;
                }
            };
            current.enabled = false;
            current.disabled_reason = Some(reason.to_string());
            current.updated_at = switchyard_core::timefmt::rfc3339(time::OffsetDateTime::now_utc());
            match store.replace_endpoint(&current, &version).await {
                Ok(Replaced::Done) => {
                    written = true;
                    break;
                }
                Ok(Replaced::Gone) => return,
                Ok(Replaced::Changed) => continue,
                Err(e) => {
                    tracing::error!(error = %e, endpoint_id = %ep.id, "Could not disable the endpoint (Redis).");
                    return;
                }
            }
        }
        if !written {
            return;
        }
        let change = endpoints_changed(&ep.tenant_id);
        self.registry.invalidate(&change);
        announce(&self.nats, self.names.registry_changes(), change).await;
        self.metrics.endpoints_disabled.with_label_values(&[reason]).inc();
        tracing::warn!(endpoint_id = %ep.id, tenant_id = %ep.tenant_id, reason, detail, "Endpoint disabled; re-enable it with POST /v1/tenants/<tenant>/endpoints/<id>/enable once it works.");
        self.drain_retries(ep).await;
        self.announce_to_tenant(ep, reason, detail).await;
    }

    /// Dead-letter the endpoint's retries still waiting on the retry stream.
    async fn drain_retries(&self, ep: &Endpoint) {
        let stream = match self.js.get_stream(self.names.retry_stream()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "Could not open the retry stream; pending retries dead-letter when they come due.");
                return;
            }
        };
        let subject = self.names.retry_subject(&ep.id);
        let mut seq = 1;
        for _ in 0..DRAIN_AT_MOST {
            let Ok(msg) = stream.get_first_raw_message_by_subject(&subject, seq).await else {
                return; // none left (or unreadable: they dead-letter when due)
            };
            seq = msg.sequence + 1;
            let Ok(job) = DeliveryJob::from_message(Some(&msg.headers), msg.payload.clone()) else {
                continue;
            };
            let detail = format!(
                "the endpoint was disabled ({})",
                ep.disabled_reason.as_deref().unwrap_or("failing")
            );
            if self.dead_letter(&job, Reason::EndpointDisabled, detail).await.is_ok() {
                let _ = stream.delete_message(msg.sequence).await;
            }
        }
    }

    async fn announce_to_tenant(&self, ep: &Endpoint, reason: &str, detail: &str) {
        let now = time::OffsetDateTime::now_utc();
        let at = switchyard_core::timefmt::rfc3339(now);
        let id = format!("evt_sys_{}_{}", ep.id, now_ms() / 1000);
        let event = UnifiedEvent {
            id: id.clone(),
            event_type: ENDPOINT_DISABLED.into(),
            schema_version: None,
            tenant_id: ep.tenant_id.clone(),
            account_id: String::new(),
            connector: "switchyard".into(),
            occurred_at: at.clone(),
            received_at: at,
            data: serde_json::json!({
                "endpoint_id": ep.id,
                "url": ep.url,
                "reason": reason,
                "detail": detail,
            }),
            mapping_error: None,
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
        headers.insert(HEADER_EVENT_TYPE, ENDPOINT_DISABLED);
        headers.insert(HEADER_TENANT, ep.tenant_id.as_str());
        headers.insert(HEADER_RECEIVED_MS, now_ms().to_string().as_str());
        let body = serde_json::to_vec(&event).expect("a unified event serializes");
        let subject = self.names.unified_subject(&ep.tenant_id);
        if let Err(e) = publish::durably(&self.js, subject, headers, body.into()).await {
            tracing::error!(error = %e, endpoint_id = %ep.id, "Could not publish switchyard.endpoint.disabled; the tenant is not told.");
        }
    }
}
