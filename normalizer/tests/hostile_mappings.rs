//! Hostile bodies and mappings through the normalizer's mapping path ([`normalize`]), with
//! the production limits: each must end as a failure with a reason — a dead letter —
//! within a bound of the time limit, and the process must live on. One test runs them
//! in turn, so the elapsed times are the cases' own.
//!
//! The bound on time is not a speed target: the engine stops at its time limit (at the
//! end of a step), and for an expression calling a builtin whose one step may run on
//! (`$pad`…) the caller stops waiting at [`Limits::deadline`] whatever the engine does;
//! the bound leaves room for a slow, shared machine.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use switchyard_connectors::catalog::Catalog;
use switchyard_connectors::extract::{extract, Unrecognized, UNRECOGNIZED_TYPE};
use switchyard_connectors::mapping::Limits;
use switchyard_connectors::signature::{verify, RawWebhook};
use switchyard_core::envelope::{ClaimRef, RawEnvelope};
use switchyard_normalizer::map::{normalize, Failure, Mapped};

/// A connector whose provider event types are the hostile cases: each one's mapping is
/// the expression under test. Ids and types come from the JSON body, as most providers'.
fn connector(event: &str, mappings: &[(&str, &str)]) -> Catalog {
    let mut text = format!(
        r#"name = "hostile"
title = "Hostile"
unmapped = "drop"
[signature]
scheme = "token"
header = "X-Token"
[event]
{event}
"#
    );
    for (provider_type, expr) in mappings {
        text.push_str(&format!(
            "[mappings.\"{provider_type}\"]\ntype = \"hostile.mapped\"\ndata = '''{expr}'''\n"
        ));
    }
    Catalog::from_sources(vec![(PathBuf::from("hostile.toml"), text)]).unwrap()
}

fn envelope(event_type: &str) -> RawEnvelope {
    RawEnvelope {
        connector: "hostile".into(),
        account_id: Some("acct".into()),
        tenant_id: Some("t".into()),
        external_account: None,
        event_id: "evt_1".into(),
        event_type: event_type.into(),
        item: None,
        occurred_at: None,
        received_ms: 1_700_000_000_000,
        claim: ClaimRef {
            key: "k".into(),
            offset: 0,
            len: 0,
        },
        content_type: "application/json".into(),
    }
}

/// `[[[…1…]]]`, `depth` deep.
fn nested_body(depth: usize) -> Vec<u8> {
    let mut body = vec![b'['; depth];
    body.push(b'1');
    body.extend(std::iter::repeat_n(b']', depth));
    body
}

/// Normalize, returning the failure and how long it took.
/// The failure's dead-letter reason as the wire names it (`engine_busy`: none, retried).
fn reason_of(f: &Failure) -> &'static str {
    f.reason().map(|r| r.as_str()).unwrap_or("engine_busy")
}

fn fail(catalog: &Catalog, event_type: &str, body: &[u8], limits: Limits) -> (Failure, Duration) {
    let started = Instant::now();
    let out = normalize(catalog.get("hostile").unwrap(), &envelope(event_type), body, limits);
    let took = started.elapsed();
    match out {
        Err(f) => (f, took),
        Ok(Mapped::Event(e)) => panic!("{event_type}: mapped to {} bytes of data", e.data.to_string().len()),
        Ok(Mapped::Many(events)) => panic!("{event_type}: mapped to {} events", events.len()),
        Ok(Mapped::Dropped) => panic!("{event_type}: dropped"),
    }
}

