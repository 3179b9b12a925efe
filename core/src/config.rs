//! The configuration file shared by every binary: embedded defaults
//! (`config.default.toml`), then the `--config` file, then `SWITCHYARD_…` environment
//! variables. Every section rejects unknown keys, and every error names the key.
//!
//! An environment variable `SWITCHYARD_<SECTION>__<KEY>` sets a key of a section, and a
//! misspelt section or key is an error. A variable without `__` is read only when it
//! names a top-level key (`SWITCHYARD_NAMESPACE`); others, such as the test harness's
//! `SWITCHYARD_JSONATA_SUITE`, belong to other tools and are left alone.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;

use crate::secret::{Secret, SigningSecret};

/// The commented defaults, also the reference for every key.
pub const DEFAULTS: &str = include_str!("../config.default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub namespace: String,
    pub catalog: PathBuf,
    pub nats: NatsConfig,
    pub redis: RedisConfig,
    pub s3: S3Config,
    pub secrets: SecretsConfig,
    pub telemetry: TelemetryConfig,
    pub ingress: IngressConfig,
    pub normalizer: NormalizerConfig,
    pub dispatcher: DispatcherConfig,
    /// Connector-level settings by connector name (`[connectors.hubspot]`).
    #[serde(default)]
    pub connectors: BTreeMap<String, ConnectorSettings>,
}

/// What a connector needs from the operator rather than from its file: the secret of a
/// provider app (one secret signing for every account) and public keys. These verify
/// the connector-level endpoint `POST /v1/webhooks/<connector>`, and account-level
/// requests of accounts that have none of their own.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ConnectorSettings {
    /// Each a secret, or `{ secret = "...", expires_at = "2026-12-01T00:00:00Z" }`. A
    /// value `env:NAME` is read from that environment variable, `file:PATH` from a file
    /// (trailing newline dropped), so the secret itself need not sit in this file.
    #[serde(default)]
    pub secrets: Vec<ConfiguredSecret>,
    /// Public keys for asymmetric schemes (Ed25519 hex, ECDSA P-256 base64 DER or PEM).
    #[serde(default)]
    pub public_keys: Vec<String>,
    /// Accept the connector's older signature schemes that sign no timestamp (HubSpot v2
    /// and v1): a captured request can then be replayed for as long as its id is not
    /// remembered. Off by default; turn it on only while a provider app still sends them.
    #[serde(default)]
    pub legacy_signatures: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ConfiguredSecret {
    Plain(Secret),
    Expiring {
        secret: Secret,
        #[serde(default)]
        expires_at: Option<String>,
    },
}

