//! The admin API: tenants, their endpoints, the integrated accounts and the delivery
//! attempts log, on the dispatcher's own listener, behind a bearer token. Every write is
//! stored in Redis and announced over NATS so every process's registry cache drops its
//! copy. The routes are one table, [`routes`], which builds the router and which a test
//! holds against the checked-in OpenAPI document (`dispatcher/openapi.json`).
//!
//! Files: [`tenants`], [`endpoints`] (CRUD) and [`endpoint_actions`] (rotate-secret,
//! enable), [`accounts`], [`attempts`], [`undelivered`] (events no endpoint received); [`fields`] checks endpoint fields, [`page`]
//! reads `limit`/`cursor`, [`error`] shapes every error as `{"error","code","field"}`.

mod accounts;
mod attempts;
mod captured;
mod endpoint_actions;
mod endpoint_record;
mod endpoints;
mod error;
mod fields;
mod openapi;
mod page;
mod tenants;
mod undelivered;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::http::header::AUTHORIZATION;
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, on, MethodFilter, MethodRouter};
use axum::Router;
use subtle::ConstantTimeEq;
use switchyard_connectors::live::LiveCatalog;
use switchyard_registry::RegistryStore;

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
    /// Events no endpoint received ([`crate::undelivered`]).
    pub undelivered: crate::undelivered::Undelivered,
    /// How long a rotated-out secret keeps signing.
    pub rotation_grace: std::time::Duration,
    /// How long delivery attempts are kept.
    pub attempts_retention: std::time::Duration,
}

impl Admin {
    async fn announce(&self, what: String) {
        switchyard_registry::cache::announce(&self.nats, self.store.names().registry_changes(), what).await;
    }
}

/// Served without a token: it describes the API and holds nothing secret.
pub const OPENAPI_PATH: &str = "/v1/openapi.json";

/// One route of the API: a method on a path template (`{name}` for a parameter).
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    handler: MethodRouter<Arc<Admin>>,
}

fn route<H, T>(method: Method, path: &'static str, handler: H) -> Route
where
    H: Handler<T, Arc<Admin>>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).expect("an HTTP method axum routes");
    Route {
        method,
        path,
        handler: on(filter, handler),
    }
}

/// Every route behind the token.
pub fn routes() -> Vec<Route> {
    use Method as M;
    const TENANT: &str = "/v1/tenants/{tenant_id}";
    const ENDPOINTS: &str = "/v1/tenants/{tenant_id}/endpoints";
    const ENDPOINT: &str = "/v1/tenants/{tenant_id}/endpoints/{endpoint_id}";
    const ACCOUNT: &str = "/v1/accounts/{account_id}";
    vec![
        route(M::GET, "/v1/tenants", tenants::list),
        route(M::PUT, TENANT, tenants::put),
        route(M::GET, TENANT, tenants::get),
        route(M::DELETE, TENANT, tenants::delete),
        route(M::POST, ENDPOINTS, endpoints::create),
        route(M::GET, ENDPOINTS, endpoints::list),
        route(M::GET, ENDPOINT, endpoints::get),
        route(M::PATCH, ENDPOINT, endpoints::update),
        route(M::DELETE, ENDPOINT, endpoints::delete),
        route(
            M::POST,
            "/v1/tenants/{tenant_id}/endpoints/{endpoint_id}/rotate-secret",
            endpoint_actions::rotate_secret,
        ),
        route(
            M::POST,
            "/v1/tenants/{tenant_id}/endpoints/{endpoint_id}/enable",
            endpoint_actions::enable,
        ),
        route(
            M::GET,
            "/v1/tenants/{tenant_id}/endpoints/{endpoint_id}/attempts",
            attempts::for_endpoint,
        ),
        route(M::GET, "/v1/tenants/{tenant_id}/undelivered", undelivered::list),
        route(
            M::POST,
            "/v1/tenants/{tenant_id}/undelivered/redeliver",
            undelivered::redeliver,
        ),
        route(M::GET, "/v1/events/{event_id}/attempts", attempts::for_event),
        route(M::GET, "/v1/accounts", accounts::list),
        route(M::PUT, ACCOUNT, accounts::put),
        route(M::GET, ACCOUNT, accounts::get),
        route(M::DELETE, ACCOUNT, accounts::delete),
        route(M::GET, "/v1/accounts/{account_id}/captured", captured::list),
        route(M::POST, "/v1/accounts/{account_id}/captured/adopt", captured::adopt),
    ]
}

pub fn router(admin: Arc<Admin>) -> Router {
    let api = routes()
        .into_iter()
        .fold(Router::new(), |r, route| r.route(route.path, route.handler))
        .layer(middleware::from_fn_with_state(admin.clone(), authorize));
    Router::new()
        .route(OPENAPI_PATH, get(openapi::serve))
        .merge(api)
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
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
    switchyard_core::timefmt::rfc3339(time::OffsetDateTime::now_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// axum refuses overlapping routes when the router is built, not when it compiles.
    #[test]
    fn the_routes_make_one_router() {
        let _: Router<Arc<Admin>> = routes()
            .into_iter()
            .fold(Router::new(), |r, route| r.route(route.path, route.handler))
            .route(OPENAPI_PATH, get(openapi::serve));
    }
}
