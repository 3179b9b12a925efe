//! The claim-check store against an S3 gateway that checks SigV4 signatures: segment
//! PUTs and GETs (sent without the SDK's orchestration) are signed as S3 wants them,
//! and a wrong secret is refused, never taken for a missing object.

use bytes::Bytes;
use switchyard_claimcheck::{ClaimCheckError, ClaimCheckStore};
use switchyard_core::config::S3Config;
use switchyard_core::envelope::ClaimRef;
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
async fn signed_puts_and_gets_round_trip_and_a_wrong_secret_is_refused() {
    let servers = shared().await;
    let store = ClaimCheckStore::new(&config(servers.s3.endpoint(), "claims-signed", SECRET_ACCESS_KEY))
        .await
        .expect("S3 configuration");
    store.ensure_bucket().await.expect("bucket");

    // A key with characters that must be escaped in the signed path.
    let key = "raw/2026-12-05/19/1-ing 1+x-00000001.swy";
    let body = Bytes::from_static(b"0123456789abcdef");
    store
        .put_with_metadata(key, body.clone(), vec![("connectors", "stripe,github".into())])
        .await
        .expect("a signed PUT is accepted");
    assert_eq!(store.get(key).await.expect("a signed GET"), body);
    let claim = ClaimRef {
        key: key.into(),
        offset: 4,
        len: 6,
    };
    assert_eq!(&store.get_claim(&claim).await.expect("a ranged GET")[..], b"456789");
    assert!(matches!(
        store.get("raw/never-written.swy").await,
        Err(ClaimCheckError::NotFound(_))
    ));
    // A reference whose end a u64 cannot hold is corrupt, not a panic or a wrapped range.
    let beyond = ClaimRef {
        key: key.into(),
        offset: u64::MAX,
        len: 2,
    };
    assert!(matches!(
        store.get_claim(&beyond).await,
        Err(ClaimCheckError::Corrupt { .. })
    ));

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
