//! The one conformance suite every [`BlobStore`](crate::BlobStore) passes, through the
//! [`ClaimCheckStore`] callers hold: run against [`crate::MemoryStore`] by this crate's
//! unit tests and against the harness's SeaweedFS by `tests/it/claim_store.rs`. What it
//! asserts is the list of guarantees in [`crate::blob`], so a caller's unit test on memory
//! relies on nothing S3 does not do.
//!
//! The functions panic on the first broken guarantee, naming it, as a test does.

use std::time::{Duration, Instant};

use bytes::Bytes;
use switchyard_core::envelope::ClaimRef;

use crate::{ClaimCheckError, ClaimCheckStore};

/// Every check, on keys under `prefix` (unique to the run: the listing checks expect to
/// find only their own keys there). The store's bucket need not exist yet.
pub async fn run(store: &ClaimCheckStore, prefix: &str) {
    ensure_bucket_is_idempotent(store).await;
    round_trip(store, prefix).await;
    ranged_reads(store, prefix).await;
    missing_keys(store, prefix).await;
    metadata(store, prefix).await;
    listing(store, prefix).await;
}

pub async fn ensure_bucket_is_idempotent(store: &ClaimCheckStore) {
    store.ensure_bucket().await.expect("creating the bucket");
    store
        .ensure_bucket()
        .await
        .expect("ensure_bucket of an existing bucket");
    store.probe().await.expect("the probe of an existing bucket");
}

pub async fn round_trip(store: &ClaimCheckStore, prefix: &str) {
    // Characters that must be escaped in a signed path.
    let key = format!("{prefix}round trip/ü+x=1&y.swy");
    let body = Bytes::from_static(b"0123456789abcdef");
    store.put(&key, body.clone()).await.expect("PUT");
    assert_eq!(store.get(&key).await.expect("GET"), body, "a GET returns what was PUT");
    // The same bytes again under the same key: what a retried PUT does.
    store.put(&key, body.clone()).await.expect("PUT again");
    assert_eq!(store.get(&key).await.expect("GET"), body);
    let empty = format!("{prefix}empty");
    store.put(&empty, Bytes::new()).await.expect("PUT of an empty object");
    assert!(store.get(&empty).await.expect("GET of an empty object").is_empty());
}

pub async fn ranged_reads(store: &ClaimCheckStore, prefix: &str) {
    let key = format!("{prefix}ranged");
    let body: Bytes = (0u8..=255).collect::<Vec<u8>>().into();
    store.put(&key, body.clone()).await.expect("PUT");
    let claim = |offset: u64, len: u64| ClaimRef {
        key: key.clone(),
        offset,
        len,
    };
    for (offset, len) in [(0, 1), (4, 6), (0, 256), (255, 1), (100, 0)] {
        let got = store.get_claim(&claim(offset, len)).await.expect("a ranged GET");
        assert_eq!(
            got,
            body.slice(offset as usize..(offset + len) as usize),
            "bytes {offset}+{len}"
        );
    }
    for (offset, len) in [(250, 10), (256, 1), (10_000, 5), (u64::MAX, 2)] {
        match store.get_claim(&claim(offset, len)).await {
            Err(ClaimCheckError::Corrupt { key: k, .. }) => assert_eq!(k, key),
            other => panic!("a claim {offset}+{len} past the object's end must be corrupt, got {other:?}"),
        }
    }
}

pub async fn missing_keys(store: &ClaimCheckStore, prefix: &str) {
    let key = format!("{prefix}never-written.swy");
    let claim = ClaimRef {
        key: key.clone(),
        offset: 0,
        len: 4,
    };
    assert!(matches!(store.get(&key).await, Err(ClaimCheckError::NotFound(k)) if k == key));
    assert!(matches!(
        store.get_claim(&claim).await,
        Err(ClaimCheckError::NotFound(_))
    ));
    assert!(matches!(store.head(&key).await, Err(ClaimCheckError::NotFound(_))));
}

pub async fn metadata(store: &ClaimCheckStore, prefix: &str) {
    let key = format!("{prefix}with-metadata");
    let written = vec![
        ("records", "2".to_string()),
        ("connectors", "github,stripe".to_string()),
    ];
    store
        .put_with_metadata(&key, Bytes::from_static(b"abc"), written)
        .await
        .expect("PUT with metadata");
    let info = store.head(&key).await.expect("HEAD");
    assert_eq!(info.size, 3);
    assert_eq!(
        info.metadata,
        vec![
            ("connectors".to_string(), "github,stripe".to_string()),
            ("records".to_string(), "2".to_string())
        ],
        "metadata reads back, sorted by name"
    );
}

