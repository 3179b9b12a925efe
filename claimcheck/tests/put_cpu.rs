//! EXPERIMENT, to be deleted: CPU of this process per segment PUT, for each S3 client,
//! against the harness's SeaweedFS. One current-thread runtime, so every task of the
//! client (connection tasks included) runs on the measured thread.
//!
//! `cargo test --release -p switchyard-claimcheck --features object-store-experiment --test put_cpu -- --ignored --nocapture`
#![cfg(feature = "object-store-experiment")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use switchyard_claimcheck::objstore::ObjectStoreS3;
use switchyard_claimcheck::{ClaimCheckStore, S3Store};
use switchyard_core::config::S3Config;
use switchyard_core::secret::Secret;

const PUTS: usize = 4000;
const TASKS: usize = 8;

fn thread_cpu() -> Duration {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    Duration::from_nanos(s.split_whitespace().next().unwrap().parse().unwrap())
}

async fn measure(name: &str, store: ClaimCheckStore, round: usize) {
    let body = Bytes::from(vec![b'x'; 12_000]);
    let put = |store: ClaimCheckStore, i: usize, body: Bytes| async move {
        let metadata = vec![
            ("connectors", "stripe".to_string()),
            ("records", "5".to_string()),
            ("instance", "bench".to_string()),
        ];
        store
            .put_with_metadata(&format!("raw/{name}/{round}/{i:08}.swy"), body, metadata)
            .await
            .unwrap();
    };
    for i in 0..100 {
        put(store.clone(), i, body.clone()).await;
    }
    let (cpu0, wall0) = (thread_cpu(), Instant::now());
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (store, body) = (store.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..PUTS / TASKS {
                put(store.clone(), 1000 + t * PUTS + i, body.clone()).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (cpu, wall) = (thread_cpu() - cpu0, wall0.elapsed());
    println!(
        "{name:>12} round {round}: {:.1} µs CPU per PUT, {:.2} ms wall per PUT per task ({PUTS} PUTs of 12 kB, {TASKS} at a time)",
        cpu.as_secs_f64() * 1e6 / PUTS as f64,
        wall.as_secs_f64() * 1e3 * TASKS as f64 / PUTS as f64
    );
}

#[test]
#[ignore = "a measurement, not a test"]
fn cpu_per_put() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let servers = switchyard_tests::shared().await;
        let cfg = S3Config {
            endpoint: servers.s3.endpoint(),
            region: "us-east-1".into(),
            bucket: "put-cpu".into(),
            path_style: true,
            access_key_id: switchyard_tests::s3::ACCESS_KEY_ID.into(),
            secret_access_key: Secret::new(switchyard_tests::s3::SECRET_ACCESS_KEY),
            timeout_ms: 5_000,
        };
        let timeout = Duration::from_secs(5);
        let direct = ClaimCheckStore::from_blobs(Arc::new(S3Store::new(&cfg).await.unwrap()), timeout);
        let objstore = ClaimCheckStore::from_blobs(Arc::new(ObjectStoreS3::new(&cfg).await.unwrap()), timeout);
        direct.ensure_bucket().await.unwrap();
        for round in 0..3 {
            measure("direct", direct.clone(), round).await;
            measure("object_store", objstore.clone(), round).await;
        }
    });
}
