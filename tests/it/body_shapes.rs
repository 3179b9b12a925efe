//! Verified requests the connector's paths cannot read are never refused, and no event
//! can stall normalization: on the real servers, a Stripe event whose id and type hold
//! line breaks (which used to panic the ingress's group commit and, on every
//! redelivery, the normalizer) is stored and delivered as `stripe.unrecognized`, and the
//! events after it flow; an empty batch is answered 200 and stores nothing.

use std::time::Duration;

use serde_json::{json, Value};
use switchyard_tests::{shared, wait_for};

use crate::pipeline::{config_for, Pipeline, Receiver};
use crate::walking_skeleton::{customer_created, now, stripe_signature, STRIPE_SECRET};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_is_delivered_as_unrecognized_and_stalls_nothing() {
    let servers = shared().await;
    let p = Pipeline::start(config_for(&servers.nats, &servers.redis, &servers.s3, "shape"))
        .await
        .unwrap();
    let receiver = Receiver::start().await;
    p.register_stripe("tenant_p", "acct_p", STRIPE_SECRET, &receiver.url, &["*"])
        .await;

    let poison =
        json!({"id": "evt_\npoison", "type": "customer.created\r\nX-Injected: 1", "data": {"object": {}}}).to_string();
    let sig = stripe_signature(STRIPE_SECRET, now(), &poison);
    let (status, _, answer) = p.post_webhook("/v1/webhooks/stripe/acct_p", &[sig], &poison).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("accepted")), "{answer}");

    // Events after it are normalized and delivered: nothing is stuck behind it.
    for i in 0..5 {
        let body = customer_created(&format!("evt_after_{i}"));
        let sig = stripe_signature(STRIPE_SECRET, now(), &body);
        let (status, _, answer) = p.post_webhook("/v1/webhooks/stripe/acct_p", &[sig], &body).await;
        assert_eq!(status, 200, "{answer}");
    }
    let delivered = wait_for("all six deliveries", Duration::from_secs(30), || async {
        let all = receiver.all();
        (all.len() >= 6).then_some(all)
    })
    .await
    .unwrap();
    let types: Vec<String> = delivered
        .iter()
        .map(|d| {
            serde_json::from_slice::<Value>(&d.body).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        types.iter().filter(|t| *t == "stripe.unrecognized").count(),
        1,
        "{types:?}"
    );
    assert_eq!(
        types.iter().filter(|t| *t == "payments.customer.created").count(),
        5,
        "{types:?}"
    );
    let unrecognized = delivered
        .iter()
        .map(|d| serde_json::from_slice::<Value>(&d.body).unwrap())
        .find(|e| e["type"] == "stripe.unrecognized")
        .unwrap();
    // The provider's body travels as the data, line breaks and all.
    assert_eq!(unrecognized["data"]["id"], "evt_\npoison", "{unrecognized}");

    let counted = p
        .metric(
            p.ingress_ops,
            "switchyard_ingress_unrecognized_total{connector=\"stripe\",reason=\"invalid_type\"}",
        )
        .await;
    assert_eq!(counted, Some(1.0));
    // The normalizer's `type` label is a closed set: provider-made types count as
    // `pass_through`, never as a series of their own.
    let passed = p
        .metric(
            p.normalizer_ops,
            "switchyard_normalizer_events_total{connector=\"stripe\",type=\"pass_through\"}",
        )
        .await;
    assert_eq!(passed, Some(1.0));
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_batch_is_answered_200_and_stores_nothing() {
    use hmac::Mac;
    let servers = shared().await;
    let p = Pipeline::start(config_for(&servers.nats, &servers.redis, &servers.s3, "empty"))
        .await
        .unwrap();
    p.register(
        "tenant_e",
        "acct_e",
        "asana",
        "asana-hook-secret",
        "http://127.0.0.1:9/h",
        &["*"],
    )
    .await;
    // Asana's heartbeat: a signed `{"events":[]}` (X-Hook-Signature: hex HMAC-SHA256 of
    // the body, https://developers.asana.com/docs/webhooks-guide).
    let body = r#"{"events":[]}"#;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"asana-hook-secret").unwrap();
    mac.update(body.as_bytes());
    let sig = ("X-Hook-Signature".to_string(), hex::encode(mac.finalize().into_bytes()));
    let names = switchyard_core::names::Names::new(&p.config.namespace);
    let before = p.stream_messages(&names.raw_stream()).await;
    let (status, _, answer) = p.post_webhook("/v1/webhooks/asana/acct_e", &[sig], body).await;
    assert_eq!((status, answer["events"].as_u64()), (200, Some(0)), "{answer}");
    assert_eq!(p.stream_messages(&names.raw_stream()).await, before);
    p.stop().await;
}

/// Salesforce's Outbound Message: SOAP over `text/xml`, read by the XML rule, answered
/// with the SOAP `Ack` it expects (else it retries for 24 hours), mapped, delivered; a
/// message of another organisation is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_salesforce_outbound_message_is_acked_in_soap_and_mapped() {
    let servers = shared().await;
    let p = Pipeline::start(config_for(&servers.nats, &servers.redis, &servers.s3, "soap"))
        .await
        .unwrap();
    let receiver = Receiver::start().await;
    let org = "00D5g000004Ej2QEAS";
    p.register("tenant_sf", "sf_acct", "salesforce", org, &receiver.url, &["crm.*"])
        .await;
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../connectors/fixtures/salesforce/contact_updated.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let body = fixture["body"].as_str().unwrap().to_string();
    let send = |body: String| {
        p.http
            .post(format!("http://{}/v1/webhooks/salesforce/sf_acct", p.ingress))
            .header("content-type", "text/xml; charset=utf-8")
            .header("soapaction", "\"\"")
            .body(body)
            .send()
    };
    let r = send(body.clone()).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/xml"));
    assert!(
        r.text().await.unwrap().contains("<Ack>true</Ack>"),
        "the SOAP Ack Salesforce expects"
    );

    let delivered = wait_for("the contact delivered", Duration::from_secs(30), || async {
        receiver.all().into_iter().next()
    })
    .await
    .unwrap();
    let event: Value = serde_json::from_slice(&delivered.body).unwrap();
    assert_eq!(event["type"], "crm.contact.updated");
    assert_eq!(event["data"]["contact"]["email"], "maria.ortega@acme.example");

    // Another organisation's message (or a forged one without the id): 401.
    let other = body.replace(org, "00D000000000001AAA");
    assert_eq!(send(other).await.unwrap().status().as_u16(), 401);
    p.stop().await;
}