pub async fn listing(store: &ClaimCheckStore, prefix: &str) {
    let dir = format!("{prefix}list/");
    // Written out of order; `b` and `b0` test byte order, `bb/` a deeper level.
    let names = ["c", "a", "bb/x", "b0", "b", "d"];
    for name in names {
        store
            .put(&format!("{dir}{name}"), Bytes::from_static(b"x"))
            .await
            .expect("PUT");
    }
    // A sibling that shares the prefix's text but not its folder.
    store
        .put(&format!("{prefix}listing-sibling"), Bytes::from_static(b"x"))
        .await
        .expect("PUT");
    let all: Vec<String> = ["a", "b", "b0", "bb/x", "c", "d"]
        .iter()
        .map(|n| format!("{dir}{n}"))
        .collect();
    assert_eq!(
        store.list(&dir, usize::MAX).await.expect("LIST"),
        all,
        "every key, in byte order"
    );
    assert_eq!(store.list(&dir, 4).await.expect("LIST"), all[..4], "at most the limit");
    assert!(store.list(&dir, 0).await.expect("LIST").is_empty());
    assert_eq!(
        store.list(&format!("{dir}b"), usize::MAX).await.expect("LIST"),
        all[1..4],
        "a prefix need not end at a folder"
    );
    assert!(store
        .list(&format!("{prefix}nothing-here/"), usize::MAX)
        .await
        .expect("LIST")
        .is_empty());
}

/// For a store that cannot be reached: every call fails `Unavailable` or `Timeout`, each
/// within `within`, never `NotFound` and never a hang.
pub async fn unreachable(store: &ClaimCheckStore, within: Duration) {
    let claim = ClaimRef {
        key: "raw/k".into(),
        offset: 0,
        len: 1,
    };
    let outcomes: Vec<(&str, Result<(), ClaimCheckError>, Duration)> = vec![
        timed("probe", store.probe()).await,
        timed("ensure_bucket", store.ensure_bucket()).await,
        timed("put", store.put("raw/k", Bytes::from_static(b"x"))).await,
        timed("get", async { store.get("raw/k").await.map(drop) }).await,
        timed("get_claim", async { store.get_claim(&claim).await.map(drop) }).await,
        timed("head", async { store.head("raw/k").await.map(drop) }).await,
        timed("list", async { store.list("raw/", 10).await.map(drop) }).await,
    ];
    for (call, outcome, took) in outcomes {
        assert!(
            matches!(
                outcome,
                Err(ClaimCheckError::Unavailable(_) | ClaimCheckError::Timeout(_))
            ),
            "{call} of an unreachable store must be Unavailable or Timeout, got {outcome:?}"
        );
        assert!(
            took <= within,
            "{call} of an unreachable store took {took:?}, more than {within:?}"
        );
    }
}

async fn timed(
    call: &str,
    f: impl std::future::Future<Output = Result<(), ClaimCheckError>>,
) -> (&str, Result<(), ClaimCheckError>, Duration) {
    let started = Instant::now();
    let outcome = f.await;
    (call, outcome, started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_store_conforms() {
        let (store, _) = ClaimCheckStore::in_memory("conformance", Duration::from_secs(1));
        run(&store, "run/").await;
    }

    #[tokio::test]
    async fn a_memory_store_switched_down_is_unavailable() {
        let (store, memory) = ClaimCheckStore::in_memory("conformance", Duration::from_secs(1));
        store.ensure_bucket().await.unwrap();
        store.put("raw/k", Bytes::from_static(b"x")).await.unwrap();
        memory.set_down(true);
        unreachable(&store, Duration::from_millis(100)).await;
        memory.set_down(false);
        assert_eq!(&store.get("raw/k").await.unwrap()[..], b"x", "nothing stored is lost");
    }

    #[tokio::test]
    async fn objects_need_the_bucket() {
        let (store, _) = ClaimCheckStore::in_memory("conformance", Duration::from_secs(1));
        assert!(matches!(store.probe().await, Err(ClaimCheckError::Unavailable(_))));
        assert!(matches!(store.get("k").await, Err(ClaimCheckError::Unavailable(_))));
    }
}
