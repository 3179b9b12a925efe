//! Property tests of event extraction, the first code that reads a verified body: ids,
//! types and routing keys holding any character or byte (control characters, line
//! breaks, invalid UTF-8, text past the length limit), in JSON bodies, headers and form
//! bodies, for every shipped connector and for small specs that state the rule exactly.
//! Extraction never panics and never refuses a request: an id that cannot be one becomes
//! the body's SHA-256, a type that cannot be one becomes [`UNRECOGNIZED_TYPE`], and what
//! comes out is fit for the NATS headers and dedupe keys it goes into.

use std::collections::HashSet;
use std::sync::LazyLock;

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use serde_json::{json, Value};

use super::tests::body_for;
use super::*;
use crate::catalog::Catalog;
use crate::signature::prop_tests::config;

static CATALOG: LazyLock<Catalog> =
    LazyLock::new(|| Catalog::load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog")).unwrap());

fn spec(text: &str) -> EventSpec {
    toml::from_str(text).expect("a valid event spec")
}

/// Text an id, type or routing key may hold: anything, weighted to the edges.
fn text() -> impl Strategy<Value = String> {
    let edge = prop_oneof![
        any::<char>(),
        prop::sample::select(vec![
            '\n', '\r', '\0', '\t', '\u{7f}', '\u{85}', '\u{2028}', '\u{feff}', '#'
        ]),
    ];
    prop_oneof![
        any::<String>(),
        "[a-z_.#0-9]{1,12}",
        prop::collection::vec(edge, 0..12).prop_map(|c| c.into_iter().collect()),
        (MAX_ID_LEN - 3..MAX_ID_LEN + 3).prop_map(|n| "é".repeat(n / 2) + &"x".repeat(n % 2)),
        (MAX_ID_LEN - 3..MAX_ID_LEN + 3, "[a-z]").prop_map(|(n, c)| c.repeat(n)),
    ]
}

/// Any JSON value a path may lead to, text most often.
fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => text().prop_map(Value::String),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<f64>().prop_map(Value::from),
        1 => any::<bool>().prop_map(Value::from),
        1 => Just(Value::Null),
        1 => Just(json!({"id": "nested"})),
        1 => Just(json!(["a"])),
    ]
}

/// Any header value the `http` crate lets through (every byte but most controls).
fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        text().prop_map(String::into_bytes),
    ]
}

fn content_type() -> impl Strategy<Value = Option<&'static str>> {
    prop::sample::select(vec![
        None,
        Some("application/json"),
        Some("application/x-www-form-urlencoded"),
        Some("text/plain"),
    ])
}

/// Whatever the input, each event is fit to go on: its id, type and routing key valid
/// (and so a NATS or HTTP header value), its id unique in the request, and a body that
/// was not read whole under the body's SHA-256 and [`UNRECOGNIZED_TYPE`].
fn check_events(spec: &EventSpec, body: &[u8], events: &[ExtractedEvent]) -> Result<(), TestCaseError> {
    prop_assert!(
        !events.is_empty() || spec.items.is_some(),
        "only a batch may hold no event"
    );
    let mut ids = HashSet::new();
    for e in events {
        for v in [&e.id, &e.event_type].into_iter().chain(&e.account) {
            prop_assert!(is_valid_value(v), "{v:?} in {e:?}");
            prop_assert!(HeaderValue::from_str(v).is_ok(), "{v:?} cannot be a header value");
        }
        prop_assert!(ids.insert(e.id.as_str()), "two events with id {:?}", e.id);
        if matches!(e.unrecognized, Some(Unrecognized::NotJson | Unrecognized::NotABatch)) {
            prop_assert_eq!(&e.id, &body_id(body, None));
            prop_assert_eq!(&e.event_type, UNRECOGNIZED_TYPE);
        }
    }
    Ok(())
}

/// What the rule says an id or type read as `found` becomes: itself when valid, else
/// the fallback, with the reason (`missing` for nothing or empty text, else `invalid`).
fn expected(
    found: Option<&str>,
    fallback: &str,
    missing: Unrecognized,
    invalid: Unrecognized,
) -> (String, Option<Unrecognized>) {
    match found {
        Some(v) if is_valid_value(v) => (v.to_string(), None),
        Some(v) if !v.is_empty() => (fallback.to_string(), Some(invalid)),
        _ => (fallback.to_string(), Some(missing)),
    }
}

/// Checks one event read through the spec `id = <id>, type = <type>` against the rule.
fn check_rule(
    event: &ExtractedEvent,
    body: &[u8],
    id: Option<&str>,
    event_type: Option<&str>,
) -> Result<(), TestCaseError> {
    use Unrecognized::*;
    let (want_id, id_why) = expected(id, &body_id(body, None), MissingId, InvalidId);
    let (want_type, type_why) = expected(event_type, UNRECOGNIZED_TYPE, MissingType, InvalidType);
    prop_assert_eq!(&event.id, &want_id);
    prop_assert_eq!(&event.event_type, &want_type);
    prop_assert_eq!(event.unrecognized, type_why.or(id_why));
    Ok(())
}

