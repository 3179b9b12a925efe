//! The scaled-out shape, end to end: a three-node NATS JetStream cluster with every
//! stream at replication 3, and two of each Switchyard binary sharing the work. One of
//! each binary stops, then the NATS node leading the raw stream stops, and signed
//! Stripe events keep arriving at the tenant's endpoint, each one delivered.

use std::collections::BTreeSet;
use std::time::Duration;

use switchyard_tests::{shared, wait_until, NatsCluster};

use crate::pipeline::{config_for, Pipeline, Receiver};
use crate::walking_skeleton::{customer_created, now, stripe_signature, STRIPE_SECRET};

/// Room for a JetStream leader election (a few seconds) and the retries around it.
const WAIT: Duration = Duration::from_secs(60);
const PATH: &str = "/v1/webhooks/stripe/acct_cluster";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_flow_when_one_of_each_binary_and_a_nats_node_stop() {
    let mut cluster = NatsCluster::start().await.unwrap();
    // Redis and S3 are the shared ones (this test has its own namespace and bucket);
    // NATS is the cluster.
    let servers = shared().await;
    let mut config = config_for(&servers.nats, &servers.redis, &servers.s3, "cluster");
    config.nats.url = cluster.url();
    config.nats.replicas = 3;

    let first = Pipeline::start(config.clone()).await.unwrap();
    let second = Pipeline::start(config.clone()).await.unwrap();
    let receiver = Receiver::start().await;
    second
        .register_stripe("tenant_cluster", "acct_cluster", STRIPE_SECRET, &receiver.url, &["*"])
        .await;

    // Every stream is replicated on all three nodes.
    let names = config.names();
    let client = switchyard_core::nats::connect(&config.nats, "cluster-test")
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client);
    for stream in [
        names.raw_stream(),
        names.unified_stream(),
        names.retry_stream(),
        names.dead_letter_stream(),
        names.undelivered_stream(),
    ] {
        let info = js.get_stream(&stream).await.unwrap().info().await.unwrap().clone();
        assert_eq!(info.config.num_replicas, 3, "{stream}");
        let replicas = info.cluster.as_ref().map(|c| c.replicas.len()).unwrap_or(0);
        assert_eq!(replicas, 2, "{stream}: a leader and two followers");
    }

    // Both sets share the work.
    let mut sent = Vec::new();
    for i in 0..6 {
        let via = if i % 2 == 0 { &first } else { &second };
        sent.push(send(via, &format!("evt_cluster_{i}")).await);
    }
    delivered(&receiver, sent.len()).await;

    // One ingress, one normalizer and one dispatcher stop; the others carry on.
    first.stop().await;
    for i in 6..12 {
        sent.push(send(&second, &format!("evt_cluster_{i}")).await);
    }
    delivered(&receiver, sent.len()).await;

    // The node leading the raw stream stops: a new leader is elected among the two
    // left, which still make a quorum, and the clients reconnect to them.
    let leader = js
        .get_stream(names.raw_stream())
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .cluster
        .clone()
        .and_then(|c| c.leader)
        .expect("the raw stream has a leader");
    let node: usize = leader
        .strip_prefix("node-")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("leader {leader:?} is not one of ours"));
    cluster.stop_node(node).await.unwrap();
    for i in 12..18 {
        sent.push(send(&second, &format!("evt_cluster_{i}")).await);
    }
    delivered(&receiver, sent.len()).await;

    // The node comes back and catches up; events still flow.
    cluster.start_node_again(node).await.unwrap();
    for i in 18..20 {
        sent.push(send(&second, &format!("evt_cluster_{i}")).await);
    }
    delivered(&receiver, sent.len()).await;
    second.stop().await;
}

/// POSTs one signed Stripe event until the ingress answers 200 (a 503 while a leader is
/// elected is retried, as the provider would); returns its id.
async fn send(p: &Pipeline, id: &str) -> String {
    let body = customer_created(id);
    wait_until(&format!("the ingress to accept {id}"), WAIT, || async {
        let sig = stripe_signature(STRIPE_SECRET, now(), &body);
        let (status, _, _) = p.post_webhook(PATH, &[sig], &body).await;
        status == 200
    })
    .await
    .unwrap();
    id.to_string()
}

/// Waits until `n` distinct events (by `webhook-id`) have reached the receiver.
async fn delivered(receiver: &Receiver, n: usize) {
    let distinct = || {
        receiver
            .all()
            .iter()
            .filter_map(|d| d.headers.get("webhook-id")?.to_str().ok().map(str::to_string))
            .collect::<BTreeSet<_>>()
            .len()
    };
    let waited = wait_until(&format!("{n} distinct deliveries"), WAIT, || async { distinct() >= n }).await;
    assert!(waited.is_ok(), "{} of {n} events delivered within {WAIT:?}", distinct());
    assert_eq!(distinct(), n, "an event nobody sent was delivered");
}
