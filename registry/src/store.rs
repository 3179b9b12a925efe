//! The registry in Redis. Secrets — signing secrets and endpoints' custom header values —
//! are sealed ([`crate::sealed`]) on the way in and opened on the way out; nothing else
//! in Switchyard sees a sealed value.
//!
//! Keys (all under the namespace):
//! - `tenant:<id>` → tenant JSON; `tenants` → set of tenant ids
//! - `endpoints:<tenant id>` → hash endpoint id → endpoint JSON
//! - `account:<id>` → account JSON; `account-ext:<connector>:<external id>` → account id
//! - `captured:<account id>` → values a provider handed over unsigned: [`captured`]
//! - sorted indexes for listing and deleting: [`indexes`]; read-modify-write of an
//!   endpoint without losing a concurrent change: [`versioned`]

use std::collections::BTreeMap;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::model::{Account, Endpoint, SigningSecret, Tenant};
use crate::sealed::{SealError, Sealer};
use switchyard_core::config::RedisConfig;
use switchyard_core::names::Names;
use switchyard_core::secret::Secret;

mod captured;
mod indexes;
mod versioned;

pub use captured::Captured;
pub use indexes::{AccountQuery, DeletedTenant, Page};
pub use versioned::{EndpointVersion, Replaced};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("Redis is unavailable: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("stored record {key} is not valid JSON: {detail}")]
    Corrupt { key: String, detail: String },
    #[error(transparent)]
    Seal(#[from] SealError),
}

/// Connect to Redis with a connection manager that reconnects by itself.
pub async fn connect(cfg: &RedisConfig) -> Result<ConnectionManager, RegistryError> {
    let client = redis::Client::open(cfg.url.as_str())?;
    let timeout = Duration::from_millis(cfg.timeout_ms);
    let mcfg = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout.max(Duration::from_secs(1))))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1);
    Ok(client.get_connection_manager_with_config(mcfg).await?)
}

#[derive(Serialize, Deserialize)]
struct StoredEndpoint {
    id: String,
    tenant_id: String,
    url: String,
    #[serde(default)]
    description: String,
    event_types: Vec<String>,
    enabled: bool,
    secret: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    previous_secrets: Vec<StoredSecret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    filter: Option<String>,
    /// Custom headers as stored before they were sealed: read, never written (the next
    /// write of the endpoint seals them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
    /// Custom headers, name → sealed value: tenants put their receivers' credentials
    /// there (`authorization`, `x-api-key`), so they are kept like signing secrets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    sealed_headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rate_limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_in_flight: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    disabled_reason: Option<String>,
    created_at: String,
    updated_at: String,
}

#[derive(Serialize, Deserialize)]
struct StoredAccount {
    id: String,
    tenant_id: String,
    connector: String,
    #[serde(default)]
    external_id: Option<String>,
    signing_secrets: Vec<StoredSecret>,
    #[serde(default)]
    public_keys: Vec<String>,
    created_at: String,
    updated_at: String,
}

/// A sealed inbound secret and its expiry (Unix seconds).
#[derive(Serialize, Deserialize)]
struct StoredSecret {
    sealed: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
}

/// The associated data a custom header's value is sealed with: its endpoint and its
/// name, so a sealed value moved to another header or endpoint does not open.
fn header_aad(endpoint_id: &str, header: &str) -> String {
    format!("endpoint:{endpoint_id}:header:{header}")
}

/// Reads and writes the registry.
#[derive(Clone)]
pub struct RegistryStore {
    redis: ConnectionManager,
    names: Names,
    sealer: Sealer,
    timeout: Duration,
}

impl RegistryStore {
    pub fn new(redis: ConnectionManager, names: Names, sealer: Sealer, timeout: Duration) -> Self {
        Self {
            redis,
            names,
            sealer,
            timeout,
        }
    }

    pub fn names(&self) -> &Names {
        &self.names
    }

