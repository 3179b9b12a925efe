//! When a failed delivery is tried again: the configured schedule with jitter, or what
//! the endpoint asked for with `Retry-After` (429 and 503 only, within bounds).

use std::time::Duration;

use time::format_description::well_known::Rfc2822;
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct Schedule {
    /// Delay before attempt `i + 2`.
    delays: Vec<Duration>,
    jitter: f64,
    retry_after_max: Duration,
}

impl Schedule {
    pub fn new(delays_ms: &[u64], jitter: f64, retry_after_max: Duration) -> Self {
        Self {
            delays: delays_ms.iter().map(|ms| Duration::from_millis(*ms)).collect(),
            jitter: jitter.clamp(0.0, 1.0),
            retry_after_max,
        }
    }

    /// Attempts a delivery gets in all: the first and one per delay.
    pub fn attempts(&self) -> u32 {
        self.delays.len() as u32 + 1
    }

    /// The delay after failed attempt `attempt` (1-based), or `None` when it was the
    /// last. `retry_after` is the endpoint's request, honoured up to the bound but never
    /// shorter than one second.
    pub fn next_delay(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        let base = *self.delays.get(attempt.checked_sub(1)? as usize)?;
        if let Some(asked) = retry_after {
            return Some(asked.clamp(Duration::from_secs(1), self.retry_after_max));
        }
        if self.jitter == 0.0 {
            return Some(base);
        }
        let factor = 1.0 + self.jitter * (rand::random::<f64>() * 2.0 - 1.0);
        Some(base.mul_f64(factor))
    }
}

/// `Retry-After` as seconds or as an HTTP date (RFC 9110, section 10.2.3).
pub fn parse_retry_after(value: &str, now: OffsetDateTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") parses as RFC 2822 once "GMT" is
    // written as an offset.
    let date = OffsetDateTime::parse(&v.replace(" GMT", " +0000"), &Rfc2822).ok()?;
    let secs = (date - now).whole_seconds();
    Some(Duration::from_secs(secs.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_schedule_then_stops() {
        let s = Schedule::new(&[5_000, 300_000], 0.0, Duration::from_secs(3600));
        assert_eq!(s.attempts(), 3);
        assert_eq!(s.next_delay(1, None), Some(Duration::from_secs(5)));
        assert_eq!(s.next_delay(2, None), Some(Duration::from_secs(300)));
        assert_eq!(s.next_delay(3, None), None);
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let s = Schedule::new(&[10_000], 0.2, Duration::from_secs(3600));
        for _ in 0..200 {
            let d = s.next_delay(1, None).unwrap();
            assert!(d >= Duration::from_secs(8) && d <= Duration::from_secs(12), "{d:?}");
        }
    }

    #[test]
    fn retry_after_is_honoured_within_bounds() {
        let s = Schedule::new(&[5_000, 5_000], 0.0, Duration::from_secs(60));
        assert_eq!(
            s.next_delay(1, Some(Duration::from_secs(30))),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            s.next_delay(1, Some(Duration::from_secs(9999))),
            Some(Duration::from_secs(60))
        );
        assert_eq!(s.next_delay(1, Some(Duration::ZERO)), Some(Duration::from_secs(1)));
        // It does not add attempts beyond the schedule.
        assert_eq!(s.next_delay(3, Some(Duration::from_secs(5))), None);
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let now = OffsetDateTime::from_unix_timestamp(784_111_777).unwrap(); // 06 Nov 1994 08:49:37 UTC
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
