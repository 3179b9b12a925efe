//! Delivery on real servers, with real receivers on loopback: a healthy endpoint beside
//! a flaky one, one that hangs, one that rate-limits with `Retry-After`, one that is
//! gone; retries on the schedule; dead letters after the last attempt; the circuit
//! breaker; content filters; signatures checked with the official Standard Webhooks
//! library, across a secret rotation.
//!
//! Unified events are published straight to the unified stream, as the normalizer
//! would: these tests are about the dispatcher.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use bytes::Bytes;
use reqwest::Method;
use serde_json::{json, Value};
use switchyard_core::envelope::{DeadLetter, HEADER_EVENT_TYPE, HEADER_RECEIVED_MS, HEADER_TENANT};
use switchyard_tests::{shared, wait_until};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::pipeline::{config_for, Pipeline};

/// One request a scripted receiver got.
#[derive(Debug, Clone)]
struct Hit {
    route: String,
    id: String,
    at: Instant,
    headers: HeaderMap,
    body: Bytes,
    answered: u16,
}

/// A receiver whose routes behave as their names say:
/// `ok` 200; `flaky` 500 on an id's first request, then 200; `limited` 429 with
/// `Retry-After: 1` first, then 200; `gone` 410; `fail` 500 until `healed`, then 200;
/// `hang` never answers until `release` fires.
#[derive(Clone)]
struct Scripted {
    hits: Arc<Mutex<Vec<Hit>>>,
    healed: Arc<std::sync::atomic::AtomicBool>,
    release: CancellationToken,
    base: String,
}

impl Scripted {
    async fn start() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let me = Self {
            hits: Arc::default(),
            healed: Arc::default(),
            release: CancellationToken::new(),
            base: format!("http://{}", l.local_addr().unwrap()),
        };
        let app = axum::Router::new()
            .route("/{route}", axum::routing::post(answer))
            .with_state(me.clone());
        tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        me
    }

    fn url(&self, route: &str) -> String {
        format!("{}/{route}", self.base)
    }

    fn hits(&self, route: &str) -> Vec<Hit> {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.route == route)
            .cloned()
            .collect()
    }

    /// Distinct ids answered 2xx on `route`.
    fn delivered(&self, route: &str) -> usize {
        let mut ids: Vec<String> = self
            .hits(route)
            .into_iter()
            .filter(|h| h.answered < 300)
            .map(|h| h.id)
            .collect();
        ids.sort();
        ids.dedup();
        ids.len()
    }
}

async fn answer(
    State(s): State<Scripted>,
    UrlPath(route): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let seen_before = s.hits.lock().unwrap().iter().any(|h| h.route == route && h.id == id);
    let (status, retry_after) = match route.as_str() {
        "flaky" if !seen_before => (500, None),
        "limited" if !seen_before => (429, Some("1")),
        "gone" => (410, None),
        "fail" if !s.healed.load(std::sync::atomic::Ordering::SeqCst) => (500, None),
        "hang" => {
            s.release.cancelled().await;
            (503, None)
        }
        _ => (200, None),
    };
    s.hits.lock().unwrap().push(Hit {
        route,
        id,
        at: Instant::now(),
        headers,
        body,
        answered: status,
    });
    let mut resp = (StatusCode::from_u16(status).unwrap(), "{\"ok\":true}").into_response();
    if let Some(v) = retry_after {
        resp.headers_mut().insert("retry-after", v.parse().unwrap());
    }
    resp
}

async fn tenant(p: &Pipeline, id: &str) {
    let (s, b) = p
        .admin(Method::PUT, &format!("/v1/tenants/{id}"), Some(json!({"name": "T"})))
        .await;
    assert!(s.is_success(), "{b}");
}

/// Create an endpoint; `(id, secret)`.
async fn endpoint(p: &Pipeline, tenant: &str, body: Value) -> (String, String) {
    let (s, b) = p
        .admin(Method::POST, &format!("/v1/tenants/{tenant}/endpoints"), Some(body))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    (
        b["id"].as_str().unwrap().to_string(),
        b["secret"].as_str().unwrap().to_string(),
    )
}

