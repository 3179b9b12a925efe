//! Checks on the fields of an endpoint, shared by create and update. Each failure is a
//! 400 naming its field; nothing is stored until every check of a request passes.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};
use serde::{Deserialize, Deserializer};
use switchyard_connectors::mapping::Mapping;
use switchyard_registry::model::type_matches;

use super::{Admin, ApiError};

/// Longest URL, description and filter accepted.
const MAX_URL: usize = 2048;
const MAX_DESCRIPTION: usize = 1024;
const MAX_FILTER: usize = 4096;
/// Custom headers per endpoint, and the longest value.
const MAX_HEADERS: usize = 20;
const MAX_HEADER_VALUE: usize = 1024;
/// The highest in-flight cap an endpoint may ask for.
pub const MAX_IN_FLIGHT: u32 = 1000;
/// How long resolving a URL's host may take when an endpoint is saved.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Headers the dispatcher sets itself or that describe the connection, not the
/// message (RFC 9110 §7.6.1 lists the hop-by-hop ones).
const RESERVED_HEADERS: &[&str] = &[
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "host",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// An absolute http(s) URL whose host resolves only to allowed addresses
/// ([`crate::ssrf`]); the SSRF guard checks it again on every connection.
pub async fn url(admin: &Admin, url: &str) -> Result<(), ApiError> {
    if url.len() > MAX_URL {
        return Err(ApiError::invalid("url", format!("longer than {MAX_URL} characters")));
    }
    let parsed: reqwest::Url = match url.parse::<reqwest::Url>() {
        Ok(u) if (u.scheme() == "https" || u.scheme() == "http") && u.host().is_some() => u,
        _ => return Err(ApiError::invalid("url", "must be an absolute http:// or https:// URL")),
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ApiError::invalid(
            "url",
            "credentials in the URL would be shown by the API; send them in a custom header instead",
        ));
    }
    match tokio::time::timeout(RESOLVE_TIMEOUT, admin.destinations.check_url(&parsed)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(refused)) => Err(ApiError::invalid("url", refused.to_string())),
        Err(_) => Err(ApiError::invalid(
            "url",
            format!("its host did not resolve within {RESOLVE_TIMEOUT:?}"),
        )),
    }
}

