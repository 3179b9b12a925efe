//! `switchyard-ingress`: receive, verify and durably store provider webhooks. The
//! start-up is the one every binary shares ([`switchyard_core::service`]).

use switchyard_core::service::Binary;
use switchyard_ingress::Listeners;

/// mimalloc rather than glibc's malloc: each webhook allocates and frees many small
/// buffers (headers, envelopes, keys) and glibc's allocator, with its consolidation
/// passes, took about a tenth of the ingress's CPU (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    Binary {
        name: "switchyard-ingress",
        about: "Receive, verify and durably store provider webhooks.",
        // One thread by default: a webhook's hops (connection → committer → S3, NATS,
        // Redis clients → answer) then never wake a parked thread, which costs more CPU
        // than the work itself at these rates (`ingress.worker_threads`).
        worker_threads: |c| c.ingress.worker_threads,
        listen: [
            ("ingress.listen", |c| c.ingress.listen),
            ("ingress.ops_listen", |c| c.ingress.ops_listen),
        ],
    }
    .main(|config, [public, ops], shutdown| switchyard_ingress::run(config, Listeners { public, ops }, shutdown))?;
    Ok(())
}
