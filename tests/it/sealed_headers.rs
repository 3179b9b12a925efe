//! Endpoints' custom headers (where tenants put their receivers' credentials) are sealed
//! in Redis like signing secrets, deliveries still carry them, and endpoints stored
//! before headers were sealed still read, and are sealed on their next write.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use switchyard_core::envelope::{HEADER_EVENT_TYPE, HEADER_TENANT};
use switchyard_tests::{shared, unique_prefix, wait_until};

use crate::pipeline::{config_for, Pipeline, Receiver};

const CREDENTIAL: &str = "Bearer rcv-credential-4f1c9e2b";
const LEGACY: &str = "legacy-plaintext-7d3a";

async fn raw_endpoint(p: &Pipeline, tenant: &str, id: &str) -> String {
    let key = p.config.names().redis_key(&format!("endpoints:{tenant}"));
    let client = redis::Client::open(p.config.redis.url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("HGET")
        .arg(&key)
        .arg(id)
        .query_async::<Option<String>>(&mut c)
        .await
        .unwrap()
        .expect("the endpoint is stored")
}

async fn set_raw_endpoint(p: &Pipeline, tenant: &str, id: &str, raw: &str) {
    let key = p.config.names().redis_key(&format!("endpoints:{tenant}"));
    let client = redis::Client::open(p.config.redis.url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("HSET")
        .arg(&key)
        .arg(id)
        .arg(raw)
        .query_async::<i64>(&mut c)
        .await
        .unwrap();
}

async fn publish(p: &Pipeline, tenant: &str) -> String {
    let js = p.jetstream().await;
    let id = format!("evt_{}", unique_prefix("hdr"));
    let event = json!({
        "id": id, "type": "payments.charge.succeeded", "tenant_id": tenant,
        "account_id": "acct_1", "connector": "stripe", "occurred_at": "2026-11-23T00:00:00Z",
        "received_at": "2026-11-23T00:00:00Z", "data": {},
    });
    let mut h = async_nats::HeaderMap::new();
    h.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
    h.insert(HEADER_EVENT_TYPE, "payments.charge.succeeded");
    h.insert(HEADER_TENANT, tenant);
    js.publish_with_headers(
        p.config.names().unified_subject(tenant),
        h,
        serde_json::to_vec(&event).unwrap().into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_headers_are_sealed_at_rest_and_still_sent() {
    let s = shared().await;
    let p = Pipeline::start(config_for(&s.nats, &s.redis, &s.s3, "sealhdr"))
        .await
        .unwrap();
    let receiver = Receiver::start().await;
    let (st, b) = p
        .admin(Method::PUT, "/v1/tenants/t-hdr", Some(json!({"name": "H"})))
        .await;
    assert!(st.is_success(), "{b}");
    let (st, b) = p
        .admin(
            Method::POST,
            "/v1/tenants/t-hdr/endpoints",
            Some(json!({"url": receiver.url, "event_types": ["*"],
                        "headers": {"Authorization": CREDENTIAL, "X-Plain": "visible"}})),
        )
        .await;
    assert_eq!(st.as_u16(), 201, "{b}");
    let id = b["id"].as_str().unwrap().to_string();

    // At rest: neither value is in Redis; the names are.
    let raw = raw_endpoint(&p, "t-hdr", &id).await;
    assert!(!raw.contains(CREDENTIAL) && !raw.contains("rcv-credential"), "{raw}");
    assert!(!raw.contains("visible"), "{raw}");
    let stored: Value = serde_json::from_str(&raw).unwrap();
    assert!(stored["sealed_headers"]["authorization"].is_string(), "{raw}");

    // The API still shows them, and deliveries carry them.
    let (_, view) = p
        .admin(Method::GET, &format!("/v1/tenants/t-hdr/endpoints/{id}"), None)
        .await;
    assert_eq!(view["headers"]["authorization"], CREDENTIAL, "{view}");
    let evt = publish(&p, "t-hdr").await;
    wait_until("the event to be delivered", Duration::from_secs(30), || async {
        !receiver.with_id(&evt).is_empty()
    })
    .await
    .unwrap();
    let got = &receiver.with_id(&evt)[0];
    assert_eq!(got.headers["authorization"], CREDENTIAL);
    assert_eq!(got.headers["x-plain"], "visible");

    // A record stored before headers were sealed (plaintext `headers`) still reads...
    let mut legacy = stored.clone();
    legacy.as_object_mut().unwrap().remove("sealed_headers");
    legacy["headers"] = json!({"x-api-key": LEGACY});
    set_raw_endpoint(&p, "t-hdr", &id, &legacy.to_string()).await;
    let (st, view) = p
        .admin(Method::GET, &format!("/v1/tenants/t-hdr/endpoints/{id}"), None)
        .await;
    assert!(st.is_success(), "{view}");
    assert_eq!(view["headers"], json!({"x-api-key": LEGACY}), "{view}");
    // ...and its next write seals it.
    let (st, b) = p
        .admin(
            Method::PATCH,
            &format!("/v1/tenants/t-hdr/endpoints/{id}"),
            Some(json!({"description": "re-saved"})),
        )
        .await;
    assert!(st.is_success(), "{b}");
    let raw = raw_endpoint(&p, "t-hdr", &id).await;
    assert!(!raw.contains(LEGACY), "{raw}");
    let evt = publish(&p, "t-hdr").await;
    wait_until(
        "the event after the re-save to be delivered",
        Duration::from_secs(30),
        || async { !receiver.with_id(&evt).is_empty() },
    )
    .await
    .unwrap();
    assert_eq!(receiver.with_id(&evt)[0].headers["x-api-key"], LEGACY);
    p.stop().await;
}
