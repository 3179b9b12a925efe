//! Self-test of the test harness (`switchyard_tests`): the servers start and
//! answer on the URLs it hands out, come back after `stop` / `start_again`
//! with their data, and the small helpers keep their promises.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::claim_store;
use async_nats::jetstream;
use bytes::Bytes;
use switchyard_claimcheck::ClaimCheckStore;
use switchyard_tests::s3::SECRET_ACCESS_KEY;
use switchyard_tests::{shared, unique_prefix, wait_for, wait_until, Servers};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_start_stop_and_start_again() {
    let begun = Instant::now();
    let mut servers = Servers::start().await.expect("starting the servers");
    eprintln!("nats, redis and s3 ready after {:?}", begun.elapsed());

    // NATS: JetStream is on, and a stream survives a restart.
    let stream = unique_prefix("harness");
    let js = jetstream::new(async_nats::connect(servers.nats.url()).await.unwrap());
    js.create_stream(jetstream::stream::Config {
        name: stream.clone(),
        subjects: vec![format!("{stream}.>")],
        ..Default::default()
    })
    .await
    .unwrap();
    js.publish(format!("{stream}.one"), "hello".into())
        .await
        .unwrap()
        .await
        .unwrap();

    let port = servers.nats.port();
    servers.nats.stop().await.unwrap();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    servers.nats.stop().await.expect("stopping twice is harmless");
    let begun = Instant::now();
    servers.nats.start_again().await.unwrap();
    eprintln!("nats ready again after {:?}", begun.elapsed());
    assert_eq!(servers.nats.port(), port);
    let js = jetstream::new(async_nats::connect(servers.nats.url()).await.unwrap());
    let mut kept = js.get_stream(&stream).await.unwrap();
    assert_eq!(kept.info().await.unwrap().state.messages, 1);
    assert!(servers.nats.start_again().await.is_err(), "already running");

    // Redis: answers before and after a restart.
    assert_eq!(redis_ping(&servers.redis.url()).await, "PONG");
    servers.redis.stop().await.unwrap();
    servers.redis.start_again().await.unwrap();
    assert_eq!(redis_ping(&servers.redis.url()).await, "PONG");

    // S3: an object survives a restart on the same ports and directory (signed
    // requests: the gateway refuses anonymous ones).
    let store = ClaimCheckStore::new(&claim_store::config(servers.s3.endpoint(), &stream, SECRET_ACCESS_KEY))
        .await
        .unwrap();
    store.ensure_bucket().await.unwrap();
    store.put("kept", Bytes::from_static(b"body")).await.unwrap();
    servers.s3.stop().await.unwrap();
    let begun = Instant::now();
    servers.s3.start_again().await.unwrap();
    eprintln!("s3 ready again after {:?}", begun.elapsed());
    assert_eq!(&store.get("kept").await.unwrap()[..], b"body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_servers_start_once_and_answer() {
    let servers = shared().await;
    assert!(std::ptr::eq(servers, shared().await));

    let client = async_nats::connect(servers.nats.url()).await.unwrap();
    client.flush().await.unwrap();
    assert_eq!(redis_ping(&servers.redis.url()).await, "PONG");
    let listing = reqwest::get(servers.s3.endpoint()).await.unwrap();
    assert_eq!(listing.status(), 200);
}

#[tokio::test]
async fn waits_are_bounded_and_say_what_they_waited_for() {
    let begun = Instant::now();
    let err = wait_until("the impossible", Duration::from_millis(100), || async { false })
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("the impossible") && err.contains("100ms"), "{err}");
    assert!(begun.elapsed() < Duration::from_secs(2));

    // An attempt that hangs is cut off at the deadline too.
    let hangs = wait_until("a hang", Duration::from_millis(100), || async {
        std::future::pending::<bool>().await
    });
    assert!(hangs.await.is_err());

    let mut calls = 0;
    let third = wait_for("the third call", Duration::from_secs(5), || {
        calls += 1;
        let n = calls;
        async move { (n == 3).then_some(n) }
    })
    .await
    .unwrap();
    assert_eq!(third, 3);
}

#[test]
fn unique_prefixes_are_distinct_and_safe_everywhere() {
    let names: Vec<String> = (0..1000).map(|_| unique_prefix("Out-age!")).collect();
    for name in &names {
        assert!(name.len() <= 12, "{name}");
        assert!(name.starts_with("tout"), "{name}");
        assert!(
            name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            "{name}"
        );
    }
    let mut distinct = names.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), names.len());
    assert_eq!(unique_prefix("").len(), 9);
}

async fn redis_ping(url: &str) -> String {
    let client = redis::Client::open(url).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("PING").query_async(&mut connection).await.unwrap()
}
