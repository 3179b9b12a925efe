//! What the load generator observed: answers by status, latencies and how late the
//! generator itself was. Only requests *due* inside the measured window count (the
//! warm-up's do not); latencies are kept whole, in microseconds, and percentiles are
//! exact (nearest rank).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// An HTTP answer; `duplicate` when a 200 said `"status":"duplicate"`.
    Status { code: u16, duplicate: bool },
    /// No HTTP answer: `timeout`, `connect`, `request` (the connection failed mid-way).
    Error(&'static str),
}

/// Collects observations from every request task.
pub struct Recorder {
    /// Requests with an index in this range are measured.
    measured: std::ops::Range<usize>,
    samples: Mutex<Samples>,
}

#[derive(Default)]
struct Samples {
    /// 200 answers: due time → answer.
    ack_us: Vec<u32>,
    /// 200 answers: actual send → answer.
    service_us: Vec<u32>,
    /// Every HTTP answer, whatever the status: due time → answer.
    answered_us: Vec<u32>,
    /// Every request sent: due time → actual send.
    lag_us: Vec<u32>,
    waited_for_slot: u64,
    not_sent: u64,
    status: BTreeMap<u16, u64>,
    errors: BTreeMap<&'static str, u64>,
    accepted_new: u64,
    accepted_duplicate: u64,
    /// New events accepted over the whole run, warm-up included.
    run_accepted_new: u64,
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

impl Recorder {
    pub fn new(measured: std::ops::Range<usize>) -> Self {
        let n = measured.len();
        Self {
            measured,
            samples: Mutex::new(Samples {
                ack_us: Vec::with_capacity(n),
                service_us: Vec::with_capacity(n),
                answered_us: Vec::with_capacity(n),
                lag_us: Vec::with_capacity(n),
                ..Samples::default()
            }),
        }
    }

    fn with(&self, f: impl FnOnce(&mut Samples)) {
        // A panic while holding the lock cannot leave the samples half-written in a
        // way that matters here: keep going with what is there.
        let mut s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut s);
    }

    /// Request `i` had to wait for an in-flight slot.
    pub fn waited(&self, i: usize) {
        if self.measured.contains(&i) {
            self.with(|s| s.waited_for_slot += 1);
        }
    }

    /// Request `i` was never sent: no slot freed up in time.
    pub fn not_sent(&self, i: usize) {
        if self.measured.contains(&i) {
            self.with(|s| s.not_sent += 1);
        }
    }

    /// Request `i` was sent `lag` after it was due.
    pub fn sent(&self, i: usize, lag: Duration) {
        if self.measured.contains(&i) {
            self.with(|s| s.lag_us.push(micros(lag)));
        }
    }

    /// Request `i` ended with `answer`, `since_due` after it was due and `since_sent`
    /// after it was sent.
    pub fn answered(&self, i: usize, answer: Answer, since_due: Duration, since_sent: Duration) {
        let measured = self.measured.contains(&i);
        self.with(|s| {
            if matches!(
                answer,
                Answer::Status {
                    code: 200,
                    duplicate: false
                }
            ) {
                s.run_accepted_new += 1;
            }
            if !measured {
                return;
            }
            match answer {
                Answer::Status { code, duplicate } => {
                    *s.status.entry(code).or_default() += 1;
                    s.answered_us.push(micros(since_due));
                    if code == 200 {
                        s.ack_us.push(micros(since_due));
                        s.service_us.push(micros(since_sent));
                        if duplicate {
                            s.accepted_duplicate += 1;
                        } else {
                            s.accepted_new += 1;
                        }
                    }
                }
                Answer::Error(kind) => *s.errors.entry(kind).or_default() += 1,
            }
        });
    }

    pub fn summary(&self) -> Summary {
        let mut s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let status = s.status.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let errors = s.errors.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        Summary {
            due: self.measured.len() as u64,
            sent: s.lag_us.len() as u64,
            waited_for_slot: s.waited_for_slot,
            not_sent: s.not_sent,
            sent_over_1ms_late: s.lag_us.iter().filter(|l| **l > 1_000).count() as u64,
            status,
            errors,
            accepted: s.ack_us.len() as u64,
            accepted_new: s.accepted_new,
            accepted_duplicate: s.accepted_duplicate,
            run_accepted_new: s.run_accepted_new,
            ack_latency: Latency::of(&mut s.ack_us),
            ack_service_time: Latency::of(&mut s.service_us),
            any_answer_latency: Latency::of(&mut s.answered_us),
            send_lag: Latency::of(&mut s.lag_us),
        }
    }
}

