//! One webhook request, from arrival to answer, as a sequence of named steps:
//! 1. the account the URL names ([`find_account`]), and the keys that may verify it
//!    ([`keys`]);
//! 2. handshakes the provider does not sign; what the request line and headers must be
//!    ([`request::check`]); the body, bounded in size and time ([`request::read_body`]),
//!    and a value handed over unsigned ([`capture`]);
//! 3. the signature, over the URL the provider called; then signed handshakes;
//! 4. the events the body carries and the account each belongs to ([`route`]);
//! 5. hand to the committer and answer when durable, or 503 ([`answer`]).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use switchyard_connectors::signature::{self, fetched, header_str, RawWebhook, VerifiedWebhook};
use switchyard_connectors::Connector;
use switchyard_connectors::{body, extract, handshake};
use switchyard_registry::Account;
use tokio::sync::oneshot;

use crate::commit::{Outcome, Submission};
use crate::key_fetch::KeyFetchError;
use crate::reject::Rejection;
use crate::State;

mod answer;
mod keys;
mod request;
mod route;

pub use answer::Answer;

/// Which account a request is for.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// `POST /v1/webhooks/{connector}/{account_id}`: the account is in the URL.
    Account(&'a str),
    /// `POST /v1/webhooks/{connector}`: each event names its account through the
    /// connector's routing key (`event.account`), matched against the accounts'
    /// `external_id`; the connector-level secrets from configuration verify it.
    Routed,
}

