//! One webhook request, from arrival to answer:
//! route → connector and account → read the body (bounded) → verify the signature →
//! extract the events → hand to the committer → answer when durable (or 503).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use switchyard_connectors::signature::{self, RawWebhook};
use switchyard_connectors::Connector;
use switchyard_connectors::{extract, handshake};
use tokio::sync::oneshot;

use crate::commit::{Outcome, Submission};
use crate::reject::Rejection;
use crate::State;

/// Handle `POST /v1/webhooks/{connector}/{account_id}`.
pub async fn webhook(
    state: Arc<State>,
    req: Request<Incoming>,
    connector: &str,
    account_id: &str,
) -> Response<Full<Bytes>> {
    let started = Instant::now();
    state.metrics.in_flight.inc();
    let known = state.catalog.get(connector).cloned();
    let label = known.as_ref().map(|c| c.name.as_str()).unwrap_or("unknown").to_string();
    let result = match known {
        Some(c) if !handshake::accepts_method(&c.handshakes, req.method().as_str()) => Err(Rejection::MethodNotAllowed),
        Some(c) => receive(&state, req, c, account_id, started).await,
        None => Err(Rejection::NotFound("unknown_connector", "no such connector")),
    };
    state.metrics.in_flight.dec();
    let response = match result {
        Ok(Answer::Handshake(reply)) => {
            state
                .metrics
                .requests
                .with_label_values(&[&label, "handshake", "200"])
                .inc();
            let mut b = Response::builder()
                .status(StatusCode::OK)
                .header("content-type", reply.content_type);
            if let Some((name, value)) = reply.header {
                b = b.header(name, value);
            }
            b.body(Full::new(Bytes::from(reply.body)))
                .expect("valid response parts")
        }
        Ok(Answer::Durable { duplicates, events }) => {
            let outcome = if duplicates == events { "duplicate" } else { "accepted" };
            state
                .metrics
                .requests
                .with_label_values(&[&label, outcome, "200"])
                .inc();
            let body = serde_json::json!({ "status": outcome, "events": events, "duplicates": duplicates });
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body.to_string())))
                .expect("valid response parts")
        }
        Err(r) => {
            let outcome = if r.status() == StatusCode::SERVICE_UNAVAILABLE {
                "unavailable"
            } else {
                "rejected"
            };
            state
                .metrics
                .requests
                .with_label_values(&[&label, outcome, r.status().as_str()])
                .inc();
            state.metrics.rejections.with_label_values(&[&label, r.code()]).inc();
            if let Rejection::BadSignature(e) = &r {
                state
                    .metrics
                    .signature_failures
                    .with_label_values(&[&label, e.code()])
                    .inc();
                tracing::info!(connector = %label, account_id, reason = e.code(), "Signature rejected.");
            }
            r.into_response(state.cfg.retry_after_secs)
        }
    };
    state
        .metrics
        .ack_seconds
        .with_label_values(&[&label])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// How a request ended well.
enum Answer {
    /// Every event is durable (or was already).
    Durable { duplicates: usize, events: usize },
    /// A handshake, answered; nothing stored.
    Handshake(handshake::Reply),
}

async fn receive(
    state: &State,
    req: Request<Incoming>,
    connector: Arc<Connector>,
    account_id: &str,
    started: Instant,
) -> Result<Answer, Rejection> {
    let account = match state.registry.account(account_id).await {
        Ok(Some(a)) if a.connector == connector.name => a,
        Ok(_) => {
            return Err(Rejection::NotFound(
                "unknown_account",
                "no such account for this connector",
            ))
        }
        Err(e) => {
            tracing::warn!(error = %e, "Account lookup failed and nothing is cached; answering 503.");
            return Err(Rejection::Unavailable("registry_unavailable"));
        }
    };
    let limit = connector.max_body_bytes.unwrap_or(state.cfg.max_body_bytes);
    let (parts, body) = req.into_parts();
    // Handshakes the provider does not sign come first; they store nothing.
    let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    if let Some(reply) = handshake::unsigned(&connector.handshakes, parts.method.as_str(), parts.uri.query(), &header) {
        return Ok(Answer::Handshake(reply));
    }
    if parts.method != hyper::Method::POST {
        return Err(Rejection::MethodNotAllowed);
    }
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(Rejection::TooLarge(limit));
    }
    if !connector.content_types.is_empty() {
        let given = parts
            .headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_default();
        if !connector.content_types.iter().any(|c| c.eq_ignore_ascii_case(&given)) {
            return Err(Rejection::UnsupportedMediaType);
        }
    }
    let body: Bytes = match Limited::new(body, limit).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return Err(Rejection::TooLarge(limit))
        }
        Err(_) => return Err(Rejection::BadBody),
    };
    let host = parts
        .headers
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let url = format!(
        "http://{host}{}",
        parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let raw = RawWebhook {
        method: parts.method,
        url,
        headers: parts.headers,
        body,
    };
    let secrets: Vec<&str> = if connector.signature.uses_public_keys() {
        account.public_keys.iter().map(String::as_str).collect()
    } else {
        account.signing_secrets.iter().map(|s| s.expose()).collect()
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let verified = signature::verify(&connector.signature, raw, &secrets, now).map_err(Rejection::BadSignature)?;
    if !connector.handshakes.is_empty() {
        let doc = serde_json::from_slice::<serde_json::Value>(verified.body()).unwrap_or_default();
        if let Some(reply) = handshake::signed(&connector.handshakes, &doc, secrets.first().copied()) {
            return Ok(Answer::Handshake(reply));
        }
    }
    let events = extract::extract(&connector.event, &verified).map_err(Rejection::Malformed)?;
    state
        .metrics
        .body_bytes
        .with_label_values(&[&connector.name])
        .observe(verified.body().len() as f64);

    let content_type = verified
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    let headers = connector
        .keep_headers
        .iter()
        .filter_map(|h| {
            Some((
                h.clone(),
                verified.headers().get(h.as_str())?.to_str().ok()?.to_string(),
            ))
        })
        .collect();
    let n = events.len();
    let (tx, rx) = oneshot::channel();
    let submission = Submission {
        webhook: verified,
        connector: connector.name.clone(),
        account_id: account.id.clone(),
        tenant_id: account.tenant_id.clone(),
        events,
        headers,
        content_type,
        received_ms: switchyard_plumbing::timefmt::unix_millis(time::OffsetDateTime::now_utc()),
        reply: tx,
    };
    if state.committer.submit(submission).is_err() {
        return Err(Rejection::Unavailable("overloaded"));
    }
    let deadline = Duration::from_millis(state.cfg.durable_deadline_ms).saturating_sub(started.elapsed());
    // Durability rule: 2xx only for Outcome::Durable. A timeout here may still become
    // durable later; the provider's retry is then recognised as a duplicate.
    match tokio::time::timeout(deadline, rx).await {
        Ok(Ok(Outcome::Durable { duplicates })) => Ok(Answer::Durable { duplicates, events: n }),
        Ok(Ok(Outcome::Unavailable(reason))) => Err(Rejection::Unavailable(reason)),
        Ok(Err(_)) => Err(Rejection::Unavailable("shutting_down")),
        Err(_) => Err(Rejection::Unavailable("durable_deadline")),
    }
}
