//! The registry: tenants, their endpoints, and the integrated accounts whose webhooks
//! Switchyard receives. It lives in Redis ([`store`]), its secrets sealed ([`sealed`]);
//! the binaries read it through an in-process [`cache`] that a change announced over
//! NATS invalidates at once.

pub mod cache;
pub mod model;
pub mod sealed;
pub mod store;

pub use cache::RegistryCache;
pub use model::{active_secrets, Account, Endpoint, Tenant};
pub use store::{RegistryError, RegistryStore};
pub use switchyard_core::secret::SigningSecret;

/// Whether Redis answers a PING within a second (readiness).
pub async fn ping(redis: &redis::aio::ConnectionManager) -> bool {
    let mut conn = redis.clone();
    let answered = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        redis::cmd("PING").query_async::<String>(&mut conn),
    )
    .await;
    matches!(answered, Ok(Ok(_)))
}