/// Handle a webhook request for `connector`.
pub async fn webhook(
    state: Arc<State>,
    req: Request<Incoming>,
    peer: IpAddr,
    connector: &str,
    target: Target<'_>,
) -> Response<Full<Bytes>> {
    let started = Instant::now();
    state.metrics.in_flight.inc();
    let known = state.catalog.current().get(connector).cloned();
    let label = known.as_ref().map(|c| c.name.as_str()).unwrap_or("unknown").to_string();
    let result = match known {
        Some(c) if !handshake::accepts_method(&c.methods, &c.handshakes, req.method().as_str()) => {
            Err(Rejection::MethodNotAllowed)
        }
        Some(c) => receive(&state, req, peer, c, target, started).await,
        None => Err(Rejection::NotFound("unknown_connector")),
    };
    state.metrics.in_flight.dec();
    let response = answer::respond(&state, &label, target, result);
    state
        .metrics
        .ack_seconds
        .with_label_values(&[&label])
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn receive(
    state: &State,
    req: Request<Incoming>,
    peer: IpAddr,
    connector: Arc<Connector>,
    target: Target<'_>,
    started: Instant,
) -> Result<Answer, Rejection> {
    let account = find_account(state, &connector, target).await?;
    let level = state.connector_keys.get(&connector.name);
    if account.is_none() && level.is_none() {
        return Err(Rejection::NotFound("connector_not_configured"));
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let secrets = keys::verifying(&connector, account.as_deref(), level, now);
    let (parts, body) = req.into_parts();
    // Handshakes the provider does not sign come first; they store nothing.
    let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    if let Some(reply) = handshake::unsigned(
        &connector.handshakes,
        parts.method.as_str(),
        parts.uri.query(),
        &header,
        &secrets,
    ) {
        return Ok(Answer::Handshake(reply));
    }
    let limit = connector.max_body_bytes.unwrap_or(state.cfg.max_body_bytes);
    request::check(&connector, &parts, limit)?;
    let timeout = (state.cfg.body_read_timeout_ms > 0).then(|| Duration::from_millis(state.cfg.body_read_timeout_ms));
    let body = request::read_body(body, limit, timeout).await?;
    if let Some(value) = handshake::captured(&connector.handshakes, &body, &header) {
        return capture(state, &connector, account.as_deref(), value).await;
    }
    let by_get = parts.method == hyper::Method::GET;
    let path_and_query = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let raw = RawWebhook {
        url: state.called_url.url(peer, &parts.headers, path_and_query),
        method: parts.method,
        headers: parts.headers,
        body,
    };
    let verified = if connector.signature.fetches_keys() {
        verify_with_published_keys(state, &connector, raw, &secrets, now).await?
    } else {
        // Kept only where the provider signs its test requests with a published key.
        let test_keys = handshake::test_keys(&connector.handshakes);
        let retry = (!test_keys.is_empty()).then(|| raw.clone());
        match signature::verify_with_fallbacks(
            &connector.signature,
            &connector.signature_fallbacks,
            keys::fallbacks(level),
            raw,
            &secrets,
            now,
        ) {
            Ok(verified) => verified,
            Err(e) => {
                // A test request signed with the provider's published key: answered, never
                // stored (anyone can sign so).
                if let Some(raw) = retry {
                    if signature::verify(&connector.signature, raw, &test_keys, now).is_ok() {
                        return Ok(Answer::Handshake(handshake::test_reply()));
                    }
                }
                return Err(Rejection::BadSignature(e));
            }
        }
    };
    // A GET's parameters are in the URL it signed: they are the event's body.
    let verified = if by_get {
        verified.with_query_as_form_body()
    } else {
        verified
    };
    if let Some(reply) = signed_handshake(&connector, &verified, secrets.first().copied()) {
        if let Some(url) = &reply.confirm {
            // Confirmed only once the provider has taken our GET; else it asks again.
            state.keys.confirm(url).await.map_err(|e| {
                tracing::warn!(connector = %connector.name, error = %e, "Confirming the subscription failed; answering 503.");
                Rejection::Unavailable("confirm_failed")
            })?;
            tracing::info!(connector = %connector.name, "Subscription confirmed.");
        }
        return Ok(Answer::Handshake(reply));
    }
    // Never a 4xx for a verified request's shape: what the connector's paths cannot read
    // is stored and published all the same (`<connector>.unrecognized`), and counted.
    let extracted = extract::extract(&connector.event, &verified);
    if extracted.is_empty() {
        // An empty batch (Asana's heartbeat `{"events":[]}`): nothing to store.
        return Ok(Answer::Durable {
            duplicates: 0,
            events: 0,
            accepted: connector.accepted.clone(),
        });
    }
    let events = route::route(state, &connector, account.as_deref(), extracted).await?;
    state
        .metrics
        .body_bytes
        .with_label_values(&[&connector.name])
        .observe(verified.body().len() as f64);
    let n = events.len();
    let (tx, rx) = oneshot::channel();
    let submission = Submission {
        content_type: content_type(&verified),
        headers: kept_headers(&connector.keep_headers, verified.headers()),
        webhook: verified,
        connector: connector.name.clone(),
        events,
        received_ms: switchyard_core::timefmt::unix_millis(time::OffsetDateTime::now_utc()),
        reply: tx,
    };
    if state.committer.submit(submission).is_err() {
        return Err(Rejection::Unavailable("overloaded"));
    }
    let deadline = Duration::from_millis(state.cfg.durable_deadline_ms).saturating_sub(started.elapsed());
    // Durability rule: 2xx only for Outcome::Durable. A timeout here may still become
    // durable later; the provider's retry is then recognised as a duplicate.
    match tokio::time::timeout(deadline, rx).await {
        Ok(Ok(Outcome::Durable { duplicates })) => Ok(Answer::Durable {
            duplicates,
            events: n,
            accepted: connector.accepted.clone(),
        }),
        Ok(Ok(Outcome::Unavailable(reason))) => Err(Rejection::Unavailable(reason)),
        Ok(Err(_)) => Err(Rejection::Unavailable("shutting_down")),
        Err(_) => Err(Rejection::Unavailable("durable_deadline")),
    }
}

/// A value the provider hands over unsigned to finish its subscription (`capture_secret`):
/// kept sealed for the account, for the operator to read with the admin API, and
/// answered 200. Never published, never logged. The account must be in the URL.
async fn capture(
    state: &State,
    connector: &Connector,
    account: Option<&Account>,
    value: String,
) -> Result<Answer, Rejection> {
    let account = account.ok_or(Rejection::NotFound("capture_needs_account_url"))?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let value = switchyard_core::secret::Secret::new(value);
    state.registry.store().capture(&account.id, &value, now).await.map_err(|e| {
        tracing::warn!(connector = %connector.name, error = %e, "Keeping a handed-over value failed; answering 503.");
        Rejection::Unavailable("registry_unavailable")
    })?;
    tracing::info!(
        connector = %connector.name,
        account_id = %account.id,
        "Kept a value the provider handed over; read it with GET /v1/accounts/{{id}}/captured."
    );
    Ok(Answer::Handshake(handshake::Reply {
        status: 200,
        content_type: "application/json",
        body: "{}".into(),
        header: None,
        confirm: None,
    }))
}

/// Step 3 for a scheme whose keys the provider publishes (`jwt`, `x509`): where they
/// are (a URL off the connector's allow-list is refused here, before any fetch), the
/// keys cached or fetched — none to be had is a 503, the provider retries — and the
/// check. A token naming a key the cached set lacks fetches the set once more (a
/// rotation).
async fn verify_with_published_keys(
    state: &State,
    connector: &Connector,
    raw: RawWebhook,
    secrets: &[&str],
    now: i64,
) -> Result<VerifiedWebhook, Rejection> {
    let spec = &connector.signature;
    let location = fetched::key_location(spec, &raw, secrets)
        .map_err(Rejection::BadSignature)?
        .ok_or(Rejection::BadSignature(signature::VerifyError::NoSecret))?;
    let unavailable = |e: KeyFetchError| {
        tracing::warn!(connector = %connector.name, error = %e, "Published keys cannot be had; answering 503.");
        Rejection::Unavailable("key_host_unavailable")
    };
    let mut keys = state.keys.keys(&location).await.map_err(unavailable)?;
    if fetched::names_unknown_key(spec, &raw, &keys) {
        keys = state.keys.refetched(&location).await.map_err(unavailable)?;
    }
    signature::verify_fetched(spec, raw, &keys, secrets, now).map_err(Rejection::BadSignature)
}

/// The account the URL names, of this connector; `None` for a routed URL, whose events
/// name their accounts. A lookup that fails with nothing cached is a 503 (the provider
/// retries), never a 404 (which could disable its subscription).
async fn find_account(
    state: &State,
    connector: &Connector,
    target: Target<'_>,
) -> Result<Option<Arc<Account>>, Rejection> {
    match target {
        Target::Account(id) => match state.registry.account(id).await {
            Ok(Some(a)) if a.connector == connector.name => Ok(Some(a)),
            Ok(_) => Err(Rejection::NotFound("unknown_account")),
            Err(e) => {
                tracing::warn!(error = %e, "Account lookup failed and nothing is cached; answering 503.");
                Err(Rejection::Unavailable("registry_unavailable"))
            }
        },
        // Only `/v1/webhooks/{connector}/{account_id}` exists for this connector.
        Target::Routed if connector.event.account.is_none() => Err(Rejection::NotFound("no_routing_key")),
        Target::Routed => Ok(None),
    }
}

/// A handshake the provider signs (Slack's `url_verification`, Zoom's, Discord's PING),
/// answered after the signature check.
fn signed_handshake(
    connector: &Connector,
    verified: &VerifiedWebhook,
    secret: Option<&str>,
) -> Option<handshake::Reply> {
    if connector.handshakes.is_empty() {
        return None;
    }
    let content_type = header_str(verified.headers(), "content-type").unwrap_or("application/json");
    let doc = body::document(verified.body(), content_type, connector.event.document.as_ref()).unwrap_or_default();
    handshake::signed(&connector.handshakes, &doc, verified.headers(), secret)
}

/// The content type stored with the body.
fn content_type(verified: &VerifiedWebhook) -> String {
    header_str(verified.headers(), "content-type")
        .unwrap_or("application/octet-stream")
        .to_string()
}

/// The request headers the connector declared it needs later, as sent.
fn kept_headers(keep: &[String], headers: &hyper::HeaderMap) -> BTreeMap<String, String> {
    keep.iter()
        .filter_map(|h| Some((h.clone(), headers.get(h.as_str())?.to_str().ok()?.to_string())))
        .collect()
}

/// The catalog shipped in `connectors/catalog`, for unit tests of the steps.
#[cfg(test)]
pub(crate) fn test_catalog() -> switchyard_connectors::Catalog {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../connectors/catalog");
    switchyard_connectors::Catalog::load_dir(&dir).expect("the shipped catalog loads")
}

#[cfg(test)]
mod tests {
    use hyper::HeaderMap;

    use super::*;

    #[test]
    fn only_declared_headers_are_kept_and_only_when_readable() {
        let mut h = HeaderMap::new();
        h.insert("x-github-event", "push".parse().unwrap());
        h.insert("x-other", "no".parse().unwrap());
        h.insert("x-binary", hyper::header::HeaderValue::from_bytes(&[0xff]).unwrap());
        let keep = vec!["x-github-event".to_string(), "x-binary".into(), "x-absent".into()];
        let kept = kept_headers(&keep, &h);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept["x-github-event"], "push");
    }
}
