//! The operator's tools behind `switchyard dlq …` and `switchyard replay …`, as a library
//! so the end-to-end tests drive the same code against a running pipeline.
//!
//! # Layout
//! - [`dlq`]: reading the dead-letter stream (an ordered consumer: it disturbs nothing),
//!   one dead letter by sequence, deleting one.
//! - [`filter`]: which dead letters (tenant, endpoint, connector, type, reason, stage,
//!   time range), and the time and rate arguments.
//! - [`requeue`]: what a dead letter becomes when replayed (pure).
//! - [`replay`]: `dlq replay` and `dlq purge`: rate-limited, interruptible, deleting a
//!   dead letter only after its re-queue is acknowledged.
//! - [`raw`]: `replay raw`: raw bodies from S3 back through the current mappings.
//! - [`progress`]: outcomes, the summary, the progress bar or plain lines, `--rate`.
//! - [`commands`]: the command lines and their text or JSON output.
//! - [`stdout`]: `outln!`, printing that ends quietly when the reader goes (`| head`).
//!
//! See `docs/replay.md` for the operator's view, including which ids replayed events
//! carry.

pub mod commands;
pub mod dlq;
pub mod filter;
pub mod progress;
pub mod raw;
pub mod replay;
pub mod requeue;
pub mod stdout;
