//! `POST /v1/tenants/{id}/endpoints` (201 with the generated secret) and the list.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_plumbing::registry::cache::endpoints_changed;
use switchyard_plumbing::registry::Endpoint;
use switchyard_plumbing::sealed::SecretString;

use super::{now, Admin, ApiError};
use crate::sign;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    url: String,
    #[serde(default)]
    description: String,
    event_types: Vec<String>,
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
    check_url(&body.url)?;
    check_event_types(&body.event_types)?;
    let secret = sign::new_secret();
    let mut ep = Endpoint::new(
        format!("ep_{}", hex_id()),
        tenant_id,
        body.url,
        body.event_types,
        SecretString::new(secret.clone()),
        &now(),
    );
    ep.description = body.description;
    admin.store.put_endpoint(&ep).await?;
    admin.announce(endpoints_changed(&ep.tenant_id)).await;
    let mut v = view(&ep);
    v["secret"] = secret.into();
    Ok((StatusCode::CREATED, Json(v)))
}

pub async fn list(State(admin): State<Arc<Admin>>, Path(tenant_id): Path<String>) -> Result<Json<Value>, ApiError> {
    if admin.store.get_tenant(&tenant_id).await?.is_none() {
        return Err(ApiError::not_found("no such tenant"));
    }
    let eps = admin.store.list_endpoints(&tenant_id).await?;
    Ok(Json(json!({ "data": eps.iter().map(view).collect::<Vec<_>>() })))
}

/// An endpoint as the API shows it: never the secret, except once at creation.
fn view(ep: &Endpoint) -> Value {
    json!({
        "id": ep.id,
        "tenant_id": ep.tenant_id,
        "url": ep.url,
        "description": ep.description,
        "event_types": ep.event_types,
        "enabled": ep.enabled,
        "created_at": ep.created_at,
        "updated_at": ep.updated_at,
    })
}

fn check_url(url: &str) -> Result<(), ApiError> {
    let parsed: Result<reqwest::Url, _> = url.parse();
    match parsed {
        Ok(u) if (u.scheme() == "https" || u.scheme() == "http") && u.host().is_some() => Ok(()),
        _ => Err(ApiError::invalid("url", "must be an absolute http:// or https:// URL")),
    }
}

fn check_event_types(types: &[String]) -> Result<(), ApiError> {
    if types.is_empty() {
        return Err(ApiError::invalid(
            "event_types",
            "list at least one event type, e.g. \"payments.*\" or \"*\"",
        ));
    }
    for t in types {
        let ok = t == "*"
            || (t.split('.').count() >= 2
                && t.split('.').all(|s| {
                    s == "*"
                        || (!s.is_empty()
                            && s.bytes()
                                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
                }));
        if !ok {
            return Err(ApiError::invalid(
                "event_types",
                format!("{t:?} is not an event type pattern: dot-separated lowercase segments, '*' for one segment"),
            ));
        }
    }
    Ok(())
}

fn hex_id() -> String {
    let b: [u8; 12] = rand::random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}
