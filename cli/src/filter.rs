//! Which dead letters a `switchyard dlq …` command acts on, and the time arguments
//! (`--since 2h`, `--until 2026-11-23T09:00:00Z`) every command shares.

use std::time::Duration;

use switchyard_core::envelope::DeadLetter;
use switchyard_core::names::Names;
use switchyard_registry::model::type_matches;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A conjunction of conditions; an empty filter matches every dead letter.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub tenant: Option<String>,
    pub endpoint: Option<String>,
    pub connector: Option<String>,
    /// The unified type (dispatcher dead letters) or the provider's type (normalizer
    /// dead letters); `*` matches one dot-separated segment (`payments.*.paid`).
    pub event_type: Option<String>,
    /// The error class, e.g. `unknown_account`, `exhausted`.
    pub reason: Option<String>,
    /// `normalizer` or `dispatcher`.
    pub stage: Option<String>,
    /// Dead-lettered at or after.
    pub since: Option<OffsetDateTime>,
    /// Dead-lettered at or before.
    pub until: Option<OffsetDateTime>,
    /// At most this many, oldest first.
    pub limit: Option<usize>,
}

impl Filter {
    /// Whether no condition is set (the limit aside).
    pub fn is_empty(&self) -> bool {
        self.tenant.is_none()
            && self.endpoint.is_none()
            && self.connector.is_none()
            && self.event_type.is_none()
            && self.reason.is_none()
            && self.stage.is_none()
            && self.since.is_none()
            && self.until.is_none()
    }

    /// The NATS subject filter: stage and reason are part of the subject
    /// (`<ns>.dlq.<stage>.<reason>`), so the server skips the rest.
    pub fn subject(&self, names: &Names) -> String {
        if self.stage.is_none() && self.reason.is_none() {
            return names.dead_letter_subjects();
        }
        let part = |p: &Option<String>| p.clone().unwrap_or_else(|| "*".into());
        names.dead_letter_subject(&part(&self.stage), &part(&self.reason))
    }

    /// Whether `letter`, stored in the stream at `stored_at`, is one of these.
    pub fn matches(&self, letter: &DeadLetter, stored_at: OffsetDateTime) -> bool {
        let env = letter.envelope.as_ref();
        let tenant = letter
            .tenant_id
            .as_deref()
            .filter(|t| !t.is_empty())
            .or_else(|| env.and_then(|e| e.tenant_id.as_deref()));
        let event_type = letter.event_type.as_deref().or(env.map(|e| e.event_type.as_str()));
        let same = |want: &Option<String>, have: Option<&str>| want.as_deref().is_none_or(|w| have == Some(w));
        same(&self.tenant, tenant)
            && same(&self.endpoint, letter.endpoint_id.as_deref())
            && same(&self.connector, Some(&letter.connector))
            && same(&self.reason, Some(&letter.reason))
            && same(&self.stage, Some(&letter.stage))
            && self
                .event_type
                .as_deref()
                .is_none_or(|p| event_type.is_some_and(|t| type_matches(p, t)))
            && self.since.is_none_or(|t| stored_at >= t)
            && self.until.is_none_or(|t| stored_at <= t)
    }
}

/// A time or rate argument that does not parse; each says what to write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    #[error("{0:?} is neither an RFC 3339 time (2026-11-23T09:00:00Z) nor a duration ago (2h, 30m, 7d)")]
    Time(String),
    #[error("{0:?} is not a rate such as 20/s")]
    Rate(String),
    #[error("{0:?}: the rate's unit is /s, /m or /h")]
    RateUnit(String),
    #[error("{0:?}: the rate must be more than 0")]
    RateNotPositive(String),
}

/// A point in time: RFC 3339 (`2026-11-23T09:00:00Z`), or a duration before `now`
/// (`90s`, `30m`, `2h`, `7d`, `1w`).
pub fn parse_time(s: &str, now: OffsetDateTime) -> Result<OffsetDateTime, ArgError> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    parse_duration(s)
        .map(|d| now - d)
        .ok_or_else(|| ArgError::Time(s.to_string()))
}

