//! Quick fault injection under load, in CI (`cargo test -p switchyard-tests --test
//! faults`): the whole pipeline in-process (`tests/it/pipeline.rs`) on real servers of
//! its own, signed Stripe webhooks at 20/s for 14 s, one fault from the third second,
//! and at the end the same figures as `switchyard-bench faults`: accepted, delivered,
//! lost (must be 0) and duplicate deliveries. One scenario runs on a three-node NATS
//! cluster (streams at replication 3) and stops a node. Outages last 6 s here, not the bench's
//! 10 s, to keep the suite short. The `kill -9` scenarios need the binaries as
//! processes and are in `switchyard-bench faults` (see BENCHMARKS.md).

#[allow(dead_code)]
#[path = "../it/pipeline.rs"]
mod pipeline;

mod load;

use std::time::Duration;

use futures::FutureExt;

use crate::load::{scenario, scenario_on_a_cluster, Mode};

/// How long a server stays down, or an endpoint misbehaves.
const OUTAGE: Duration = Duration::from_secs(6);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_down_answers_503_never_2xx_then_recovers_and_loses_nothing() {
    let o = scenario("f_s3", |servers, _| {
        async move {
            servers.s3.stop().await.unwrap();
            tokio::time::sleep(OUTAGE).await;
            servers.s3.start_again().await.unwrap();
        }
        .boxed()
    })
    .await;
    o.assert_nothing_lost();
    assert!(o.refused_503 > 0, "no 503 while S3 was down: {o:?}");
    assert!(o.accepted_after_the_fault > 0, "the ingress did not recover: {o:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_the_pipeline_keeps_flowing_and_loses_nothing() {
    let o = scenario("f_redis", |servers, _| {
        async move {
            servers.redis.stop().await.unwrap();
            tokio::time::sleep(OUTAGE).await;
            servers.redis.start_again().await.unwrap();
        }
        .boxed()
    })
    .await;
    o.assert_nothing_lost();
    assert!(
        o.accepted_during_the_fault > 0,
        "nothing accepted while Redis was down: {o:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_restart_loses_nothing() {
    let o = scenario("f_nats", |servers, _| {
        async move {
            servers.nats.stop().await.unwrap();
            servers.nats.start_again().await.unwrap();
        }
        .boxed()
    })
    .await;
    o.assert_nothing_lost();
    assert!(o.accepted_after_the_fault > 0, "the pipeline did not recover: {o:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_failing_for_a_while_gets_everything_once_it_recovers() {
    let o = scenario("f_fail", |_, endpoints| {
        async move {
            endpoints.set(0, Mode::Refuse);
            tokio::time::sleep(OUTAGE).await;
            endpoints.set(0, Mode::Up);
        }
        .boxed()
    })
    .await;
    o.assert_nothing_lost();
    assert!(
        o.healthy_endpoint_during_the_fault > 0,
        "the healthy endpoint was held up: {o:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_endpoint_gets_everything_and_does_not_hold_up_the_other() {
    let o = scenario("f_hang", |_, endpoints| {
        async move {
            endpoints.set(0, Mode::Hang);
            tokio::time::sleep(OUTAGE).await;
            endpoints.set(0, Mode::Up);
        }
        .boxed()
    })
    .await;
    o.assert_nothing_lost();
    assert!(
        o.healthy_endpoint_during_the_fault > 0,
        "the healthy endpoint was held up: {o:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nats_node_leading_the_raw_stream_stopped_and_brought_back_loses_nothing() {
    let o = scenario_on_a_cluster("f_cluster", |servers, _| {
        async move {
            let node = raw_stream_leader(&servers.nats.node_url(0)).await;
            servers.nats.stop_node(node).await.unwrap();
            tokio::time::sleep(OUTAGE).await;
            servers.nats.start_node_again(node).await.unwrap();
        }
        .boxed()
    })
    .await;
    o.assert_nothing_lost();
    assert!(
        o.accepted_during_the_fault > 0,
        "nothing accepted with one node of three down: {o:?}"
    );
}

/// The cluster node (`node-<i>`) leading the raw stream: the one whose loss forces an
/// election on the ingress's path. The cluster holds this test's streams only.
async fn raw_stream_leader(url: &str) -> usize {
    use futures::TryStreamExt;
    let client = async_nats::connect(url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let names: Vec<String> = js.stream_names().try_collect().await.unwrap();
    let raw = names
        .iter()
        .find(|n| n.ends_with("RAW"))
        .unwrap_or_else(|| panic!("no raw stream among {names:?}"));
    let info = js.get_stream(raw).await.unwrap().info().await.unwrap().clone();
    let leader = info
        .cluster
        .and_then(|c| c.leader)
        .expect("the raw stream has a leader");
    leader
        .strip_prefix("node-")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("leader {leader:?} is not one of ours"))
}
