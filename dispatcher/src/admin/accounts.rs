//! `PUT /v1/accounts/{id}` and `GET /v1/accounts/{id}`. Signing secrets are write-only:
//! responses say how many there are and when each expires, never what they are.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_plumbing::names::is_valid_id;
use switchyard_plumbing::registry::cache::account_changed;
use switchyard_plumbing::registry::{Account, SigningSecret};
use switchyard_plumbing::sealed::SecretString;

use super::{now, Admin, ApiError};

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
            value: SecretString::new(value),
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
    let signing_secrets = body
        .signing_secrets
        .into_iter()
        .map(SecretInput::into_secret)
        .collect::<Result<Vec<_>, _>>()?;
    let existing = admin.store.get_account(&id).await?;
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

fn view(a: &Account) -> Value {
    json!({
        "id": a.id,
        "tenant_id": a.tenant_id,
        "connector": a.connector,
        "external_id": a.external_id,
        // Write-only: how many, and when each expires; never the values.
        "signing_secrets": a.signing_secrets.iter().map(|s| json!({
            "expires_at": s.expires_at.and_then(switchyard_plumbing::timefmt::from_unix_seconds),
        })).collect::<Vec<_>>(),
        "public_keys": a.public_keys,
        "created_at": a.created_at,
        "updated_at": a.updated_at,
    })
}