/// `90s`, `30m`, `2h`, `7d`, `1w`.
fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n.checked_mul(secs)?))
}

/// A rate such as `20/s`, `600/m` or `20`, in items per second.
pub fn parse_rate(s: &str) -> Result<f64, ArgError> {
    let (n, per) = s.split_once('/').unwrap_or((s, "s"));
    let n: f64 = n.trim().parse().map_err(|_| ArgError::Rate(s.to_string()))?;
    let per = match per.trim() {
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(ArgError::RateUnit(s.to_string())),
    };
    if !(n > 0.0 && n.is_finite()) {
        return Err(ArgError::RateNotPositive(s.to_string()));
    }
    Ok(n / per)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn letter() -> DeadLetter {
        DeadLetter {
            id: "dispatcher:exhausted:evt_1:ep_1:1".into(),
            stage: "dispatcher".into(),
            reason: "exhausted".into(),
            detail: String::new(),
            connector: "stripe".into(),
            account_id: "acct".into(),
            tenant_id: Some("t1".into()),
            envelope: None,
            endpoint_id: Some("ep_1".into()),
            event_id: Some("evt_1".into()),
            event_type: Some("payments.invoice.paid".into()),
            event: None,
            attempts: vec![],
            failed_at: "2026-11-23T09:00:00Z".into(),
        }
    }

    #[test]
    fn every_condition_must_hold() {
        let at = datetime!(2026-11-23 09:00 UTC);
        let f = |f: Filter| f.matches(&letter(), at);
        assert!(f(Filter::default()));
        assert!(f(Filter {
            tenant: Some("t1".into()),
            endpoint: Some("ep_1".into()),
            event_type: Some("payments.*.paid".into()),
            since: Some(at),
            until: Some(at),
            ..Default::default()
        }));
        assert!(!f(Filter {
            tenant: Some("t2".into()),
            ..Default::default()
        }));
        // Event types read as the endpoints' do: a trailing `*` matches any depth.
        assert!(f(Filter {
            event_type: Some("payments.*".into()),
            ..Default::default()
        }));
        assert!(!f(Filter {
            event_type: Some("crm.*".into()),
            ..Default::default()
        }));
        assert!(!f(Filter {
            event_type: Some("*.paid".into()),
            ..Default::default()
        }));
        assert!(!f(Filter {
            since: Some(at + time::Duration::SECOND),
            ..Default::default()
        }));
    }

    #[test]
    fn stage_and_reason_narrow_the_subject() {
        let n = Names::new("ns");
        assert_eq!(Filter::default().subject(&n), "ns.dlq.>");
        let f = Filter {
            reason: Some("unknown_account".into()),
            ..Default::default()
        };
        assert_eq!(f.subject(&n), "ns.dlq.*.unknown_account");
    }

    #[test]
    fn times_are_rfc3339_or_ago() {
        let now = datetime!(2026-11-23 09:00 UTC);
        assert_eq!(parse_time("2h", now).unwrap(), datetime!(2026-11-23 07:00 UTC));
        assert_eq!(parse_time("1w", now).unwrap(), datetime!(2026-11-16 09:00 UTC));
        assert_eq!(
            parse_time("2026-11-01T00:00:00Z", now).unwrap(),
            datetime!(2026-11-01 00:00 UTC)
        );
        assert!(parse_time("yesterday", now).is_err());
        assert!(parse_time("5y", now).is_err());
    }

    #[test]
    fn rates_have_a_unit() {
        assert_eq!(parse_rate("20/s").unwrap(), 20.0);
        assert_eq!(parse_rate("600/m").unwrap(), 10.0);
        assert_eq!(parse_rate("5").unwrap(), 5.0);
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("fast").is_err());
    }
}
