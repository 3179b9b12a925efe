//! `switchyard-normalizer`: turn raw provider events into unified events.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use switchyard_core::config::Config;

/// mimalloc rather than glibc's malloc: every event builds and drops many small values
/// (parsed JSON, the engine's values, the unified event), and glibc's allocator took
/// about a fifth of the normalizer's CPU (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(version, about = "Turn raw provider events into unified events.")]
struct Args {
    /// Configuration file (TOML); every key can also be set as SWITCHYARD_<SECTION>__<KEY>.
    #[arg(long, env = "SWITCHYARD_CONFIG")]
    config: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = Config::load(args.config.as_deref())?;
    // One thread by default (`normalizer.worker_threads`): fetching, mapping and
    // publishing an event then never wake a parked thread.
    let runtime = switchyard_core::shutdown::runtime(config.normalizer.worker_threads)
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    switchyard_core::telemetry::init_logging(&config.telemetry);
    let addr = config.normalizer.ops_listen;
    let ops = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on normalizer.ops_listen = {addr}; is another process using it?"))?;
    let shutdown = switchyard_core::shutdown::on_signal();
    switchyard_normalizer::run(config, ops, shutdown).await?;
    Ok(())
}
