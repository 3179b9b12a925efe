//! `/v1/accounts/{id}/captured`: values a provider handed over unsigned to finish its
//! subscription (a `capture_secret` handshake: Notion's `verification_token`), which
//! the ingress kept sealed for the account.
//!
//! Unlike signing secrets these are shown: the operator must paste the value into the
//! provider to activate the subscription. Anyone who knows the account's URL can add
//! one, so none is trusted by itself: the provider refuses a value it did not send, and
//! `adopt` is for after it accepted one, when the newest becomes a signing secret.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};
use switchyard_registry::cache::account_changed;
use switchyard_registry::SigningSecret;

use super::accounts::view;
use super::{now, Admin, ApiError};

/// `GET /v1/accounts/{id}/captured`: newest first, each with when it arrived.
pub async fn list(State(admin): State<Arc<Admin>>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    if admin.store.get_account(&id).await?.is_none() {
        return Err(ApiError::not_found("no such account"));
    }
    let captured = admin.store.captured(&id).await?;
    let data: Vec<Value> = captured
        .iter()
        .map(|c| {
            json!({
                "value": c.value.expose(),
                "captured_at": switchyard_core::timefmt::from_unix_seconds(c.captured_at),
            })
        })
        .collect();
    Ok(Json(json!({ "data": data })))
}

/// `POST /v1/accounts/{id}/captured/adopt`: the newest value becomes one of the
/// account's signing secrets (unless it already is), and the kept values are dropped.
pub async fn adopt(State(admin): State<Arc<Admin>>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let mut account = admin
        .store
        .get_account(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such account"))?;
    let newest =
        admin.store.captured(&id).await?.into_iter().next().ok_or_else(|| {
            ApiError::not_found("nothing was handed over for this account, or it expired after a week")
        })?;
    if !account.signing_secrets.iter().any(|s| s.value == newest.value) {
        account.signing_secrets.push(SigningSecret {
            value: newest.value,
            expires_at: None,
        });
        account.updated_at = now();
        admin.store.put_account(&account).await?;
        admin.announce(account_changed(&account.id)).await;
    }
    admin.store.forget_captured(&id).await?;
    tracing::info!(account_id = %id, "A handed-over value was adopted as a signing secret.");
    Ok(Json(view(&account)))
}
