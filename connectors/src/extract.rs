//! Event ids, types and times out of a verified request, as the connector file says.

use http::HeaderMap;
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::jsonpath::{self, JsonPath};
use crate::model::{EventSpec, TimeFormat, ValueSource};
use crate::signature::{header_str, VerifiedWebhook};

/// One provider event found in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractedEvent {
    pub id: String,
    pub event_type: String,
    /// When the provider says it happened, in Unix milliseconds.
    pub occurred_ms: Option<i64>,
    /// Index within a batch body; `None` for a body that is one event.
    pub item: Option<u32>,
    /// The provider's account id, where the connector declares `event.account`.
    pub account: Option<String>,
    /// Set when the event's id or type could not be read as the connector declares.
    pub unrecognized: Option<Unrecognized>,
}

/// The provider type of an event whose type could not be read; it is delivered as
/// `<connector>.unrecognized` with the body as its data.
pub const UNRECOGNIZED_TYPE: &str = "unrecognized";

/// Why an event was not read as its connector declares. A verified request is never
/// refused for its shape: the event is stored and published all the same, with the
/// body's SHA-256 (and item index) as its id where the id is at fault, and
/// [`UNRECOGNIZED_TYPE`] as its type where the type is, and counted by this reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unrecognized {
    /// The connector reads JSON (or a form) and the body is neither.
    NotJson,
    /// The declared array of events is missing, or holds more than [`MAX_ITEMS`].
    NotABatch,
    MissingId,
    /// Longer than [`MAX_ID_LEN`], or holding a control character (a line break
    /// would break every header and key the id goes into).
    InvalidId,
    MissingType,
    InvalidType,
}

impl Unrecognized {
    pub const ALL: [Unrecognized; 6] = [
        Self::NotJson,
        Self::NotABatch,
        Self::MissingId,
        Self::InvalidId,
        Self::MissingType,
        Self::InvalidType,
    ];

    /// The metric label.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotJson => "not_json",
            Self::NotABatch => "not_a_batch",
            Self::MissingId => "missing_id",
            Self::InvalidId => "invalid_id",
            Self::MissingType => "missing_type",
            Self::InvalidType => "invalid_type",
        }
    }
}

/// Longest event id or type accepted (they end up in keys and headers).
pub const MAX_ID_LEN: usize = 256;

/// Most events one request may carry.
pub const MAX_ITEMS: usize = 1000;

/// Whether `v` can be an event id, type or routing key: non-empty, at most
/// [`MAX_ID_LEN`] bytes, and no control characters.
pub fn is_valid_value(v: &str) -> bool {
    !v.is_empty() && v.len() <= MAX_ID_LEN && !v.chars().any(char::is_control)
}

pub fn extract(spec: &EventSpec, webhook: &VerifiedWebhook) -> Vec<ExtractedEvent> {
    extract_from(spec, webhook.headers(), webhook.body())
}

