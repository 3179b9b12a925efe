//! A request carrying several events (HubSpot's array): each becomes its own event with
//! its own idempotency key, the body is stored once, and a retried batch publishes
//! nothing twice.

use std::time::Duration;

use serde_json::{json, Value};
use switchyard_claimcheck::read_segment;
use switchyard_tests::{shared, wait_until};

use crate::pipeline::{config_for, hubspot_v3_headers, Pipeline, Receiver};

const SECRET: &str = "hubspot-client-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hubspot_batch_becomes_one_event_per_item_with_one_stored_body() {
    let servers = shared().await;
    let p = Pipeline::start(config_for(&servers.nats, &servers.redis, &servers.s3, "batch"))
        .await
        .unwrap();
    let receiver = Receiver::start().await;
    p.register("tenant_h", "portal_1", "hubspot", SECRET, &receiver.url, &["*"])
        .await;
    let item = |id: u64, kind: &str| {
        json!({"eventId": id, "subscriptionId": 7, "portalId": 62515, "appId": 1160452, "occurredAt": 1_700_000_000_000u64,
               "subscriptionType": kind, "attemptNumber": 0, "objectId": 123 + id, "changeSource": "CRM", "changeFlag": "NEW"})
    };
    let body = Value::Array(vec![
        item(1, "contact.creation"),
        item(2, "company.creation"),
        item(3, "deal.creation"),
    ])
    .to_string();
    let path = "/v1/webhooks/hubspot/portal_1";
    let (status, _, answer) = p
        .post_webhook(path, &hubspot_v3_headers(&p, path, &body, SECRET), &body)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["events"], 3);

    wait_until("three deliveries", Duration::from_secs(20), || async {
        receiver.all().len() >= 3
    })
    .await
    .unwrap();
    let mut types: Vec<String> = receiver
        .all()
        .iter()
        .map(|d| {
            serde_json::from_slice::<Value>(&d.body).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    types.sort();
    assert_eq!(
        types,
        ["crm.company.created", "crm.contact.created", "crm.deal.created"]
    );

    // One stored record for the three events.
    let store = p.claim_store().await;
    let keys = store.list("raw/", 10).await.unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let records = read_segment(&keys[0], &store.get(&keys[0]).await.unwrap()).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].header.event_ids, ["1", "2", "3"]);
    assert_eq!(records[0].body, body.as_bytes());

    // HubSpot retries the same batch: answered 200, nothing published again.
    let (status, _, answer) = p
        .post_webhook(path, &hubspot_v3_headers(&p, path, &body, SECRET), &body)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "duplicate");
    assert_eq!(p.stream_messages(&p.config.names().raw_stream()).await, 3);
    p.stop().await;
}

/// A Copper notification names several records (up to 30): each becomes its own
/// unified event, with an id of its own, from one stored body and one raw event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copper_notification_naming_three_records_is_three_unified_events() {
    const TOKEN: &str = "copper-webhook-token";
    let servers = shared().await;
    let p = Pipeline::start(config_for(&servers.nats, &servers.redis, &servers.s3, "many"))
        .await
        .unwrap();
    let receiver = Receiver::start().await;
    p.register("tenant_c", "copper_1", "copper", TOKEN, &receiver.url, &["crm.*"])
        .await;
    let body =
        json!({"ids": [13358412, 13358413, 13358414], "type": "company", "event": "new", "subscription_id": 17066})
            .to_string();
    let headers = [("X-Webhook-Token".to_string(), TOKEN.to_string())];
    let (status, _, answer) = p.post_webhook("/v1/webhooks/copper/copper_1", &headers, &body).await;
    assert_eq!(status, 200, "{answer}");

    wait_until("three deliveries", Duration::from_secs(20), || async {
        receiver.all().len() >= 3
    })
    .await
    .unwrap();
    let events: Vec<Value> = receiver
        .all()
        .iter()
        .map(|d| serde_json::from_slice(&d.body).unwrap())
        .collect();
    let mut companies: Vec<&str> = events
        .iter()
        .map(|e| {
            assert_eq!(e["type"], "crm.company.created", "{e}");
            e["data"]["company"]["id"].as_str().unwrap()
        })
        .collect();
    companies.sort();
    assert_eq!(companies, ["13358412", "13358413", "13358414"]);
    let mut ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "{events:?}");
    assert_eq!(p.stream_messages(&p.config.names().raw_stream()).await, 1);
    assert_eq!(p.stream_messages(&p.config.names().unified_stream()).await, 3);
    let counted = p
        .metric(
            p.normalizer_ops,
            "switchyard_normalizer_events_total{connector=\"copper\",type=\"crm.company.created\"}",
        )
        .await;
    assert_eq!(counted, Some(3.0));
    p.stop().await;
}
