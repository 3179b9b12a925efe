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
