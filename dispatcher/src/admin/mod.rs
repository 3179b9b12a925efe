//! The admin API: tenants, their endpoints and the integrated accounts, on the
//! dispatcher's own listener, behind a bearer token. Every write is stored in Redis
//! and announced over NATS so every process's registry cache drops its copy.

mod accounts;
mod endpoints;
mod error;
mod tenants;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{post, put};
use axum::Router;
use subtle::ConstantTimeEq;
use switchyard_connectors::live::LiveCatalog;
use switchyard_plumbing::registry::RegistryStore;

pub use error::ApiError;

/// What the handlers share.
pub struct Admin {
    pub store: RegistryStore,
    pub nats: async_nats::Client,
    pub catalog: Arc<LiveCatalog>,
    pub token: String,
    /// For the attempts log ([`crate::attempts`]) and the breaker ([`crate::breaker`]).
    pub redis: redis::aio::ConnectionManager,
    /// Destinations endpoints may have ([`crate::ssrf`]).
    pub destinations: crate::ssrf::DestinationPolicy,
    /// How long a rotated-out secret keeps signing.
    pub rotation_grace: std::time::Duration,
    /// How long delivery attempts are kept.
    pub attempts_retention: std::time::Duration,
}

impl Admin {
    async fn announce(&self, what: String) {
        switchyard_plumbing::registry::cache::announce(&self.nats, self.store.names().registry_changes(), what).await;
    }
}

pub fn router(admin: Arc<Admin>) -> Router {
    Router::new()
        .route("/v1/tenants/{tenant_id}", put(tenants::put).get(tenants::get))
        .route(
            "/v1/tenants/{tenant_id}/endpoints",
            post(endpoints::create).get(endpoints::list),
        )
        .route("/v1/accounts/{account_id}", put(accounts::put).get(accounts::get))
        .layer(middleware::from_fn_with_state(admin.clone(), authorize))
        .fallback(|| async { ApiError::not_found("no such route") })
        .with_state(admin)
}

/// Bearer token, compared in constant time.
async fn authorize(State(admin): State<Arc<Admin>>, req: Request, next: Next) -> Result<Response, ApiError> {
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let ok: bool = given.as_bytes().ct_eq(admin.token.as_bytes()).into();
    if !ok || admin.token.is_empty() {
        return Err(ApiError::unauthorized());
    }
    Ok(next.run(req).await)
}

fn now() -> String {
    switchyard_plumbing::timefmt::rfc3339(time::OffsetDateTime::now_utc())
}