/// One URL for many Salesforce organisations: `POST /v1/webhooks/salesforce` routes each
/// notification by the message's `OrganizationId` to the account whose `external_id` it
/// is; the organisations' ids are the connector-level secrets the body-field check takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_messages_are_routed_by_organisation_id() {
    use switchyard_core::config::{ConfiguredSecret, ConnectorSettings};
    use switchyard_core::secret::Secret;
    let servers = shared().await;
    let (org_a, org_b) = ("00D5g000004Ej2QEAS", "00D7x000001Kq9ZEAS");
    let mut config = config_for(&servers.nats, &servers.redis, &servers.s3, "sfroute");
    config.connectors.insert(
        "salesforce".into(),
        ConnectorSettings {
            secrets: vec![
                ConfiguredSecret::Plain(Secret::new(org_a)),
                ConfiguredSecret::Plain(Secret::new(org_b)),
            ],
            public_keys: vec![],
            legacy_signatures: false,
        },
    );
    let p = Pipeline::start(config).await.unwrap();
    let (alpha, beta) = (Receiver::start().await, Receiver::start().await);
    for (tenant, org, url) in [("sf_alpha", org_a, &alpha.url), ("sf_beta", org_b, &beta.url)] {
        let (s, b) = p
            .admin(
                reqwest::Method::PUT,
                &format!("/v1/tenants/{tenant}"),
                Some(serde_json::json!({"name": tenant})),
            )
            .await;
        assert!(s.is_success(), "{b}");
        let (s, b) = p
            .admin(
                reqwest::Method::POST,
                &format!("/v1/tenants/{tenant}/endpoints"),
                Some(serde_json::json!({"url": url, "event_types": ["*"]})),
            )
            .await;
        assert!(s.is_success(), "{b}");
        let (s, b) = p
            .admin(
                reqwest::Method::PUT,
                &format!("/v1/accounts/{tenant}_sf"),
                Some(serde_json::json!({"tenant_id": tenant, "connector": "salesforce", "external_id": org})),
            )
            .await;
        assert!(s.is_success(), "{b}");
    }
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../connectors/fixtures/salesforce/contact_updated.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let body_a = fixture["body"].as_str().unwrap().to_string();
    assert!(body_a.contains(org_a), "the fixture's organisation");
    let body_b = body_a.replace(org_a, org_b);
    let send = |body: String| {
        p.http
            .post(format!("http://{}/v1/webhooks/salesforce", p.ingress))
            .header("content-type", "text/xml; charset=utf-8")
            .header("soapaction", "\"\"")
            .body(body)
            .send()
    };
    for body in [body_a.clone(), body_b] {
        let r = send(body).await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert!(r.text().await.unwrap().contains("<Ack>true</Ack>"));
    }
    for (name, receiver) in [("alpha", &alpha), ("beta", &beta)] {
        let delivered = wait_for("the contact delivered", Duration::from_secs(30), || async {
            receiver.all().into_iter().next()
        })
        .await
        .unwrap();
        let event: Value = serde_json::from_slice(&delivered.body).unwrap();
        assert_eq!(event["type"], "crm.contact.updated", "{name}");
        assert_eq!(
            event["account_id"],
            format!("sf_{name}_sf"),
            "{name}: its own organisation's account"
        );
    }
    assert_eq!(
        alpha.all().len(),
        1,
        "each organisation's event went to its tenant only"
    );
    // An organisation not configured: 401, as on the account URL.
    let stranger = body_a.replace(org_a, "00D000000000001AAA");
    assert_eq!(send(stranger).await.unwrap().status().as_u16(), 401);
    p.stop().await;
}

