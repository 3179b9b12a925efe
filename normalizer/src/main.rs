//! `switchyard-normalizer`: turn raw provider events into unified events.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use switchyard_plumbing::config::Config;

#[derive(Parser)]
#[command(version, about = "Turn raw provider events into unified events.")]
struct Args {
    /// Configuration file (TOML); every key can also be set as SWITCHYARD_<SECTION>__<KEY>.
    #[arg(long, env = "SWITCHYARD_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = Config::load(args.config.as_deref())?;
    switchyard_plumbing::telemetry::init_logging(&config.telemetry);
    let addr = config.normalizer.ops_listen;
    let ops = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on normalizer.ops_listen = {addr}; is another process using it?"))?;
    let shutdown = switchyard_plumbing::shutdown::on_signal();
    switchyard_normalizer::run(config, ops, shutdown).await?;
    Ok(())
}
