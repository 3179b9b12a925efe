//! One delivery attempt: a signed POST, the response status and at most the first KiB
//! of its body, and what class of outcome it was.

use std::time::{Duration, Instant};

use bytes::Bytes;
use switchyard_registry::Endpoint;

use super::schedule::parse_retry_after;
use crate::attempts::BODY_KEPT;
use crate::ssrf::DestinationPolicy;

/// What class of outcome an attempt was: a closed set, the `outcome` label of
/// `switchyard_dispatcher_attempts_total` and the `class` of every recorded attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A 2xx answer.
    Success,
    /// Any other answer.
    HttpError,
    /// No answer within `dispatcher.request_timeout_ms`.
    Timeout,
    /// No connection (or an endpoint URL that does not parse).
    ConnectError,
    /// The destination is one the SSRF guard refuses: never contacted.
    RefusedDestination,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Success => "success",
            Class::HttpError => "http_error",
            Class::Timeout => "timeout",
            Class::ConnectError => "connect_error",
            Class::RefusedDestination => "refused_destination",
        }
    }
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub class: Class,
    pub status: Option<u16>,
    pub latency: Duration,
    /// `Retry-After` of a 429 or 503.
    pub retry_after: Option<Duration>,
    /// One line for the operator.
    pub error: Option<String>,
    /// The first KiB of the response body.
    pub body: Bytes,
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        self.class == Class::Success
    }
}

/// The delivery HTTP client: pooled keep-alive connections, a per-request timeout, no
/// redirects (a redirect could point a signed payload anywhere), and the SSRF guard as
/// its resolver.
///
/// No proxy, whatever the environment says: through a proxy the client resolves only
/// the proxy's name, and the target's address (judged by [`GuardedResolver`]) would be
/// the proxy's business, so `HTTP_PROXY=http://127.0.0.1:3128` in the dispatcher's
/// environment would carry deliveries past the SSRF guard to any internal address.
///
/// [`GuardedResolver`]: crate::ssrf::GuardedResolver
pub fn http_client(timeout: Duration, policy: &DestinationPolicy) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5).min(timeout))
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(256)
        .pool_idle_timeout(Duration::from_secs(60))
        .dns_resolver(std::sync::Arc::new(crate::ssrf::GuardedResolver(policy.clone())))
        .user_agent(concat!("Switchyard/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a client with these settings always builds")
}

/// POST `body` to the endpoint, signed with its current (and rotated-out) secrets.
pub async fn post(
    http: &reqwest::Client,
    policy: &DestinationPolicy,
    ep: &Endpoint,
    event_id: &str,
    body: &Bytes,
) -> Outcome {
    let started = Instant::now();
    let failed = |class: Class, error: String| Outcome {
        class,
        status: None,
        latency: started.elapsed(),
        retry_after: None,
        error: Some(error),
        body: Bytes::new(),
    };
    let url: reqwest::Url = match ep.url.parse() {
        Ok(u) => u,
        Err(e) => return failed(Class::ConnectError, format!("the endpoint URL does not parse: {e}")),
    };
    if let Err(refused) = policy.check_literal(&url) {
        return failed(Class::RefusedDestination, refused.to_string());
    }
    let now = time::OffsetDateTime::now_utc();
    let ts = now.unix_timestamp();
    let signature = switchyard_webhooks::signature(&ep.signing_secrets(ts), event_id, ts, body);
    let mut req = http
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", event_id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature);
    for (name, value) in &ep.headers {
        req = req.header(name.as_str(), value.as_str());
    }
    let resp = match req.body(body.clone()).send().await {
        Ok(r) => r,
        Err(e) => {
            let refused = std::iter::successors(std::error::Error::source(&e), |s| s.source())
                .any(|s| s.downcast_ref::<crate::ssrf::Refused>().is_some());
            let class = if refused {
                Class::RefusedDestination
            } else if e.is_timeout() {
                Class::Timeout
            } else {
                Class::ConnectError
            };
            return failed(class, one_line(e));
        }
    };
    let status = resp.status();
    let retry_after = if status.as_u16() == 429 || status.as_u16() == 503 {
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, now))
    } else {
        None
    };
    let body = read_prefix(resp).await;
    let success = status.is_success();
    Outcome {
        class: if success { Class::Success } else { Class::HttpError },
        status: Some(status.as_u16()),
        latency: started.elapsed(),
        retry_after,
        error: (!success).then(|| format!("the endpoint answered {status}")),
        body,
    }
}

/// At most [`BODY_KEPT`] bytes of the body; the rest is not read (the connection is
/// then not reused, which is the price of not reading a huge body).
async fn read_prefix(mut resp: reqwest::Response) -> Bytes {
    let mut out = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = BODY_KEPT - out.len();
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= BODY_KEPT {
            break;
        }
    }
    Bytes::from(out)
}

/// An error and its causes on one line, without the URL's query (it may hold a token).
fn one_line(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut s = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::secret::Secret;

    fn endpoint(url: &str) -> Endpoint {
        Endpoint::new(
            "ep_1",
            "t1",
            url,
            vec!["*".into()],
            Secret::new(switchyard_webhooks::new_secret()),
            "2026-11-23T00:00:00Z",
        )
    }

    #[tokio::test]
    async fn refused_destinations_are_never_contacted() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let policy = DestinationPolicy::new(&[]).unwrap();
        let http = http_client(Duration::from_secs(2), &policy);
        let body = Bytes::from_static(b"{}");
        // By literal address, and by a name that resolves to loopback (the resolver's
        // check, which also catches DNS rebinding).
        for url in [
            format!("http://127.0.0.1:{port}/x"),
            format!("http://localhost:{port}/x"),
        ] {
            let o = post(&http, &policy, &endpoint(&url), "evt_1", &body).await;
            assert_eq!(o.class, Class::RefusedDestination, "{url}: {o:?}");
        }
        let accepted = tokio::time::timeout(Duration::from_millis(50), listener.accept()).await;
        assert!(accepted.is_err(), "no connection was made");
    }

    #[tokio::test]
    async fn an_allowed_destination_gets_a_signed_post() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
        let s = seen.clone();
        let app = axum::Router::new().route(
            "/x",
            axum::routing::post(move |headers: http::HeaderMap| async move {
                *s.lock().unwrap() = headers.get("webhook-signature").cloned();
                (
                    http::StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "7")],
                    "x".repeat(5000),
                )
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let policy = DestinationPolicy::new(&["127.0.0.0/8".into()]).unwrap();
        let http = http_client(Duration::from_secs(2), &policy);
        let o = post(
            &http,
            &policy,
            &endpoint(&format!("http://{addr}/x")),
            "evt_1",
            &Bytes::from_static(b"{}"),
        )
        .await;
        assert_eq!(o.class, Class::HttpError);
        assert_eq!(o.status, Some(429));
        assert_eq!(o.retry_after, Some(Duration::from_secs(7)));
        assert_eq!(o.body.len(), BODY_KEPT, "only the first KiB is kept");
        assert!(seen
            .lock()
            .unwrap()
            .as_ref()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("v1,"));
    }
}
