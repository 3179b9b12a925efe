//! What a request must be before its body is read: a method the connector takes, a
//! declared length within the limit, a content type the connector accepts. All cheap
//! and decided from the request line and headers, so a request refused here costs no
//! body read. Then the body itself, bounded in size and in time.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::{header, Method};
use switchyard_connectors::Connector;

use crate::reject::Rejection;

/// Refuse what can be refused before reading the body. `limit` is the body size the
/// connector allows.
pub fn check(connector: &Connector, parts: &Parts, limit: usize) -> Result<(), Rejection> {
    if !connector.methods.iter().any(|m| m == parts.method.as_str()) {
        return Err(Rejection::MethodNotAllowed);
    }
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(Rejection::TooLarge(limit));
    }
    // A GET carries its event in the query: it has no content type to check.
    if parts.method != Method::GET && !connector.content_types.is_empty() {
        let given = media_type(parts);
        if !connector.content_types.iter().any(|c| c.eq_ignore_ascii_case(&given)) {
            return Err(Rejection::UnsupportedMediaType);
        }
    }
    Ok(())
}

/// The content type without parameters, lower case; empty when absent.
fn media_type(parts: &Parts) -> String {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Read the body: at most `limit` bytes (413 past it), within `timeout` when set (408).
pub async fn read_body(body: Incoming, limit: usize, timeout: Option<Duration>) -> Result<Bytes, Rejection> {
    let read = Limited::new(body, limit).collect();
    let read = match timeout {
        Some(within) => tokio::time::timeout(within, read)
            .await
            .map_err(|_| Rejection::BodyTimeout)?,
        None => read.await,
    };
    match read {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(Rejection::TooLarge(limit)),
        Err(_) => Err(Rejection::BadBody),
    }
}

#[cfg(test)]
mod tests {
    use hyper::Request;

    use super::*;
    use crate::receive::test_catalog;

    fn parts(method: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = Request::builder().method(method).uri("/v1/webhooks/x/y");
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn code(r: Result<(), Rejection>) -> &'static str {
        r.err().map_or("ok", |e| e.code())
    }

    #[test]
    fn a_method_the_connector_does_not_take_is_405() {
        let stripe = test_catalog().get("stripe").cloned().unwrap();
        let json = [("content-type", "application/json")];
        assert_eq!(code(check(&stripe, &parts("POST", &json), 1000)), "ok");
        assert_eq!(code(check(&stripe, &parts("PUT", &json), 1000)), "method_not_allowed");
        assert_eq!(code(check(&stripe, &parts("GET", &[]), 1000)), "method_not_allowed");
    }

    #[test]
    fn a_declared_length_past_the_limit_is_413_before_any_read() {
        let stripe = test_catalog().get("stripe").cloned().unwrap();
        let at = |n: &str| parts("POST", &[("content-type", "application/json"), ("content-length", n)]);
        assert_eq!(code(check(&stripe, &at("1000"), 1000)), "ok");
        assert_eq!(code(check(&stripe, &at("1001"), 1000)), "body_too_large");
        // Unparsable lengths are left to hyper and the bounded read.
        assert_eq!(code(check(&stripe, &at("lots"), 1000)), "ok");
    }

    #[test]
    fn the_content_type_is_matched_without_parameters_or_case() {
        let catalog = test_catalog();
        let twilio = catalog.get("twilio").cloned().unwrap();
        let with = |t: &str| parts("POST", &[("content-type", t)]);
        assert_eq!(
            code(check(
                &twilio,
                &with("Application/X-WWW-Form-Urlencoded; charset=utf-8"),
                10
            )),
            "ok"
        );
        assert_eq!(code(check(&twilio, &with("text/xml"), 10)), "unsupported_media_type");
        assert_eq!(code(check(&twilio, &parts("POST", &[]), 10)), "unsupported_media_type");
        // A connector that declares none takes any.
        let stripe = catalog.get("stripe").cloned().unwrap();
        assert!(stripe.content_types.is_empty());
        assert_eq!(code(check(&stripe, &with("text/xml"), 10)), "ok");
    }

    #[test]
    fn a_get_is_not_asked_for_a_content_type() {
        let twilio = test_catalog().get("twilio").cloned().unwrap();
        assert!(twilio.methods.iter().any(|m| m == "GET"));
        assert_eq!(code(check(&twilio, &parts("GET", &[]), 10)), "ok");
        assert_eq!(
            code(check(&twilio, &parts("POST", &[("content-type", "image/png")]), 10)),
            "unsupported_media_type"
        );
    }
}
