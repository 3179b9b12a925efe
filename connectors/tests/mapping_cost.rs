//! What a mapping costs on the largest body the ingress accepts: every fixture of every
//! catalog connector (so every mapping, since each has a fixture) is grown to the body
//! size limit the way real payloads grow — its arrays (changelog items, comments, labels,
//! line items) repeated with distinct values, then its longest string lengthened — and
//! each of its events is mapped as the normalizer maps it, which must end within
//! [`BUDGET`] of wall time.
//!
//! The budget is generous (a debug build on a shared 2-core machine, a release build
//! running beside it) and a mapping over it is measured twice more, the best of the three
//! counting, so a moment of CPU starvation does not fail the test; an O(n²) step in a
//! mapping takes seconds at this size and fails it every time.

use std::path::Path;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use switchyard_connectors::apply::{self, ApplyError};
use switchyard_connectors::fixtures::{self, Fixture};
use switchyard_connectors::mapping::Limits;
use switchyard_connectors::Catalog;

/// `ingress.max_body_bytes`, the largest body a provider can send.
const BODY_LIMIT: usize = 1 << 20;

/// Wall time one mapping of a body at [`BODY_LIMIT`] may take, in a debug build.
const BUDGET: Duration = Duration::from_secs(2);

/// The time limit is lifted far past the budget, so the measure is the mapping's own cost,
/// not where the engine stopped it.
const LIMITS: Limits = Limits {
    timeout_ms: 60_000,
    max_depth: 500,
    max_input_bytes: BODY_LIMIT,
};

fn size(v: &Value) -> usize {
    serde_json::to_vec(v).map_or(0, |b| b.len())
}

/// The JSON pointer of every non-empty array in `v`, arrays within arrays included.
fn arrays(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Array(items) if !items.is_empty() => {
            out.push(at.clone());
            for (i, item) in items.iter().enumerate() {
                arrays(item, format!("{at}/{i}"), out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                arrays(v, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out);
            }
        }
        _ => {}
    }
}

/// A copy of `v` whose short word-like strings (names, keys, labels, field names) end
/// in `-{n}`, so repeated items are distinct, as a long changelog's are; times, URLs
/// and addresses are left alone so the mapping still reads them.
fn variant(v: &Value, n: usize) -> Value {
    match v {
        Value::String(s)
            if s.len() < 40 && s.parse::<f64>().is_err() && !s.is_empty() && !s.contains([':', '/', '@']) =>
        {
            Value::String(format!("{s}-{n}"))
        }
        Value::Array(items) => Value::Array(items.iter().map(|i| variant(i, n)).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), variant(v, n))).collect()),
        other => other.clone(),
    }
}

/// `v` reduced to its first field, when it is an object: the smallest item of its
/// shape, so the most items fit in a body.
fn lean(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(map.iter().take(1).map(|(k, v)| (k.clone(), v.clone())).collect()),
        other => other.clone(),
    }
}

/// `body` with the array at `pointer` grown, by distinct copies of its items (`lean`:
/// reduced to their first field), to about `target` bytes of JSON.
fn grow_array(body: &Value, pointer: &str, target: usize, lean_copies: bool) -> Value {
    let mut body = body.clone();
    let room = target.saturating_sub(size(&body));
    let Some(Value::Array(items)) = body.pointer_mut(pointer) else {
        return body;
    };
    let originals: Vec<Value> = if lean_copies {
        items.iter().map(lean).collect()
    } else {
        items.clone()
    };
    // Sized by the copies, whose strings are longer by their suffix.
    let copies: Vec<Value> = originals.iter().map(|v| variant(v, 1_000_000)).collect();
    let per_item = size(&Value::Array(copies)) / originals.len() + 1;
    for k in 0..room / per_item {
        items.push(variant(&originals[k % originals.len()], k));
    }
    body
}

/// `body` with its longest string lengthened with text to about `target` bytes.
fn grow_string(mut body: Value, target: usize) -> Value {
    fn longest(v: &mut Value) -> Option<&mut String> {
        match v {
            Value::String(s) => Some(s),
            Value::Array(items) => items.iter_mut().filter_map(longest).max_by_key(|s| s.len()),
            Value::Object(map) => map.values_mut().filter_map(longest).max_by_key(|s| s.len()),
            _ => None,
        }
    }
    let missing = target.saturating_sub(size(&body) + 16);
    if let Some(s) = longest(&mut body) {
        let words = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ";
        s.extend(words.chars().cycle().take(missing));
    }
    body
}

