//! `/v1/tenants/{tenant_id}/undelivered`: the tenant's events that no endpoint received
//! ([`crate::undelivered`]), and re-delivering those since a time once an endpoint takes
//! them.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::page::{self, Params};
use super::{Admin, ApiError};
use crate::undelivered::{Position, UndeliveredError};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;
/// Records one re-delivery call takes at most; `more` in the answer says to call again.
const REDELIVER_DEFAULT: usize = 1_000;
const REDELIVER_MAX: usize = 10_000;

impl From<UndeliveredError> for ApiError {
    fn from(e: UndeliveredError) -> Self {
        tracing::error!(error = %e, "Reading the undelivered stream failed.");
        ApiError::unavailable(
            "nats_unavailable",
            "the event streams (NATS) are unavailable; retry later",
        )
    }
}

async fn tenant_exists(admin: &Admin, tenant_id: &str) -> Result<(), ApiError> {
    match admin.store.get_tenant(tenant_id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found("no such tenant")),
    }
}

fn time(field: &'static str, s: &str) -> Result<OffsetDateTime, ApiError> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|_| ApiError::invalid(field, "an RFC 3339 time (2026-12-06T10:00:00Z)"))
}

/// `GET …/undelivered?since=&limit=&cursor=`: oldest first; `since` (RFC 3339) starts at
/// a time, `cursor` (a previous page's `next_cursor`) goes on from there.
pub async fn list(
    State(admin): State<Arc<Admin>>,
    Path(tenant_id): Path<String>,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    let q = page::params(q)?;
    let limit = page::limit(&q, DEFAULT_LIMIT, MAX_LIMIT)?;
    let from = match (page::cursor(&q), q.get("since")) {
        (Some(c), _) => Position::Seq(
            c.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ApiError::invalid("cursor", "not a cursor this API gave"))?,
        ),
        (None, Some(s)) => Position::Time(time("since", s)?),
        (None, None) => Position::Start,
    };
    tenant_exists(&admin, &tenant_id).await?;
    let found = admin.undelivered.list(&tenant_id, from, limit).await?;
    Ok(Json(json!({
        "data": found.items,
        "next_cursor": found.next.map(|n| n.to_string()),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedeliverBody {
    /// Records stored at or after this time (RFC 3339).
    since: String,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    dry_run: bool,
}

/// `POST …/undelivered/redeliver` `{"since", "limit"?, "dry_run"?}`: each record since
/// then goes through fan-out again, with the endpoints as they are now.
pub async fn redeliver(
    State(admin): State<Arc<Admin>>,
    Path(tenant_id): Path<String>,
    body: Result<Json<RedeliverBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body?;
    let since = time("since", &body.since)?;
    let limit = match body.limit {
        None => REDELIVER_DEFAULT,
        Some(n) if (1..=REDELIVER_MAX).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::invalid(
                "limit",
                format!("a number from 1 to {REDELIVER_MAX}"),
            ))
        }
    };
    tenant_exists(&admin, &tenant_id).await?;
    let summary = admin
        .undelivered
        .redeliver(&tenant_id, since, limit, body.dry_run)
        .await?;
    tracing::info!(
        tenant_id = %tenant_id,
        matched = summary.matched,
        redelivered = summary.redelivered,
        failed = summary.failed,
        dry_run = summary.dry_run,
        "Undelivered events re-delivered."
    );
    let status = if summary.failed > 0 {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(serde_json::to_value(&summary).expect("a summary serializes")),
    ))
}
