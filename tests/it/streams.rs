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