pub fn description(d: &str) -> Result<(), ApiError> {
    if d.len() > MAX_DESCRIPTION {
        return Err(ApiError::invalid(
            "description",
            format!("longer than {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(())
}

/// Dot-separated lowercase segments, `*` for a segment (at the end: any depth), or a
/// lone `*`.
pub fn event_types(types: &[String]) -> Result<(), ApiError> {
    if types.is_empty() {
        return Err(ApiError::invalid(
            "event_types",
            "list at least one event type, e.g. \"payments.*\" or \"*\"",
        ));
    }
    for t in types {
        let ok = t == "*"
            || (t.split('.').count() >= 2
                && t.split('.').all(|s| {
                    s == "*"
                        || (!s.is_empty()
                            && s.bytes()
                                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
                }));
        if !ok {
            return Err(ApiError::invalid(
                "event_types",
                format!("{t:?} is not an event type pattern: dot-separated lowercase segments, '*' for one segment (at the end: any depth)"),
            ));
        }
    }
    Ok(())
}

/// The event type patterns that match no type an endpoint can receive, each as a
/// warning (`{"field", "value", "message"}`) for the answer: the pattern is saved all
/// the same (a model may be added later), but a typo such as `payment.*` would
/// otherwise receive nothing, quietly. Receivable types are the unified models
/// (`connectors/unified/*.schema.json`, as the catalog loaded them) and
/// `switchyard.endpoint.disabled`; a pattern whose first segment names a connector of
/// the catalog is taken as that connector's own types and not warned about.
pub fn unmatched_event_types(admin: &Admin, patterns: &[String]) -> Vec<serde_json::Value> {
    let catalog = admin.catalog.current();
    let known: Vec<&str> = catalog
        .models()
        .types()
        .chain([crate::deliver::disable::ENDPOINT_DISABLED])
        .collect();
    unmatched(patterns, &known, |name| catalog.get(name).is_some())
}

/// [`unmatched_event_types`] against `known` types and connector names.
fn unmatched(patterns: &[String], known: &[&str], is_connector: impl Fn(&str) -> bool) -> Vec<serde_json::Value> {
    let connector_own = |p: &str| p.split('.').next().is_some_and(&is_connector);
    patterns
        .iter()
        .filter(|p| p.as_str() != "*" && !connector_own(p))
        .filter(|p| !known.iter().any(|t| type_matches(p, t)))
        .map(|p| {
            serde_json::json!({
                "field": "event_types",
                "value": p,
                "message": format!(
                    "{p:?} matches no known event type; a trailing '*' matches every type under a prefix (\"payments.*\"), one elsewhere exactly one segment"
                ),
            })
        })
        .collect()
}

/// A JSONata expression that compiles; the engine's message when it does not.
pub fn filter(source: &str) -> Result<(), ApiError> {
    if source.trim().is_empty() {
        return Err(ApiError::invalid(
            "filter",
            "write a JSONata boolean expression, or null for no filter",
        ));
    }
    if source.len() > MAX_FILTER {
        return Err(ApiError::invalid(
            "filter",
            format!("longer than {MAX_FILTER} characters"),
        ));
    }
    Mapping::compile(source)
        .map(|_| ())
        .map_err(|e| ApiError::invalid("filter", e.to_string()))
}

/// Custom headers: valid names and values, none the dispatcher owns. Names are
/// returned lowercase (HTTP/2 sends them so; one spelling per name).
pub fn headers(given: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ApiError> {
    if given.len() > MAX_HEADERS {
        return Err(ApiError::invalid("headers", format!("at most {MAX_HEADERS} headers")));
    }
    let mut out = BTreeMap::new();
    for (name, value) in given {
        let lower = name.to_ascii_lowercase();
        if HeaderName::from_bytes(lower.as_bytes()).is_err() {
            return Err(ApiError::invalid(
                "headers",
                format!("{name:?} is not a valid header name"),
            ));
        }
        if lower.starts_with("webhook-") {
            return Err(ApiError::invalid(
                "headers",
                format!("{name:?}: webhook-* headers carry the Standard Webhooks signature and are set by Switchyard"),
            ));
        }
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(ApiError::invalid(
                "headers",
                format!("{name:?} is set by the HTTP connection or by Switchyard, not per endpoint"),
            ));
        }
        if value.len() > MAX_HEADER_VALUE || HeaderValue::from_str(&value).is_err() {
            return Err(ApiError::invalid(
                "headers",
                format!("the value of {name:?} must be visible ASCII, at most {MAX_HEADER_VALUE} bytes"),
            ));
        }
        if out.insert(lower, value).is_some() {
            return Err(ApiError::invalid("headers", format!("{name:?} is given twice")));
        }
    }
    Ok(out)
}

pub fn rate_limit(n: Option<u32>) -> Result<(), ApiError> {
    match n {
        Some(0) => Err(ApiError::invalid(
            "rate_limit",
            "requests per second must be at least 1 (null for no limit)",
        )),
        _ => Ok(()),
    }
}

pub fn max_in_flight(n: Option<u32>) -> Result<(), ApiError> {
    match n {
        Some(n) if n == 0 || n > MAX_IN_FLIGHT => Err(ApiError::invalid(
            "max_in_flight",
            format!("between 1 and {MAX_IN_FLIGHT} (null for the default)"),
        )),
        _ => Ok(()),
    }
}

/// For `PATCH`: tells a field left out (`None`) from one set to `null` (`Some(None)`).
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn headers_are_checked_and_lowercased() {
        let ok = headers(map(&[("X-Api-Key", "abc"), ("Authorization", "Bearer t")])).unwrap();
        assert_eq!(ok.get("x-api-key").map(String::as_str), Some("abc"));
        for bad in [
            map(&[("webhook-id", "x")]),
            map(&[("Webhook-Signature", "x")]),
            map(&[("Connection", "close")]),
            map(&[("transfer-encoding", "chunked")]),
            map(&[("Host", "evil")]),
            map(&[("content-length", "1")]),
            map(&[("bad name", "x")]),
            map(&[("x-ok", "line\nbreak")]),
            map(&[("X-A", "1"), ("x-a", "2")]),
        ] {
            assert!(headers(bad.clone()).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn filters_must_compile() {
        assert!(filter("data.amount > 10000 and connector = \"stripe\"").is_ok());
        assert!(filter("data.amount >").is_err());
        assert!(filter("  ").is_err());
    }

    #[test]
    fn limits_have_bounds() {
        assert!(rate_limit(Some(0)).is_err());
        assert!(rate_limit(Some(1)).is_ok() && rate_limit(None).is_ok());
        assert!(max_in_flight(Some(0)).is_err() && max_in_flight(Some(1001)).is_err());
        assert!(max_in_flight(Some(1000)).is_ok());
    }

    #[test]
    fn patterns_matching_no_known_type_are_named() {
        let known = [
            "payments.invoice.paid",
            "crm.contact.created",
            "switchyard.endpoint.disabled",
        ];
        let given: Vec<String> = [
            "*",
            "payments.*",
            "*.contact.created",
            "payment.*",
            "payments.*.paid.x",
            "crm.contact",
            "stripe.payout.paid",
            "switchyard.*",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let w = unmatched(&given, &known, |c| c == "stripe");
        let named: Vec<&str> = w.iter().map(|w| w["value"].as_str().unwrap()).collect();
        assert_eq!(named, ["payment.*", "payments.*.paid.x", "crm.contact"]);
        assert!(w
            .iter()
            .all(|w| w["field"] == "event_types" && w["message"].is_string()));
    }

    #[test]
    fn event_type_patterns() {
        let v = |s: &[&str]| event_types(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert!(v(&["*"]).is_ok() && v(&["payments.*", "crm.contact.created"]).is_ok());
        assert!(v(&[]).is_err() && v(&["Payments.x"]).is_err() && v(&["payments"]).is_err());
        assert!(v(&["payments..x"]).is_err());
    }
}
