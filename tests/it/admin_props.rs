//! Property tests of the admin API's request bodies, on the dispatcher's real listener
//! with Redis and NATS behind it: the create and update routes of tenants, endpoints
//! and accounts, sent any bytes, any JSON, or a valid body with one field replaced,
//! dropped or added, under any content type, at any id in the path. Every answer is a
//! success or a 4xx with a short `{"error", "code"}` body (whatever the request
//! quoted): never a 5xx, never a dropped connection.

use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use reqwest::Method;
use serde_json::{json, Map, Value};
use switchyard_tests::{proptest_cases, shared};

use crate::pipeline::{config_for, Pipeline, ADMIN_TOKEN};

/// Longest error body accepted as short: a sentence or two, and a field name (the API
/// cuts what it quotes of a request).
const SHORT: usize = 1_200;

/// The routes that take a body, each with a valid body to start from (`{id}` is
/// replaced by the id in the path).
fn routes(endpoint: &str) -> Vec<(Method, String, Value)> {
    let url = "http://127.0.0.1:9/hook";
    vec![
        (Method::PUT, "/v1/tenants/{id}".into(), json!({"name": "Props"})),
        (
            Method::POST,
            "/v1/tenants/{id}/endpoints".into(),
            json!({"url": url, "event_types": ["payments.*"], "filter": "data.amount > 1",
                   "headers": {"X-Team": "a"}, "rate_limit": 5, "max_in_flight": 2, "description": "d"}),
        ),
        (
            Method::PATCH,
            format!("/v1/tenants/{{id}}/endpoints/{endpoint}"),
            json!({"url": url, "enabled": false, "filter": null, "rate_limit": null}),
        ),
        (
            Method::PUT,
            "/v1/accounts/{id}".into(),
            json!({"tenant_id": "t-props", "connector": "stripe", "external_id": "x1",
                   "signing_secrets": ["s3cr3t", {"secret": "old", "expires_at": "2030-01-01T00:00:00Z"}]}),
        ),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        (1usize..5000).prop_map(|n| Value::from("é".repeat(n))),
        prop::sample::select(vec![
            "http://10.0.0.1/x",
            "http://[::1]:9/x",
            "ftp://127.0.0.1/",
            "*",
            "a.b",
            ""
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(any::<String>(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// How the valid body is changed, or what is sent instead.
#[derive(Debug, Clone)]
enum Body {
    Bytes(Vec<u8>),
    Json(Value),
    Replace(prop::sample::Index, Value),
    Drop(prop::sample::Index),
    Add(String, Value),
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..400).prop_map(Body::Bytes),
        1 => json_value().prop_map(Body::Json),
        3 => (any::<prop::sample::Index>(), json_value()).prop_map(|(i, v)| Body::Replace(i, v)),
        1 => any::<prop::sample::Index>().prop_map(Body::Drop),
        1 => (prop_oneof![any::<String>(), "[a-z_]{1,12}"], json_value()).prop_map(|(k, v)| Body::Add(k, v)),
    ]
}

fn render(valid: &Value, body: &Body) -> Vec<u8> {
    let fields = || valid.as_object().cloned().unwrap_or_default();
    let key = |fields: &Map<String, Value>, i: &prop::sample::Index| fields.keys().nth(i.index(fields.len())).cloned();
    let value = match body {
        Body::Bytes(b) => return b.clone(),
        Body::Json(v) => v.clone(),
        Body::Replace(i, v) => {
            let mut f = fields();
            f.insert(key(&f, i).unwrap_or_default(), v.clone());
            Value::Object(f)
        }
        Body::Drop(i) => {
            let mut f = fields();
            f.remove(&key(&f, i).unwrap_or_default());
            Value::Object(f)
        }
        Body::Add(k, v) => {
            let mut f = fields();
            f.insert(k.clone(), v.clone());
            Value::Object(f)
        }
    };
    serde_json::to_vec(&value).unwrap()
}

/// An id for the path: the valid one, or any text (percent-encoded).
fn path_id() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => Just(None),
        1 => any::<String>().prop_map(|s| Some(url::form_urlencoded::byte_serialize(s.as_bytes()).collect())),
    ]
}

fn content_type() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        4 => Just(Some("application/json")),
        1 => prop::sample::select(vec![None, Some("text/plain"), Some("application/json; charset=utf-8"), Some("application/x+json")]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_bodies_are_answered_with_a_success_or_a_short_4xx() {
    let servers = shared().await;
    let p = Pipeline::start(config_for(&servers.nats, &servers.redis, &servers.s3, "admin-props"))
        .await
        .unwrap();
    let (s, b) = p
        .admin(Method::PUT, "/v1/tenants/t-props", Some(json!({"name": "P"})))
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = p
        .admin(
            Method::POST,
            "/v1/tenants/t-props/endpoints",
            Some(json!({"url": "http://127.0.0.1:9/hook", "event_types": ["*"]})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let routes = routes(b["id"].as_str().unwrap());
    let valid_ids = ["t-props", "t-props", "t-props", "acc-props"];

    let strategy = (0..routes.len(), path_id(), body(), content_type());
    let mut runner = TestRunner::new(ProptestConfig {
        cases: proptest_cases(96),
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let handle = tokio::runtime::Handle::current();
    let result = tokio::task::block_in_place(|| {
        runner
            .run(&strategy, |(route, id, body, ct)| {
                let (method, path, valid) = &routes[route];
                let path = path.replace("{id}", id.as_deref().unwrap_or(valid_ids[route]));
                let bytes = render(valid, &body);
                let mut req = p
                    .http
                    .request(method.clone(), format!("http://{}{path}", p.admin))
                    .bearer_auth(ADMIN_TOKEN)
                    .body(bytes);
                if let Some(ct) = ct {
                    req = req.header("content-type", ct);
                }
                handle.block_on(async {
                    let resp = req
                        .send()
                        .await
                        .map_err(|e| TestCaseError::fail(format!("{path}: {e}")))?;
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    prop_assert!(status.as_u16() < 500, "{method} {path}: {status} {text}");
                    if status.is_client_error() {
                        let v: Value = serde_json::from_str(&text)
                            .map_err(|_| TestCaseError::fail(format!("not JSON: {text}")))?;
                        prop_assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{text}");
                        prop_assert!(v["code"].is_string(), "{text}");
                        prop_assert!(text.len() <= SHORT, "{method} {path}: {} bytes: {text}", text.len());
                    }
                    Ok(())
                })
            })
            .map_err(|e| e.to_string())
    });
    p.shutdown.cancel();
    if let Err(e) = result {
        panic!("{e}");
    }
}