/// Every grown version of a JSON body: each of its arrays alone at the limit (the worst
/// case for a step over that array), with whole and with lean items, then its longest
/// string.
fn grown(body: &Value, target: usize) -> Vec<(String, Value)> {
    let mut pointers = Vec::new();
    arrays(body, String::new(), &mut pointers);
    let mut out: Vec<(String, Value)> = pointers
        .iter()
        .flat_map(|p| {
            [
                (format!("array {p}"), grow_array(body, p, target, false)),
                (format!("array {p}, lean items"), grow_array(body, p, target, true)),
            ]
        })
        .collect();
    out.push(("longest string".into(), grow_string(body.clone(), target)));
    out
}

/// Every grown version of a form body: its `payload` JSON's (Slack interactivity), or
/// its longest parameter lengthened.
fn grown_form(body: &str, target: usize) -> Vec<(String, String)> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let encode = |pairs: &[(String, String)]| {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            out.append_pair(k, v);
        }
        out.finish()
    };
    let payload = pairs.iter().position(|(k, _)| k == "payload");
    if let Some(json) = payload.and_then(|i| serde_json::from_str::<Value>(&pairs[i].1).ok()) {
        // Percent-encoding about triples JSON's punctuation: grow to a third of the room.
        return grown(&json, target / 3)
            .into_iter()
            .map(|(what, v)| {
                let mut pairs = pairs.clone();
                pairs[payload.unwrap_or(0)].1 = v.to_string();
                (format!("payload {what}"), encode(&pairs))
            })
            .collect();
    }
    let mut pairs = pairs;
    if let Some((_, value)) = pairs.iter_mut().max_by_key(|(_, v)| v.len()) {
        value.extend(
            "lorem ipsum "
                .chars()
                .cycle()
                .take(target.saturating_sub(body.len()) / 2),
        );
    }
    vec![("longest parameter".into(), encode(&pairs))]
}

#[test]
fn every_mapping_maps_a_body_at_the_size_limit_within_its_budget() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog");
    let catalog = Catalog::load_dir(&dir).unwrap();
    let mut over = Vec::new();
    let mut mapped = 0;
    for (name, path) in fixtures::list(&fixtures::fixtures_dir(&dir)).unwrap() {
        let connector = catalog.get(&name).unwrap();
        if connector.mappings.is_empty() {
            continue;
        }
        let fixture = Fixture::load(&path).unwrap();
        let mut headers = HeaderMap::new();
        for (k, v) in &fixture.headers {
            headers.insert(
                HeaderName::try_from(k.as_str()).unwrap(),
                HeaderValue::try_from(v.as_str()).unwrap(),
            );
        }
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_string();
        let target = BODY_LIMIT - 1024;
        let bodies: Vec<(String, Vec<u8>)> = match &fixture.body {
            Value::String(form) => grown_form(form, target)
                .into_iter()
                .map(|(what, b)| (what, b.into_bytes()))
                .collect(),
            json => grown(json, target)
                .into_iter()
                .map(|(what, v)| (what, serde_json::to_vec(&v).unwrap_or_default()))
                .collect(),
        };
        for (what, body) in bodies {
            let case = format!(
                "{name}/{} ({what}, {} KiB)",
                path.file_name().unwrap_or_default().to_string_lossy(),
                body.len() >> 10
            );
            assert!(body.len() <= BODY_LIMIT, "{case}: over the body limit");
            let events = switchyard_connectors::extract::extract_from(&connector.event, &headers, &body);
            // A grown batch holds more items: the fixture's own events are the first ones.
            for event in events.iter().take(fixture.expect.len()) {
                if !connector.mappings.contains_key(&event.event_type) {
                    continue;
                }
                let run = || {
                    let started = Instant::now();
                    let outcome =
                        apply::map_body(connector, &event.event_type, &body, &content_type, event.item, LIMITS);
                    (started.elapsed(), outcome)
                };
                let (mut took, outcome) = run();
                for _ in 0..2 {
                    if took <= BUDGET {
                        break;
                    }
                    took = took.min(run().0);
                }
                let shape = match &outcome {
                    Ok(apply::Outcome::Mapped { data, .. }) => format!("{} bytes out", data.to_string().len()),
                    Ok(apply::Outcome::Many { items, .. }) => format!("{} events out", items.len()),
                    Ok(apply::Outcome::Dropped) => "dropped".into(),
                    Err(e) => e.to_string().chars().take(120).collect(),
                };
                println!("{case} {}: {took:.0?}, {shape}", event.event_type);
                if let Err(e) = &outcome {
                    // Padding may make a field unreadable for a mapping (a dead letter is
                    // a fine answer to that); running out of time or room is not.
                    assert!(
                        !e.is_time_limit() && !matches!(e, ApplyError::InputTooLarge { .. }),
                        "{case}: {e}"
                    );
                }
                mapped += 1;
                if took > BUDGET {
                    over.push(format!("{case} {}: {took:.1?}", event.event_type));
                }
            }
        }
    }
    assert!(mapped > 100, "only {mapped} mappings ran");
    assert!(over.is_empty(), "over the {BUDGET:?} budget:\n{}", over.join("\n"));
}
