//! One tenant's slow content filter does not delay another tenant's deliveries: filters
//! are evaluated off the dispatcher's runtime thread, within a per-tenant budget.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use switchyard_core::envelope::{HEADER_EVENT_TYPE, HEADER_TENANT};
use switchyard_tests::{shared, unique_prefix, wait_until};

use crate::pipeline::{config_for, Pipeline, Receiver};

/// About 40 ms an evaluation on this machine, within the engine's 200 ms limit: true.
const SLOW: &str = "$count([1..120000][$ % 7 = 0]) >= 0";
/// What the other tenant's 10 events may take, all of them, from the first publish to
/// the last delivery (p100). Evaluated on the runtime thread, the slow tenant's 50
/// evaluations (~2 s of CPU) held them up for over 2 s here; off it, ~25 ms.
const BOUND: Duration = Duration::from_secs(1);

/// Publish one event without waiting for its ack; its id and the ack to await.
async fn publish(
    p: &Pipeline,
    js: &async_nats::jetstream::Context,
    tenant: &str,
) -> (String, async_nats::jetstream::context::PublishAckFuture) {
    let id = format!("evt_{}", unique_prefix("iso"));
    let event = json!({
        "id": id, "type": "payments.charge.succeeded", "tenant_id": tenant,
        "account_id": "acct_1", "connector": "stripe", "occurred_at": "2026-11-23T00:00:00Z",
        "received_at": "2026-11-23T00:00:00Z", "data": {"n": 1},
    });
    let mut h = async_nats::HeaderMap::new();
    h.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
    h.insert(HEADER_EVENT_TYPE, "payments.charge.succeeded");
    h.insert(HEADER_TENANT, tenant);
    let ack = js
        .publish_with_headers(
            p.config.names().unified_subject(tenant),
            h,
            serde_json::to_vec(&event).unwrap().into(),
        )
        .await
        .unwrap();
    (id, ack)
}

/// Publish `n` events for `tenant` back to back (so they arrive as one backlog), then
/// wait until every one is acknowledged; their ids.
async fn publish_all(p: &Pipeline, js: &async_nats::jetstream::Context, tenant: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut acks = Vec::new();
    for _ in 0..n {
        let (id, ack) = publish(p, js, tenant).await;
        ids.push(id);
        acks.push(ack);
    }
    for ack in futures::future::join_all(acks.into_iter().map(std::future::IntoFuture::into_future)).await {
        ack.unwrap();
    }
    ids
}

/// One runtime thread, as the dispatcher has in production (`worker_threads = 1`).
#[tokio::test(flavor = "current_thread")]
async fn a_slow_filter_of_one_tenant_does_not_delay_another() {
    let s = shared().await;
    let p = Pipeline::start(config_for(&s.nats, &s.redis, &s.s3, "filteriso"))
        .await
        .unwrap();
    let slow = Receiver::start().await;
    let quick = Receiver::start().await;
    for (tenant, url, filter) in [("t-slow", &slow.url, SLOW), ("t-quick", &quick.url, "data.n = 1")] {
        let (st, b) = p
            .admin(
                Method::PUT,
                &format!("/v1/tenants/{tenant}"),
                Some(json!({"name": "F"})),
            )
            .await;
        assert!(st.is_success(), "{b}");
        let (st, b) = p
            .admin(
                Method::POST,
                &format!("/v1/tenants/{tenant}/endpoints"),
                Some(json!({"url": url, "event_types": ["*"], "filter": filter})),
            )
            .await;
        assert_eq!(st.as_u16(), 201, "{b}");
    }

    let js = p.jetstream().await;
    publish_all(&p, &js, "t-slow", 50).await;
    let started = Instant::now();
    let quick_ids = publish_all(&p, &js, "t-quick", 10).await;
    wait_until("the quick tenant's 10 events to be delivered", BOUND, || async {
        quick_ids.iter().all(|id| !quick.with_id(id).is_empty())
    })
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e}: {} of 10 delivered within {BOUND:?}, the slow tenant had {} of 50",
            quick_ids.iter().filter(|id| !quick.with_id(id).is_empty()).count(),
            slow.all().len()
        )
    });
    let took = started.elapsed();
    assert!(
        took <= BOUND,
        "the quick tenant's 10 events took {took:?}, over {BOUND:?}"
    );
    let slow_done = slow.all().len();
    assert!(
        slow_done < 50,
        "the slow tenant is still being evaluated when the quick one is done ({slow_done} of 50 after {took:?})"
    );

    // The slow tenant loses nothing: every event passes its filter and is delivered.
    wait_until(
        "the slow tenant's 50 events to be delivered",
        Duration::from_secs(60),
        || async { slow.all().len() >= 50 },
    )
    .await
    .unwrap();
    p.stop().await;
}
