//! Event type patterns read as globs: `payments.*` receives every `payments.…` type at
//! any depth (every unified type has three segments), a `*` in the middle stands for
//! one segment; and the admin API warns about patterns that match no known type.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use switchyard_tests::{shared, wait_until};

use crate::pipeline::{config_for, Pipeline, Receiver};

async fn publish(p: &Pipeline, tenant: &str, event_type: &str) -> String {
    p.publish_unified(tenant, event_type, "glob").await
}

fn warned(answer: &Value) -> Vec<String> {
    answer["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("the answer has a warnings array: {answer}"))
        .iter()
        .map(|w| {
            assert_eq!(w["field"], "event_types", "{w}");
            w["value"].as_str().unwrap().to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trailing_wildcard_receives_every_type_under_its_prefix() {
    let s = shared().await;
    let p = Pipeline::start(config_for(&s.nats, &s.redis, &s.s3, "globs"))
        .await
        .unwrap();
    let payments = Receiver::start().await;
    let middle = Receiver::start().await;
    let crm = Receiver::start().await;
    let (st, b) = p
        .admin(Method::PUT, "/v1/tenants/t-glob", Some(json!({"name": "G"})))
        .await;
    assert!(st.is_success(), "{b}");
    let create = |url: String, types: Value| {
        let p = &p;
        async move {
            let (st, b) = p
                .admin(
                    Method::POST,
                    "/v1/tenants/t-glob/endpoints",
                    Some(json!({"url": url, "event_types": types})),
                )
                .await;
            assert_eq!(st.as_u16(), 201, "{b}");
            b
        }
    };

    // The documented example: no warning, and it receives a three-segment type.
    let a = create(payments.url.clone(), json!(["payments.*"])).await;
    assert!(warned(&a).is_empty(), "{a}");
    let b = create(middle.url.clone(), json!(["payments.*.paid"])).await;
    assert!(warned(&b).is_empty(), "{b}");
    // A typo is saved but named; a known type beside it is not.
    let c = create(crm.url.clone(), json!(["payment.*", "crm.contact.created"])).await;
    assert_eq!(warned(&c), ["payment.*"], "{c}");

    let paid = publish(&p, "t-glob", "payments.invoice.paid").await;
    let refunded = publish(&p, "t-glob", "payments.charge.refunded").await;
    wait_until(
        "payments.* to receive both payments events",
        Duration::from_secs(30),
        || async { !payments.with_id(&paid).is_empty() && !payments.with_id(&refunded).is_empty() },
    )
    .await
    .unwrap();
    wait_until(
        "payments.*.paid to receive the paid event",
        Duration::from_secs(30),
        || async { !middle.with_id(&paid).is_empty() },
    )
    .await
    .unwrap();
    // A later event to the crm endpoint proves the dispatcher is past the earlier ones.
    let contact = publish(&p, "t-glob", "crm.contact.created").await;
    wait_until(
        "the crm endpoint to receive its event",
        Duration::from_secs(30),
        || async { !crm.with_id(&contact).is_empty() },
    )
    .await
    .unwrap();
    assert!(middle.with_id(&refunded).is_empty(), "a middle * is one segment");
    assert!(crm.with_id(&paid).is_empty() && crm.with_id(&refunded).is_empty());

    // PATCH warns the same way, and stops warning once fixed.
    let id = c["id"].as_str().unwrap();
    let (st, patched) = p
        .admin(
            Method::PATCH,
            &format!("/v1/tenants/t-glob/endpoints/{id}"),
            Some(json!({"event_types": ["crm.contact.*", "crm.contakt.created"]})),
        )
        .await;
    assert!(st.is_success(), "{patched}");
    assert_eq!(warned(&patched), ["crm.contakt.created"], "{patched}");
    let (_, fixed) = p
        .admin(
            Method::PATCH,
            &format!("/v1/tenants/t-glob/endpoints/{id}"),
            Some(json!({"event_types": ["crm.*"]})),
        )
        .await;
    assert!(warned(&fixed).is_empty(), "{fixed}");
    p.stop().await;
}
