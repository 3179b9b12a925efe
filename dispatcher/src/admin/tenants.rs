//! `/v1/tenants`: create or update, get, list, delete. Deleting a tenant deletes its
//! endpoints, accounts and undelivered events too, and announces both so deliveries and
//! intake stop.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use switchyard_core::names::is_valid_id;
use switchyard_registry::cache::{account_changed, endpoints_changed};
use switchyard_registry::Tenant;

use super::page::{self, Params};
use super::{now, Admin, ApiError};

const MAX_NAME: usize = 256;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TenantBody {
    #[serde(default)]
    name: String,
}

pub async fn put(
    State(admin): State<Arc<Admin>>,
    Path(id): Path<String>,
    body: Result<Option<Json<TenantBody>>, JsonRejection>,
) -> Result<(StatusCode, Json<Tenant>), ApiError> {
    if !is_valid_id(&id) {
        return Err(ApiError::invalid("tenant_id", "use 1-64 letters, digits, '_' or '-'"));
    }
    let body = body?.map(|Json(b)| b).unwrap_or_default();
    if body.name.len() > MAX_NAME {
        return Err(ApiError::invalid("name", format!("longer than {MAX_NAME} characters")));
    }
    let existing = admin.store.get_tenant(&id).await?;
    let t = Tenant {
        id,
        name: body.name,
        created_at: existing.as_ref().map(|t| t.created_at.clone()).unwrap_or_else(now),
        updated_at: now(),
    };
    admin.store.put_tenant(&t).await?;
    let status = if existing.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(t)))
}

pub async fn get(State(admin): State<Arc<Admin>>, Path(id): Path<String>) -> Result<Json<Tenant>, ApiError> {
    admin
        .store
        .get_tenant(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no such tenant"))
}

/// `GET /v1/tenants?limit=&cursor=`, in id order.
pub async fn list(State(admin): State<Arc<Admin>>, q: Params) -> Result<Json<Value>, ApiError> {
    let q = page::params(q)?;
    let limit = page::limit(&q, page::DEFAULT_LIMIT, page::MAX_LIMIT)?;
    let tenants = admin.store.list_tenants(page::cursor(&q), limit).await?;
    Ok(Json(page::answer(&tenants, |t| {
        serde_json::to_value(t).expect("a tenant serializes")
    })))
}

pub async fn delete(State(admin): State<Arc<Admin>>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let deleted = admin
        .store
        .delete_tenant(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such tenant"))?;
    admin.announce(endpoints_changed(&id)).await;
    for account in &deleted.account_ids {
        admin.announce(account_changed(account)).await;
    }
    for endpoint in &deleted.endpoint_ids {
        // Housekeeping only: a leftover streak expires by itself.
        let _ = crate::breaker::reset(&admin.redis, admin.store.names(), endpoint).await;
    }
    // Its undelivered events go with it (a tenant created again under the id starts
    // with none); if NATS is down they expire with the stream's retention.
    if let Err(e) = admin.undelivered.purge(&id).await {
        tracing::warn!(error = %e, tenant_id = %id, "The deleted tenant's undelivered events were not purged.");
    }
    tracing::info!(
        tenant_id = %id,
        endpoints = deleted.endpoint_ids.len(),
        accounts = deleted.account_ids.len(),
        "Tenant deleted."
    );
    Ok(StatusCode::NO_CONTENT)
}
