//! `dlq replay` and `dlq purge`: act on every matching dead letter, one at a time.
//!
//! # Safe to interrupt and re-run
//! A replayed dead letter is deleted from the stream only after its re-queued message
//! has a PubAck, i.e. once it is durable where it failed. Stopped in between (Ctrl-C,
//! a crash, a lost connection), the dead letter is still there and the next run replays
//! it again under the same message id ([`crate::requeue`]): within JetStream's
//! duplicate window the copy is recognised (a PubAck with `duplicate`, counted as
//! replayed) and not queued twice; after it, the event is delivered once more under
//! the same `webhook-id`, which the receiver dedupes.
//!
//! # A replay that fails again is dead-lettered again
//! Both stages give each failure its own dead-letter id (the normalizer's names the
//! time of the failure, the dispatcher's the last attempt), so a second failure is never
//! taken for a duplicate of the first.

use switchyard_core::timefmt::unix_millis;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::dlq::{DeadLetters, Item};
use crate::filter::Filter;
use crate::progress::{Outcome, Pace, Progress, Summary};
use crate::requeue::requeue;

/// How to go about it.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Say what would happen; change nothing.
    pub dry_run: bool,
    /// At most this many a second.
    pub rate: Option<f64>,
}

/// Replay every dead letter matching `filter`; stops early when `stop` is cancelled.
pub async fn replay(
    dlq: &DeadLetters,
    filter: &Filter,
    opts: &Options,
    progress: &mut dyn Progress,
    stop: &CancellationToken,
) -> anyhow::Result<Summary> {
    let items = dlq.list(filter).await?.items;
    let mut summary = Summary::new("replayed", opts.dry_run);
    summary.matched = items.len();
    progress.start(items.len());
    let mut pace = Pace::new(opts.rate);
    for item in items {
        if !opts.dry_run {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = pace.tick() => {}
            }
        }
        if stop.is_cancelled() {
            summary.interrupted = true;
            break;
        }
        let outcome = replay_one(dlq, &item, opts.dry_run).await;
        progress.item(&outcome);
        summary.record(outcome);
    }
    progress.finish();
    Ok(summary)
}

async fn replay_one(dlq: &DeadLetters, item: &Item, dry_run: bool) -> Outcome {
    let id = item.seq.to_string();
    let now = unix_millis(OffsetDateTime::now_utc());
    let r = match requeue(dlq.names(), &item.letter, item.seq, now) {
        Ok(r) => r,
        Err(e) => return outcome(id, "skipped", None, Some(e.to_string())),
    };
    if dry_run {
        return outcome(
            id,
            "would replay",
            Some(r.subject),
            Some(format!("message id {}", r.msg_id)),
        );
    }
    let target = Some(r.subject.clone());
    let note: Option<String> = None;
    let acked = switchyard_core::publish::durably(dlq.jetstream(), r.subject, r.headers, r.payload).await;
    if let Err(e) = acked {
        // Not re-queued: the dead letter stays for the next run.
        return outcome(id, "failed", target, Some(format!("not re-queued: {e}")));
    }
    // Durable where it failed: only now may the dead letter go.
    match dlq.delete(item.seq).await {
        Ok(_) => outcome(id, "replayed", target, note),
        Err(e) => outcome(
            id,
            "failed",
            target,
            Some(format!(
                "re-queued, but still in the dead letters ({e:#}); a re-run replays it again under the same message id"
            )),
        ),
    }
}

/// Delete every dead letter matching `filter`.
pub async fn purge(
    dlq: &DeadLetters,
    filter: &Filter,
    dry_run: bool,
    progress: &mut dyn Progress,
    stop: &CancellationToken,
) -> anyhow::Result<Summary> {
    let items = dlq.list(filter).await?.items;
    let mut summary = Summary::new("purged", dry_run);
    summary.matched = items.len();
    progress.start(items.len());
    for item in items {
        if stop.is_cancelled() {
            summary.interrupted = true;
            break;
        }
        let id = item.seq.to_string();
        let outcome = if dry_run {
            outcome(id, "would purge", None, Some(item.letter.id))
        } else {
            match dlq.delete(item.seq).await {
                Ok(true) => outcome(id, "purged", None, None),
                Ok(false) => outcome(id, "skipped", None, Some("already gone".into())),
                Err(e) => outcome(id, "failed", None, Some(format!("{e:#}"))),
            }
        };
        progress.item(&outcome);
        summary.record(outcome);
    }
    progress.finish();
    Ok(summary)
}

fn outcome(id: String, action: &str, target: Option<String>, detail: Option<String>) -> Outcome {
    Outcome {
        id,
        action: action.into(),
        target,
        detail,
    }
}