/// The events of a request, as the connector file says; an empty batch holds none.
/// [`extract`] for a body whose signature is not in question: a connector's fixtures and
/// `switchyard connectors map` read events exactly as the ingress does.
pub fn extract_from(spec: &EventSpec, headers: &HeaderMap, body: &[u8]) -> Vec<ExtractedEvent> {
    let content_type = header_str(headers, "content-type").unwrap_or("application/json");
    let doc: Option<serde_json::Value> = if needs_json(spec) {
        match read_json(spec, body, content_type) {
            Some(d) => Some(d),
            None => return vec![whole_body(body, Unrecognized::NotJson)],
        }
    } else {
        None
    };
    let items: Vec<(Option<u32>, Option<&serde_json::Value>)> = match (&spec.items, &doc) {
        (Some(path), Some(doc)) => match path.get(doc) {
            Some(serde_json::Value::Array(arr)) if arr.len() <= MAX_ITEMS => {
                arr.iter().enumerate().map(|(i, v)| (Some(i as u32), Some(v))).collect()
            }
            // XML says nothing of arrays: an element that appears once is a batch of one.
            Some(one @ serde_json::Value::Object(_)) if reads_xml(spec, content_type) => {
                vec![(Some(0), Some(one))]
            }
            _ => return vec![whole_body(body, Unrecognized::NotABatch)],
        },
        _ => vec![(None, doc.as_ref())],
    };
    // The body's SHA-256, computed once however many items ask for it.
    let digest = std::cell::OnceCell::new();
    let hashed_id = |index: Option<u32>| {
        let digest: &String = digest.get_or_init(|| hex::encode(Sha256::digest(body)));
        match index {
            Some(i) => format!("{digest}:{i}"),
            None => digest.clone(),
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items {
        // A declared shape (Slack's slash commands beside its events, Discord's webhook
        // events beside its interactions, Graph's lifecycle notifications beside its
        // change notifications in one batch) reads its own paths; judged per item.
        let shape = item.and_then(|d| spec.shapes.iter().find(|s| s.when.holds(d, headers)));
        let (id_src, type_src, account_src, time_src) = match shape {
            Some(s) => (
                s.id.as_ref().unwrap_or(&spec.id),
                s.event_type.as_ref().unwrap_or(&spec.event_type),
                s.account.as_ref().or(spec.account.as_ref()),
                s.occurred_at.as_ref().or(spec.occurred_at.as_ref()),
            ),
            None => (
                &spec.id,
                &spec.event_type,
                spec.account.as_ref(),
                spec.occurred_at.as_ref(),
            ),
        };
        let read = |src: &ValueSource| -> Option<String> {
            match src {
                ValueSource::Json(p) => p.get_string(item?),
                ValueSource::BodyJson(p) => p.get_string(doc.as_ref()?),
                ValueSource::Header(h) => header_str(headers, h).map(str::to_string),
                ValueSource::Literal(s) => Some(s.clone()),
                ValueSource::BodySha256(_) => Some(hashed_id(index)),
                ValueSource::Join(j) => {
                    let item = item?;
                    let parts: Option<Vec<String>> = j.json.iter().map(|p| p.get_string(item)).collect();
                    parts.map(|parts| parts.join(&j.separator))
                }
            }
        };
        let mut unrecognized = None;
        let id = match read(id_src) {
            Some(v) if is_valid_value(&v) => v,
            found => {
                unrecognized = Some(if found.is_some_and(|v| !v.is_empty()) {
                    Unrecognized::InvalidId
                } else {
                    Unrecognized::MissingId
                });
                hashed_id(index)
            }
        };
        let event_type = match read(type_src) {
            Some(v) if is_valid_value(&v) => v,
            found => {
                unrecognized = Some(if found.is_some_and(|v| !v.is_empty()) {
                    Unrecognized::InvalidType
                } else {
                    Unrecognized::MissingType
                });
                UNRECOGNIZED_TYPE.to_string()
            }
        };
        let occurred_ms = match (time_src, item) {
            (Some(t), Some(item)) => t.json.get(item).and_then(|v| to_millis(v, t.format)),
            _ => None,
        };
        let account = account_src.and_then(read).filter(|v| is_valid_value(v));
        out.push(ExtractedEvent {
            id,
            event_type,
            occurred_ms,
            item: index,
            account,
            unrecognized,
        });
    }
    // Two items with one id would be taken for one event: the later ones get their
    // index appended, so each is stored and delivered (none is lost as a "duplicate").
    // Where that is over the length limit, or another item's id already, the item's
    // body-hash id stands in: distinct by its index, and valid.
    if out.len() < 2 {
        return out;
    }
    let mut seen = std::collections::HashSet::with_capacity(out.len());
    for e in &mut out {
        if !seen.insert(e.id.clone()) {
            let suffixed = format!("{}#{}", e.id, e.item.unwrap_or(0));
            e.id = if suffixed.len() <= MAX_ID_LEN && !seen.contains(&suffixed) {
                suffixed
            } else {
                hashed_id(e.item)
            };
            seen.insert(e.id.clone());
        }
    }
    out
}

/// Whether the events are read from an XML document (the body, or one in a form field).
fn reads_xml(spec: &EventSpec, content_type: &str) -> bool {
    match &spec.document {
        Some(d) => d.decode == crate::model::DocumentEncoding::Base64Xml,
        None => crate::body::xml::is_xml(content_type),
    }
}

fn needs_json(spec: &EventSpec) -> bool {
    let json = |s: &ValueSource| {
        matches!(
            s,
            ValueSource::Json(_) | ValueSource::BodyJson(_) | ValueSource::Join(_)
        )
    };
    spec.items.is_some()
        || json(&spec.id)
        || json(&spec.event_type)
        || spec.account.as_ref().is_some_and(json)
        || spec.occurred_at.is_some()
        || !spec.shapes.is_empty()
        || spec.document.is_some()
}

/// The body's SHA-256, hex, with the item's index in a batch.
fn body_id(body: &[u8], index: Option<u32>) -> String {
    let digest = hex::encode(Sha256::digest(body));
    match index {
        Some(i) => format!("{digest}:{i}"),
        None => digest,
    }
}

/// The whole body as one unrecognized event.
fn whole_body(body: &[u8], why: Unrecognized) -> ExtractedEvent {
    ExtractedEvent {
        id: body_id(body, None),
        event_type: UNRECOGNIZED_TYPE.to_string(),
        occurred_ms: None,
        item: None,
        account: None,
        unrecognized: Some(why),
    }
}

/// The body as JSON, as far as the connector's paths read it. A body that is one event is
/// read sparsely ([`jsonpath::sparse`]: the paths give the same values, the rest of the
/// document is checked but not built); a batch or a form body is read whole.
fn read_json(spec: &EventSpec, body: &[u8], content_type: &str) -> Option<serde_json::Value> {
    if spec.document.is_some() {
        return crate::body::document(body, content_type, spec.document.as_ref());
    }
    if spec.items.is_some()
        || !spec.shapes.is_empty()
        || crate::body::is_form(content_type)
        || crate::body::xml::is_xml(content_type)
    {
        return crate::body::to_json(body, content_type);
    }
    jsonpath::sparse(body, &json_paths(spec))
}

/// Every JSON path an event is read through (a batch's items path aside).
fn json_paths(spec: &EventSpec) -> Vec<&JsonPath> {
    let sources = [Some(&spec.id), Some(&spec.event_type), spec.account.as_ref()];
    let mut paths: Vec<&JsonPath> = sources
        .into_iter()
        .flatten()
        .flat_map(|s| match s {
            ValueSource::Json(p) | ValueSource::BodyJson(p) => std::slice::from_ref(p),
            ValueSource::Join(j) => j.json.as_slice(),
            _ => &[],
        })
        .collect();
    paths.extend(spec.occurred_at.as_ref().map(|t| &t.json));
    paths
}

fn to_millis(v: &serde_json::Value, format: TimeFormat) -> Option<i64> {
    match format {
        TimeFormat::UnixSeconds => v.as_i64().map(|s| s.saturating_mul(1000)),
        TimeFormat::UnixSecondsFractional => fractional_seconds_to_millis(v),
        TimeFormat::UnixMilliseconds => v.as_i64(),
        TimeFormat::Rfc3339 => {
            let t = OffsetDateTime::parse(v.as_str()?, &Rfc3339).ok()?;
            Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
        }
    }
}

/// Unix seconds with a fraction, as milliseconds: read from the number's decimal text, so
/// `1553610154.343` is exactly `1553610154343` (a double would make it `…342.99…`); digits
/// past the third are dropped. A whole number is whole seconds; a number written with an
/// exponent is read as a double.
fn fractional_seconds_to_millis(v: &serde_json::Value) -> Option<i64> {
    let n = match v {
        serde_json::Value::Number(n) => n,
        _ => return None,
    };
    if let Some(s) = n.as_i64() {
        return Some(s.saturating_mul(1000));
    }
    let text = n.to_string();
    match text.split_once('.') {
        Some((whole, fraction)) if fraction.bytes().all(|b| b.is_ascii_digit()) => {
            let seconds: i64 = whole.parse().ok()?;
            let ms: i64 = fraction
                .bytes()
                .chain(*b"000")
                .take(3)
                .fold(0, |acc, b| acc * 10 + i64::from(b - b'0'));
            let ms = if whole.starts_with('-') { -ms } else { ms };
            Some(seconds.saturating_mul(1000).saturating_add(ms))
        }
        _ => {
            let f = n.as_f64()? * 1000.0;
            (f.is_finite() && f.abs() < i64::MAX as f64).then(|| f.trunc() as i64)
        }
    }
}

#[cfg(test)]
mod prop_tests;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::{json, Value};

    use super::*;
    use crate::catalog::Catalog;
    use crate::fixtures::{self, Fixture};

    /// A body holding `value` at every path of `spec` (the first array index where a
    /// path has one), with unrelated fields around it.
    pub(super) fn body_for(spec: &EventSpec, value: &Value) -> Value {
        let mut doc = json!({"noise": {"deep": [1, 2.5, "x", null, {"k": true}]}, "n": 1e300});
        for p in json_paths(spec) {
            let text = p.to_string();
            let mut at = &mut doc;
            for part in text.split('.') {
                let (name, index) = match part.split_once('[') {
                    Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
                    None => (part, None),
                };
                if !at.is_object() {
                    *at = json!({});
                }
                at = at.as_object_mut().unwrap().entry(name).or_insert(Value::Null);
                if let Some(i) = index {
                    if !at.is_array() {
                        *at = json!([]);
                    }
                    let arr = at.as_array_mut().unwrap();
                    arr.resize(i + 1, json!({"other": 1}));
                    at = &mut arr[i];
                }
            }
            *at = value.clone();
        }
        doc
    }

    /// Bodies a connector may meet: its fixtures, bodies built from its paths holding each
    /// kind of value, and broken variants of each.
    fn bodies(name: &str, spec: &EventSpec) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        for (connector, path) in fixtures::list(&dir).unwrap_or_default() {
            if connector == name {
                out.push(Fixture::load(&path).unwrap().body_bytes());
            }
        }
        for v in [
            json!("evt_1"),
            json!("\u{e9}v\"t\n"),
            json!(42),
            json!(-7),
            json!(1.5e3),
            json!(18446744073709551615u64),
            json!(true),
            json!(null),
            json!({"id": "nested"}),
            json!(["a"]),
            json!("2026-11-23T09:05:07.123Z"),
            json!(1795424707),
        ] {
            out.push(serde_json::to_vec(&body_for(spec, &v)).unwrap());
        }
        let base = out.clone();
        for b in base {
            out.push(b[..b.len() / 2].to_vec());
            let mut trailing = b.clone();
            trailing.extend_from_slice(b" x");
            out.push(trailing);
            let mut twice = b"{\"a\":".to_vec();
            twice.extend_from_slice(&b);
            twice.push(b'}');
            out.push(twice);
        }
        out
    }

    #[test]
    fn sparse_reading_finds_what_the_whole_document_holds_for_every_connector() {
        let catalog = Catalog::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog")).unwrap();
        let mut compared = 0;
        for name in catalog.names() {
            let spec = &catalog.get(name).unwrap().event;
            if spec.items.is_some() || spec.document.is_some() {
                continue;
            }
            for body in bodies(name, spec) {
                let whole = crate::body::to_json(&body, "application/json");
                let sparse = read_json(spec, &body, "application/json");
                assert_eq!(
                    whole.is_some(),
                    sparse.is_some(),
                    "{name}: {}",
                    String::from_utf8_lossy(&body)
                );
                if let (Some(whole), Some(sparse)) = (&whole, &sparse) {
                    for p in json_paths(spec) {
                        assert_eq!(p.get(whole), p.get(sparse), "{name} {p}: {whole}");
                        compared += 1;
                    }
                }
            }
        }
        assert!(compared > 100, "only {compared} comparisons");
    }

    #[test]
    fn sparse_reading_refuses_what_a_value_refuses() {
        let id = JsonPath::parse("data.id").unwrap();
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        let cases: Vec<Vec<u8>> = vec![
            b"{\"x\":\"\xff\",\"data\":{\"id\":1}}".to_vec(),
            b"{\"x\":1e400,\"data\":{\"id\":1}}".to_vec(),
            format!("{{\"x\":{deep},\"data\":{{\"id\":1}}}}").into_bytes(),
            b"{\"data\":{\"id\":1}} {}".to_vec(),
            b"{\"data\":{\"id\":1},}".to_vec(),
            b"".to_vec(),
        ];
        for body in cases {
            assert!(serde_json::from_slice::<Value>(&body).is_err());
            assert!(
                jsonpath::sparse(&body, &[&id]).is_none(),
                "{}",
                String::from_utf8_lossy(&body)
            );
        }
    }

    /// Found by `prop_tests::batch_items_keep_distinct_valid_ids`: a repeated id of
    /// [`MAX_ID_LEN`] bytes became 258 with its `#1`, and `["a#2", "a", "a"]` gave two
    /// events the id `a#2` (one then dropped as a duplicate of the other).
    /// A document in a form field: Mandrill's array is split into its events (ids from the
    /// body's hash and the index, times from `ts`), Braintree's base64 XML read for its
    /// kind and timestamp; a field that does not decode is one unrecognized event.
    #[test]
    fn events_are_read_from_a_form_fields_document() {
        let catalog = Catalog::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog")).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "application/x-www-form-urlencoded".parse().unwrap());
        let mandrill = &catalog.get("mandrill").unwrap().event;
        let events = r#"[{"event":"send","_id":"m1","ts":1384954004,"msg":{}},{"type":"blacklist","action":"add","ts":1384954005}]"#;
        let body = format!(
            "mandrill_events={}",
            form_urlencoded::byte_serialize(events.as_bytes()).collect::<String>()
        );
        let got = extract_from(mandrill, &headers, body.as_bytes());
        let digest = hex::encode(Sha256::digest(body.as_bytes()));
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].id.as_str(), got[0].event_type.as_str()),
            (format!("{digest}:0").as_str(), "send")
        );
        assert_eq!(got[0].occurred_ms, Some(1_384_954_004_000));
        assert_eq!((got[1].event_type.as_str(), got[1].item), ("blacklist", Some(1)));
        assert!(got.iter().all(|e| e.unrecognized.is_none()));
        assert!(
            extract_from(mandrill, &headers, b"mandrill_events=%5B%5D").is_empty(),
            "an empty batch"
        );
        let broken = extract_from(mandrill, &headers, b"mandrill_events=%5Bnot");
        assert_eq!(broken.len(), 1);
        assert_eq!(broken[0].unrecognized, Some(Unrecognized::NotJson));

        let braintree = &catalog.get("braintree").unwrap().event;
        use base64::Engine;
        let xml = "<notification><timestamp type=\"datetime\">2024-10-01T09:30:12Z</timestamp><kind>subscription_canceled</kind><subject/></notification>";
        let payload = base64::engine::general_purpose::STANDARD.encode(xml);
        let body = format!(
            "bt_signature=pk%7C00&bt_payload={}",
            form_urlencoded::byte_serialize(payload.as_bytes()).collect::<String>()
        );
        let got = extract_from(braintree, &headers, body.as_bytes());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].event_type, "subscription_canceled");
        assert_eq!(got[0].id, hex::encode(Sha256::digest(body.as_bytes())));
        assert_eq!(got[0].occurred_ms, Some(1_727_775_012_000));
    }

    /// Front's `payload.emitted_at` (https://dev.frontapp.com/reference/events: e.g.
    /// `1553610154.343`): milliseconds kept exactly.
    #[test]
    fn fractional_unix_seconds_keep_their_milliseconds() {
        let ms = |v: Value| to_millis(&v, TimeFormat::UnixSecondsFractional);
        assert_eq!(ms(json!(1553610154.343)), Some(1_553_610_154_343));
        assert_eq!(ms(json!(1553610154.3)), Some(1_553_610_154_300));
        assert_eq!(
            ms(json!(1553610154.34399)),
            Some(1_553_610_154_343),
            "finer digits dropped"
        );
        assert_eq!(ms(json!(1553610154)), Some(1_553_610_154_000), "whole seconds");
        assert_eq!(ms(json!(-1.5)), Some(-1_500));
        assert_eq!(ms(json!(1.5e3)), Some(1_500_000));
        assert_eq!(ms(json!("1553610154.343")), None, "a string is not a number");
        assert_eq!(ms(json!(1e300)), None);
        // The shipped Front connector reads it.
        let catalog = Catalog::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog")).unwrap();
        let front = &catalog.get("front").unwrap().event;
        let body = br#"{"type":"inbound_received","authorization":{"id":"cmp_1"},"payload":{"id":"evt_1","emitted_at":1553610154.343}}"#;
        let got = extract_from(front, &HeaderMap::new(), body);
        assert_eq!(got[0].occurred_ms, Some(1_553_610_154_343));
    }

    #[test]
    fn repeated_ids_stay_distinct_and_within_the_limit() {
        let spec: EventSpec =
            toml::from_str("items = \"$\"\nid = { json = \"id\" }\ntype = { literal = \"t\" }").unwrap();
        let long = "z".repeat(MAX_ID_LEN);
        for ids in [vec![long.as_str(), &long], vec!["a#2", "a", "a"], vec!["a", "a", "a#1"]] {
            let items: Vec<Value> = ids.iter().map(|id| json!({"id": id})).collect();
            let body = serde_json::to_vec(&items).unwrap();
            let events = extract_from(&spec, &HeaderMap::new(), &body);
            let got: std::collections::HashSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
            assert_eq!(got.len(), ids.len(), "{events:?}");
            assert!(events.iter().all(|e| is_valid_value(&e.id)), "{events:?}");
            assert_eq!(events[0].id, ids[0], "the first keeps its id");
        }
    }

    #[test]
    fn a_repeated_key_counts_the_last_time() {
        let id = JsonPath::parse("data.object.id").unwrap();
        let t = JsonPath::parse("items[1]").unwrap();
        for body in [
            &br#"{"data":{"object":{"id":"a"}},"data":"s"}"#[..],
            br#"{"data":"s","data":{"object":{"id":"b"}}}"#,
            br#"{"data":{"object":{"id":"a"},"object":{"x":1}}}"#,
            br#"{"items":[0,{"k":1},2],"items":[5]}"#,
            br#"{"items":{"1":2}}"#,
        ] {
            let whole: Value = serde_json::from_slice(body).unwrap();
            let sparse = jsonpath::sparse(body, &[&id, &t]).unwrap();
            assert_eq!(id.get(&whole), id.get(&sparse));
            assert_eq!(t.get(&whole), t.get(&sparse));
        }
    }
}