impl ConnectorSettings {
    /// The secrets with `env:` and `file:` values read and expiries parsed; errors name
    /// the key (`connectors.<name>.secrets[i]`) and never the value.
    pub fn resolve_secrets(&self, connector: &str) -> Result<Vec<SigningSecret>, ConfigError> {
        let mut out = Vec::with_capacity(self.secrets.len());
        for (i, s) in self.secrets.iter().enumerate() {
            let key = format!("connectors.{connector}.secrets[{i}]");
            let (value, expires) = match s {
                ConfiguredSecret::Plain(v) => (v, None),
                ConfiguredSecret::Expiring { secret, expires_at } => (secret, expires_at.as_deref()),
            };
            let text = value.expose();
            let resolved = if let Some(var) = text.strip_prefix("env:") {
                std::env::var(var)
                    .map_err(|_| ConfigError::Invalid(format!("{key}: environment variable {var} is not set")))?
            } else if let Some(path) = text.strip_prefix("file:") {
                let t = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::Invalid(format!("{key}: cannot read {path}: {e}")))?;
                t.trim_end_matches(['\r', '\n']).to_string()
            } else {
                text.to_string()
            };
            if resolved.is_empty() {
                return Err(ConfigError::Invalid(format!("{key}: the secret is empty")));
            }
            let expires_at = match expires {
                None => None,
                Some(t) => Some(
                    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                        .map_err(|_| {
                            ConfigError::Invalid(format!(
                                "{key}.expires_at = {t:?} is not an RFC 3339 time such as 2026-12-01T00:00:00Z"
                            ))
                        })?
                        .unix_timestamp(),
                ),
            };
            out.push(SigningSecret {
                value: Secret::new(resolved),
                expires_at,
            });
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    pub url: String,
    pub connect_timeout_ms: u64,
    pub publish_timeout_ms: u64,
    pub replicas: usize,
    pub retention_hours: u64,
    pub duplicate_window_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    pub url: String,
    pub timeout_ms: u64,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub path_style: bool,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub timeout_ms: u64,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("path_style", &self.path_style)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    pub active_key: String,
    pub keys: std::collections::BTreeMap<String, Secret>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    pub log_format: LogFormat,
    pub log_level: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngressConfig {
    pub listen: SocketAddr,
    /// `/healthz`, `/readyz` and `/metrics`, off the public webhook listener.
    pub ops_listen: SocketAddr,
    pub public_url: String,
    /// Peers (CIDRs) whose `Forwarded` / `X-Forwarded-Proto` / `X-Forwarded-Host`
    /// headers say which URL the provider called; from anyone else they are ignored.
    pub trusted_proxies: Vec<String>,
    /// A connection that has not sent a request's headers within this long is closed.
    pub header_read_timeout_ms: u64,
    /// A request whose body has not arrived within this long is answered 408.
    pub body_read_timeout_ms: u64,
    /// Open connections at most; past it a new connection is answered 503 and closed.
    pub max_connections: usize,
    /// How long requests in flight get to finish after a shutdown signal.
    pub drain_grace_secs: u64,
    pub max_body_bytes: usize,
    pub linger_ms: u64,
    pub max_batch_events: usize,
    pub max_batch_bytes: usize,
    pub max_concurrent_flushes: usize,
    pub max_in_flight: usize,
    pub durable_deadline_ms: u64,
    pub retry_after_secs: u64,
    pub dedupe_ttl_secs: u64,
    pub worker_threads: usize,
    pub key_fetch_timeout_ms: u64,
    pub key_fetch_ca_file: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalizerConfig {
    pub ops_listen: SocketAddr,
    pub concurrency: usize,
    pub fetch_batch: usize,
    pub claim_cache_bytes: usize,
    pub mapping_timeout_ms: u64,
    pub mapping_max_depth: usize,
    /// Largest provider event a mapping is evaluated on; larger ones are dead-lettered
    /// (`input_too_large`).
    pub mapping_max_input_bytes: usize,
    /// Tries of an event whose mapping its time limit stopped, before the dead letter.
    pub mapping_timeout_attempts: u32,
    /// A raw message delivered this many times without an ack (its handling crashed or
    /// hung each time) is dead-lettered (`redelivery_limit`) instead of tried again.
    pub max_deliveries: u32,
    /// Threads mapping events off the runtime thread ([`crate::offload`]).
    pub mapping_threads: usize,
    /// Of those, at most this many for one tenant.
    pub mapping_per_tenant: usize,
    /// Events up to this size, with mappings bounded in steps, are mapped on the
    /// runtime thread; larger ones on the mapping threads.
    pub mapping_inline_bytes: usize,
    pub worker_threads: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatcherConfig {
    pub ops_listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub admin_token: Secret,
    pub concurrency: usize,
    pub request_timeout_ms: u64,
    pub retry_delay_ms: u64,
    pub retry_schedule_ms: Vec<u64>,
    pub retry_jitter: f64,
    pub retry_after_max_secs: u64,
    pub retries_max_pending: i64,
    pub max_in_flight_per_endpoint: u32,
    /// Endpoint filters evaluated at once in the process (blocking threads).
    pub filter_threads: usize,
    /// Endpoint filters evaluated at once for one tenant (of `filter_threads`).
    pub filter_per_tenant: usize,
    pub disable_after_failures: u32,
    pub disable_after_hours: u64,
    pub rotation_grace_hours: u64,
    pub attempts_retention_hours: u64,
    /// The `tenant` label of the dispatcher's metrics carries tenant ids.
    pub per_tenant_metrics: bool,
    pub allow_cidrs: Vec<String>,
    pub worker_threads: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path} does not exist; pass an existing file to --config")]
    Missing { path: PathBuf },
    #[error("configuration is invalid: {0}")]
    Invalid(String),
}

/// The keys at the top of the file, sections included.
const TOP_LEVEL_KEYS: [&str; 11] = [
    "namespace",
    "catalog",
    "nats",
    "redis",
    "s3",
    "secrets",
    "telemetry",
    "ingress",
    "normalizer",
    "dispatcher",
    "connectors",
];

/// Whether an environment key (prefix stripped, `__` turned into `.`) is meant for this
/// file: any nested key, so that a misspelt section is refused, or a top-level key.
fn is_config_key(key: &str) -> bool {
    key.contains('.') || TOP_LEVEL_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key))
}

/// `<prefix>_threads` and `<prefix>_per_tenant`: each at least 1, a tenant's share at
/// most the whole.
fn shared_threads(prefix: &str, threads: usize, per_tenant: usize) -> Result<(), ConfigError> {
    if threads == 0 || per_tenant == 0 || per_tenant > threads {
        return Err(ConfigError::Invalid(format!(
            "{prefix}_threads = {threads} and {prefix}_per_tenant = {per_tenant} are not valid: use 1 or \
             more of each, the per-tenant share at most the threads (fewer, so other tenants keep threads)"
        )));
    }
    Ok(())
}

impl Config {
    /// Load defaults, then `file` (if given), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Toml::string(DEFAULTS));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Missing {
                    path: path.to_path_buf(),
                });
            }
            fig = fig.merge(Toml::file(path));
        }
        fig = fig.merge(
            Env::prefixed("SWITCHYARD_")
                .split("__")
                .filter(|key| is_config_key(key.as_str())),
        );
        Self::from_figment(fig)
    }

    /// Defaults plus a TOML snippet: what tests use.
    pub fn from_toml(overrides: &str) -> Result<Self, ConfigError> {
        let fig = Figment::from(Toml::string(DEFAULTS)).merge(Toml::string(overrides));
        Self::from_figment(fig)
    }

    fn from_figment(fig: Figment) -> Result<Self, ConfigError> {
        let config: Config = fig.extract().map_err(|e| {
            let msgs: Vec<String> = e.into_iter().map(|e| describe(&e)).collect();
            ConfigError::Invalid(msgs.join("; "))
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !crate::names::is_valid_id(&self.namespace) || self.namespace != self.namespace.to_lowercase() {
            return Err(ConfigError::Invalid(format!(
                "namespace = {:?} is not valid: use lowercase letters, digits, '-' and '_'",
                self.namespace
            )));
        }
        if self.nats.replicas == 0 || self.nats.replicas > 5 {
            return Err(ConfigError::Invalid(format!(
                "nats.replicas = {} is not valid: use 1 for one server or 3 for a cluster",
                self.nats.replicas
            )));
        }
        if self.ingress.worker_threads == 0 {
            return Err(ConfigError::Invalid(
                "ingress.worker_threads = 0 is not valid: use 1 or more".into(),
            ));
        }
        if self.normalizer.worker_threads == 0 {
            return Err(ConfigError::Invalid(
                "normalizer.worker_threads = 0 is not valid: use 1 or more".into(),
            ));
        }
        if self.dispatcher.worker_threads == 0 {
            return Err(ConfigError::Invalid(
                "dispatcher.worker_threads = 0 is not valid: use 1 or more".into(),
            ));
        }
        let n = &self.normalizer;
        shared_threads("normalizer.mapping", n.mapping_threads, n.mapping_per_tenant)?;
        let d = &self.dispatcher;
        shared_threads("dispatcher.filter", d.filter_threads, d.filter_per_tenant)?;
        for (name, settings) in &self.connectors {
            settings.resolve_secrets(name)?;
        }
        if self.s3.bucket.is_empty() {
            return Err(ConfigError::Invalid(
                "s3.bucket is empty: name the claim-check bucket".into(),
            ));
        }
        let e = &self.s3.endpoint;
        if !(e.is_empty() || e.starts_with("http://") || e.starts_with("https://")) {
            return Err(ConfigError::Invalid(format!(
                "s3.endpoint = {e:?} needs a scheme: write http://{e} or https://{e}, or leave it empty for AWS"
            )));
        }
        Ok(())
    }

    pub fn names(&self) -> crate::names::Names {
        crate::names::Names::new(&self.namespace)
    }
}

fn describe(e: &figment::Error) -> String {
    let key = e.path.join(".");
    if key.is_empty() {
        e.kind.to_string()
    } else {
        format!("{key}: {}", e.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.namespace, "switchyard");
        assert_eq!(c.ingress.max_body_bytes, 1 << 20);
    }

    #[test]
    fn environment_keys_outside_the_file_are_left_alone() {
        let is = is_config_key;
        assert!(is("namespace") && is("CATALOG"));
        assert!(is("ingress.max_body_bytes"));
        // A misspelt section still reaches the parser, which refuses it by name.
        assert!(is("ingres.max_body_bytes"));
        assert!(!is("jsonata_suite") && !is("require_jsonata_suite"));
        let defaults: BTreeMap<String, figment::value::Value> =
            Figment::from(Toml::string(DEFAULTS)).extract().unwrap();
        for key in defaults.keys() {
            assert!(
                TOP_LEVEL_KEYS.contains(&key.as_str()),
                "{key} is missing from TOP_LEVEL_KEYS"
            );
        }
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::from_toml("[ingress]\nlinger_ms = \"soon\"").unwrap_err();
        assert!(e.to_string().contains("ingress.linger_ms"), "{e}");
        let e = Config::from_toml("[nats]\nurll = \"x\"").unwrap_err();
        assert!(e.to_string().contains("urll"), "{e}");
    }

    #[test]
    fn connector_secrets_resolve_with_expiry() {
        let c = Config::from_toml(
            "[connectors.hubspot]\nsecrets = [\"plain\", { secret = \"rotating\", expires_at = \"2030-01-01T00:00:00Z\" }]",
        )
        .unwrap();
        let s = c.connectors["hubspot"].resolve_secrets("hubspot").unwrap();
        assert_eq!(s[0].value.expose(), "plain");
        assert_eq!(s[0].expires_at, None);
        assert_eq!(s[1].expires_at, Some(1_893_456_000));
        assert!(!format!("{c:?}").contains("rotating"));
        let e = Config::from_toml("[connectors.x]\nsecrets = [\"env:SWITCHYARD_TEST_SURELY_UNSET\"]").unwrap_err();
        assert!(e.to_string().contains("connectors.x.secrets[0]"), "{e}");
        let e = Config::from_toml("[connectors.x]\nsecrets = [{ secret = \"s\", expires_at = \"soon\" }]").unwrap_err();
        assert!(e.to_string().contains("expires_at"), "{e}");
    }

    #[test]
    fn an_s3_endpoint_without_a_scheme_is_refused_at_load() {
        let e = Config::from_toml("[s3]\nendpoint = \"127.0.0.1:8333\"").unwrap_err();
        assert!(e.to_string().contains("http://127.0.0.1:8333"), "{e}");
        assert!(Config::from_toml("[s3]\nendpoint = \"http://127.0.0.1:8333\"").is_ok());
        assert!(Config::from_toml("[s3]\nendpoint = \"\"").is_ok());
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let c = Config::from_toml("[dispatcher]\nadmin_token = \"hunter2\"").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
