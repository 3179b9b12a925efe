//! `/v1/accounts`: create or update (`PUT`), get, list by tenant or connector, delete.
//! Signing secrets are write-only: responses say how many there are and when each
//! expires, never what they are.
//!
//! Conflicts (409): an external id another account of the connector already has (it
//! routes that provider account's webhooks, so two cannot share it), and moving an
//! account to another tenant or connector (its webhooks would silently change hands or
//! URL; delete it and create it again instead).

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_core::names::is_valid_id;
use switchyard_core::secret::Secret;
use switchyard_registry::cache::account_changed;
use switchyard_registry::store::AccountQuery;
use switchyard_registry::{Account, SigningSecret};

use super::page::{self, Params};
use super::{now, Admin, ApiError};

const MAX_EXTERNAL_ID: usize = 256;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutAccount {
    tenant_id: String,
    connector: String,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    signing_secrets: Vec<SecretInput>,
    #[serde(default)]
    public_keys: Vec<String>,
}

/// A secret as given: `"..."`, or `{"secret": "...", "expires_at": "<RFC 3339>"}` for
/// one being rotated out.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum SecretInput {
    Plain(String),
    Expiring {
        secret: String,
        #[serde(default)]
        expires_at: Option<String>,
    },
}

impl SecretInput {
    fn into_secret(self) -> Result<SigningSecret, ApiError> {
        let (value, expires) = match self {
            Self::Plain(s) => (s, None),
            Self::Expiring { secret, expires_at } => (secret, expires_at),
        };
        if value.is_empty() {
            return Err(ApiError::invalid("signing_secrets", "secrets cannot be empty"));
        }
        let expires_at = match expires {
            None => None,
            Some(t) => Some(
                time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| {
                        ApiError::invalid(
                            "signing_secrets.expires_at",
                            "write an RFC 3339 time such as 2026-12-01T00:00:00Z",
                        )
                    })?
                    .unix_timestamp(),
            ),
        };
        Ok(SigningSecret {
            value: Secret::new(value),
            expires_at,
        })
    }
}

pub async fn put(
    State(admin): State<Arc<Admin>>,
    Path(id): Path<String>,
    body: Result<Json<PutAccount>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body?;
    if !is_valid_id(&id) {
        return Err(ApiError::invalid("account_id", "use 1-64 letters, digits, '_' or '-'"));
    }
    let catalog = admin.catalog.current();
    if catalog.get(&body.connector).is_none() {
        let known: Vec<&str> = catalog.names().collect();
        return Err(ApiError::invalid(
            "connector",
            format!("unknown connector {:?} (known: {})", body.connector, known.join(", ")),
        ));
    }
    if admin.store.get_tenant(&body.tenant_id).await?.is_none() {
        return Err(ApiError::invalid(
            "tenant_id",
            "no such tenant; create it with PUT /v1/tenants/{id} first",
        ));
    }
    if let Some(ext) = &body.external_id {
        if ext.is_empty() || ext.len() > MAX_EXTERNAL_ID || ext.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                "external_id",
                format!("1 to {MAX_EXTERNAL_ID} characters, no control characters"),
            ));
        }
    }
    if body.public_keys.iter().any(|k| k.trim().is_empty()) {
        return Err(ApiError::invalid("public_keys", "public keys cannot be empty"));
    }
    let signing_secrets = body
        .signing_secrets
        .into_iter()
        .map(SecretInput::into_secret)
        .collect::<Result<Vec<_>, _>>()?;
    let existing = admin.store.get_account(&id).await?;
    if let Some(old) = &existing {
        if old.tenant_id != body.tenant_id {
            return Err(ApiError::conflict(
                Some("tenant_id"),
                format!(
                    "account {id:?} belongs to tenant {:?}; delete it to register it for another tenant",
                    old.tenant_id
                ),
            ));
        }
        if old.connector != body.connector {
            return Err(ApiError::conflict(
                Some("connector"),
                format!(
                    "account {id:?} is a {} account; delete it to register it for another connector",
                    old.connector
                ),
            ));
        }
    }
    if let Some(ext) = &body.external_id {
        if let Some(other) = admin.store.get_account_by_external(&body.connector, ext).await? {
            if other.id != id {
                return Err(ApiError::conflict(
                    Some("external_id"),
                    format!(
                        "account {:?} of {} already has external id {ext:?}",
                        other.id, body.connector
                    ),
                ));
            }
        }
    }
    let a = Account {
        id,
        tenant_id: body.tenant_id,
        connector: body.connector,
        external_id: body.external_id,
        signing_secrets,
        public_keys: body.public_keys,
        created_at: existing.as_ref().map(|a| a.created_at.clone()).unwrap_or_else(now),
        updated_at: now(),
    };
    admin.store.put_account(&a).await?;
    admin.announce(account_changed(&a.id)).await;
    let status = if existing.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(view(&a))))
}

pub async fn get(State(admin): State<Arc<Admin>>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let a = admin
        .store
        .get_account(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such account"))?;
    Ok(Json(view(&a)))
}

/// `GET /v1/accounts?tenant_id=&connector=&limit=&cursor=`, in id order.
pub async fn list(State(admin): State<Arc<Admin>>, q: Params) -> Result<Json<Value>, ApiError> {
    let q = page::params(q)?;
    let limit = page::limit(&q, page::DEFAULT_LIMIT, page::MAX_LIMIT)?;
    let query = AccountQuery {
        tenant_id: q.get("tenant_id").map(String::as_str).filter(|s| !s.is_empty()),
        connector: q.get("connector").map(String::as_str).filter(|s| !s.is_empty()),
    };
    let accounts = admin.store.list_accounts(query, page::cursor(&q), limit).await?;
    Ok(Json(page::answer(&accounts, view)))
}

/// Deletes the account and its routing-index entry: its webhooks are refused from now.
pub async fn delete(State(admin): State<Arc<Admin>>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    if !admin.store.delete_account(&id).await? {
        return Err(ApiError::not_found("no such account"));
    }
    admin.announce(account_changed(&id)).await;
    tracing::info!(account_id = %id, "Account deleted.");
    Ok(StatusCode::NO_CONTENT)
}

pub(super) fn view(a: &Account) -> Value {
    json!({
        "id": a.id,
        "tenant_id": a.tenant_id,
        "connector": a.connector,
        "external_id": a.external_id,
        // Write-only: how many, and when each expires; never the values.
        "signing_secrets": a.signing_secrets.iter().map(|s| json!({
            "expires_at": s.expires_at.and_then(switchyard_core::timefmt::from_unix_seconds),
        })).collect::<Vec<_>>(),
        "public_keys": a.public_keys,
        "created_at": a.created_at,
        "updated_at": a.updated_at,
    })
}
