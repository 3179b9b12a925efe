//! Streams are declared by every binary at start-up, and binaries start together: a
//! declaration racing another one for the same stream must succeed, not stop the binary.

use switchyard_core::names::Names;
use switchyard_core::nats;
use switchyard_tests::shared;

use crate::pipeline::config_for;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binaries_declaring_the_streams_at_once_all_succeed() {
    let servers = shared().await;
    for round in 0..3 {
        let config = config_for(&servers.nats, &servers.redis, &servers.s3, &format!("streams{round}"));
        let names = Names::new(&config.namespace);
        let declarations: Vec<_> = (0..4)
            .map(|i| {
                let (cfg, names) = (config.nats.clone(), names.clone());
                tokio::spawn(async move { nats::jetstream(&cfg, &names, &format!("racer-{i}")).await.map(|_| ()) })
            })
            .collect();
        for d in declarations {
            d.await
                .unwrap()
                .expect("a racing declaration of the same streams succeeds");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_consumer_declared_again_takes_the_new_limits() {
    let servers = shared().await;
    let config = config_for(&servers.nats, &servers.redis, &servers.s3, "consumers");
    let names = Names::new(&config.namespace);
    let (_nats, js) = nats::jetstream(&config.nats, &names, "consumers").await.unwrap();
    let ack_wait = std::time::Duration::from_secs(30);
    let declare = |max_ack_pending| {
        let (js, names) = (js.clone(), names.clone());
        async move {
            nats::durable_consumer(&js, &names.raw_stream(), "workers", max_ack_pending, ack_wait)
                .await
                .expect("the consumer is declared")
        }
    };
    declare(10).await;
    let racing: Vec<_> = (0..3).map(|_| tokio::spawn(declare(20))).collect();
    for r in racing {
        r.await.unwrap();
    }
    let mut consumer = declare(20).await;
    assert_eq!(consumer.info().await.unwrap().config.max_ack_pending, 20);
}
