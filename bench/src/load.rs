//! The open-model load generator.
//!
//! Request `i` is due at `start + i / rate`, and is sent then whether or not earlier
//! requests have been answered: the arrival rate is what providers impose, not what
//! the server lets through (a closed loop would slow down with the server and hide its
//! stalls). Latency is measured from the due time, so a request sent late because the
//! generator was behind counts its wait against the server (no coordinated omission).
//!
//! Bounds: at most `max_in_flight` requests are outstanding; a request that finds no
//! free slot waits for one (counted) and is given up (counted as not sent) if none
//! frees up within `timeout` of its due time. Each request is cut off at `timeout`.
//! The run therefore ends at most `timeout` after the last due time, plus a second.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Uri};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::client::Client;
use crate::payload::Prepared;
use crate::stats::{Answer, Recorder};

/// When requests are due.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Requests per second.
    pub rate: f64,
    /// Sent at the same rate before the measured window; not measured.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    pub max_in_flight: usize,
    /// Per request, and for waiting for an in-flight slot.
    pub timeout: Duration,
}

impl Schedule {
    /// Requests due over warm-up and window together.
    pub fn total(&self) -> usize {
        ((self.warmup + self.duration).as_secs_f64() * self.rate).round() as usize
    }

    /// Indices of the requests due inside the measured window.
    pub fn measured(&self) -> std::ops::Range<usize> {
        ((self.warmup.as_secs_f64() * self.rate).round() as usize)..self.total()
    }

    /// Offset of request `i`'s due time from the start.
    pub fn due(&self, i: usize) -> Duration {
        Duration::from_secs_f64(i as f64 / self.rate)
    }
}

/// Where the load goes.
pub struct Target {
    pub client: Client,
    pub uri: Uri,
}

/// Sends `requests` on `schedule` from `start`, recording into `recorder`; returns once
/// every request sent has been answered or cut off.
pub async fn run(
    target: Arc<Target>,
    requests: Arc<Vec<Prepared>>,
    schedule: Schedule,
    start: Instant,
    recorder: Arc<Recorder>,
) {
    // One permit per outstanding request: the in-flight bound.
    let slots = Arc::new(Semaphore::new(schedule.max_in_flight));
    for i in 0..schedule.total().min(requests.len()) {
        let due = start + schedule.due(i);
        if due > Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                recorder.waited(i);
                match tokio::time::timeout_at(due + schedule.timeout, slots.clone().acquire_owned()).await {
                    Ok(Ok(p)) => p,
                    _ => {
                        recorder.not_sent(i);
                        continue;
                    }
                }
            }
        };
        let sent = Instant::now();
        recorder.sent(i, sent - due);
        let (target, requests, recorder) = (target.clone(), requests.clone(), recorder.clone());
        tokio::spawn(async move {
            let answer = send(&target, &requests[i], schedule.timeout).await;
            let done = Instant::now();
            recorder.answered(i, answer, done - due, done - sent);
            drop(permit);
        });
    }
    // Every request cuts itself off at `timeout`; then all slots are free again.
    let all = u32::try_from(schedule.max_in_flight).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(schedule.timeout + Duration::from_secs(1), slots.acquire_many(all)).await;
}

async fn send(target: &Target, r: &Prepared, timeout: Duration) -> Answer {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(target.uri.clone())
        .header(http::header::CONTENT_TYPE, "application/json; charset=utf-8")
        .header(
            http::header::USER_AGENT,
            "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        );
    for (name, value) in &r.headers {
        builder = builder.header(name, value);
    }
    let Ok(request) = builder.body(Full::new(r.body.clone())) else {
        return Answer::Error("request");
    };
    let exchange = async {
        let response = match target.client.request(request).await {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Answer::Error("connect"),
            Err(_) => return Answer::Error("request"),
        };
        let code = response.status().as_u16();
        match http_body_util::BodyExt::collect(response.into_body()).await {
            Ok(body) => Answer::Status {
                code,
                duplicate: code == 200 && says_duplicate(&body.to_bytes()),
            },
            Err(_) => Answer::Error("request"),
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or(Answer::Error("timeout"))
}

/// The ingress answers `{"duplicates":…,"events":…,"status":"duplicate"}` when every
/// event of the request had been accepted before.
fn says_duplicate(body: &Bytes) -> bool {
    const NEEDLE: &[u8] = br#""status":"duplicate""#;
    body.windows(NEEDLE.len()).any(|w| w == NEEDLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_splits_warmup_from_the_window() {
        let s = Schedule {
            rate: 1_000.0,
            warmup: Duration::from_secs(5),
            duration: Duration::from_secs(30),
            max_in_flight: 10,
            timeout: Duration::from_secs(1),
        };
        assert_eq!(s.total(), 35_000);
        assert_eq!(s.measured(), 5_000..35_000);
        assert_eq!(s.due(1_500), Duration::from_millis(1_500));
    }

    #[test]
    fn recognises_a_duplicate_answer() {
        assert!(says_duplicate(&Bytes::from_static(
            br#"{"duplicates":1,"events":1,"status":"duplicate"}"#
        )));
        assert!(!says_duplicate(&Bytes::from_static(
            br#"{"duplicates":0,"events":1,"status":"accepted"}"#
        )));
    }
}