    async fn run<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, redis::RedisError>>,
    ) -> Result<T, RegistryError> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(RegistryError::Timeout(self.timeout)),
        }
    }

    fn decode<T: for<'de> Deserialize<'de>>(key: &str, raw: &str) -> Result<T, RegistryError> {
        serde_json::from_str(raw).map_err(|e| RegistryError::Corrupt {
            key: key.to_string(),
            detail: e.to_string(),
        })
    }

    /// Create or replace a tenant; `true` when it is new.
    pub async fn put_tenant(&self, t: &Tenant) -> Result<bool, RegistryError> {
        let key = self.names.redis_key(&format!("tenant:{}", t.id));
        let set = self.names.redis_key("tenants");
        let json = serde_json::to_string(t).expect("a tenant serializes");
        let mut c = self.redis.clone();
        let (_, added): ((), i64) = self
            .run(async {
                redis::pipe()
                    .atomic()
                    .set(&key, json)
                    .sadd(&set, &t.id)
                    .zadd(self.tenant_index(), &t.id, 0)
                    .ignore()
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(added == 1)
    }

    pub async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, RegistryError> {
        let key = self.names.redis_key(&format!("tenant:{id}"));
        let mut c = self.redis.clone();
        let raw: Option<String> = self.run(c.get(&key)).await?;
        raw.map(|r| Self::decode(&key, &r)).transpose()
    }

    pub async fn put_endpoint(&self, e: &Endpoint) -> Result<(), RegistryError> {
        let key = self.names.redis_key(&format!("endpoints:{}", e.tenant_id));
        let json = self.seal_endpoint(e);
        let mut c = self.redis.clone();
        let _: i64 = self.run(c.hset(&key, &e.id, json)).await?;
        Ok(())
    }

    /// The endpoint as stored: JSON with its secrets sealed (fresh nonces, so two
    /// writes of the same endpoint never store the same bytes).
    fn seal_endpoint(&self, e: &Endpoint) -> String {
        let aad = format!("endpoint:{}", e.id);
        let stored = StoredEndpoint {
            id: e.id.clone(),
            tenant_id: e.tenant_id.clone(),
            url: e.url.clone(),
            description: e.description.clone(),
            event_types: e.event_types.clone(),
            enabled: e.enabled,
            secret: self.sealer.seal(&e.secret, &aad),
            previous_secrets: e
                .previous_secrets
                .iter()
                .map(|s| StoredSecret {
                    sealed: self.sealer.seal(&s.value, &aad),
                    expires_at: s.expires_at,
                })
                .collect(),
            filter: e.filter.clone(),
            headers: BTreeMap::new(),
            sealed_headers: e
                .headers
                .iter()
                .map(|(name, value)| {
                    let sealed = self.sealer.seal(&Secret::new(value.as_str()), &header_aad(&e.id, name));
                    (name.clone(), sealed)
                })
                .collect(),
            rate_limit: e.rate_limit,
            max_in_flight: e.max_in_flight,
            disabled_reason: e.disabled_reason.clone(),
            created_at: e.created_at.clone(),
            updated_at: e.updated_at.clone(),
        };
        serde_json::to_string(&stored).expect("an endpoint serializes")
    }

    pub async fn list_endpoints(&self, tenant_id: &str) -> Result<Vec<Endpoint>, RegistryError> {
        let key = self.names.redis_key(&format!("endpoints:{tenant_id}"));
        let mut c = self.redis.clone();
        let all: Vec<(String, String)> = self.run(c.hgetall(&key)).await?;
        let mut out = Vec::with_capacity(all.len());
        for (_, raw) in all {
            out.push(self.open_endpoint(&key, &raw)?);
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    fn open_endpoint(&self, key: &str, raw: &str) -> Result<Endpoint, RegistryError> {
        let s: StoredEndpoint = Self::decode(key, raw)?;
        let aad = format!("endpoint:{}", s.id);
        let secret = self.sealer.open(&s.secret, &aad)?;
        let previous_secrets = s
            .previous_secrets
            .iter()
            .map(|stored| {
                Ok(SigningSecret {
                    value: self.sealer.open(&stored.sealed, &aad)?,
                    expires_at: stored.expires_at,
                })
            })
            .collect::<Result<Vec<SigningSecret>, RegistryError>>()?;
        let mut headers = s.headers;
        for (name, sealed) in &s.sealed_headers {
            let value = self.sealer.open(sealed, &header_aad(&s.id, name))?;
            headers.insert(name.clone(), value.expose().to_string());
        }
        Ok(Endpoint {
            id: s.id,
            tenant_id: s.tenant_id,
            url: s.url,
            description: s.description,
            event_types: s.event_types,
            enabled: s.enabled,
            secret,
            previous_secrets,
            filter: s.filter,
            headers,
            rate_limit: s.rate_limit,
            max_in_flight: s.max_in_flight,
            disabled_reason: s.disabled_reason,
            created_at: s.created_at,
            updated_at: s.updated_at,
        })
    }

    /// One endpoint of a tenant.
    pub async fn get_endpoint(&self, tenant_id: &str, id: &str) -> Result<Option<Endpoint>, RegistryError> {
        let key = self.names.redis_key(&format!("endpoints:{tenant_id}"));
        let mut c = self.redis.clone();
        let raw: Option<String> = self.run(c.hget(&key, id)).await?;
        raw.map(|r| self.open_endpoint(&key, &r)).transpose()
    }

    /// Delete one endpoint; `true` when it existed.
    pub async fn delete_endpoint(&self, tenant_id: &str, id: &str) -> Result<bool, RegistryError> {
        let key = self.names.redis_key(&format!("endpoints:{tenant_id}"));
        let mut c = self.redis.clone();
        let n: i64 = self.run(c.hdel(&key, id)).await?;
        Ok(n == 1)
    }

    /// Create or replace an account; `true` when it is new.
    pub async fn put_account(&self, a: &Account) -> Result<bool, RegistryError> {
        let key = self.names.redis_key(&format!("account:{}", a.id));
        let aad = format!("account:{}", a.id);
        let stored = StoredAccount {
            id: a.id.clone(),
            tenant_id: a.tenant_id.clone(),
            connector: a.connector.clone(),
            external_id: a.external_id.clone(),
            signing_secrets: a
                .signing_secrets
                .iter()
                .map(|s| StoredSecret {
                    sealed: self.sealer.seal(&s.value, &aad),
                    expires_at: s.expires_at,
                })
                .collect(),
            public_keys: a.public_keys.clone(),
            created_at: a.created_at.clone(),
            updated_at: a.updated_at.clone(),
        };
        let json = serde_json::to_string(&stored).expect("an account serializes");
        let previous = self.get_account_raw(&key).await?;
        let mut pipe = redis::pipe();
        pipe.atomic().set(&key, json).ignore();
        // The routing index follows the account: drop the entry of a former external id.
        if let Some(old) = previous
            .as_deref()
            .and_then(|raw| serde_json::from_str::<StoredAccount>(raw).ok())
        {
            if let Some(ext) = &old.external_id {
                if old.external_id != a.external_id || old.connector != a.connector {
                    pipe.del(self.external_key(&old.connector, ext)).ignore();
                }
            }
            self.unindex_account(&mut pipe, &old.id, &old.tenant_id, &old.connector);
        }
        self.index_account(&mut pipe, &a.id, &a.tenant_id, &a.connector);
        if let Some(ext) = &a.external_id {
            pipe.set(self.external_key(&a.connector, ext), &a.id).ignore();
        }
        let mut c = self.redis.clone();
        let () = self.run(pipe.query_async(&mut c)).await?;
        Ok(previous.is_none())
    }

    fn external_key(&self, connector: &str, external_id: &str) -> String {
        self.names.redis_key(&format!("account-ext:{connector}:{external_id}"))
    }

    /// The account registered for `connector` with this provider-side id (the routing
    /// key of connector-level endpoints).
    pub async fn get_account_by_external(
        &self,
        connector: &str,
        external_id: &str,
    ) -> Result<Option<Account>, RegistryError> {
        let mut c = self.redis.clone();
        let id: Option<String> = self.run(c.get(self.external_key(connector, external_id))).await?;
        let Some(id) = id else { return Ok(None) };
        Ok(self
            .get_account(&id)
            .await?
            .filter(|a| a.connector == connector && a.external_id.as_deref() == Some(external_id)))
    }

    async fn get_account_raw(&self, key: &str) -> Result<Option<String>, RegistryError> {
        let mut c = self.redis.clone();
        self.run(c.get(key)).await
    }

    pub async fn get_account(&self, id: &str) -> Result<Option<Account>, RegistryError> {
        let key = self.names.redis_key(&format!("account:{id}"));
        let Some(raw) = self.get_account_raw(&key).await? else {
            return Ok(None);
        };
        self.open_account(&key, &raw).map(Some)
    }

    fn open_account(&self, key: &str, raw: &str) -> Result<Account, RegistryError> {
        let s: StoredAccount = Self::decode(key, raw)?;
        let aad = format!("account:{}", s.id);
        let signing_secrets = s
            .signing_secrets
            .iter()
            .map(|stored| {
                Ok(SigningSecret {
                    value: self.sealer.open(&stored.sealed, &aad)?,
                    expires_at: stored.expires_at,
                })
            })
            .collect::<Result<Vec<SigningSecret>, RegistryError>>()?;
        Ok(Account {
            id: s.id,
            tenant_id: s.tenant_id,
            connector: s.connector,
            external_id: s.external_id,
            signing_secrets,
            public_keys: s.public_keys,
            created_at: s.created_at,
            updated_at: s.updated_at,
        })
    }
}