#[test]
fn hostile_bodies_and_mappings_end_as_dead_letters_within_the_limit() {
    let limits = Limits::default();
    let bound = limits.deadline() * 4;
    let cases: &[(&str, &str, &str, &[&str])] = &[
        // (provider type, mapping, expected reason, any of these in the detail)
        (
            "tail_recursion",
            "($f := function($x) { $f($x + 1) }; $f(0))",
            "mapping_error",
            &["D1012", "D1011"],
        ),
        (
            "deep_recursion",
            "($f := function($x) { $x + $f($x + 1) }; $f(0))",
            "mapping_error",
            &["D1011", "D1012"],
        ),
        // Rust's regex engine has no backtracking: linear in the text, no match here.
        (
            "catastrophic_regex",
            r#"$match("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!", /(a+)+$/)"#,
            "mapping_empty",
            &["produced nothing"],
        ),
        (
            "catastrophic_regex_long",
            r#"$match($pad("", 100000, "a") & "!", /(a+)+$/)"#,
            "mapping_empty",
            &["produced nothing"],
        ),
        ("ten_million_range", "[1..10000000]", "mapping_error", &["D2015"]),
        (
            "ten_million_count",
            "$count([1..10000000])",
            "mapping_error",
            &["D2015"],
        ),
        // Stopped by the time limit, or (faster machines) by the result size bound.
        (
            "huge_join",
            r#"$join([1..1000000].$string($), "")"#,
            "mapping_error",
            &["D1012", "larger than"],
        ),
        (
            "repeated_pad",
            r#"$join([1..100000].$pad("", 10000, "x"), "")"#,
            "mapping_error",
            &["D1012", "larger than"],
        ),
        (
            "doubling_string",
            r#"($f := function($s, $n) { $n = 0 ? $s : $f($s & $s, $n - 1) }; $f("a", 40))"#,
            "mapping_error",
            &["D1012", "larger than"],
        ),
        (
            "deep_result",
            r#"$reduce([1..100000], function($acc, $x) { {"a": $acc} }, {})"#,
            "mapping_error",
            &["nested deeper", "D1012"],
        ),
    ];
    let mappings: Vec<(&str, &str)> = cases.iter().map(|(t, e, _, _)| (*t, *e)).collect();
    let catalog = connector(
        r#"id = { json = "id" }
type = { json = "type" }"#,
        &mappings,
    );
    let mut report = Vec::new();

    // A body nested 100,000 deep: serde_json's recursion limit refuses it at parse, so
    // it is a malformed body, never a stack overflow.
    let (f, took) = fail(&catalog, "tail_recursion", &nested_body(100_000), limits);
    assert_eq!(reason_of(&f), "malformed_body", "{f:?}");
    assert!(took < bound, "deep body took {took:?}");
    report.push(format!("deep_body: {} in {took:?}", reason_of(&f)));

    for (provider_type, _, reason, details) in cases {
        let (f, took) = fail(&catalog, provider_type, br#"{"id": "evt_1"}"#, limits);
        assert_eq!(reason_of(&f), *reason, "{provider_type}: {f:?}");
        assert!(details.iter().any(|d| f.detail().contains(d)), "{provider_type}: {f:?}");
        assert!(took < bound, "{provider_type} took {took:?} (bound {bound:?})");
        // Only the time limit is tried again before the dead letter.
        assert_eq!(
            f.is_time_limit(),
            f.detail().contains("D1012"),
            "{provider_type}: {f:?}"
        );
        report.push(format!(
            "{provider_type}: {} ({}) in {took:?}",
            reason_of(&f),
            f.detail()
        ));
    }

    // Memory is bounded by the same limits: sequences by their length, strings by what
    // the machine can build before the time limit, results by their size.
    if let Some(peak) = peak_memory_bytes() {
        report.push(format!("peak memory so far: {} MiB", peak >> 20));
        assert!(peak < 2 << 30, "the process peaked at {} MiB", peak >> 20);
    }

    // One step of the engine cannot be interrupted: a single `$pad` to 200 million
    // characters. The caller stops waiting at the deadline (the event is dead-lettered)
    // and the evaluation's thread finishes the step on its own, then ends.
    let pad = connector(
        r#"id = { json = "id" }
type = { json = "type" }"#,
        &[("one_huge_pad", r#"$pad("", 200000000)"#)],
    );
    let (f, took) = fail(&pad, "one_huge_pad", br#"{"id": "evt_1"}"#, limits);
    assert_eq!(reason_of(&f), "mapping_error", "{f:?}");
    assert!(
        f.detail().contains("abandoned") || f.detail().contains("larger than") || f.detail().contains("D1012"),
        "{f:?}"
    );
    assert!(took < bound, "one_huge_pad took {took:?}");
    report.push(format!("one_huge_pad: {} ({}) in {took:?}", reason_of(&f), f.detail()));

    println!("{}", report.join("\n"));
}

/// The process's peak resident memory, where Linux tells it.
fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// What the ingress does with the same 100,000-deep body: a connector that reads ids
/// from the body keeps it as one unrecognized event (never a 400: it is verified); one that reads them from
/// headers stores the bytes untouched, and the normalizer dead-letters it as above.
#[test]
fn a_deeply_nested_body_is_refused_or_stored_as_bytes_at_the_ingress() {
    let body = Bytes::from(nested_body(100_000));
    let request = || {
        let mut headers = HeaderMap::new();
        headers.insert("x-token", HeaderValue::from_static("secret"));
        headers.insert("x-event-id", HeaderValue::from_static("evt_1"));
        headers.insert("x-event-type", HeaderValue::from_static("thing"));
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        RawWebhook {
            method: http::Method::POST,
            url: "https://hooks.example.com/v1/webhooks/hostile/acct".into(),
            headers,
            body: body.clone(),
        }
    };
    let from_json = connector("id = { json = \"id\" }\ntype = { json = \"type\" }", &[]);
    let c = from_json.get("hostile").unwrap();
    let verified = verify(&c.signature, request(), &["secret"], 1_700_000_000).unwrap();
    // Verified, so kept: one event of the body, `<connector>.unrecognized`.
    let kept = extract(&c.event, &verified);
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].unrecognized, Some(Unrecognized::NotJson));
    assert_eq!(kept[0].event_type, UNRECOGNIZED_TYPE);

    let from_headers = connector(
        "id = { header = \"X-Event-Id\" }\ntype = { header = \"X-Event-Type\" }",
        &[],
    );
    let c = from_headers.get("hostile").unwrap();
    let verified = verify(&c.signature, request(), &["secret"], 1_700_000_000).unwrap();
    let events = extract(&c.event, &verified);
    assert_eq!(events.len(), 1);
    assert_eq!(verified.body(), &body);
}
