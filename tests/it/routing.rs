//! The connector-level endpoint `POST /v1/webhooks/<connector>`: one provider app signs
//! for many accounts with its client secret (from configuration), and each event finds
//! its account through the connector's routing key. Also: secrets that expire.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use switchyard_core::config::{ConfiguredSecret, ConnectorSettings};
use switchyard_core::secret::Secret;
use switchyard_tests::{shared, wait_until};

use crate::pipeline::{config_for, hubspot_v3_headers, Pipeline, Receiver};

const APP_SECRET: &str = "hubspot-app-client-secret";

fn item(id: u64, portal: u64) -> Value {
    json!({"eventId": id, "subscriptionId": 7, "portalId": portal, "appId": 1, "occurredAt": 1_700_000_000_000u64,
           "subscriptionType": "contact.creation", "attemptNumber": 0, "objectId": 100 + id})
}

/// A tenant with one endpoint at `url` and a HubSpot account for `portal`, with no
/// secret of its own (the app's secret verifies it).
async fn tenant_with_portal(p: &Pipeline, tenant: &str, portal: u64, url: &str) {
    let (s, b) = p
        .admin(
            Method::PUT,
            &format!("/v1/tenants/{tenant}"),
            Some(json!({"name": tenant})),
        )
        .await;
    assert!(s.is_success(), "{b}");
    let (s, b) = p
        .admin(
            Method::POST,
            &format!("/v1/tenants/{tenant}/endpoints"),
            Some(json!({"url": url, "event_types": ["*"]})),
        )
        .await;
    assert!(s.is_success(), "{b}");
    let (s, b) = p
        .admin(
            Method::PUT,
            &format!("/v1/accounts/{tenant}_hubspot"),
            Some(json!({"tenant_id": tenant, "connector": "hubspot", "external_id": portal.to_string()})),
        )
        .await;
    assert!(s.is_success(), "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routed_batch_reaches_each_portals_tenant_and_an_unknown_portal_is_dead_lettered() {
    let servers = shared().await;
    let mut config = config_for(&servers.nats, &servers.redis, &servers.s3, "routed");
    config.connectors.insert(
        "hubspot".into(),
        ConnectorSettings {
            secrets: vec![ConfiguredSecret::Plain(Secret::new(APP_SECRET))],
            public_keys: vec![],
            legacy_signatures: false,
        },
    );
    let p = Pipeline::start(config).await.unwrap();
    let (alpha, beta) = (Receiver::start().await, Receiver::start().await);
    tenant_with_portal(&p, "alpha", 62515, &alpha.url).await;
    tenant_with_portal(&p, "beta", 99001, &beta.url).await;

    let body = Value::Array(vec![item(1, 62515), item(2, 99001), item(3, 424242)]).to_string();
    let path = "/v1/webhooks/hubspot";
    let (status, _, answer) = p
        .post_webhook(path, &hubspot_v3_headers(&p, path, &body, APP_SECRET), &body)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["events"], 3);

    wait_until("one delivery each", Duration::from_secs(20), || async {
        !alpha.all().is_empty() && !beta.all().is_empty()
    })
    .await
    .unwrap();
    let data = |r: &Receiver| -> Value { serde_json::from_slice(&r.all()[0].body).unwrap() };
    assert_eq!(data(&alpha)["tenant_id"], "alpha");
    assert_eq!(data(&alpha)["account_id"], "alpha_hubspot");
    assert_eq!(data(&beta)["tenant_id"], "beta");

    // Portal 424242 has no account: stored, and dead-lettered where an operator sees it.
    let names = p.config.names();
    wait_until("the unknown portal's dead letter", Duration::from_secs(20), || async {
        p.stream_messages(&names.dead_letter_stream()).await == 1
    })
    .await
    .unwrap();
    let js = p.jetstream().await;
    let dlq = js.get_stream(names.dead_letter_stream()).await.unwrap();
    let letter = dlq
        .get_last_raw_message_by_subject(&names.dead_letter_subject("normalizer", "unknown_account"))
        .await
        .unwrap();
    let letter: Value = serde_json::from_slice(&letter.payload).unwrap();
    assert!(
        letter["detail"].as_str().unwrap_or_default().contains("424242"),
        "{letter}"
    );

    // The app secret is the only key: a request signed with anything else is refused.
    let (status, _, answer) = p
        .post_webhook(path, &hubspot_v3_headers(&p, path, &body, "not-the-secret"), &body)
        .await;
    assert_eq!(status, 401, "{answer}");

    // A verified event without the routing key is never refused (HubSpot would disable
    // the subscription): it is stored without an account, and dead-lettered.
    let raw_before = p.stream_messages(&names.raw_stream()).await;
    let mut no_portal = item(9, 1);
    no_portal.as_object_mut().unwrap().remove("portalId");
    let body = Value::Array(vec![no_portal]).to_string();
    let (status, _, answer) = p
        .post_webhook(path, &hubspot_v3_headers(&p, path, &body, APP_SECRET), &body)
        .await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("accepted")), "{answer}");
    assert_eq!(p.stream_messages(&names.raw_stream()).await, raw_before + 1);

    // A connector without a routing key, or without a configured secret, has no such
    // endpoint; both look like any unknown URL from outside.
    let (status, _, unrouted) = p.post_webhook("/v1/webhooks/shopify", &[], "{}").await;
    assert_eq!((status, unrouted["code"].as_str()), (404, Some("not_found")));
    let (status, _, unconfigured) = p.post_webhook("/v1/webhooks/slack", &[], "{}").await;
    assert_eq!(unconfigured, unrouted);
    assert_eq!(status, 404);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_secret_stops_verifying_while_its_successor_works() {
    let servers = shared().await;
    let p = Pipeline::start(config_for(&servers.nats, &servers.redis, &servers.s3, "expiry"))
        .await
        .unwrap();
    let receiver = Receiver::start().await;
    p.register("tenant_x", "portal_x", "hubspot", "unused", &receiver.url, &["*"])
        .await;
    // Rotation: the old secret expired a minute ago, the new one has no expiry.
    let expired = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    let expired = expired.format(&time::format_description::well_known::Rfc3339).unwrap();
    let (s, b) = p
        .admin(
            Method::PUT,
            "/v1/accounts/portal_x",
            Some(json!({"tenant_id": "tenant_x", "connector": "hubspot",
                        "signing_secrets": [{"secret": "old-secret", "expires_at": expired}, "new-secret"]})),
        )
        .await;
    assert!(s.is_success(), "{b}");
    // The API shows expiries, never values.
    assert!(!b.to_string().contains("new-secret"), "{b}");
    assert_eq!(b["signing_secrets"].as_array().map(Vec::len), Some(2), "{b}");

    let path = "/v1/webhooks/hubspot/portal_x";
    let body = Value::Array(vec![item(1, 5)]).to_string();
    let (status, _, answer) = p
        .post_webhook(path, &hubspot_v3_headers(&p, path, &body, "old-secret"), &body)
        .await;
    assert_eq!(status, 401, "{answer}");
    let (status, _, answer) = p
        .post_webhook(path, &hubspot_v3_headers(&p, path, &body, "new-secret"), &body)
        .await;
    assert_eq!(status, 200, "{answer}");
    p.stop().await;
}

