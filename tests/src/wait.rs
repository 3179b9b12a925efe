//! Bounded waiting: poll a condition every [`POLL_INTERVAL`] until it holds
//! or a deadline passes. Tests use [`wait_until`] / [`wait_for`] instead of
//! sleeping; the harness's readiness probes use the blocking twin
//! [`poll_blocking`], which runs on plain threads so that a server started for
//! [`crate::shared`] depends on no test's runtime.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::bail;

/// How often conditions are polled. Short, so a ready server is noticed fast;
/// this is the only sleep the harness does while waiting.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Polls `f` until it returns `true`, or fails after `deadline`.
///
/// Each attempt is itself cut off at the deadline, so a hanging `f` cannot
/// make this wait longer. The error names `what` and the deadline.
pub async fn wait_until<F, Fut>(what: &str, deadline: Duration, mut f: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for(what, deadline, || {
        let attempt = f();
        async move { attempt.await.then_some(()) }
    })
    .await
}

/// Polls `f` until it returns `Some(value)` and returns that value, or fails
/// after `deadline` with an error naming `what` and the deadline.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Ok(Some(value)) = tokio::time::timeout_at(end, f()).await {
            return Ok(value);
        }
        let now = tokio::time::Instant::now();
        if now >= end {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep_until((now + POLL_INTERVAL).min(end)).await;
    }
}

/// Blocking form used by the readiness probes: calls `probe` until it returns
/// `Ok`, `give_up` returns an error (e.g. the server exited), or `deadline`
/// passes. The timeout error carries the last probe error. A single probe must
/// bound its own I/O (socket timeouts); this bounds the number of probes.
pub(crate) fn poll_blocking<T>(
    what: &str,
    deadline: Duration,
    mut give_up: impl FnMut() -> anyhow::Result<()>,
    mut probe: impl FnMut() -> Result<T, String>,
) -> anyhow::Result<T> {
    let end = Instant::now() + deadline;
    loop {
        let last = match probe() {
            Ok(value) => return Ok(value),
            Err(last) => last,
        };
        give_up()?;
        let now = Instant::now();
        if now >= end {
            bail!("timed out after {deadline:?} waiting for {what} (last attempt: {last})");
        }
        std::thread::sleep(POLL_INTERVAL.min(end - now));
    }
}