/// Publish a unified event for `tenant` as the normalizer would; its id.
async fn publish(p: &Pipeline, tenant: &str, event_type: &str, n: usize, data: Value) -> String {
    let names = p.config.names();
    let js = p.jetstream().await;
    let id = format!("evt_{}_{n}", switchyard_tests::unique_prefix("d"));
    let event = json!({
        "id": id, "type": event_type, "tenant_id": tenant, "account_id": "acct_1",
        "connector": "stripe", "occurred_at": "2026-11-23T00:00:00Z",
        "received_at": "2026-11-23T00:00:00Z", "data": data,
    });
    let mut h = async_nats::HeaderMap::new();
    h.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
    h.insert(HEADER_EVENT_TYPE, event_type);
    h.insert(HEADER_TENANT, tenant);
    h.insert(
        HEADER_RECEIVED_MS,
        switchyard_core::timefmt::unix_millis(time::OffsetDateTime::now_utc())
            .to_string()
            .as_str(),
    );
    js.publish_with_headers(
        names.unified_subject(tenant),
        h,
        serde_json::to_vec(&event).unwrap().into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    id
}

/// Every dispatcher dead letter in the pipeline's stream.
async fn dead_letters(p: &Pipeline) -> Vec<DeadLetter> {
    let names = p.config.names();
    let js = p.jetstream().await;
    let mut stream = js.get_stream(names.dead_letter_stream()).await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    let prefix = format!("{}.dlq.dispatcher.", names.namespace());
    let mut out = Vec::new();
    for seq in state.first_sequence..=state.last_sequence {
        if let Ok(m) = stream.get_raw_message(seq).await {
            if m.subject.starts_with(&prefix) {
                out.push(serde_json::from_slice(&m.payload).unwrap());
            }
        }
    }
    out
}

async fn endpoint_view(p: &Pipeline, tenant: &str, id: &str) -> Value {
    let (s, b) = p
        .admin(Method::GET, &format!("/v1/tenants/{tenant}/endpoints"), None)
        .await;
    assert!(s.is_success(), "{b}");
    b["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

fn gap(hits: &[Hit], id: &str) -> Duration {
    let mut at: Vec<Instant> = hits.iter().filter(|h| h.id == id).map(|h| h.at).collect();
    at.sort();
    assert!(at.len() >= 2, "two attempts for {id}");
    at[1] - at[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_endpoint_lives_on_its_own() {
    let s = shared().await;
    let mut config = config_for(&s.nats, &s.redis, &s.s3, "isolate");
    // The hanging endpoint would hold a request for this long; the healthy one must
    // get everything well before.
    config.dispatcher.request_timeout_ms = 60_000;
    config.dispatcher.max_in_flight_per_endpoint = 4;
    let p = Pipeline::start(config).await.unwrap();
    let r = Scripted::start().await;
    tenant(&p, "t-iso").await;
    let mut ids = HashMap::new();
    for route in ["ok", "flaky", "limited", "gone", "hang"] {
        let (id, _) = endpoint(&p, "t-iso", json!({"url": r.url(route), "event_types": ["*"]})).await;
        ids.insert(route, id);
    }

    const N: usize = 30;
    let mut events = Vec::new();
    for n in 0..N {
        events.push(publish(&p, "t-iso", "payments.charge.succeeded", n, json!({"n": n})).await);
    }

    // The healthy endpoint gets every event while the hanging one still holds its lane.
    wait_until(
        "the healthy endpoint to get every event",
        Duration::from_secs(30),
        || async { r.delivered("ok") >= N },
    )
    .await
    .unwrap();
    assert!(r.hits("hang").is_empty(), "the hanging endpoint answered nothing yet");

    // Flaky: a 500, then delivered on the retry, after the first delay (200 ms).
    wait_until(
        "the flaky endpoint to get every event",
        Duration::from_secs(30),
        || async { r.delivered("flaky") >= N },
    )
    .await
    .unwrap();
    let flaky = r.hits("flaky");
    assert!(
        gap(&flaky, &events[0]) >= Duration::from_millis(190),
        "{:?}",
        gap(&flaky, &events[0])
    );

    // Limited: 429 with Retry-After: 1 is honoured (1 s, not the 200 ms of the schedule).
    wait_until(
        "the rate-limited endpoint to get every event",
        Duration::from_secs(30),
        || async { r.delivered("limited") >= N },
    )
    .await
    .unwrap();
    let limited = r.hits("limited");
    assert!(
        gap(&limited, &events[0]) >= Duration::from_millis(950),
        "{:?}",
        gap(&limited, &events[0])
    );

    // Gone: disabled at once; every delivery it was given is dead-lettered; it gets no
    // more; the tenant is told.
    let gone_id = ids["gone"].clone();
    wait_until("the gone endpoint to be disabled", Duration::from_secs(30), || async {
        endpoint_view(&p, "t-iso", &gone_id).await["enabled"] == false
    })
    .await
    .unwrap();
    assert!(!r.hits("gone").is_empty());
    let gone_dead = || async {
        dead_letters(&p)
            .await
            .into_iter()
            .filter(|d| d.endpoint_id.as_deref() == Some(gone_id.as_str()))
            .collect::<Vec<DeadLetter>>()
    };
    wait_until(
        "each delivery given to the gone endpoint to be dead-lettered",
        Duration::from_secs(30),
        || async { gone_dead().await.len() >= r.hits("gone").len() },
    )
    .await
    .unwrap();
    let gone_dls = gone_dead().await;
    assert!(gone_dls.iter().any(|d| d.reason == "endpoint_gone"));
    assert!(gone_dls
        .iter()
        .all(|d| d.reason == "endpoint_gone" || d.reason == "endpoint_disabled"));
    assert!(gone_dls.iter().all(|d| d.event.is_some() && d.event_type.is_some()));
    let calls_to_gone = r.hits("gone").len();
    let after = publish(&p, "t-iso", "payments.charge.succeeded", N, json!({})).await;
    wait_until(
        "an event after the disable to reach the healthy endpoint",
        Duration::from_secs(30),
        || async { r.hits("ok").iter().any(|h| h.id == after) },
    )
    .await
    .unwrap();
    assert_eq!(
        r.hits("gone").len(),
        calls_to_gone,
        "a disabled endpoint is not called again"
    );
    wait_until(
        "the tenant's other endpoints to hear of it",
        Duration::from_secs(30),
        || async {
            r.hits("ok")
                .iter()
                .any(|h| serde_json::from_slice::<Value>(&h.body).unwrap()["type"] == "switchyard.endpoint.disabled")
        },
    )
    .await
    .unwrap();

    // Each delivery of one event carried the same webhook-id on every attempt.
    assert_eq!(flaky.iter().filter(|h| h.id == events[0]).count(), 2);
    r.release.cancel();
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_are_dead_lettered_with_every_attempt() {
    let s = shared().await;
    let p = Pipeline::start(config_for(&s.nats, &s.redis, &s.s3, "exhaust"))
        .await
        .unwrap();
    let r = Scripted::start().await;
    tenant(&p, "t-ex").await;
    let (ep, _) = endpoint(
        &p,
        "t-ex",
        json!({"url": r.url("fail"), "event_types": ["payments.*.*"]}),
    )
    .await;
    let id = publish(&p, "t-ex", "payments.charge.failed", 0, json!({})).await;
    wait_until("the delivery to be dead-lettered", Duration::from_secs(30), || async {
        dead_letters(&p)
            .await
            .iter()
            .any(|d| d.event_id.as_deref() == Some(id.as_str()))
    })
    .await
    .unwrap();
    let dl = dead_letters(&p)
        .await
        .into_iter()
        .find(|d| d.event_id.as_deref() == Some(id.as_str()))
        .unwrap();
    assert_eq!(dl.reason, "retries_exhausted");
    assert_eq!(dl.endpoint_id.as_deref(), Some(ep.as_str()));
    assert_eq!(dl.tenant_id.as_deref(), Some("t-ex"));
    // The schedule [200, 400, 800] ms: four attempts in all, each recorded.
    assert_eq!(dl.attempts.len(), 4, "{:?}", dl.attempts);
    assert!(dl.attempts.iter().all(|a| a.status == Some(500)));
    let hits = r.hits("fail");
    assert_eq!(hits.len(), 4);
    let mut at: Vec<Instant> = hits.iter().map(|h| h.at).collect();
    at.sort();
    for (i, min_ms) in [200u64, 400, 800].iter().enumerate() {
        assert!(
            at[i + 1] - at[i] >= Duration::from_millis(min_ms - 10),
            "gap {i}: {:?}",
            at[i + 1] - at[i]
        );
    }
    assert_eq!(dl.event.as_ref().unwrap()["id"], id.as_str());

    // The dead letter shows on the dispatcher's gauge of what waits for an operator.
    let metrics_url = format!("http://{}/metrics", p.dispatcher_ops);
    wait_until(
        "the dead-letters gauge to count it",
        Duration::from_secs(20),
        || async {
            let text = p.http.get(&metrics_url).send().await.unwrap().text().await.unwrap();
            text.lines().any(|l| {
                l.starts_with("switchyard_dispatcher_dead_letters_pending_messages{stage=\"dispatcher\"}")
                    && l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) >= Some(1.0)
            })
        },
    )
    .await
    .unwrap();

    // The admin API shows the attempts.
    let (status, body) = p.admin(Method::GET, &format!("/v1/events/{id}/attempts"), None).await;
    if status.is_success() {
        assert_eq!(body["data"].as_array().map(|a| a.len()), Some(4), "{body}");
    }
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_is_disabled_and_the_tenant_told() {
    let s = shared().await;
    let mut config = config_for(&s.nats, &s.redis, &s.s3, "breaker");
    config.dispatcher.disable_after_failures = 3;
    config.dispatcher.retry_schedule_ms = vec![100; 10];
    let p = Pipeline::start(config).await.unwrap();
    let r = Scripted::start().await;
    tenant(&p, "t-br").await;
    let (bad, _) = endpoint(&p, "t-br", json!({"url": r.url("fail"), "event_types": ["crm.*.*"]})).await;
    endpoint(
        &p,
        "t-br",
        json!({"url": r.url("ok"), "event_types": ["switchyard.endpoint.disabled"]}),
    )
    .await;
    publish(&p, "t-br", "crm.contact.updated", 0, json!({})).await;
    wait_until(
        "the failing endpoint to be disabled",
        Duration::from_secs(30),
        || async { endpoint_view(&p, "t-br", &bad).await["enabled"] == false },
    )
    .await
    .unwrap();
    assert_eq!(r.hits("fail").len(), 3, "three failures in a row disable it");
    wait_until(
        "the tenant's other endpoint to be told",
        Duration::from_secs(30),
        || async {
            r.hits("ok").iter().any(|h| {
                let v: Value = serde_json::from_slice(&h.body).unwrap();
                v["type"] == "switchyard.endpoint.disabled" && v["data"]["endpoint_id"] == bad.as_str()
            })
        },
    )
    .await
    .unwrap();
    let dls = dead_letters(&p).await;
    assert!(dls
        .iter()
        .any(|d| d.reason == "endpoint_disabled" && d.endpoint_id.as_deref() == Some(bad.as_str())));
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_filters_choose_what_an_endpoint_gets() {
    let s = shared().await;
    let p = Pipeline::start(config_for(&s.nats, &s.redis, &s.s3, "filter"))
        .await
        .unwrap();
    let r = Scripted::start().await;
    tenant(&p, "t-fi").await;
    endpoint(
        &p,
        "t-fi",
        json!({"url": r.url("ok"), "event_types": ["*"], "filter": "data.amount > 10000 and connector = \"stripe\""}),
    )
    .await;
    let big = publish(&p, "t-fi", "payments.charge.succeeded", 0, json!({"amount": 20000})).await;
    let small = publish(&p, "t-fi", "payments.charge.succeeded", 1, json!({"amount": 5})).await;
    wait_until("the matching event to arrive", Duration::from_secs(20), || async {
        r.delivered("ok") >= 1
    })
    .await
    .unwrap();
    // The small one was fanned out at the same time and filtered: one marker event
    // published after it arriving proves it is not merely late.
    let later = publish(&p, "t-fi", "payments.charge.succeeded", 2, json!({"amount": 30000})).await;
    wait_until(
        "the later matching event to arrive",
        Duration::from_secs(20),
        || async { r.hits("ok").iter().any(|h| h.id == later) },
    )
    .await
    .unwrap();
    let got: Vec<String> = r.hits("ok").into_iter().map(|h| h.id).collect();
    assert!(got.contains(&big));
    assert!(!got.contains(&small), "filtered out");
    p.stop().await;
}

/// The official Python library (`standardwebhooks` on PyPI, installed by
/// deploy/local/install-deps) verifies a delivery with each of the given secrets.
fn verify_with_library(secrets: &[String], hit: &Hit) {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/python");
    assert!(
        lib.join("standardwebhooks").exists(),
        "the standardwebhooks library is missing from {}; run deploy/local/install-deps",
        lib.display()
    );
    let header = |n: &str| hit.headers.get(n).unwrap().to_str().unwrap().to_string();
    let script = r#"
import json, sys
from standardwebhooks import Webhook
args = json.loads(sys.stdin.read())
for secret in args["secrets"]:
    Webhook(secret).verify(args["body"].encode(), args["headers"])
print("verified")
"#;
    let input = json!({
        "secrets": secrets,
        "body": String::from_utf8(hit.body.to_vec()).unwrap(),
        "headers": {
            "webhook-id": header("webhook-id"),
            "webhook-timestamp": header("webhook-timestamp"),
            "webhook-signature": header("webhook-signature"),
        },
    });
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .env("PYTHONPATH", &lib)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("verified"),
        "the Standard Webhooks library refused the delivery: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_verify_with_the_standard_webhooks_library_across_a_rotation() {
    let s = shared().await;
    let p = Pipeline::start(config_for(&s.nats, &s.redis, &s.s3, "stdwh"))
        .await
        .unwrap();
    let r = Scripted::start().await;
    tenant(&p, "t-sw").await;
    let (ep, old) = endpoint(&p, "t-sw", json!({"url": r.url("ok"), "event_types": ["*"]})).await;
    let first = publish(&p, "t-sw", "crm.contact.created", 0, json!({"name": "Ada"})).await;
    wait_until("the first delivery", Duration::from_secs(20), || async {
        r.hits("ok").iter().any(|h| h.id == first)
    })
    .await
    .unwrap();
    let hit = r.hits("ok").into_iter().find(|h| h.id == first).unwrap();
    verify_with_library(std::slice::from_ref(&old), &hit);

    // Rotation: during the grace period deliveries verify with the old and the new secret.
    let (status, body) = p
        .admin(
            Method::POST,
            &format!("/v1/tenants/t-sw/endpoints/{ep}/rotate-secret"),
            Some(json!({})),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let new = body["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    let second = publish(&p, "t-sw", "crm.contact.created", 1, json!({"name": "Grace"})).await;
    wait_until("the delivery after the rotation", Duration::from_secs(20), || async {
        r.hits("ok").iter().any(|h| h.id == second)
    })
    .await
    .unwrap();
    let hit = r.hits("ok").into_iter().find(|h| h.id == second).unwrap();
    verify_with_library(&[old, new], &hit);
    assert_eq!(
        hit.headers["webhook-signature"].to_str().unwrap().split(' ').count(),
        2,
        "one signature per secret"
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_rate_limit_spreads_deliveries_over_time() {
    let s = shared().await;
    let p = Pipeline::start(config_for(&s.nats, &s.redis, &s.s3, "ratelimit"))
        .await
        .unwrap();
    let r = Scripted::start().await;
    tenant(&p, "t-rl").await;
    endpoint(
        &p,
        "t-rl",
        json!({"url": r.url("ok"), "event_types": ["*"], "rate_limit": 4}),
    )
    .await;
    const N: usize = 12;
    for n in 0..N {
        publish(&p, "t-rl", "crm.contact.updated", n, json!({})).await;
    }
    wait_until("every event to arrive", Duration::from_secs(60), || async {
        r.delivered("ok") >= N
    })
    .await
    .unwrap();
    // At most 4 requests per one-second window of the shared counter: any 9 requests
    // span more than one window boundary, so more than a second.
    let mut at: Vec<Instant> = r.hits("ok").iter().map(|h| h.at).collect();
    at.sort();
    for w in at.windows(9) {
        assert!(w[8] - w[0] > Duration::from_millis(950), "{:?}", w[8] - w[0]);
    }
    p.stop().await;
}
