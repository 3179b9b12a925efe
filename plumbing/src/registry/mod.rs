//! The registry: tenants, their endpoints, and the integrated accounts whose webhooks
//! Switchyard receives. It lives in Redis ([`store`]); the binaries read it through an
//! in-process [`cache`] that a change announced over NATS invalidates at once.

pub mod cache;
pub mod model;
pub mod store;

pub use cache::RegistryCache;
pub use model::{active_secrets, Account, Endpoint, SigningSecret, Tenant};
pub use store::{RegistryError, RegistryStore};
