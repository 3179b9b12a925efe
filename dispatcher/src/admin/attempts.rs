//! The recent delivery attempts, per endpoint and per event, as the delivery engine
//! logged them ([`crate::attempts`]), newest first, within the retention.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::page::{self, Params};
use super::{Admin, ApiError};
use crate::attempts::{AttemptRecord, KEPT_PER_KEY};

const DEFAULT_LIMIT: usize = 50;

/// `GET /v1/tenants/{tenant_id}/endpoints/{endpoint_id}/attempts?limit=`
pub async fn for_endpoint(
    State(admin): State<Arc<Admin>>,
    Path((tenant_id, id)): Path<(String, String)>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let limit = page::limit(&page::params(q)?, DEFAULT_LIMIT, KEPT_PER_KEY as usize)?;
    super::endpoints::find(&admin, &tenant_id, &id).await?;
    let records =
        crate::attempts::for_endpoint(&admin.redis, admin.store.names(), &id, limit, admin.attempts_retention).await?;
    Ok(Json(answer(&records)))
}

/// `GET /v1/events/{event_id}/attempts?limit=`: to every endpoint; an event with none
/// (unknown, not yet delivered, or past the retention) answers an empty list.
pub async fn for_event(
    State(admin): State<Arc<Admin>>,
    Path(event_id): Path<String>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let limit = page::limit(&page::params(q)?, DEFAULT_LIMIT, KEPT_PER_KEY as usize)?;
    let records = crate::attempts::for_event(
        &admin.redis,
        admin.store.names(),
        &event_id,
        limit,
        admin.attempts_retention,
    )
    .await?;
    Ok(Json(answer(&records)))
}

fn answer(records: &[AttemptRecord]) -> Value {
    let data: Vec<Value> = records
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).expect("an attempt record serializes");
            let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(r.at_ms) * 1_000_000)
                .ok()
                .map(switchyard_core::timefmt::rfc3339);
            v["at"] = json!(at);
            v
        })
        .collect();
    json!({ "data": data })
}
