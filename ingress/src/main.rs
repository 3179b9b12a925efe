//! `switchyard-ingress`: receive, verify and durably store provider webhooks.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use switchyard_core::config::Config;

/// mimalloc rather than glibc's malloc: each webhook allocates and frees many small
/// buffers (headers, envelopes, keys) and glibc's allocator, with its consolidation
/// passes, took about a tenth of the ingress's CPU (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(version, about = "Receive, verify and durably store provider webhooks.")]
struct Args {
    /// Configuration file (TOML); every key can also be set as SWITCHYARD_<SECTION>__<KEY>.
    #[arg(long, env = "SWITCHYARD_CONFIG")]
    config: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = Config::load(args.config.as_deref())?;
    // One thread by default: a webhook's hops (connection → committer → S3, NATS, Redis
    // clients → answer) then never wake a parked thread, which costs more CPU than the
    // work itself at these rates (`ingress.worker_threads`).
    let runtime =
        switchyard_core::shutdown::runtime(config.ingress.worker_threads).context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    switchyard_core::telemetry::init_logging(&config.telemetry);
    let (addr, ops) = (config.ingress.listen, config.ingress.ops_listen);
    let public = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on ingress.listen = {addr}; is another process using it?"))?;
    let ops = tokio::net::TcpListener::bind(ops)
        .await
        .with_context(|| format!("cannot listen on ingress.ops_listen = {ops}; is another process using it?"))?;
    let shutdown = switchyard_core::shutdown::on_signal();
    switchyard_ingress::run(config, switchyard_ingress::Listeners { public, ops }, shutdown).await?;
    Ok(())
}
