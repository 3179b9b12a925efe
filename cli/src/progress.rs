//! How a long-running command reports: the per-item outcomes and the summary every run
//! ends with, a progress bar (counts and ETA) on a terminal or one plain line per item
//! otherwise, and the `--rate` pacing.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// What happened to one item.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The dead letter's stream sequence, or the raw event's idempotency key.
    pub id: String,
    /// `replayed`, `purged`, `published`, `would replay`, `would purge`, `would publish`,
    /// `skipped`, `failed`.
    pub action: String,
    /// Where it went (a subject), when it went somewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Why it was skipped or failed, or the message id it was published with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The end of every run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// What `done` counts: `replayed`, `purged` or `published`.
    #[serde(skip)]
    pub verb: &'static str,
    pub matched: usize,
    pub done: usize,
    pub skipped: usize,
    pub failed: usize,
    pub dry_run: bool,
    /// Stopped early (Ctrl-C); what was done stays done, a re-run does the rest.
    pub interrupted: bool,
    pub items: Vec<Outcome>,
}

impl Summary {
    pub fn new(verb: &'static str, dry_run: bool) -> Self {
        Self {
            verb,
            matched: 0,
            done: 0,
            skipped: 0,
            failed: 0,
            dry_run,
            interrupted: false,
            items: Vec::new(),
        }
    }

    /// Count and keep one outcome.
    pub fn record(&mut self, outcome: Outcome) {
        match outcome.action.as_str() {
            "skipped" => self.skipped += 1,
            "failed" => self.failed += 1,
            _ => self.done += 1,
        }
        self.items.push(outcome);
    }

    /// `replayed 3, skipped 0, failed 0` (or `would replay 3, …` for a dry run).
    pub fn line(&self) -> String {
        let verb = if self.dry_run {
            format!("would be {}", self.verb)
        } else {
            self.verb.to_string()
        };
        let mut s = format!(
            "{} matched: {verb} {}, skipped {}, failed {}",
            self.matched, self.done, self.skipped, self.failed
        );
        if self.interrupted {
            s.push_str(" (interrupted: re-run the same command for the rest)");
        }
        s
    }

    /// The JSON for scripts: the counts under their names, and every item.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("a summary serializes");
        let done = v.as_object_mut().and_then(|o| o.remove("done"));
        v[self.verb] = done.unwrap_or_default();
        v
    }
}

/// Where per-item progress goes.
pub trait Progress: Send {
    /// `total` items are about to be handled.
    fn start(&mut self, total: usize);
    fn item(&mut self, outcome: &Outcome);
    fn finish(&mut self);
}

/// Nothing (JSON output, tests).
pub struct Silent;

impl Progress for Silent {
    fn start(&mut self, _: usize) {}
    fn item(&mut self, _: &Outcome) {}
    fn finish(&mut self) {}
}

/// One line per item on standard output: for logs and pipes.
pub struct Lines;

impl Progress for Lines {
    fn start(&mut self, total: usize) {
        crate::outln!("{total} to go");
    }
    fn item(&mut self, o: &Outcome) {
        crate::outln!("{}", describe(o));
    }
    fn finish(&mut self) {}
}

/// A bar with counts and ETA; only skips and failures are printed above it.
pub struct Bar(Option<ProgressBar>);

impl Progress for Bar {
    fn start(&mut self, total: usize) {
        let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stdout());
        bar.set_style(
            ProgressStyle::with_template("{bar:40.cyan/blue} {pos}/{len} {per_sec} ETA {eta} {msg}")
                .expect("a valid template"),
        );
        self.0 = Some(bar);
    }
    fn item(&mut self, o: &Outcome) {
        if let Some(bar) = &self.0 {
            if matches!(o.action.as_str(), "skipped" | "failed") {
                bar.println(describe(o));
            }
            bar.inc(1);
        }
    }
    fn finish(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

/// The progress for text output: a bar when standard output is a terminal.
pub fn for_text() -> Box<dyn Progress> {
    if std::io::stdout().is_terminal() {
        Box::new(Bar(None))
    } else {
        Box::new(Lines)
    }
}

fn describe(o: &Outcome) -> String {
    let mut s = format!("{} {}", o.action, o.id);
    if let Some(t) = &o.target {
        s.push_str(&format!(" -> {t}"));
    }
    if let Some(d) = &o.detail {
        s.push_str(&format!(" ({d})"));
    }
    s
}

/// `--rate`: at most `per_second` items a second, evenly spaced.
pub struct Pace(Option<tokio::time::Interval>);

impl Pace {
    pub fn new(per_second: Option<f64>) -> Self {
        Self(per_second.map(|r| {
            let mut i = tokio::time::interval(Duration::from_secs_f64(1.0 / r));
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        }))
    }

    /// Wait for the next slot.
    pub async fn tick(&mut self) {
        if let Some(i) = &mut self.0 {
            i.tick().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_its_counts() {
        let mut s = Summary::new("replayed", false);
        s.matched = 2;
        s.record(Outcome {
            id: "1".into(),
            action: "replayed".into(),
            target: None,
            detail: None,
        });
        s.record(Outcome {
            id: "2".into(),
            action: "failed".into(),
            target: None,
            detail: Some("no PubAck".into()),
        });
        assert_eq!(s.line(), "2 matched: replayed 1, skipped 0, failed 1");
        let j = s.to_json();
        assert_eq!((j["replayed"].as_u64(), j["failed"].as_u64()), (Some(1), Some(1)));
        assert!(j.get("done").is_none());
    }

    #[test]
    fn the_bar_draws_without_a_terminal() {
        let mut bar = Bar(None);
        bar.start(2);
        for action in ["replayed", "failed"] {
            bar.item(&Outcome {
                id: "1".into(),
                action: action.into(),
                target: None,
                detail: None,
            });
        }
        assert_eq!(bar.0.as_ref().map(|b| b.position()), Some(2));
        bar.finish();
        assert!(bar.0.is_none());
    }
}
