//! `switchyard-normalizer`: turn raw provider events into unified events. The start-up
//! is the one every binary shares ([`switchyard_core::service`]).

use switchyard_core::service::Binary;

/// mimalloc rather than glibc's malloc: every event builds and drops many small values
/// (parsed JSON, the engine's values, the unified event), and glibc's allocator took
/// about a fifth of the normalizer's CPU (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    Binary {
        name: "switchyard-normalizer",
        about: "Turn raw provider events into unified events.",
        // One thread by default (`normalizer.worker_threads`): fetching, mapping and
        // publishing an event then never wake a parked thread.
        worker_threads: |c| c.normalizer.worker_threads,
        listen: [("normalizer.ops_listen", |c| c.normalizer.ops_listen)],
    }
    .main(|config, [ops], shutdown| switchyard_normalizer::run(config, ops, shutdown))?;
    Ok(())
}
