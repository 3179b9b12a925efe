//! `PUT /v1/tenants/{id}` and `GET /v1/tenants/{id}`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use switchyard_plumbing::names::is_valid_id;
use switchyard_plumbing::registry::Tenant;

use super::{now, Admin, ApiError};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TenantBody {
    #[serde(default)]
    name: String,
}

pub async fn put(
    State(admin): State<Arc<Admin>>,
    Path(id): Path<String>,
    body: Option<Json<TenantBody>>,
) -> Result<(StatusCode, Json<Tenant>), ApiError> {
    if !is_valid_id(&id) {
        return Err(ApiError::invalid("tenant_id", "use 1-64 letters, digits, '_' or '-'"));
    }
    let body = body.map(|Json(b)| b).unwrap_or_default();
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
