//! Keys providers publish — a JWKS, an X.509 certificate — fetched when a request needs
//! them and kept for the next ones.
//!
//! - **Where**: only the locations `signature::fetched::key_location` returns, which
//!   has already refused any URL that is not `https://` on a host the connector file
//!   allows. Redirects are not followed (they could lead off the allow-list).
//! - **Once at a time**: concurrent requests for keys not yet cached wait for one fetch
//!   (a lock per location); at most [`MAX_CONCURRENT_FETCHES`] fetches run at all.
//! - **Cached with their expiry**: the response's `Cache-Control: max-age`, clamped
//!   to [`MIN_FRESH`]..[`MAX_FRESH`], else [`DEFAULT_FRESH`]. Past it the keys are still
//!   used while one background fetch replaces them, up to [`MAX_STALE`] beyond; a
//!   failed fetch is remembered for [`FAILED_FOR`], so a host that is down is not asked
//!   again by every request.
//! - **Rotation**: a token naming a key the cached set lacks asks for the set again,
//!   at most once per [`REFETCH_EVERY`] per location.
//! - **When the host is unreachable** and nothing usable is cached, the caller answers
//!   503 with Retry-After: never 2xx (nothing was verified) and never 401 (the provider
//!   did nothing wrong).
//! - **Bounded**: at most [`MAX_ENTRIES`] locations are kept (the least recently fetched
//!   goes), each body at most [`MAX_KEY_BYTES`].
//! - **Keys asked for by id** (a key request, Plaid's): a `POST` of the key id with the
//!   account's credentials, one location per key id. The id comes from a token not yet
//!   verified, so at most [`NEW_KEYS_PER_MINUTE`] ids not cached are asked for per URL
//!   each minute; past that the request is a 503 (the provider retries), and a forger
//!   cannot make the ingress hammer the provider's API with the account's credentials.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchyard_connectors::signature::fetched::{parse_keys, FetchedKeys, KeyLocation};
use tokio::sync::Semaphore;

pub const MIN_FRESH: Duration = Duration::from_secs(60);
pub const MAX_FRESH: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_FRESH: Duration = Duration::from_secs(3600);
pub const MAX_STALE: Duration = Duration::from_secs(24 * 3600);
pub const FAILED_FOR: Duration = Duration::from_secs(10);
pub const REFETCH_EVERY: Duration = Duration::from_secs(10);
pub const MAX_ENTRIES: usize = 256;
pub const MAX_KEY_BYTES: usize = 256 * 1024;
pub const MAX_CONCURRENT_FETCHES: usize = 4;
pub const NEW_KEYS_PER_MINUTE: u32 = 10;

/// Why no keys could be had; every kind is a 503 to the provider.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyFetchError {
    #[error("fetching {url} failed: {why}")]
    Unreachable { url: String, why: String },
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url} holds no usable keys: {why}")]
    Unusable { url: String, why: String },
    #[error("fetching {url} failed moments ago; not asking again yet")]
    RecentlyFailed { url: String },
    #[error("{NEW_KEYS_PER_MINUTE} key ids not cached were asked of {url} this minute; not asking for more yet")]
    TooManyNewKeys { url: String },
}

/// The outcome of the last fetch of a location.
enum Entry {
    Keys {
        keys: Arc<FetchedKeys>,
        fetched: Instant,
        fresh_for: Duration,
        refreshing: bool,
    },
    Failed {
        at: Instant,
        error: KeyFetchError,
    },
}

pub struct KeyFetcher {
    http: reqwest::Client,
    entries: Mutex<HashMap<KeyLocation, Entry>>,
    /// One lock per location being fetched, so a fetch is made once at a time.
    inflight: Mutex<HashMap<KeyLocation, Arc<tokio::sync::Mutex<()>>>>,
    fetches: Semaphore,
    /// Per key-request URL: the minute's start and how many new key ids were asked.
    new_keys: Mutex<HashMap<String, (Instant, u32)>>,
    metrics: Option<prometheus::IntCounterVec>,
}

impl std::fmt::Debug for KeyFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFetcher").finish_non_exhaustive()
    }
}

/// Why the fetcher could not be built; the message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum KeyFetcherError {
    #[error("cannot read ingress.key_fetch_ca_file {path}: {source}")]
    ReadCa { path: String, source: std::io::Error },
    #[error("ingress.key_fetch_ca_file {path} holds no PEM certificate: {why}")]
    BadCa { path: String, why: String },
    #[error("cannot build the HTTPS client for key fetches: {0}")]
    Client(String),
}