proptest! {
    #![proptest_config(config(192))]

    /// Every shipped connector, its paths holding any value, its headers any bytes,
    /// under any content type, the body sometimes cut or holding raw invalid bytes.
    #[test]
    fn every_connector_extracts_fit_events_from_anything(
        pick in any::<prop::sample::Index>(),
        v in value(),
        header in header_bytes(),
        ct in content_type(),
        splice in prop::option::of((any::<prop::sample::Index>(), prop::collection::vec(any::<u8>(), 1..4))),
    ) {
        let names: Vec<&str> = CATALOG.names().collect();
        let spec = &CATALOG.get(names[pick.index(names.len())]).unwrap().event;
        let mut body = serde_json::to_vec(&body_for(spec, &v)).unwrap();
        if let Some((at, bytes)) = splice {
            let at = at.index(body.len() + 1);
            body.splice(at..at, bytes);
        }
        let mut headers = HeaderMap::new();
        if let Some(ct) = ct {
            headers.insert("content-type", HeaderValue::from_static(ct));
        }
        for name in spec.headers_read() {
            if let Ok(value) = HeaderValue::from_bytes(&header) {
                headers.insert(HeaderName::from_bytes(name.as_bytes()).unwrap(), value);
            }
        }
        let events = extract_from(spec, &headers, &body);
        check_events(spec, &body, &events)?;
    }

    /// JSON: a valid id, type and routing key are kept as sent; anything else falls back.
    #[test]
    fn json_ids_and_types_are_kept_or_fall_back(id in value(), t in value(), acct in value()) {
        let s = spec(r#"id = { json = "id" }
type = { json = "type" }
account = { json = "acct" }"#);
        let body = serde_json::to_vec(&json!({"id": id, "type": t, "acct": acct})).unwrap();
        let events = extract_from(&s, &HeaderMap::new(), &body);
        check_events(&s, &body, &events)?;
        let as_text = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
            _ => None,
        };
        check_rule(&events[0], &body, as_text(&id).as_deref(), as_text(&t).as_deref())?;
        let acct = as_text(&acct).filter(|a| is_valid_value(a));
        prop_assert_eq!(&events[0].account, &acct);
    }

    /// Headers: any bytes; only visible ASCII text within the rules is kept.
    #[test]
    fn header_ids_and_types_are_kept_or_fall_back(id in header_bytes(), t in header_bytes(), body in prop::collection::vec(any::<u8>(), 0..64)) {
        let s = spec(r#"id = { header = "x-event-id" }
type = { header = "x-event-type" }"#);
        let mut headers = HeaderMap::new();
        for (name, v) in [("x-event-id", &id), ("x-event-type", &t)] {
            if let Ok(v) = HeaderValue::from_bytes(v) {
                headers.insert(name, v);
            }
        }
        let events = extract_from(&s, &headers, &body);
        check_events(&s, &body, &events)?;
        let read = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
        check_rule(&events[0], &body, read("x-event-id"), read("x-event-type"))?;
    }

    /// Form bodies: any bytes, percent-encoded or raw (`&`, `=`, `%` and invalid UTF-8
    /// included), in the parameters the paths read.
    #[test]
    fn form_ids_and_types_are_kept_or_fall_back(id in header_bytes(), t in header_bytes(), raw in any::<bool>()) {
        let s = spec(r#"id = { json = "id" }
type = { json = "type" }"#);
        let encode = |b: &[u8]| form_urlencoded::byte_serialize(b).collect::<String>().into_bytes();
        let mut body = b"id=".to_vec();
        body.extend(encode(&id));
        body.extend_from_slice(b"&type=");
        body.extend(if raw { t.clone() } else { encode(&t) });
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded"));
        let events = extract_from(&s, &headers, &body);
        check_events(&s, &body, &events)?;
        let form = crate::body::to_json(&body, "application/x-www-form-urlencoded").unwrap();
        check_rule(&events[0], &body, form["id"].as_str(), form["type"].as_str())?;
    }

    /// Batches: ids that repeat, or that look like the suffix a repeat is given, still
    /// come out as one distinct, valid id per item.
    #[test]
    fn batch_items_keep_distinct_valid_ids(
        ids in prop::collection::vec(
            prop_oneof![
                prop::sample::select(vec!["a", "a#1", "a#2", "a#1#2", "b", ""]).prop_map(String::from),
                (MAX_ID_LEN - 2..=MAX_ID_LEN).prop_map(|n| "z".repeat(n)),
                text(),
            ],
            0..10,
        ),
    ) {
        let s = spec(r#"items = "events"
id = { json = "id" }
type = { literal = "item" }"#);
        let items: Vec<Value> = ids.iter().map(|id| json!({"id": id})).collect();
        let body = serde_json::to_vec(&json!({"events": items})).unwrap();
        let events = extract_from(&s, &HeaderMap::new(), &body);
        check_events(&s, &body, &events)?;
        prop_assert_eq!(events.len(), ids.len());
    }
}