/// HubSpot's v1 scheme signs no timestamp: dropping the v3 header of a captured request
/// must not get an old request accepted through it, unless the operator opted in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_scheme_without_a_timestamp_is_refused_unless_opted_in() {
    use sha2::Digest;
    let servers = shared().await;
    let body = Value::Array(vec![item(77, 31337)]).to_string();
    // v1: hex SHA-256 of client secret + body (https://legacydocs.hubspot.com/docs/faq/v1-request-validation).
    let v1 = hex::encode(sha2::Sha256::digest(format!("{APP_SECRET}{body}").as_bytes()));
    let headers = vec![
        ("X-HubSpot-Signature".to_string(), v1),
        ("X-HubSpot-Signature-Version".to_string(), "v1".to_string()),
    ];
    for (legacy, expected) in [(false, 401), (true, 200)] {
        let mut config = config_for(&servers.nats, &servers.redis, &servers.s3, "legacy");
        config.connectors.insert(
            "hubspot".into(),
            ConnectorSettings {
                secrets: vec![ConfiguredSecret::Plain(Secret::new(APP_SECRET))],
                public_keys: vec![],
                legacy_signatures: legacy,
            },
        );
        let p = Pipeline::start(config).await.unwrap();
        let (status, _, answer) = p.post_webhook("/v1/webhooks/hubspot", &headers, &body).await;
        assert_eq!(status, expected, "legacy_signatures = {legacy}: {answer}");
        p.stop().await;
    }
}
