//! How a request ends, answered and counted in one place: a handshake's reply, 200 with
//! the events and duplicates once durable, or the rejection's status and short JSON.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use std::sync::Arc;

use switchyard_connectors::handshake;
use switchyard_connectors::model::AcceptedReply;

use super::Target;
use crate::reject::Rejection;
use crate::State;

/// How a request ended well.
pub enum Answer {
    /// Every event is durable (or was already); `accepted` is the connector's own
    /// answer for it, if it declares one.
    Durable {
        duplicates: usize,
        events: usize,
        accepted: Option<Arc<AcceptedReply>>,
    },
    /// A handshake, answered; nothing stored.
    Handshake(handshake::Reply),
}

/// The `outcome` label of `switchyard_ingress_requests_total`.
fn outcome(result: &Result<Answer, Rejection>) -> &'static str {
    match result {
        Ok(Answer::Handshake(_)) => "handshake",
        Ok(Answer::Durable { duplicates, events, .. }) if duplicates == events => "duplicate",
        Ok(Answer::Durable { .. }) => "accepted",
        Err(r) if r.status() == StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        Err(_) => "rejected",
    }
}

/// The response to `result`, counted under the connector's `label`.
pub fn respond(
    state: &State,
    label: &str,
    target: Target<'_>,
    result: Result<Answer, Rejection>,
) -> Response<Full<Bytes>> {
    let outcome = outcome(&result);
    let status = match &result {
        Ok(Answer::Handshake(reply)) => StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK),
        Ok(Answer::Durable { .. }) => StatusCode::OK,
        Err(r) => r.status(),
    };
    state
        .metrics
        .requests
        .with_label_values(&[label, outcome, status.as_str()])
        .inc();
    match result {
        Ok(Answer::Handshake(reply)) => {
            let mut b = Response::builder()
                .status(status)
                .header("content-type", reply.content_type);
            if let Some((name, value)) = reply.header {
                b = b.header(name, value);
            }
            b.body(Full::new(Bytes::from(reply.body)))
                .expect("valid response parts")
        }
        Ok(Answer::Durable {
            accepted: Some(reply), ..
        }) => Response::builder()
            .status(StatusCode::OK)
            .header("content-type", reply.content_type.as_str())
            .body(Full::new(Bytes::from(reply.body.clone())))
            .expect("valid response parts"),
        Ok(Answer::Durable { duplicates, events, .. }) => {
            // `outcome` is one of two literals, so nothing here needs escaping.
            let body = format!(r#"{{"status":"{outcome}","events":{events},"duplicates":{duplicates}}}"#);
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))
                .expect("valid response parts")
        }
        Err(r) => {
            state.metrics.rejections.with_label_values(&[label, r.code()]).inc();
            if let Rejection::BadSignature(e) = &r {
                state
                    .metrics
                    .signature_failures
                    .with_label_values(&[label, e.code()])
                    .inc();
                let account_id = match target {
                    Target::Account(a) => a,
                    Target::Routed => "(routed)",
                };
                tracing::info!(connector = %label, account_id, reason = e.code(), "Signature rejected.");
            }
            r.into_response(state.cfg.retry_after_secs)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_labelled_by_what_became_of_the_events() {
        let durable = |duplicates, events| {
            Ok(Answer::Durable {
                duplicates,
                events,
                accepted: None,
            })
        };
        assert_eq!(outcome(&durable(0, 2)), "accepted");
        assert_eq!(outcome(&durable(1, 2)), "accepted");
        assert_eq!(outcome(&durable(2, 2)), "duplicate");
        // An empty batch stores nothing and is answered as its duplicates: all zero of them.
        assert_eq!(outcome(&durable(0, 0)), "duplicate");
        assert_eq!(outcome(&Err(Rejection::Unavailable("overloaded"))), "unavailable");
        assert_eq!(outcome(&Err(Rejection::MethodNotAllowed)), "rejected");
    }
}
