//! `switchyard`: the operator's command.
//!
//! - `switchyard sign <connector> --secret S --body FILE`: the signature header(s) a
//!   provider would send, for trying the pipeline with curl.
//! - `switchyard connectors check|test|map`: validate a catalog, run its fixtures, map
//!   one provider body ([`connectors`]).
//! - `switchyard receive`: a receiver that prints deliveries and checks their signatures.
//! - `switchyard dlq list|show|replay|purge` and `switchyard replay raw`: dead letters
//!   and re-drives ([`switchyard_cli`], the library the tests drive too).

mod connectors;
mod receive;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use switchyard_connectors::Catalog;

#[derive(Parser)]
#[command(version, about = "Switchyard's operator command.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the signature header(s) a provider would send for a body.
    Sign {
        /// Connector name, e.g. stripe.
        connector: String,
        /// The signing secret, as registered on the account.
        #[arg(long, env = "SWITCHYARD_SIGN_SECRET")]
        secret: String,
        /// The body file; `-` for standard input.
        #[arg(long, default_value = "-")]
        body: String,
        /// The connector catalog.
        #[arg(long, default_value = "connectors/catalog")]
        catalog: PathBuf,
        /// The URL the request goes to (only schemes that sign the URL use it).
        #[arg(long, default_value = "")]
        url: String,
    },
    /// Receive webhooks and print them, checking Standard Webhooks signatures.
    Receive {
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: std::net::SocketAddr,
        /// The endpoint's `whsec_…` secret; without it signatures are not checked.
        #[arg(long, env = "SWITCHYARD_RECEIVE_SECRET")]
        secret: Option<String>,
        /// Append lines to this file instead of standard output.
        #[arg(long)]
        log: Option<PathBuf>,
    },
    /// Work with connector catalogs.
    Connectors {
        #[command(subcommand)]
        command: connectors::ConnectorsCommand,
    },
    /// See, replay and purge dead letters.
    Dlq {
        #[command(subcommand)]
        command: switchyard_cli::commands::DlqCommand,
    },
    /// Re-drive raw events from S3 through the current mappings.
    Replay {
        #[command(subcommand)]
        command: switchyard_cli::commands::ReplayCommand,
    },
}

fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Sign {
            connector,
            secret,
            body,
            catalog,
            url,
        } => {
            let catalog = Catalog::load_dir(&catalog)?;
            let Some(c) = catalog.get(&connector) else {
                let known: Vec<&str> = catalog.names().collect();
                bail!("unknown connector {connector:?} (known: {})", known.join(", "));
            };
            let bytes = read_body(&body)?;
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            for (name, value) in switchyard_connectors::signature::sign::sign(
                &c.signature,
                &secret,
                &bytes,
                now,
                "POST",
                &url,
                &Default::default(),
            ) {
                switchyard_cli::outln!("{name}: {value}");
            }
        }
        Command::Receive { listen, secret, log } => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(receive::run(listen, secret, log))?;
        }
        Command::Connectors { command } => return connectors::run(command),
        Command::Dlq { command } => return switchyard_cli::commands::run_dlq(command),
        Command::Replay { command } => return switchyard_cli::commands::run_replay(command),
    }
    Ok(ExitCode::SUCCESS)
}

/// A file's bytes; `-` is standard input.
fn read_body(path: &str) -> anyhow::Result<Vec<u8>> {
    if path == "-" {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .context("reading the body from standard input")?;
        Ok(b)
    } else {
        std::fs::read(path).with_context(|| format!("reading the body file {path}"))
    }
}