impl KeyFetcher {
    /// `ca_file`: a PEM bundle of extra roots trusted for key hosts (a private PKI, or a
    /// test's own CA); empty: the system's roots only. `metrics` counts fetches by
    /// outcome (`ok`, `failed`).
    pub fn new(
        timeout: Duration,
        ca_file: &str,
        metrics: Option<prometheus::IntCounterVec>,
    ) -> Result<Self, KeyFetcherError> {
        let mut builder = reqwest::Client::builder()
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .no_proxy()
            .user_agent(concat!("switchyard-ingress/", env!("CARGO_PKG_VERSION")));
        if !ca_file.is_empty() {
            let pem = std::fs::read(ca_file).map_err(|source| KeyFetcherError::ReadCa {
                path: ca_file.to_string(),
                source,
            })?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| KeyFetcherError::BadCa {
                path: ca_file.to_string(),
                why: e.to_string(),
            })? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| KeyFetcherError::Client(e.to_string()))?;
        Ok(Self {
            http,
            entries: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
            fetches: Semaphore::new(MAX_CONCURRENT_FETCHES),
            new_keys: Mutex::new(HashMap::new()),
            metrics,
        })
    }

    /// The keys at `location`: cached, or fetched now (once, however many ask).
    pub async fn keys(self: &Arc<Self>, location: &KeyLocation) -> Result<Arc<FetchedKeys>, KeyFetchError> {
        match self.cached(location) {
            Cached::Fresh(keys) => return Ok(keys),
            Cached::Stale(keys) => {
                self.refresh_in_background(location);
                return Ok(keys);
            }
            Cached::Failed(e) => return Err(e),
            Cached::None => {}
        }
        let lock = self.lock_for(location);
        let _guard = lock.lock().await;
        // Someone else may have fetched it while this request waited.
        match self.cached(location) {
            Cached::Fresh(keys) | Cached::Stale(keys) => Ok(keys),
            Cached::Failed(e) => Err(e),
            Cached::None => {
                if location.request.is_some() {
                    self.allow_new_key(&location.url)?;
                }
                self.fetch(location).await
            }
        }
    }

    /// Whether one more key id not cached may be asked of `url` this minute.
    fn allow_new_key(&self, url: &str) -> Result<(), KeyFetchError> {
        let mut new_keys = self.new_keys.lock().expect("key request lock");
        if new_keys.len() > MAX_ENTRIES {
            new_keys.retain(|_, (start, _)| start.elapsed() < Duration::from_secs(60));
        }
        let (start, count) = new_keys.entry(url.to_string()).or_insert((Instant::now(), 0));
        if start.elapsed() >= Duration::from_secs(60) {
            (*start, *count) = (Instant::now(), 0);
        }
        if *count >= NEW_KEYS_PER_MINUTE {
            return Err(KeyFetchError::TooManyNewKeys { url: url.to_string() });
        }
        *count += 1;
        Ok(())
    }

    /// The keys at `location` fetched again, unless that was done within
    /// [`REFETCH_EVERY`] (then what is cached): for a token naming a key the cached set
    /// lacks, which is how a rotation shows.
    pub async fn refetched(self: &Arc<Self>, location: &KeyLocation) -> Result<Arc<FetchedKeys>, KeyFetchError> {
        let recent = {
            let entries = self.entries.lock().expect("key cache lock");
            match entries.get(location) {
                Some(Entry::Keys { keys, fetched, .. }) if fetched.elapsed() < REFETCH_EVERY => Some(keys.clone()),
                _ => None,
            }
        };
        if let Some(keys) = recent {
            return Ok(keys);
        }
        let lock = self.lock_for(location);
        let _guard = lock.lock().await;
        self.fetch(location).await
    }

    /// GET `url` (a subscription's confirmation link, already checked to be `https://`
    /// on an allowed host) with the same client: no redirects, bounded in time.
    pub async fn confirm(&self, url: &str) -> Result<(), KeyFetchError> {
        let _permit = self.fetches.acquire().await.expect("the semaphore is never closed");
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| KeyFetchError::Unreachable {
                url: redacted(url),
                why: switchyard_core::error_text::one_line(&e),
            })?;
        match response.status() {
            s if s.is_success() => Ok(()),
            s => Err(KeyFetchError::Status {
                url: redacted(url),
                status: s.as_u16(),
            }),
        }
    }

    fn lock_for(&self, location: &KeyLocation) -> Arc<tokio::sync::Mutex<()>> {
        let mut inflight = self.inflight.lock().expect("key fetch lock");
        // Locks no one holds any more are dropped with the map's growth bounded.
        if inflight.len() > MAX_ENTRIES {
            inflight.retain(|_, l| Arc::strong_count(l) > 1);
        }
        inflight.entry(location.clone()).or_default().clone()
    }

    fn cached(&self, location: &KeyLocation) -> Cached {
        let entries = self.entries.lock().expect("key cache lock");
        match entries.get(location) {
            None => Cached::None,
            Some(Entry::Failed { at, error }) if at.elapsed() < FAILED_FOR => Cached::Failed(error.clone()),
            Some(Entry::Failed { .. }) => Cached::None,
            Some(Entry::Keys {
                keys,
                fetched,
                fresh_for,
                ..
            }) => {
                let age = fetched.elapsed();
                if age < *fresh_for {
                    Cached::Fresh(keys.clone())
                } else if age < *fresh_for + MAX_STALE {
                    Cached::Stale(keys.clone())
                } else {
                    Cached::None
                }
            }
        }
    }

    fn refresh_in_background(self: &Arc<Self>, location: &KeyLocation) {
        {
            let mut entries = self.entries.lock().expect("key cache lock");
            match entries.get_mut(location) {
                Some(Entry::Keys { refreshing, .. }) if !*refreshing => *refreshing = true,
                _ => return,
            }
        }
        let (this, location) = (self.clone(), location.clone());
        tokio::spawn(async move {
            let lock = this.lock_for(&location);
            let _guard = lock.lock().await;
            if let Err(e) = this.fetch(&location).await {
                tracing::warn!(error = %e, "Refreshing published keys failed; the cached ones stay in use.");
            }
        });
    }

    /// Fetch and parse now; the outcome replaces what is cached (a failure keeps usable
    /// keys, marking them for another try).
    async fn fetch(&self, location: &KeyLocation) -> Result<Arc<FetchedKeys>, KeyFetchError> {
        let result = {
            let _permit = self.fetches.acquire().await.expect("the semaphore is never closed");
            self.get(location).await
        };
        let label = if result.is_ok() { "ok" } else { "failed" };
        if let Some(m) = &self.metrics {
            m.with_label_values(&[label]).inc();
        }
        let mut entries = self.entries.lock().expect("key cache lock");
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(location) {
            evict_oldest(&mut entries);
        }
        match result {
            Ok((keys, fresh_for)) => {
                let keys = Arc::new(keys);
                entries.insert(
                    location.clone(),
                    Entry::Keys {
                        keys: keys.clone(),
                        fetched: Instant::now(),
                        fresh_for,
                        refreshing: false,
                    },
                );
                Ok(keys)
            }
            Err(error) => {
                match entries.get_mut(location) {
                    // Keys that are still usable stay; the next stale read tries again.
                    Some(Entry::Keys { refreshing, .. }) => *refreshing = false,
                    _ => {
                        entries.insert(
                            location.clone(),
                            Entry::Failed {
                                at: Instant::now(),
                                error: error.clone(),
                            },
                        );
                    }
                }
                Err(error)
            }
        }
    }

    async fn get(&self, location: &KeyLocation) -> Result<(FetchedKeys, Duration), KeyFetchError> {
        let url = &location.url;
        let unreachable = |e: reqwest::Error| KeyFetchError::Unreachable {
            url: url.clone(),
            why: switchyard_core::error_text::one_line(&e),
        };
        let request = match &location.request {
            None => self.http.get(url),
            Some(r) => {
                let mut post = self
                    .http
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(r.body.clone());
                for (name, value) in &r.headers {
                    post = post.header(name.as_str(), value.as_str());
                }
                post
            }
        };
        let mut response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        if !status.is_success() {
            return Err(KeyFetchError::Status {
                url: url.clone(),
                status: status.as_u16(),
            });
        }
        let fresh_for = max_age(response.headers()).map_or(DEFAULT_FRESH, |d| d.clamp(MIN_FRESH, MAX_FRESH));
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > MAX_KEY_BYTES {
                return Err(KeyFetchError::Unusable {
                    url: url.clone(),
                    why: format!("longer than {MAX_KEY_BYTES} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        let keys = parse_keys(location, &body).map_err(|e| KeyFetchError::Unusable {
            url: url.clone(),
            why: e.to_string(),
        })?;
        Ok((keys, fresh_for))
    }
}

enum Cached {
    Fresh(Arc<FetchedKeys>),
    Stale(Arc<FetchedKeys>),
    Failed(KeyFetchError),
    None,
}

/// Drop the oldest failure, else the least recently fetched keys: a forger's made-up
/// key ids fail, and must not push out the keys genuine requests use.
fn evict_oldest(entries: &mut HashMap<KeyLocation, Entry>) {
    let oldest = entries
        .iter()
        .min_by_key(|(_, e)| match e {
            Entry::Failed { at, .. } => (0, *at),
            Entry::Keys { fetched, .. } => (1, *fetched),
        })
        .map(|(k, _)| k.clone());
    if let Some(k) = oldest {
        entries.remove(&k);
    }
}

/// `Cache-Control: max-age=N`, if given.
fn max_age(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::CACHE_CONTROL)?.to_str().ok()?;
    value.split(',').find_map(|part| {
        let secs = part.trim().strip_prefix("max-age=")?;
        secs.trim().parse().ok().map(Duration::from_secs)
    })
}

/// `url` without its query: a confirmation link's query holds its token.
fn redacted(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_not_cached_are_asked_for_a_bounded_number_of_times_a_minute() {
        let fetcher = KeyFetcher::new(Duration::from_secs(1), "", None).unwrap();
        let url = "https://production.plaid.com/webhook_verification_key/get";
        for _ in 0..NEW_KEYS_PER_MINUTE {
            fetcher.allow_new_key(url).unwrap();
        }
        assert!(matches!(
            fetcher.allow_new_key(url),
            Err(KeyFetchError::TooManyNewKeys { .. })
        ));
        // Another key host has its own allowance.
        fetcher
            .allow_new_key("https://sandbox.plaid.com/webhook_verification_key/get")
            .unwrap();
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(max_age(&h), None);
        h.insert(
            reqwest::header::CACHE_CONTROL,
            "public, max-age=22358, must-revalidate, no-transform".parse().unwrap(),
        );
        assert_eq!(max_age(&h), Some(Duration::from_secs(22358)));
    }
}
