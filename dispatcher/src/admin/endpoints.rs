//! `/v1/tenants/{tenant_id}/endpoints`: create (201 with the generated secret, shown
//! this once), get, list, update (`PATCH`), delete. Every change is announced so the
//! dispatchers' caches pick it up at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_core::secret::Secret;
use switchyard_registry::cache::endpoints_changed;
use switchyard_registry::Endpoint;

use super::endpoint_record::{self, find_versioned, save, view};
use super::{fields, now, Admin, ApiError};

/// `disabled_reason` of an endpoint an operator disabled.
const MANUAL: &str = "manual";

fn enabled_by_default() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    url: String,
    #[serde(default)]
    description: String,
    event_types: Vec<String>,
    #[serde(default)]
    filter: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    rate_limit: Option<u32>,
    #[serde(default)]
    max_in_flight: Option<u32>,
    #[serde(default = "enabled_by_default")]
    enabled: bool,
}

pub async fn create(
    State(admin): State<Arc<Admin>>,
    Path(tenant_id): Path<String>,
    body: Result<Json<CreateEndpoint>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body?;
    if admin.store.get_tenant(&tenant_id).await?.is_none() {
        return Err(ApiError::not_found("no such tenant"));
    }
    fields::description(&body.description)?;
    fields::event_types(&body.event_types)?;
    if let Some(f) = &body.filter {
        fields::filter(f)?;
    }
    let headers = fields::headers(body.headers)?;
    fields::rate_limit(body.rate_limit)?;
    fields::max_in_flight(body.max_in_flight)?;
    // Last: it resolves the host.
    fields::url(&admin, &body.url).await?;

    let secret = switchyard_webhooks::new_secret();
    let mut ep = Endpoint::new(
        format!("ep_{}", hex_id()),
        tenant_id,
        body.url,
        body.event_types,
        Secret::new(secret.clone()),
        &now(),
    );
    ep.description = body.description;
    ep.filter = body.filter;
    ep.headers = headers;
    ep.rate_limit = body.rate_limit;
    ep.max_in_flight = body.max_in_flight;
    ep.enabled = body.enabled;
    ep.disabled_reason = (!body.enabled).then(|| MANUAL.to_string());
    admin.store.put_endpoint(&ep).await?;
    admin.announce(endpoints_changed(&ep.tenant_id)).await;
    tracing::info!(tenant_id = %ep.tenant_id, endpoint_id = %ep.id, "Endpoint created.");
    let mut v = view(&ep);
    v["secret"] = secret.into();
    v["warnings"] = fields::unmatched_event_types(&admin, &ep.event_types).into();
    Ok((StatusCode::CREATED, Json(v)))
}

pub async fn list(State(admin): State<Arc<Admin>>, Path(tenant_id): Path<String>) -> Result<Json<Value>, ApiError> {
    if admin.store.get_tenant(&tenant_id).await?.is_none() {
        return Err(ApiError::not_found("no such tenant"));
    }
    let eps = admin.store.list_endpoints(&tenant_id).await?;
    Ok(Json(json!({ "data": eps.iter().map(view).collect::<Vec<_>>() })))
}

pub async fn get(
    State(admin): State<Arc<Admin>>,
    Path((tenant_id, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(view(&find(&admin, &tenant_id, &id).await?)))
}

/// The endpoint, or 404.
pub(super) async fn find(admin: &Admin, tenant_id: &str, id: &str) -> Result<Endpoint, ApiError> {
    admin
        .store
        .get_endpoint(tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such endpoint"))
}

/// Fields left out stay as they are; `null` clears `filter`, `rate_limit` and
/// `max_in_flight`; `headers` replaces the whole set (`{}` clears it).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpoint {
    url: Option<String>,
    description: Option<String>,
    event_types: Option<Vec<String>>,
    #[serde(default, deserialize_with = "fields::nullable")]
    filter: Option<Option<String>>,
    enabled: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "fields::nullable")]
    rate_limit: Option<Option<u32>>,
    #[serde(default, deserialize_with = "fields::nullable")]
    max_in_flight: Option<Option<u32>>,
}

pub async fn update(
    State(admin): State<Arc<Admin>>,
    Path((tenant_id, id)): Path<(String, String)>,
    body: Result<Json<UpdateEndpoint>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body?;
    let (mut ep, read_at) = find_versioned(&admin, &tenant_id, &id).await?;
    if let Some(d) = body.description {
        fields::description(&d)?;
        ep.description = d;
    }
    if let Some(t) = body.event_types {
        fields::event_types(&t)?;
        ep.event_types = t;
    }
    if let Some(f) = body.filter {
        if let Some(f) = &f {
            fields::filter(f)?;
        }
        ep.filter = f;
    }
    if let Some(h) = body.headers {
        ep.headers = fields::headers(h)?;
    }
    if let Some(n) = body.rate_limit {
        fields::rate_limit(n)?;
        ep.rate_limit = n;
    }
    if let Some(n) = body.max_in_flight {
        fields::max_in_flight(n)?;
        ep.max_in_flight = n;
    }
    if let Some(u) = body.url {
        if u != ep.url {
            fields::url(&admin, &u).await?;
            ep.url = u;
        }
    }
    match body.enabled {
        Some(true) if !ep.enabled => {
            endpoint_record::forget_failures(&admin, &ep.id).await?;
            ep.enabled = true;
            ep.disabled_reason = None;
        }
        Some(false) if ep.enabled => {
            ep.enabled = false;
            ep.disabled_reason = Some(MANUAL.to_string());
        }
        _ => {}
    }
    ep.updated_at = now();
    save(&admin, &ep, &read_at).await?;
    tracing::info!(tenant_id = %ep.tenant_id, endpoint_id = %ep.id, "Endpoint updated.");
    let mut v = view(&ep);
    v["warnings"] = fields::unmatched_event_types(&admin, &ep.event_types).into();
    Ok(Json(v))
}

pub async fn delete(
    State(admin): State<Arc<Admin>>,
    Path((tenant_id, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    if !admin.store.delete_endpoint(&tenant_id, &id).await? {
        return Err(ApiError::not_found("no such endpoint"));
    }
    admin.announce(endpoints_changed(&tenant_id)).await;
    // Housekeeping only: a leftover streak expires by itself.
    let _ = crate::breaker::reset(&admin.redis, admin.store.names(), &id).await;
    tracing::info!(%tenant_id, endpoint_id = %id, "Endpoint deleted.");
    Ok(StatusCode::NO_CONTENT)
}

fn hex_id() -> String {
    let b: [u8; 12] = rand::random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}
