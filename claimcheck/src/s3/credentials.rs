//! The keys every S3 request is signed with: the configured pair, or the AWS default
//! chain's (environment, profile, SSO, web identity, ECS or instance role), refreshed by a
//! background task before they expire.
//!
//! A request reads the current keys from a `watch` channel: a read of what is there,
//! never a wait on a refresh and never a lock held across a call. Only the very first
//! requests after start-up, while the first load is still under way, wait for it, and
//! then within their call's deadline.
//!
//! The refresh task lives as long as a store holds the receiving end and ends with the
//! last one. Credentials that last fetch again [`REFRESH_BEFORE_EXPIRY`] before they
//! expire; ones without an expiry (keys from the environment or a profile) are loaded
//! once. A failed refresh keeps the keys it has (they may still be valid) and tries again
//! with a growing pause, at most [`MAX_RETRY_PAUSE`] apart.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::identity::Identity;
use tokio::sync::watch;

use crate::error::ClaimCheckError;

/// Credentials from a provider are fetched again this long before they expire.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);
/// Credentials that expire sooner than the margin above are fetched again no sooner than
/// this after the last fetch.
const MIN_REFRESH_PAUSE: Duration = Duration::from_secs(5);
/// The first retry of a failed load waits this long, each next one twice as long ...
const FIRST_RETRY_PAUSE: Duration = Duration::from_secs(1);
/// ... up to this.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(60);

/// What to do when no credentials are found, for the operator.
pub(crate) const SET_CREDENTIALS: &str = "set s3.access_key_id and s3.secret_access_key \
     (SWITCHYARD_S3__ACCESS_KEY_ID, SWITCHYARD_S3__SECRET_ACCESS_KEY), or give the process AWS credentials \
     (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, or an instance or pod role)";

#[derive(Clone, Debug)]
pub(crate) enum State {
    /// The first load is under way.
    Loading,
    Ready(Identity),
    /// The first load failed (why); the task is trying again.
    Failed(String),
}

#[derive(Debug)]
pub(crate) enum Keys {
    Fixed(Identity),
    /// Fed by the refresh task.
    Refreshed(watch::Receiver<State>),
}

impl Keys {
    pub(crate) fn fixed(credentials: Credentials) -> Self {
        Keys::Fixed(credentials.into())
    }

    /// Starts the refresh task on the current Tokio runtime; its first load begins at once.
    pub(crate) fn refreshed(provider: SharedCredentialsProvider) -> Self {
        let (tx, rx) = watch::channel(State::Loading);
        tokio::spawn(refresh(provider, tx));
        Keys::Refreshed(rx)
    }

    /// The keys to sign with now.
    pub(crate) async fn current(&self) -> Result<Identity, ClaimCheckError> {
        let rx = match self {
            Keys::Fixed(identity) => return Ok(identity.clone()),
            Keys::Refreshed(rx) => rx,
        };
        let state = rx.borrow().clone();
        let state = match state {
            State::Loading => {
                let mut rx = rx.clone();
                let waited = rx.wait_for(|s| !matches!(s, State::Loading)).await;
                match waited {
                    Ok(s) => s.clone(),
                    Err(_) => State::Failed("the credentials task ended".into()),
                }
            }
            other => other,
        };
        match state {
            State::Ready(identity) => Ok(identity),
            State::Failed(why) => Err(ClaimCheckError::Config(format!(
                "no AWS credentials: {why}; {SET_CREDENTIALS}"
            ))),
            State::Loading => unreachable!("waited for a state other than Loading"),
        }
    }
}

/// Loads credentials until no store listens, each time shortly before they expire.
async fn refresh(provider: SharedCredentialsProvider, tx: watch::Sender<State>) {
    let mut retry_pause = FIRST_RETRY_PAUSE;
    loop {
        let pause = match provider.provide_credentials().await {
            Ok(credentials) => {
                retry_pause = FIRST_RETRY_PAUSE;
                let expiry = credentials.expiry();
                tx.send_replace(State::Ready(credentials.into()));
                match expiry {
                    // Keys that do not expire: nothing more to do.
                    None => return,
                    Some(at) => next_refresh(at, SystemTime::now()),
                }
            }
            Err(e) => {
                let why = e.to_string();
                tracing::warn!(error = %why, retry_in = ?retry_pause, "Loading AWS credentials for S3 failed.");
                tx.send_if_modified(|state| match state {
                    // Keys loaded earlier stay: they may still be valid.
                    State::Ready(_) => false,
                    _ => {
                        *state = State::Failed(why);
                        true
                    }
                });
                let pause = retry_pause;
                retry_pause = (retry_pause * 2).min(MAX_RETRY_PAUSE);
                pause
            }
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = tx.closed() => return,
        }
    }
}

/// How long to wait before fetching credentials that expire `at` again.
fn next_refresh(at: SystemTime, now: SystemTime) -> Duration {
    let left = at.duration_since(now).unwrap_or_default();
    left.checked_sub(REFRESH_BEFORE_EXPIRY)
        .unwrap_or(left / 2)
        .max(MIN_REFRESH_PAUSE)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use aws_credential_types::provider::error::CredentialsError;
    use aws_credential_types::provider::future;

    use super::*;

    #[test]
    fn credentials_are_fetched_again_before_they_expire() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let hour = Duration::from_secs(3600);
        assert_eq!(next_refresh(now + hour, now), hour - REFRESH_BEFORE_EXPIRY);
        // Short-lived keys: half their life, but not a busy loop.
        assert_eq!(
            next_refresh(now + Duration::from_secs(120), now),
            Duration::from_secs(60)
        );
        assert_eq!(next_refresh(now, now), MIN_REFRESH_PAUSE);
        assert_eq!(next_refresh(now - hour, now), MIN_REFRESH_PAUSE);
    }

    /// Fails the first `fail` loads, then hands out keys valid for an hour.
    #[derive(Debug)]
    struct Flaky {
        fail: usize,
        calls: Arc<AtomicUsize>,
    }

    impl ProvideCredentials for Flaky {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            future::ProvideCredentials::ready(if n < self.fail {
                Err(CredentialsError::not_loaded("no role yet"))
            } else {
                Ok(Credentials::new(
                    format!("id-{n}"),
                    "secret",
                    None,
                    Some(SystemTime::now() + Duration::from_secs(3600)),
                    "test",
                ))
            })
        }
    }

    fn key_id(identity: &Identity) -> String {
        identity
            .data::<Credentials>()
            .expect("credentials")
            .access_key_id()
            .to_string()
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_first_load_is_reported_then_retried_in_the_background() {
        let calls = Arc::new(AtomicUsize::new(0));
        let keys = Keys::refreshed(SharedCredentialsProvider::new(Flaky {
            fail: 1,
            calls: calls.clone(),
        }));
        match keys.current().await {
            Err(ClaimCheckError::Config(text)) => assert!(text.contains("SWITCHYARD_S3__ACCESS_KEY_ID"), "{text}"),
            other => panic!("expected the missing credentials to be reported, got {other:?}"),
        }
        // Paused time: the retry pause passes at once, and the second load succeeds.
        tokio::time::sleep(FIRST_RETRY_PAUSE * 2).await;
        assert_eq!(key_id(&keys.current().await.expect("keys after the retry")), "id-1");
        // Reading them again does not load them again.
        keys.current().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Shortly before they expire, fresh ones replace them.
        tokio::time::sleep(Duration::from_secs(3600) - REFRESH_BEFORE_EXPIRY + Duration::from_secs(1)).await;
        assert_eq!(key_id(&keys.current().await.unwrap()), "id-2");
    }
}
