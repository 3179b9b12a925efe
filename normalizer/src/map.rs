//! One raw event to its unified event: pick the event out of the body, run the
//! connector's JSONata mapping for its type, wrap the result in the unified envelope.
//! Pure: no I/O, so `connectors map` and the tests use exactly this.

use switchyard_connectors::mapping::Limits;
use switchyard_connectors::model::UnmappedPolicy;
use switchyard_connectors::Connector;
use switchyard_plumbing::envelope::{RawEnvelope, UnifiedEvent};
use switchyard_plumbing::ids;
use switchyard_plumbing::timefmt;

/// What became of one raw event.
#[derive(Debug, PartialEq)]
pub enum Mapped {
    Event(Box<UnifiedEvent>),
    /// No mapping, and the connector's policy is to drop (counted).
    Dropped,
}

/// Why an event cannot be normalized; it is dead-lettered with this reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// A closed set: `malformed_body`, `missing_item`, `mapping_error`, `mapping_empty`.
    pub reason: &'static str,
    pub detail: String,
}

pub fn normalize(connector: &Connector, env: &RawEnvelope, body: &[u8], limits: Limits) -> Result<Mapped, Failure> {
    let doc: serde_json::Value = serde_json::from_slice(body).map_err(|e| Failure {
        reason: "malformed_body",
        detail: format!("the body is not JSON: {e}"),
    })?;
    let event = match env.item {
        None => doc,
        Some(i) => match doc {
            serde_json::Value::Array(mut items) if (i as usize) < items.len() => items.swap_remove(i as usize),
            _ => {
                return Err(Failure {
                    reason: "missing_item",
                    detail: format!("the batch body has no item {i}"),
                })
            }
        },
    };
    let (unified_type, data) = match connector.mappings.get(&env.event_type) {
        Some(m) => {
            let data = m.data.evaluate(&event, limits).map_err(|e| Failure {
                reason: "mapping_error",
                detail: e.to_string(),
            })?;
            let data = data.ok_or_else(|| Failure {
                reason: "mapping_empty",
                detail: format!("the mapping for {:?} produced nothing", env.event_type),
            })?;
            (m.unified_type.clone(), data)
        }
        None => match connector.unmapped {
            UnmappedPolicy::Drop => return Ok(Mapped::Dropped),
            UnmappedPolicy::PassThrough => (format!("{}.{}", connector.name, env.event_type), event),
        },
    };
    let received_at = timefmt::from_unix_seconds(env.received_ms.div_euclid(1000))
        .map(|s| with_millis(&s, env.received_ms))
        .unwrap_or_default();
    Ok(Mapped::Event(Box::new(UnifiedEvent {
        id: ids::unified_event_id(&env.idempotency_key(), 0),
        event_type: unified_type,
        tenant_id: env.tenant_id.clone(),
        account_id: env.account_id.clone(),
        connector: env.connector.clone(),
        occurred_at: env.occurred_at.clone().unwrap_or_else(|| received_at.clone()),
        received_at,
        data,
    })))
}

/// Put the milliseconds back on a whole-second RFC 3339 time.
fn with_millis(rfc3339_secs: &str, ms: i64) -> String {
    match rfc3339_secs.strip_suffix('Z') {
        Some(base) if !base.contains('.') => format!("{base}.{:03}Z", ms.rem_euclid(1000)),
        _ => rfc3339_secs.to_string(),
    }
}