/// The measured window's requests.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Requests due in the window.
    pub due: u64,
    pub sent: u64,
    /// Sent only once an in-flight slot freed up (`--max-in-flight` reached).
    pub waited_for_slot: u64,
    /// Never sent: no slot freed up within `--timeout` of the due time.
    pub not_sent: u64,
    /// Sent more than 1 ms after the due time (the generator fell behind).
    pub sent_over_1ms_late: u64,
    /// HTTP answers by status code.
    pub status: BTreeMap<String, u64>,
    /// Requests without an HTTP answer, by kind.
    pub errors: BTreeMap<String, u64>,
    /// 200 answers (new and duplicate).
    pub accepted: u64,
    pub accepted_new: u64,
    pub accepted_duplicate: u64,
    /// 200 answers with new events over the whole run, warm-up included (what the raw
    /// stream should hold).
    pub run_accepted_new: u64,
    /// 200 answers, from the due time: what the provider waits (coordinated omission
    /// avoided: a late send counts against the server).
    pub ack_latency: Option<Latency>,
    /// 200 answers, from the actual send.
    pub ack_service_time: Option<Latency>,
    /// Every HTTP answer whatever its status, from the due time.
    pub any_answer_latency: Option<Latency>,
    /// Due time → actual send: the generator's own delay (timer granularity, CPU).
    pub send_lag: Option<Latency>,
}

/// A latency distribution, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// Sorts `us` in place; `None` when empty.
    pub fn of(us: &mut [u32]) -> Option<Self> {
        if us.is_empty() {
            return None;
        }
        us.sort_unstable();
        let n = us.len();
        // Nearest rank: the smallest value with at least p of the samples at or below.
        let rank = |p: f64| us[((p * n as f64).ceil() as usize).clamp(1, n) - 1] as f64 / 1_000.0;
        let sum: u64 = us.iter().map(|v| u64::from(*v)).sum();
        Some(Self {
            count: n as u64,
            mean_ms: sum as f64 / n as f64 / 1_000.0,
            p50_ms: rank(0.50),
            p90_ms: rank(0.90),
            p95_ms: rank(0.95),
            p99_ms: rank(0.99),
            p999_ms: rank(0.999),
            max_ms: us[n - 1] as f64 / 1_000.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: Vec<u32> = (1..=1_000).map(|i| i * 1_000).collect();
        v.reverse();
        let l = Latency::of(&mut v).unwrap();
        assert_eq!(l.p50_ms, 500.0);
        assert_eq!(l.p99_ms, 990.0);
        assert_eq!(l.p999_ms, 999.0);
        assert_eq!(l.max_ms, 1_000.0);
        assert_eq!(Latency::of(&mut [7_000]).unwrap().p50_ms, 7.0);
        assert!(Latency::of(&mut []).is_none());
    }

    #[test]
    fn only_the_window_is_measured() {
        let r = Recorder::new(10..20);
        let ok = Answer::Status {
            code: 200,
            duplicate: false,
        };
        let ms = Duration::from_millis;
        r.sent(5, ms(0));
        r.answered(5, ok, ms(3), ms(3));
        r.sent(10, ms(2));
        r.answered(10, ok, ms(4), ms(2));
        r.answered(
            11,
            Answer::Status {
                code: 200,
                duplicate: true,
            },
            ms(1),
            ms(1),
        );
        r.answered(
            12,
            Answer::Status {
                code: 503,
                duplicate: false,
            },
            ms(9),
            ms(9),
        );
        r.answered(13, Answer::Error("timeout"), ms(9), ms(9));
        let s = r.summary();
        assert_eq!((s.due, s.sent, s.sent_over_1ms_late), (10, 1, 1));
        assert_eq!((s.accepted, s.accepted_new, s.accepted_duplicate), (2, 1, 1));
        assert_eq!(s.run_accepted_new, 2);
        assert_eq!(s.status.get("503"), Some(&1));
        assert_eq!(s.errors.get("timeout"), Some(&1));
        assert_eq!(s.ack_latency.unwrap().max_ms, 4.0);
    }
}