/// Adyen's standard notifications: a batch whose items are each signed over their own
/// fields with the hex HMAC key (adyen-node-api-library's hmacValidator test key and
/// items), answered `[accepted]` as Adyen expects once durable, each item its own
/// event; a batch with one altered item is refused and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adyen_batch_is_verified_per_item_and_answered_accepted() {
    let servers = shared().await;
    let p = Pipeline::start(config_for(&servers.nats, &servers.redis, &servers.s3, "adyen"))
        .await
        .unwrap();
    let receiver = Receiver::start().await;
    let key = "DFB1EB5485895CFA84146406857104ABB4CBCABDC8AAF103A624C8F6A3EAAB00";
    p.register("tenant_ad", "ad_acct", "adyen", key, &receiver.url, &["payments.*"])
        .await;
    let item = |original: &str, event: &str, sig: &str| {
        json!({"NotificationRequestItem": {
            "pspReference": "pspReference", "originalReference": original,
            "merchantAccountCode": "merchantAccount", "merchantReference": "reference",
            "amount": {"currency": "EUR", "value": 1000}, "eventCode": event,
            "eventDate": "2019-09-21T11:45:24.637Z", "paymentMethod": "VISA", "success": "true",
            "additionalData": {"hmacSignature": sig}
        }})
    };
    let report = item(
        "originalReference",
        "REPORT_AVAILABLE",
        "ZNBPtI+oDyyRrLyD1XirkKnQgIAlFc07Vj27TeHsDRE=",
    );
    let mut auth = item("", "AUTHORISATION", "lDqFkffmhLcWJfO+0hhmHHaARjpuwRQ17bNC/JgrnmQ=");
    // Absent, not empty: Adyen's validators sign an absent field as "".
    auth["NotificationRequestItem"]
        .as_object_mut()
        .unwrap()
        .remove("originalReference");
    let send = |items: Vec<Value>| {
        p.http
            .post(format!("http://{}/v1/webhooks/adyen/ad_acct", p.ingress))
            .header("content-type", "application/json")
            .body(json!({"live": "false", "notificationItems": items}).to_string())
            .send()
    };
    let names = switchyard_core::names::Names::new(&p.config.namespace);
    let before = p.stream_messages(&names.raw_stream()).await;
    let mut forged = auth.clone();
    forged["NotificationRequestItem"]["amount"]["value"] = json!(1);
    assert_eq!(send(vec![report.clone(), forged]).await.unwrap().status().as_u16(), 401);
    assert_eq!(p.stream_messages(&names.raw_stream()).await, before);

    let r = send(vec![report, auth]).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert_eq!(r.text().await.unwrap(), "[accepted]");
    assert!(p.stream_messages(&names.raw_stream()).await > before, "stored");

    let delivered = wait_for("the authorisation delivered", Duration::from_secs(30), || async {
        receiver.all().into_iter().next()
    })
    .await
    .unwrap();
    let event: Value = serde_json::from_slice(&delivered.body).unwrap();
    assert_eq!(event["type"], "payments.charge.succeeded");
    assert_eq!(event["data"]["charge"]["amount"], 1000);
    p.stop().await;
}
