//! The `dlq` and `replay` command lines, and printing their results as text or JSON.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use switchyard_core::config::Config;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::dlq::{DeadLetters, Item};
use crate::filter::{parse_rate, parse_time, Filter};
use crate::progress::{self, Progress, Summary};

/// What every `dlq` and `replay` command takes: the binaries' configuration and the
/// output format.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// The configuration file the binaries run with; `SWITCHYARD_<SECTION>__<KEY>`
    /// environment variables apply on top, as for the binaries.
    #[arg(long, env = "SWITCHYARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// `json` for scripts: one JSON document on standard output.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

/// The stage a dead letter comes from (the `<stage>` of `<ns>.dlq.<stage>.<reason>`).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Failed to become a unified event (unknown account, mapping error, …).
    Normalizer,
    /// Failed to be delivered (retries exhausted, endpoint gone or disabled, …).
    Dispatcher,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Normalizer => "normalizer",
            Stage::Dispatcher => "dispatcher",
        }
    }
}

/// Which dead letters.
#[derive(Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Only this tenant's.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only deliveries to this endpoint (dispatcher dead letters).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Only this connector's events, e.g. stripe.
    #[arg(long)]
    pub connector: Option<String>,
    /// Unified type (dispatcher) or provider type (normalizer); a trailing `*` matches
    /// any depth (`payments.*`), one in the middle one segment.
    #[arg(long)]
    pub event_type: Option<String>,
    /// The error class, e.g. unknown_account, mapping_error, retries_exhausted.
    #[arg(long)]
    pub reason: Option<String>,
    /// Where the event failed.
    #[arg(long, value_enum)]
    pub stage: Option<Stage>,
    /// Dead-lettered at or after: RFC 3339, or a duration ago (90s, 30m, 2h, 7d).
    #[arg(long)]
    pub since: Option<String>,
    /// Dead-lettered at or before: RFC 3339, or a duration ago.
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many, oldest first.
    #[arg(long)]
    pub limit: Option<usize>,
}

impl FilterArgs {
    pub fn to_filter(&self, now: OffsetDateTime) -> anyhow::Result<Filter> {
        let time = |s: &Option<String>, flag: &str| {
            s.as_deref()
                .map(|s| parse_time(s, now).map_err(|e| anyhow::anyhow!("--{flag}: {e}")))
                .transpose()
        };
        Ok(Filter {
            tenant: self.tenant.clone(),
            endpoint: self.endpoint.clone(),
            connector: self.connector.clone(),
            event_type: self.event_type.clone(),
            reason: self.reason.clone(),
            stage: self.stage.map(|s| s.as_str().to_string()),
            since: time(&self.since, "since")?,
            until: time(&self.until, "until")?,
            limit: self.limit,
        })
    }
}

