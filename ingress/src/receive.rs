//! One webhook request, from arrival to answer:
//! route → connector and account → read the body (bounded) → verify the signature →
//! extract the events → hand to the committer → answer when durable (or 503).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use switchyard_connectors::signature::header_str;
use switchyard_connectors::signature::{self, RawWebhook};
use switchyard_connectors::Connector;
use switchyard_connectors::{body, extract, handshake};
use switchyard_core::secret::active_secrets;
use tokio::sync::oneshot;

use crate::commit::{Outcome, Routed, Submission};
use crate::reject::Rejection;
use crate::State;

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
    let response = match result {
        Ok(Answer::Handshake(reply)) => {
            state
                .metrics
                .requests
                .with_label_values(&[&label, "handshake", "200"])
                .inc();
            let mut b = Response::builder()
                .status(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK))
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
            // `outcome` is one of two literals, so nothing here needs escaping.
            let body = format!(r#"{{"status":"{outcome}","events":{events},"duplicates":{duplicates}}}"#);
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))
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
                let account_id = match target {
                    Target::Account(a) => a,
                    Target::Routed => "(routed)",
                };
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
    peer: IpAddr,
    connector: Arc<Connector>,
    target: Target<'_>,
    started: Instant,
) -> Result<Answer, Rejection> {
    let account = match target {
        Target::Account(id) => match state.registry.account(id).await {
            Ok(Some(a)) if a.connector == connector.name => Some(a),
            Ok(_) => return Err(Rejection::NotFound("unknown_account")),
            Err(e) => {
                tracing::warn!(error = %e, "Account lookup failed and nothing is cached; answering 503.");
                return Err(Rejection::Unavailable("registry_unavailable"));
            }
        },
        Target::Routed => {
            if connector.event.account.is_none() {
                // Only `/v1/webhooks/{connector}/{account_id}` exists for this connector.
                return Err(Rejection::NotFound("no_routing_key"));
            }
            None
        }
    };
    let level = state.connector_keys.get(&connector.name);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // Keys that verify: the account's own, else the connector-level ones (an app's
    // client secret signs for every account of the app).
    let secrets: Vec<&str> = if connector.signature.uses_public_keys() {
        match &account {
            Some(a) if !a.public_keys.is_empty() => a.public_keys.iter().map(String::as_str).collect(),
            _ => level
                .map(|l| l.public_keys.iter().map(String::as_str).collect())
                .unwrap_or_default(),
        }
    } else {
        match &account {
            Some(a) if !a.signing_secrets.is_empty() => active_secrets(&a.signing_secrets, now),
            _ => level.map(|l| active_secrets(&l.secrets, now)).unwrap_or_default(),
        }
    };
    if account.is_none() && level.is_none() {
        return Err(Rejection::NotFound("connector_not_configured"));
    }
    let limit = connector.max_body_bytes.unwrap_or(state.cfg.max_body_bytes);
    let (parts, body) = req.into_parts();
    // Handshakes the provider does not sign come first; they store nothing.
    let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    if let Some(reply) = handshake::unsigned(&connector.handshakes, parts.method.as_str(), parts.uri.query(), &header) {
        return Ok(Answer::Handshake(reply));
    }
    if !connector.methods.iter().any(|m| m == parts.method.as_str()) {
        return Err(Rejection::MethodNotAllowed);
    }
    let by_get = parts.method == hyper::Method::GET;
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(Rejection::TooLarge(limit));
    }
    if !by_get && !connector.content_types.is_empty() {
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
    let read = Limited::new(body, limit).collect();
    let read = if state.cfg.body_read_timeout_ms > 0 {
        let within = Duration::from_millis(state.cfg.body_read_timeout_ms);
        tokio::time::timeout(within, read)
            .await
            .map_err(|_| Rejection::BodyTimeout)?
    } else {
        read.await
    };
    let body: Bytes = match read {
        Ok(b) => b.to_bytes(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return Err(Rejection::TooLarge(limit))
        }
        Err(_) => return Err(Rejection::BadBody),
    };
    let path_and_query = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let url = state.called_url.url(peer, &parts.headers, path_and_query);
    let raw = RawWebhook {
        method: parts.method,
        url,
        headers: parts.headers,
        body,
    };
    // Older schemes that sign no timestamp would let a captured request be replayed by
    // dropping the primary header (a downgrade): only where the operator opted in.
    let allowed = if level.is_some_and(|l| l.legacy_signatures) {
        signature::Fallbacks::All
    } else {
        signature::Fallbacks::ReplaySafe
    };
    let verified = signature::verify_with_fallbacks(
        &connector.signature,
        &connector.signature_fallbacks,
        allowed,
        raw,
        &secrets,
        now,
    )
    .map_err(Rejection::BadSignature)?;
    // A GET's parameters are in the URL it signed: they are the event's body.
    let verified = if by_get {
        verified.with_query_as_form_body()
    } else {
        verified
    };
    if !connector.handshakes.is_empty() {
        let content_type = header_str(verified.headers(), "content-type").unwrap_or("application/json");
        let doc = body::to_json(verified.body(), content_type).unwrap_or_default();
        if let Some(reply) = handshake::signed(
            &connector.handshakes,
            &doc,
            verified.headers(),
            secrets.first().copied(),
        ) {
            return Ok(Answer::Handshake(reply));
        }
    }
    // Never a 4xx for a verified request's shape: what the connector's paths cannot read
    // is stored and published all the same (`<connector>.unrecognized`), and counted.
    let extracted = extract::extract(&connector.event, &verified);
    if extracted.is_empty() {
        // An empty batch (Asana's heartbeat `{"events":[]}`): nothing to store.
        return Ok(Answer::Durable {
            duplicates: 0,
            events: 0,
        });
    }
    let mut events = Vec::with_capacity(extracted.len());
    for e in extracted {
        if let Some(why) = e.unrecognized {
            state
                .metrics
                .unrecognized
                .with_label_values(&[&connector.name, why.code()])
                .inc();
        }
        let (account_id, tenant_id) = match &account {
            Some(a) => (a.id.clone(), a.tenant_id.clone()),
            None => {
                let Some(external) = e.account.as_deref() else {
                    // No routing key: kept without an account; the normalizer
                    // dead-letters it (`unknown_account`) where an operator sees it.
                    state
                        .metrics
                        .unrecognized
                        .with_label_values(&[&connector.name, "missing_account_key"])
                        .inc();
                    events.push(Routed {
                        event: e,
                        account_id: String::new(),
                        tenant_id: String::new(),
                    });
                    continue;
                };
                // An account not registered (yet) does not lose the event: it goes on
                // without one, and the normalizer dead-letters it as `unknown_account`
                // until the account exists and the dead letter is replayed.
                match state.registry.account_by_external(&connector.name, external).await {
                    Ok(Some(a)) => (a.id.clone(), a.tenant_id.clone()),
                    Ok(None) => (String::new(), String::new()),
                    Err(err) => {
                        tracing::warn!(error = %err, "Routing-key lookup failed and nothing is cached; answering 503.");
                        return Err(Rejection::Unavailable("registry_unavailable"));
                    }
                }
            }
        };
        events.push(Routed {
            event: e,
            account_id,
            tenant_id,
        });
    }
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
        events,
        headers,
        content_type,
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
        Ok(Ok(Outcome::Durable { duplicates })) => Ok(Answer::Durable { duplicates, events: n }),
        Ok(Ok(Outcome::Unavailable(reason))) => Err(Rejection::Unavailable(reason)),
        Ok(Err(_)) => Err(Rejection::Unavailable("shutting_down")),
        Err(_) => Err(Rejection::Unavailable("durable_deadline")),
    }
}
