//! Events that no endpoint received are recorded, listed through the admin API, and
//! re-delivered "since T" once an endpoint takes them, under their original
//! `webhook-id`; before this, they left nothing but a counter.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use switchyard_tests::{shared, wait_until};

use crate::pipeline::{config_for, Pipeline, Receiver};

const WAIT: Duration = Duration::from_secs(30);

async fn undelivered(p: &Pipeline, tenant: &str, query: &str) -> Value {
    let (st, b) = p
        .admin(Method::GET, &format!("/v1/tenants/{tenant}/undelivered{query}"), None)
        .await;
    assert_eq!(st.as_u16(), 200, "{b}");
    b
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap_or_else(|| panic!("a data array: {page}"))
        .iter()
        .map(|i| i["event_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_no_endpoint_took_are_recorded_and_redelivered_once_one_does() {
    let s = shared().await;
    let p = Pipeline::start(config_for(&s.nats, &s.redis, &s.s3, "undelivered"))
        .await
        .unwrap();
    let receiver = Receiver::start().await;
    let (st, b) = p
        .admin(Method::PUT, "/v1/tenants/t-und", Some(json!({"name": "U"})))
        .await;
    assert!(st.is_success(), "{b}");
    let (st, ep) = p
        .admin(
            Method::POST,
            "/v1/tenants/t-und/endpoints",
            Some(json!({"url": receiver.url, "event_types": ["crm.*"], "enabled": false})),
        )
        .await;
    assert_eq!(st.as_u16(), 201, "{ep}");
    let endpoint = ep["id"].as_str().unwrap().to_string();
    let before = time::OffsetDateTime::now_utc() - time::Duration::seconds(5);
    let since = switchyard_core::timefmt::rfc3339(before);

    // Every endpoint disabled: recorded as no_endpoint.
    // One after the other: two events in flight at once may be recorded in
    // either order, and "oldest first" is the order of recording.
    let first = p.publish_unified("t-und", "crm.contact.created", "und").await;
    wait_until("the first event recorded", WAIT, || async {
        ids(&undelivered(&p, "t-und", "").await).len() == 1
    })
    .await
    .unwrap();
    let second = p.publish_unified("t-und", "crm.contact.updated", "und").await;
    wait_until("both events recorded", WAIT, || async {
        ids(&undelivered(&p, "t-und", "").await).len() == 2
    })
    .await
    .unwrap();
    let page = undelivered(&p, "t-und", "").await;
    assert_eq!(ids(&page), [first.clone(), second.clone()], "oldest first: {page}");
    assert_eq!(page["data"][0]["reason"], "no_endpoint", "{page}");
    assert_eq!(page["data"][0]["type"], "crm.contact.created", "{page}");

    // Enabled, but its types do not take this one: no_match.
    let (st, b) = p
        .admin(
            Method::PATCH,
            &format!("/v1/tenants/t-und/endpoints/{endpoint}"),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(st.as_u16(), 200, "{b}");
    let payment = p.publish_unified("t-und", "payments.charge.succeeded", "und").await;
    wait_until("the payment event recorded", WAIT, || async {
        ids(&undelivered(&p, "t-und", "").await).len() == 3
    })
    .await
    .unwrap();
    let page = undelivered(&p, "t-und", "").await;
    assert_eq!(page["data"][2]["event_id"], payment.as_str(), "{page}");
    assert_eq!(page["data"][2]["reason"], "no_match", "{page}");

    // Paging: one at a time, each page's cursor leading to the next.
    let one = undelivered(&p, "t-und", "?limit=1").await;
    assert_eq!(ids(&one), [first.as_str()], "{one}");
    let cursor = one["next_cursor"].as_str().expect("a next page").to_string();
    let two = undelivered(&p, "t-und", &format!("?limit=1&cursor={cursor}")).await;
    assert_eq!(ids(&two), [second.as_str()], "{two}");
    let (st, b) = p
        .admin(Method::GET, "/v1/tenants/t-und/undelivered?cursor=nonsense", None)
        .await;
    assert_eq!((st.as_u16(), b["field"].as_str()), (400, Some("cursor")), "{b}");

    // A dry run counts and changes nothing.
    let redeliver = |body: Value| {
        let p = &p;
        async move {
            p.admin(Method::POST, "/v1/tenants/t-und/undelivered/redeliver", Some(body))
                .await
        }
    };
    let (st, dry) = redeliver(json!({"since": since, "dry_run": true})).await;
    assert_eq!(st.as_u16(), 200, "{dry}");
    assert_eq!(
        (dry["matched"].as_u64(), dry["redelivered"].as_u64()),
        (Some(3), Some(0)),
        "{dry}"
    );
    assert_eq!(ids(&undelivered(&p, "t-und", "").await).len(), 3);

    // Re-delivered with the endpoint as it is now: the two crm events reach it under
    // their own webhook-id; the payment event still finds no endpoint and is recorded
    // again.
    let (st, done) = redeliver(json!({"since": since})).await;
    assert_eq!(st.as_u16(), 200, "{done}");
    assert_eq!(
        (done["matched"].as_u64(), done["redelivered"].as_u64()),
        (Some(3), Some(3)),
        "{done}"
    );
    assert_eq!(done["more"], false, "{done}");
    wait_until("both crm events delivered", WAIT, || async {
        receiver.with_id(&first).len() == 1 && receiver.with_id(&second).len() == 1
    })
    .await
    .unwrap();
    wait_until("only the payment event left recorded", WAIT, || async {
        ids(&undelivered(&p, "t-und", "").await) == [payment.clone()]
    })
    .await
    .unwrap();
    let body: Value = serde_json::from_slice(&receiver.with_id(&first)[0].body).unwrap();
    assert_eq!(body["id"], first.as_str(), "the original event: {body}");
    assert!(receiver.with_id(&payment).is_empty());

    // Bad requests are named; unknown tenants are 404.
    let (st, b) = redeliver(json!({"since": "yesterday"})).await;
    assert_eq!((st.as_u16(), b["field"].as_str()), (400, Some("since")), "{b}");
    let (st, b) = redeliver(json!({})).await;
    assert_eq!((st.as_u16(), b["field"].as_str()), (400, Some("since")), "{b}");
    let (st, b) = p.admin(Method::GET, "/v1/tenants/t-nobody/undelivered", None).await;
    assert_eq!(st.as_u16(), 404, "{b}");

    // Deleting the tenant deletes its records.
    let (st, b) = p.admin(Method::DELETE, "/v1/tenants/t-und", None).await;
    assert_eq!(st.as_u16(), 204, "{b}");
    let names = p.config.names();
    wait_until("the tenant's records purged", WAIT, || async {
        p.stream_messages(&names.undelivered_stream()).await == 0
    })
    .await
    .unwrap();
    p.stop().await;
}
