//! `POST …/endpoints/{id}/rotate-secret` and `POST …/endpoints/{id}/enable`.
//!
//! Rotation follows Standard Webhooks: the new secret signs from now on, and the old one
//! keeps signing beside it (a second `v1,` signature) until the grace period ends, so a
//! receiver can switch secrets without losing a delivery.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use switchyard_core::secret::Secret;
use switchyard_core::secret::SigningSecret;

use super::endpoint_record::{find_versioned, forget_failures, save, view};
use super::{now, Admin, ApiError};

/// The longest grace period a rotation may ask for.
pub const MAX_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Rotated-out secrets signing at once; each adds a signature to every delivery.
const MAX_PREVIOUS: usize = 5;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    grace_period_secs: Option<u64>,
}

/// Answers the endpoint with its new `secret`, shown this once.
pub async fn rotate_secret(
    State(admin): State<Arc<Admin>>,
    Path((tenant_id, id)): Path<(String, String)>,
    body: Result<Option<Json<Rotate>>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = body?.map(|Json(b)| b).unwrap_or_default();
    let grace = match body.grace_period_secs {
        None => admin.rotation_grace,
        Some(s) if Duration::from_secs(s) <= MAX_GRACE => Duration::from_secs(s),
        Some(_) => {
            return Err(ApiError::invalid(
                "grace_period_secs",
                format!("at most {} (7 days)", MAX_GRACE.as_secs()),
            ))
        }
    };
    let (mut ep, read_at) = find_versioned(&admin, &tenant_id, &id).await?;
    let now_unix = time::OffsetDateTime::now_utc().unix_timestamp();
    ep.previous_secrets.retain(|s| s.is_active(now_unix));
    if !grace.is_zero() {
        if ep.previous_secrets.len() >= MAX_PREVIOUS {
            return Err(ApiError::conflict(
                None,
                format!(
                    "{MAX_PREVIOUS} rotated-out secrets are still in their grace period; \
                     wait for one to expire or rotate with \"grace_period_secs\": 0"
                ),
            ));
        }
        let old = std::mem::replace(&mut ep.secret, Secret::new(""));
        ep.previous_secrets.push(SigningSecret {
            value: old,
            expires_at: Some(now_unix + grace.as_secs() as i64),
        });
    }
    let secret = switchyard_webhooks::new_secret();
    ep.secret = Secret::new(secret.clone());
    ep.updated_at = now();
    save(&admin, &ep, &read_at).await?;
    tracing::info!(%tenant_id, endpoint_id = %id, grace_secs = grace.as_secs(), "Endpoint secret rotated.");
    let mut v = view(&ep);
    v["secret"] = secret.into();
    Ok(Json(v))
}

/// Re-enable an endpoint (disabled by an operator, by a `410 Gone` or by the circuit
/// breaker): its failure streak starts afresh, deliveries resume.
pub async fn enable(
    State(admin): State<Arc<Admin>>,
    Path((tenant_id, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (mut ep, read_at) = find_versioned(&admin, &tenant_id, &id).await?;
    forget_failures(&admin, &id).await?;
    ep.enabled = true;
    ep.disabled_reason = None;
    ep.updated_at = now();
    save(&admin, &ep, &read_at).await?;
    tracing::info!(%tenant_id, endpoint_id = %id, "Endpoint enabled.");
    Ok(Json(view(&ep)))
}
