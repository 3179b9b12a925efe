//! One endpoint as the admin API handles it: read with the version it was read at,
//! saved only if unchanged since, shown without its secrets, and its breaker's failure
//! streak forgotten when an operator enables it. Shared by the CRUD routes
//! ([`super::endpoints`]) and the actions on one endpoint ([`super::endpoint_actions`]).

use serde_json::{json, Value};
use switchyard_registry::cache::endpoints_changed;
use switchyard_registry::store::{EndpointVersion, Replaced};
use switchyard_registry::Endpoint;

use super::{Admin, ApiError};

/// The endpoint and the version it was read at, for [`save`].
pub(super) async fn find_versioned(
    admin: &Admin,
    tenant_id: &str,
    id: &str,
) -> Result<(Endpoint, EndpointVersion), ApiError> {
    admin
        .store
        .get_endpoint_versioned(tenant_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such endpoint"))
}

/// Store an endpoint changed since [`find_versioned`] and announce it, unless it was
/// changed or deleted meanwhile (the dispatcher disables endpoints too): then nothing
/// is written, and the answer is 409 or 404.
pub(super) async fn save(admin: &Admin, ep: &Endpoint, read_at: &EndpointVersion) -> Result<(), ApiError> {
    match admin.store.replace_endpoint(ep, read_at).await? {
        Replaced::Done => {
            admin.announce(endpoints_changed(&ep.tenant_id)).await;
            Ok(())
        }
        Replaced::Gone => Err(ApiError::not_found("no such endpoint (it was deleted meanwhile)")),
        Replaced::Changed => Err(ApiError::conflict(
            None,
            "the endpoint changed while this request was applied (the dispatcher may have disabled it); read it again and retry",
        )),
    }
}

/// An endpoint as the API shows it: every field but the secrets, of which it shows
/// only when the rotated-out ones still signing expire.
pub(super) fn view(ep: &Endpoint) -> Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let previous: Vec<Value> = ep
        .previous_secrets
        .iter()
        .filter(|s| s.is_active(now))
        .map(|s| json!({ "expires_at": s.expires_at.and_then(switchyard_core::timefmt::from_unix_seconds) }))
        .collect();
    json!({
        "id": ep.id,
        "tenant_id": ep.tenant_id,
        "url": ep.url,
        "description": ep.description,
        "event_types": ep.event_types,
        "filter": ep.filter,
        "headers": ep.headers,
        "rate_limit": ep.rate_limit,
        "max_in_flight": ep.max_in_flight,
        "enabled": ep.enabled,
        "disabled_reason": ep.disabled_reason,
        "previous_secrets": previous,
        "created_at": ep.created_at,
        "updated_at": ep.updated_at,
    })
}

/// Clear the breaker's streak before enabling: an endpoint enabled with its old streak
/// would be disabled again by its next failure.
pub(super) async fn forget_failures(admin: &Admin, endpoint_id: &str) -> Result<(), ApiError> {
    crate::breaker::reset(&admin.redis, admin.store.names(), endpoint_id).await?;
    Ok(())
}
