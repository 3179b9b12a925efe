//! The normalizer's `/readyz` follows what it needs: S3 (every event's body is there)
//! makes it unready when down; Redis only degraded (events route by their envelopes).

use std::time::Duration;

use switchyard_tests::{wait_until, Servers};

use crate::pipeline::{config_for, Pipeline};

async fn readyz(p: &Pipeline) -> (u16, String) {
    match p.http.get(format!("http://{}/readyz", p.normalizer_ops)).send().await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_normalizer_is_unready_without_s3_and_degraded_without_redis() {
    let mut servers = Servers::start().await.unwrap();
    let p = Pipeline::start(config_for(&servers.nats, &servers.redis, &servers.s3, "ready"))
        .await
        .unwrap();
    let wait = Duration::from_secs(30);
    wait_until("the normalizer to be ready", wait, || async {
        readyz(&p).await.0 == 200
    })
    .await
    .unwrap();

    servers.s3.stop().await.unwrap();
    wait_until("/readyz to say S3 is down", wait, || async {
        let (status, body) = readyz(&p).await;
        status == 503 && body.contains("s3")
    })
    .await
    .unwrap();
    servers.s3.start_again().await.unwrap();
    wait_until("/readyz to recover", wait, || async { readyz(&p).await.0 == 200 })
        .await
        .unwrap();

    servers.redis.stop().await.unwrap();
    wait_until("/readyz to say degraded", wait, || async {
        let (status, body) = readyz(&p).await;
        status == 200 && body.contains("degraded") && body.contains("redis")
    })
    .await
    .unwrap();
    servers.redis.start_again().await.unwrap();
    p.stop().await;
}
