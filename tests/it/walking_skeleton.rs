//! The walking skeleton, end to end on real NATS JetStream, Redis and SeaweedFS: a
//! Stripe-signed webhook arrives once, signed, at a tenant's endpoint.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use switchyard_core::envelope::RawEnvelope;
use switchyard_tests::{shared, wait_for, wait_until, Servers};

use crate::pipeline::{config_for, Pipeline, Receiver};

pub(crate) const STRIPE_SECRET: &str = "whsec_skeleton_test_secret";

pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Stripe's scheme, computed here independently of the connector engine.
pub(crate) fn stripe_signature(secret: &str, t: i64, body: &str) -> (String, String) {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let sig = hex::encode(mac.finalize().into_bytes());
    ("Stripe-Signature".into(), format!("t={t},v1={sig}"))
}

pub(crate) fn customer_created(id: &str) -> String {
    serde_json::json!({
        "id": id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": 1_700_000_000,
        "livemode": false,
        "type": "customer.created",
        "data": {"object": {
            "id": "cus_NffrFeUfNV2Hib", "object": "customer", "email": "jenny.rosen@example.com",
            "name": "Jenny Rosen", "phone": null, "currency": "usd", "created": 1_680_893_993,
            "metadata": {}
        }}
    })
    .to_string()
}

/// Standard Webhooks verification (the official library checks deliveries too, in
/// `delivery.rs`).
fn verify_standard_webhooks(secret: &str, d: &crate::pipeline::Delivery) -> bool {
    let h = |n: &str| d.headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    switchyard_webhooks::Key::from_secret(secret)
        .and_then(|k| {
            k.verify(
                &h("webhook-id"),
                &h("webhook-timestamp"),
                &d.body,
                &h("webhook-signature"),
            )
        })
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_stripe_webhook_is_delivered_once_signed_and_claim_checked() {
    let servers = shared().await;
    let p = Pipeline::start(config_for(&servers.nats, &servers.redis, &servers.s3, "e2e"))
        .await
        .unwrap();
    let receiver = Receiver::start().await;
    let endpoint_secret = p
        .register_stripe("tenant_a", "acct_a", STRIPE_SECRET, &receiver.url, &["payments.*.*"])
        .await;

    let body = customer_created("evt_skeleton_1");
    let sig = stripe_signature(STRIPE_SECRET, now(), &body);
    let (status, _, answer) = p
        .post_webhook("/v1/webhooks/stripe/acct_a", std::slice::from_ref(&sig), &body)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "accepted");

    let delivered = wait_for("the delivery", Duration::from_secs(20), || async {
        receiver.all().first().cloned()
    })
    .await
    .unwrap();
    assert!(
        verify_standard_webhooks(&endpoint_secret, &delivered),
        "signature must verify"
    );
    let event: Value = serde_json::from_slice(&delivered.body).unwrap();
    assert_eq!(event["type"], "payments.customer.created");
    assert_eq!(event["tenant_id"], "tenant_a");
    assert_eq!(event["account_id"], "acct_a");
    assert_eq!(event["connector"], "stripe");
    assert_eq!(event["data"]["customer"]["email"], "jenny.rosen@example.com");
    assert_eq!(event["occurred_at"], "2023-11-14T22:13:20.000Z");
    assert_eq!(event["schema_version"], 1);
    let webhook_id = delivered.headers["webhook-id"].to_str().unwrap().to_string();
    assert_eq!(event["id"], webhook_id.as_str());

    // The raw body is in S3, exactly, where the envelope says.
    let js = p.jetstream().await;
    let raw = js.get_stream(p.config.names().raw_stream()).await.unwrap();
    let msg = raw
        .get_last_raw_message_by_subject(&p.config.names().raw_subject("stripe"))
        .await
        .unwrap();
    let env: RawEnvelope = serde_json::from_slice(&msg.payload).unwrap();
    let stored = p.claim_store().await.get_claim(&env.claim).await.unwrap();
    assert_eq!(stored, body.as_bytes());
    assert!(env.claim.key.starts_with("raw/"));

    // The same event again: 2xx, recognised as a duplicate, never published again.
    let (status, _, answer) = p.post_webhook("/v1/webhooks/stripe/acct_a", &[sig], &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "duplicate");
    assert_eq!(p.stream_messages(&p.config.names().raw_stream()).await, 1);

    // A later, different event arrives; the first was still delivered only once.
    let body2 = customer_created("evt_skeleton_2");
    let (status, _, _) = p
        .post_webhook(
            "/v1/webhooks/stripe/acct_a",
            &[stripe_signature(STRIPE_SECRET, now(), &body2)],
            &body2,
        )
        .await;
    assert_eq!(status, 200);
    wait_until("the second delivery", Duration::from_secs(20), || async {
        receiver.all().len() >= 2
    })
    .await
    .unwrap();
    assert_eq!(receiver.with_id(&webhook_id).len(), 1);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signatures_get_401_and_store_nothing() {
    let servers = shared().await;
    let p = Pipeline::start(config_for(&servers.nats, &servers.redis, &servers.s3, "sig"))
        .await
        .unwrap();
    let receiver = Receiver::start().await;
    p.register_stripe("tenant_b", "acct_b", STRIPE_SECRET, &receiver.url, &["*"])
        .await;
    let body = customer_created("evt_bad_1");
    let t = now();
    let cases = [
        (
            "tampered body",
            stripe_signature(STRIPE_SECRET, t, &body),
            body.replace("Jenny", "Mallory"),
        ),
        (
            "wrong secret",
            stripe_signature("whsec_not_the_secret", t, &body),
            body.clone(),
        ),
        (
            "stale timestamp",
            stripe_signature(STRIPE_SECRET, t - 3600, &body),
            body.clone(),
        ),
    ];
    for (what, sig, sent) in cases {
        let (status, _, answer) = p.post_webhook("/v1/webhooks/stripe/acct_b", &[sig], &sent).await;
        assert_eq!(status, 401, "{what}: {answer}");
        assert!(answer["code"].as_str().is_some(), "{what}: {answer}");
    }
    let (status, _, _) = p.post_webhook("/v1/webhooks/stripe/acct_b", &[], &body).await;
    assert_eq!(status, 401, "missing signature");
    assert!(
        p.claim_store().await.list("", 10).await.unwrap().is_empty(),
        "nothing in S3"
    );
    assert_eq!(
        p.stream_messages(&p.config.names().raw_stream()).await,
        0,
        "nothing in the stream"
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nats_down_the_ingress_answers_503_never_2xx() {
    let mut servers = Servers::start().await.unwrap();
    let p = Pipeline::start(config_for(&servers.nats, &servers.redis, &servers.s3, "nodown"))
        .await
        .unwrap();
    let receiver = Receiver::start().await;
    p.register_stripe("tenant_c", "acct_c", STRIPE_SECRET, &receiver.url, &["*"])
        .await;
    servers.nats.stop().await.unwrap();
    for i in 0..3 {
        let body = customer_created(&format!("evt_down_{i}"));
        let (status, headers, answer) = p
            .post_webhook(
                "/v1/webhooks/stripe/acct_c",
                &[stripe_signature(STRIPE_SECRET, now(), &body)],
                &body,
            )
            .await;
        assert_eq!(status, 503, "{answer}");
        assert!(headers.get("retry-after").is_some());
    }
    p.stop().await;
}
