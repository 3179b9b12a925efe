//! Idempotency and durability at the ingress: concurrent copies of one event publish
//! once, and a Redis outage neither stops the ingress nor lets a duplicate through.

use std::time::Duration;

use futures::future::join_all;
use switchyard_tests::{shared, wait_until, Servers};

use crate::pipeline::{config_for, Pipeline, Receiver};
use crate::walking_skeleton::{customer_created, now, stripe_signature, STRIPE_SECRET};

const PATH: &str = "/v1/webhooks/stripe/acct_d";

async fn post_event(p: &Pipeline, id: &str) -> (u16, serde_json::Value) {
    let body = customer_created(id);
    let (status, _, answer) = p
        .post_webhook(PATH, &[stripe_signature(STRIPE_SECRET, now(), &body)], &body)
        .await;
    (status, answer)
}

async fn readyz(p: &Pipeline) -> (u16, serde_json::Value) {
    let r = p
        .http
        .get(format!("http://{}/readyz", p.ingress))
        .send()
        .await
        .expect("ingress answers");
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_copies_of_one_event_are_all_answered_2xx_and_published_once() {
    let servers = shared().await;
    let p = Pipeline::start(config_for(&servers.nats, &servers.redis, &servers.s3, "race"))
        .await
        .unwrap();
    let receiver = Receiver::start().await;
    p.register_stripe("tenant_d", "acct_d", STRIPE_SECRET, &receiver.url, &["*"])
        .await;
    // Eight copies at once: they race past the Redis check together, and JetStream's
    // Nats-Msg-Id window keeps all but one out.
    let answers = join_all((0..8).map(|_| post_event(&p, "evt_race_1"))).await;
    for (status, answer) in &answers {
        assert_eq!(*status, 200, "{answer}");
    }
    let duplicates: u64 = answers.iter().map(|(_, a)| a["duplicates"].as_u64().unwrap()).sum();
    assert_eq!(duplicates, 7, "{answers:?}");
    assert_eq!(p.stream_messages(&p.config.names().raw_stream()).await, 1);
    wait_until("the delivery", Duration::from_secs(20), || async {
        !receiver.all().is_empty()
    })
    .await
    .unwrap();
    assert_eq!(p.stream_messages(&p.config.names().unified_stream()).await, 1);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_the_ingress_keeps_accepting_and_still_dedupes() {
    let mut servers = Servers::start().await.unwrap();
    let p = Pipeline::start(config_for(&servers.nats, &servers.redis, &servers.s3, "noredis"))
        .await
        .unwrap();
    let receiver = Receiver::start().await;
    p.register_stripe("tenant_d", "acct_d", STRIPE_SECRET, &receiver.url, &["*"])
        .await;
    // The first event puts the account in the ingress's cache.
    assert_eq!(post_event(&p, "evt_r0").await.0, 200);

    servers.redis.stop().await.unwrap();
    for id in ["evt_r1", "evt_r2"] {
        let (status, answer) = post_event(&p, id).await;
        assert_eq!(status, 200, "{id}: {answer}");
        assert_eq!(answer["duplicates"], 0, "{id}: {answer}");
    }
    // A provider retry while Redis is away: JetStream recognises it.
    let (status, answer) = post_event(&p, "evt_r1").await;
    assert_eq!((status, answer["duplicates"].as_u64()), (200, Some(1)), "{answer}");
    assert_eq!(p.stream_messages(&p.config.names().raw_stream()).await, 3);
    // Ready, but saying what is missing.
    wait_until("readiness says degraded", Duration::from_secs(10), || async {
        readyz(&p).await == (200, serde_json::json!({"status": "degraded", "down": ["redis"]}))
    })
    .await
    .unwrap();

    servers.redis.start_again().await.unwrap();
    wait_until("readiness recovers", Duration::from_secs(15), || async {
        readyz(&p).await.1["status"] == "ready"
    })
    .await
    .unwrap();
    assert_eq!(post_event(&p, "evt_r3").await.0, 200);
    assert_eq!(p.stream_messages(&p.config.names().raw_stream()).await, 4);
    p.stop().await;
}
