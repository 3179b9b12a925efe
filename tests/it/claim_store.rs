//! The claim-check store against an S3 gateway that checks SigV4 signatures (the
//! harness's SeaweedFS): the conformance suite every store passes, listings across
//! continuation pages, a wrong secret refused (never taken for a missing object), and an
//! unreachable endpoint reported promptly.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use switchyard_claimcheck::{conformance, ClaimCheckError, ClaimCheckStore, S3Store};
use switchyard_core::config::S3Config;
use switchyard_core::secret::Secret;
use switchyard_tests::s3::{ACCESS_KEY_ID, SECRET_ACCESS_KEY};
use switchyard_tests::shared;

/// A store configuration for the harness's gateway, with `secret` as the secret key.
pub fn config(endpoint: String, bucket: &str, secret: &str) -> S3Config {
    S3Config {
        endpoint,
        region: "us-east-1".into(),
        bucket: bucket.into(),
        path_style: true,
        access_key_id: ACCESS_KEY_ID.into(),
        secret_access_key: Secret::new(secret),
        timeout_ms: 5_000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seaweedfs_conforms() {
    let servers = shared().await;
    let store = ClaimCheckStore::new(&config(servers.s3.endpoint(), "claims-conformance", SECRET_ACCESS_KEY))
        .await
        .expect("S3 configuration");
    conformance::run(&store, "run/").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_follow_continuation_tokens() {
    let servers = shared().await;
    let cfg = config(servers.s3.endpoint(), "claims-paged", SECRET_ACCESS_KEY);
    let s3 = S3Store::new(&cfg).await.expect("S3 configuration").with_page_keys(2);
    let store = ClaimCheckStore::from_blobs(Arc::new(s3), Duration::from_millis(cfg.timeout_ms));
    store.ensure_bucket().await.expect("bucket");
    // Six keys in pages of two: three pages for the whole listing.
    conformance::listing(&store, "paged/").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_is_unavailable_promptly() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = config(format!("http://127.0.0.1:{port}"), "claims-nowhere", SECRET_ACCESS_KEY);
    cfg.timeout_ms = 1_000;
    let store = ClaimCheckStore::new(&cfg).await.expect("S3 configuration");
    // Refused connections fail at once; with the one retry and its pause, well within
    // the deadline.
    conformance::unreachable(&store, Duration::from_millis(1_500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_refused_not_taken_for_a_missing_object() {
    let servers = shared().await;
    let store = ClaimCheckStore::new(&config(servers.s3.endpoint(), "claims-signed", SECRET_ACCESS_KEY))
        .await
        .expect("S3 configuration");
    store.ensure_bucket().await.expect("bucket");

    let key = "raw/2026-12-05/19/1-ing 1+x-00000001.swy";
    let body = Bytes::from_static(b"0123456789abcdef");
    store.put(key, body.clone()).await.expect("a signed PUT is accepted");
    assert_eq!(store.get(key).await.expect("a signed GET"), body);

    let wrong = ClaimCheckStore::new(&config(servers.s3.endpoint(), "claims-signed", "not-the-secret"))
        .await
        .expect("S3 configuration");
    match wrong.put("raw/refused.swy", Bytes::from_static(b"x")).await {
        Err(ClaimCheckError::Unavailable(text)) => assert!(text.contains("403"), "{text}"),
        other => panic!("a wrong secret must be refused, got {other:?}"),
    }
    match wrong.get(key).await {
        Err(ClaimCheckError::Unavailable(text)) => assert!(text.contains("403"), "{text}"),
        other => panic!("a wrong secret must be refused, got {other:?}"),
    }
}