#[derive(Subcommand, Debug)]
pub enum DlqCommand {
    /// List dead letters (oldest first); the SEQ column is the id the other commands take.
    List {
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        common: Common,
    },
    /// One dead letter in full: its reason, detail, event or envelope and every attempt.
    Show {
        /// The stream sequence (from `list`) or the dead letter's own id.
        id: String,
        #[command(flatten)]
        common: Common,
    },
    /// Put dead letters back where they failed, then remove them.
    ///
    /// A dispatcher dead letter is delivered again: attempt 1, the same event and so the
    /// same webhook-id (a receiver that has it dedupes). A normalizer dead letter goes
    /// through the normalizer again with the catalog and accounts as they are now: fix
    /// the mapping or register the account first. A dead letter leaves the stream only
    /// once its re-queue is acknowledged, so an interrupted replay can be run again. A
    /// replay that fails again is dead-lettered again. See docs/replay.md.
    Replay {
        #[command(flatten)]
        filter: FilterArgs,
        /// Print what would be replayed; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// At most this many a second: 20/s, 600/m.
        #[arg(long, value_parser = parse_rate)]
        rate: Option<f64>,
        #[command(flatten)]
        common: Common,
    },
    /// Delete dead letters for good.
    Purge {
        #[command(flatten)]
        filter: FilterArgs,
        /// Print what would be deleted; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Required to purge without any filter.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand, Debug)]
pub enum ReplayCommand {
    /// Re-drive raw bodies still in S3 through the current mappings (backfill).
    ///
    /// Every body of the connector (and account) received in the time range is read
    /// from its claim-check segment, its events extracted as the ingress did, and one raw
    /// envelope per event published for the normalizer, which maps it with its current
    /// catalog. Re-driven events keep their provider event id, hence their unified event
    /// id and webhook-id: receivers dedupe what they already have, and the unified stream
    /// drops an event normalized within its duplicate window. `--new-ids` gives them new
    /// ids instead. See docs/replay.md.
    Raw {
        /// The connector whose events to re-drive, e.g. stripe.
        #[arg(long)]
        connector: String,
        /// Bodies received at or after: RFC 3339, or a duration ago (2h, 7d).
        #[arg(long)]
        since: String,
        /// Bodies received at or before (default: now).
        #[arg(long)]
        until: Option<String>,
        /// Only this account: its id, or for connector-level URLs the provider's account id.
        #[arg(long)]
        account: Option<String>,
        /// Print what would be published; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// At most this many a second: 20/s, 600/m.
        #[arg(long, value_parser = parse_rate)]
        rate: Option<f64>,
        /// New provider event ids (`<id>#redrive-<run>`), hence new unified ids and
        /// webhook-ids: receivers take them as new events. For a fix that changes
        /// events already delivered; without it receivers drop them as duplicates.
        #[arg(long)]
        new_ids: bool,
        #[command(flatten)]
        common: Common,
    },
}

pub fn run_dlq(command: DlqCommand) -> anyhow::Result<ExitCode> {
    block_on(async move {
        let now = OffsetDateTime::now_utc();
        match command {
            DlqCommand::List { filter, common } => {
                let dlq = DeadLetters::open(&load(&common)?).await?;
                let listing = dlq.list(&filter.to_filter(now)?).await?;
                for seq in &listing.unreadable {
                    eprintln!("warning: message {seq} of the dead-letter stream is not a dead letter");
                }
                print_list(&listing.items, common.output);
                Ok(ExitCode::SUCCESS)
            }
            DlqCommand::Show { id, common } => {
                let dlq = DeadLetters::open(&load(&common)?).await?;
                let Some(item) = dlq.get(&id).await? else {
                    bail!("no dead letter {id}");
                };
                match common.output {
                    Output::Json => crate::outln!("{}", serde_json::to_string_pretty(&item)?),
                    Output::Text => {
                        crate::outln!(
                            "seq {}  dead-lettered {}  subject {}",
                            item.seq,
                            rfc3339(item.stored_at),
                            item.subject
                        );
                        crate::outln!("{}", serde_json::to_string_pretty(&item.letter)?);
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            DlqCommand::Replay {
                filter,
                dry_run,
                rate,
                common,
            } => {
                let dlq = DeadLetters::open(&load(&common)?).await?;
                let opts = crate::replay::Options { dry_run, rate };
                let filter = filter.to_filter(now)?;
                let (stop, mut progress) = (interrupt(), progress_for(common.output));
                let s = crate::replay::replay(&dlq, &filter, &opts, progress.as_mut(), &stop).await?;
                Ok(finish(&s, common.output))
            }
            DlqCommand::Purge {
                filter,
                dry_run,
                all,
                common,
            } => {
                let filter = filter.to_filter(now)?;
                if filter.is_empty() && !all {
                    bail!("purge without a filter deletes every dead letter: add --all to mean it");
                }
                let dlq = DeadLetters::open(&load(&common)?).await?;
                let (stop, mut progress) = (interrupt(), progress_for(common.output));
                let s = crate::replay::purge(&dlq, &filter, dry_run, progress.as_mut(), &stop).await?;
                Ok(finish(&s, common.output))
            }
        }
    })
}

pub fn run_replay(command: ReplayCommand) -> anyhow::Result<ExitCode> {
    block_on(async move {
        let now = OffsetDateTime::now_utc();
        let ReplayCommand::Raw {
            connector,
            since,
            until,
            account,
            dry_run,
            rate,
            new_ids,
            common,
        } = command;
        let opts = crate::raw::Options {
            connector,
            account,
            since: parse_time(&since, now).map_err(|e| anyhow::anyhow!("--since: {e}"))?,
            until: match until {
                Some(u) => parse_time(&u, now).map_err(|e| anyhow::anyhow!("--until: {e}"))?,
                None => now,
            },
            dry_run,
            rate,
            new_ids,
        };
        let config = load(&common)?;
        let (stop, mut progress) = (interrupt(), progress_for(common.output));
        let s = crate::raw::replay_raw(&config, &opts, progress.as_mut(), &stop).await?;
        Ok(finish(&s, common.output))
    })
}

fn block_on<F: std::future::Future<Output = anyhow::Result<ExitCode>>>(f: F) -> anyhow::Result<ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(f)
}

fn load(common: &Common) -> anyhow::Result<Config> {
    Ok(Config::load(common.config.as_deref())?)
}

/// Cancelled on the first Ctrl-C: the command stops after the item in hand. A second
/// Ctrl-C exits at once (still safe: a dead letter is removed only after its re-queue
/// is acknowledged).
fn interrupt() -> CancellationToken {
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("Interrupted: stopping after the current item (Ctrl-C again to quit now).");
            s.cancel();
        }
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });
    stop
}

fn progress_for(output: Output) -> Box<dyn Progress> {
    match output {
        Output::Json => Box::new(progress::Silent),
        Output::Text => progress::for_text(),
    }
}

/// Print the summary; exit 1 when something failed.
fn finish(s: &Summary, output: Output) -> ExitCode {
    match output {
        Output::Json => crate::outln!("{}", s.to_json()),
        Output::Text => crate::outln!("{}", s.line()),
    }
    if s.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn print_list(items: &[Item], output: Output) {
    if output == Output::Json {
        crate::outln!("{}", serde_json::to_string_pretty(items).expect("items serialize"));
        return;
    }
    crate::outln!(
        "{:<8} {:<24} {:<10} {:<20} {:<14} {:<12} {:<14} {:<28} DETAIL",
        "SEQ",
        "DEAD-LETTERED",
        "STAGE",
        "REASON",
        "TENANT",
        "CONNECTOR",
        "ENDPOINT",
        "EVENT TYPE"
    );
    for i in items {
        let l = &i.letter;
        let tenant = l.tenant_id.as_deref().filter(|t| !t.is_empty()).unwrap_or("-");
        let event_type = l
            .event_type
            .as_deref()
            .or(l.envelope.as_ref().map(|e| e.event_type.as_str()))
            .unwrap_or("-");
        let mut detail = l.detail.clone();
        if detail.len() > 100 {
            detail.truncate(detail.floor_char_boundary(100));
            detail.push('…');
        }
        crate::outln!(
            "{:<8} {:<24} {:<10} {:<20} {:<14} {:<12} {:<14} {:<28} {detail}",
            i.seq,
            rfc3339(i.stored_at),
            l.stage,
            l.reason,
            tenant,
            l.connector,
            l.endpoint_id.as_deref().unwrap_or("-"),
            event_type,
        );
    }
    crate::outln!("{} dead letter(s)", items.len());
}

fn rfc3339(t: OffsetDateTime) -> String {
    switchyard_core::timefmt::rfc3339(t)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        dlq: DlqCommand,
    }

    #[test]
    fn replay_arguments_parse() {
        let cli = Cli::try_parse_from([
            "dlq",
            "replay",
            "--reason",
            "unknown_account",
            "--since",
            "2h",
            "--rate",
            "5/s",
            "--dry-run",
            "--output",
            "json",
        ])
        .unwrap();
        let DlqCommand::Replay {
            filter,
            dry_run,
            rate,
            common,
        } = cli.dlq
        else {
            panic!("not a replay");
        };
        assert!(dry_run);
        assert_eq!(rate, Some(5.0));
        assert_eq!(common.output, Output::Json);
        let now = OffsetDateTime::now_utc();
        let f = filter.to_filter(now).unwrap();
        assert_eq!(f.reason.as_deref(), Some("unknown_account"));
        assert_eq!(f.since, Some(now - time::Duration::hours(2)));
        assert!(Cli::try_parse_from(["dlq", "replay", "--rate", "fast"]).is_err());
        // An unknown stage is refused, naming the ones there are.
        let unknown = Cli::try_parse_from(["dlq", "list", "--stage", "foo"])
            .err()
            .expect("--stage foo is refused")
            .to_string();
        assert!(
            unknown.contains("foo") && unknown.contains("normalizer") && unknown.contains("dispatcher"),
            "{unknown}"
        );
        let Ok(Cli {
            dlq: DlqCommand::List { filter, .. },
        }) = Cli::try_parse_from(["dlq", "list", "--stage", "dispatcher"])
        else {
            panic!("--stage dispatcher is a list");
        };
        assert_eq!(filter.to_filter(now).unwrap().stage.as_deref(), Some("dispatcher"));
        let bad = FilterArgs {
            until: Some("soon".into()),
            ..Default::default()
        };
        assert!(bad.to_filter(now).unwrap_err().to_string().contains("--until"));
    }
}
