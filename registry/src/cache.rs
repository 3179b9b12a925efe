//! The registry as the hot path reads it: an in-process cache in front of Redis.
//!
//! - A change made through the admin API is announced on the core-NATS subject
//!   [`switchyard_core::names::Names::registry_changes`]; every cache drops the entry at once.
//! - Entries also expire after a TTL, a safety net for a missed announcement.
//! - When Redis is unreachable, an expired entry is served stale rather than failing:
//!   the ingress keeps accepting webhooks for known accounts through a Redis outage.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use quick_cache::sync::Cache;
use quick_cache::Weighter;
use tokio_util::sync::CancellationToken;

use super::model::{Account, Endpoint};
use super::store::{RegistryError, RegistryStore};

#[derive(Clone)]
struct Cached<T> {
    value: T,
    fetched: Instant,
    /// Announcements the map had seen when the value was read from Redis.
    seen: u64,
    /// A change was announced: refetch, but keep serving this while Redis is down.
    invalidated: bool,
}

/// Bytes one map may hold (keys plus a fixed cost per entry). Accounts and endpoints are
/// few and small next to this; only a flood of unknown ids could reach it.
const MAX_MAP_BYTES: u64 = 8 << 20;
/// What an entry costs besides its key: the slot, the value's `Arc`, the timestamps.
const ENTRY_OVERHEAD: usize = 96;

/// A "no such id" entry weighs this many times its size: a flood of made-up ids fills
/// the map with nothing else, and ids that do not exist are cheap to look up again.
const NEGATIVE_FACTOR: u64 = 4;

fn weight(key: &str) -> u64 {
    (key.len() + ENTRY_OVERHEAD) as u64
}

/// Whether a cached value says "no such thing".
trait Negative {
    fn is_negative(&self) -> bool;
}

impl<T> Negative for Option<T> {
    fn is_negative(&self) -> bool {
        self.is_none()
    }
}

impl<T> Negative for Arc<Vec<T>> {
    fn is_negative(&self) -> bool {
        self.is_empty()
    }
}

#[derive(Clone)]
struct ByKeyLength;

impl<T: Negative> Weighter<String, Cached<T>> for ByKeyLength {
    fn weight(&self, key: &String, c: &Cached<T>) -> u64 {
        if c.value.is_negative() {
            weight(key) * NEGATIVE_FACTOR
        } else {
            weight(key)
        }
    }
}

/// One cache map, bounded in bytes by [quick_cache]. Its eviction keeps what is looked
/// up again (the accounts webhooks arrive for) over what was looked up once (what a
/// flood of made-up ids creates), so a flood costs misses, not the known accounts; and
/// a "no such id" entry weighs [`NEGATIVE_FACTOR`] times more, so a flood holds little.
struct Map<T: Clone + Negative> {
    entries: Cache<String, Cached<T>, ByKeyLength>,
    /// Announcements seen so far. A value read from Redis while one arrived may predate
    /// the change it announced: it is stored already marked for refetching.
    changes: AtomicU64,
    /// Every entry read before this many announcements is stale (an announcement that
    /// names no single key, such as an account whose routing keys are not known here).
    all_stale_before: AtomicU64,
}

impl<T: Clone + Negative> Map<T> {
    fn new(budget: u64) -> Self {
        let items = (budget / weight("")) as usize;
        Self {
            entries: Cache::with_weighter(items, budget, ByKeyLength),
            changes: AtomicU64::new(0),
            all_stale_before: AtomicU64::new(0),
        }
    }
}

pub struct RegistryCache {
    store: RegistryStore,
    ttl: Duration,
    accounts: Map<Option<Arc<Account>>>,
    /// `<connector>:<external id>` → account.
    by_external: Map<Option<Arc<Account>>>,
    endpoints: Map<Arc<Vec<Endpoint>>>,
}

/// Announcement payloads on the registry-changes subject.
pub fn account_changed(id: &str) -> String {
    format!("account:{id}")
}

pub fn endpoints_changed(tenant_id: &str) -> String {
    format!("endpoints:{tenant_id}")
}

impl RegistryCache {
    pub fn new(store: RegistryStore, ttl: Duration) -> Arc<Self> {
        Arc::new(Self {
            store,
            ttl,
            accounts: Map::new(MAX_MAP_BYTES),
            by_external: Map::new(MAX_MAP_BYTES),
            endpoints: Map::new(MAX_MAP_BYTES),
        })
    }

    pub fn store(&self) -> &RegistryStore {
        &self.store
    }

    /// The account, or `None` when it is not registered.
    pub async fn account(&self, id: &str) -> Result<Option<Arc<Account>>, RegistryError> {
        let stale = lookup(&self.accounts, id, self.ttl);
        if let Some((v, true)) = &stale {
            return Ok(v.clone());
        }
        let seen = changes(&self.accounts);
        match self.store.get_account(id).await {
            Ok(v) => {
                let v = v.map(Arc::new);
                insert(&self.accounts, id, v.clone(), seen);
                Ok(v)
            }
            Err(e) => match stale {
                Some((v, _)) => Ok(v),
                None => Err(e),
            },
        }
    }

    /// The account registered for `connector` under the provider's `external_id`.
    pub async fn account_by_external(
        &self,
        connector: &str,
        external_id: &str,
    ) -> Result<Option<Arc<Account>>, RegistryError> {
        let key = format!("{connector}:{external_id}");
        let stale = lookup(&self.by_external, &key, self.ttl);
        if let Some((v, true)) = &stale {
            return Ok(v.clone());
        }
        let seen = changes(&self.by_external);
        match self.store.get_account_by_external(connector, external_id).await {
            Ok(v) => {
                let v = v.map(Arc::new);
                insert(&self.by_external, &key, v.clone(), seen);
                Ok(v)
            }
            Err(e) => match stale {
                Some((v, _)) => Ok(v),
                None => Err(e),
            },
        }
    }

    /// The tenant's endpoints (enabled or not).
    pub async fn endpoints(&self, tenant_id: &str) -> Result<Arc<Vec<Endpoint>>, RegistryError> {
        let stale = lookup(&self.endpoints, tenant_id, self.ttl);
        if let Some((v, true)) = &stale {
            return Ok(v.clone());
        }
        let seen = changes(&self.endpoints);
        match self.store.list_endpoints(tenant_id).await {
            Ok(v) => {
                let v = Arc::new(v);
                insert(&self.endpoints, tenant_id, v.clone(), seen);
                Ok(v)
            }
            Err(e) => match stale {
                Some((v, _)) => Ok(v),
                None => Err(e),
            },
        }
    }

    /// Mark the entry a change announcement names for refetching. It is not dropped: if
    /// Redis is down at the next lookup, the last known value still serves.
    pub fn invalidate(&self, announcement: &str) {
        if let Some(id) = announcement.strip_prefix("account:") {
            mark_stale(&self.accounts, Some(id));
            // Which routing keys pointed at it is not known here: refetch them all (rare).
            mark_stale(&self.by_external, None);
        } else if let Some(tenant) = announcement.strip_prefix("endpoints:") {
            mark_stale(&self.endpoints, Some(tenant));
        }
    }

    /// Listen for change announcements until `shutdown`.
    pub async fn listen(
        self: Arc<Self>,
        client: async_nats::Client,
        shutdown: CancellationToken,
    ) -> Result<(), async_nats::SubscribeError> {
        let subject = self.store.names().registry_changes();
        let mut sub = client.subscribe(subject).await?;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                msg = sub.next() => match msg {
                    Some(m) => self.invalidate(&String::from_utf8_lossy(&m.payload)),
                    None => return Ok(()),
                },
            }
        }
    }
}

/// `(value, fresh)` if cached.
fn lookup<T: Clone + Negative>(map: &Map<T>, key: &str, ttl: Duration) -> Option<(T, bool)> {
    let c = map.entries.get(key)?;
    let fresh = !c.invalidated && c.seen >= map.all_stale_before.load(Ordering::Acquire) && c.fetched.elapsed() < ttl;
    Some((c.value, fresh))
}

/// Mark one entry (or, with `None`, every entry) for refetching.
fn mark_stale<T: Clone + Negative>(map: &Map<T>, key: Option<&str>) {
    let now = map.changes.fetch_add(1, Ordering::AcqRel) + 1;
    match key {
        Some(k) => {
            if let Some(mut c) = map.entries.peek(k) {
                c.invalidated = true;
                // Only if still there; `soft` leaves its standing in the cache as it was.
                let _ = map.entries.replace(k.to_string(), c, true);
            }
        }
        None => map.all_stale_before.store(now, Ordering::Release),
    }
}

/// Announcements the map has seen: read before a fetch, handed to [`insert`].
fn changes<T: Clone + Negative>(map: &Map<T>) -> u64 {
    map.changes.load(Ordering::Acquire)
}

/// Store `value`, fetched when the map had seen `seen` announcements: if one came
/// while it was read, it is stored marked for refetching (the change may be newer).
fn insert<T: Clone + Negative>(map: &Map<T>, key: &str, value: T, seen: u64) {
    let raced = changes(map) != seen;
    map.entries.insert(
        key.to_string(),
        Cached {
            value,
            fetched: Instant::now(),
            seen,
            invalidated: raced,
        },
    );
}

/// Announce a change so every cache drops its copy.
pub async fn announce(client: &async_nats::Client, subject: String, what: String) {
    if let Err(e) = client.publish(subject, what.into()).await {
        tracing::warn!(error = %e, "Registry change announcement failed; caches catch up within their TTL.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_unknown_ids_stays_within_the_budget_and_keeps_accounts_in_use() {
        let budget = 64 * 1024;
        let map: Map<Option<Arc<u32>>> = Map::new(budget);
        let ttl = Duration::from_secs(60);
        insert(&map, "known", Some(Arc::new(1)), 0);
        for i in 0..10_000 {
            insert(&map, &format!("unknown-{i:040}"), None, 0);
            assert!(map.entries.weight() <= budget, "{} bytes", map.entries.weight());
            // Webhooks keep arriving for the known account meanwhile.
            if i % 50 == 0 {
                assert!(
                    lookup(&map, "known", ttl).is_some(),
                    "the known account was evicted at {i}"
                );
            }
        }
        assert!(
            lookup(&map, "known", ttl).is_some(),
            "a known account survives the flood"
        );
    }

    #[test]
    fn replacing_an_entry_does_not_count_it_twice() {
        let map: Map<Option<Arc<u32>>> = Map::new(1024);
        for _ in 0..100 {
            insert(&map, "a", Some(Arc::new(1)), 0);
        }
        assert_eq!(map.entries.weight(), weight("a"));
        insert(&map, "a", None, 0);
        assert_eq!(
            map.entries.weight(),
            weight("a") * NEGATIVE_FACTOR,
            "a negative entry weighs more"
        );
    }

    /// A value read while a change was announced may predate it: it serves, but the
    /// next lookup reads again instead of trusting it for the TTL.
    #[test]
    fn a_value_read_across_an_announcement_is_refetched() {
        let map: Map<Option<Arc<u32>>> = Map::new(MAX_MAP_BYTES);
        let ttl = Duration::from_secs(60);
        let seen = changes(&map);
        mark_stale(&map, Some("t"));
        insert(&map, "t", Some(Arc::new(1)), seen);
        assert_eq!(lookup(&map, "t", ttl), Some((Some(Arc::new(1)), false)));
        let seen = changes(&map);
        insert(&map, "t", Some(Arc::new(2)), seen);
        assert_eq!(lookup(&map, "t", ttl), Some((Some(Arc::new(2)), true)));
    }

    #[test]
    fn an_announcement_for_every_entry_makes_each_stale_until_read_again() {
        let map: Map<Option<Arc<u32>>> = Map::new(MAX_MAP_BYTES);
        let ttl = Duration::from_secs(60);
        insert(&map, "a", Some(Arc::new(1)), changes(&map));
        insert(&map, "b", None, changes(&map));
        mark_stale(&map, None);
        assert_eq!(lookup(&map, "a", ttl), Some((Some(Arc::new(1)), false)));
        assert_eq!(lookup(&map, "b", ttl), Some((None, false)));
        insert(&map, "a", Some(Arc::new(3)), changes(&map));
        assert_eq!(lookup(&map, "a", ttl), Some((Some(Arc::new(3)), true)));
        assert_eq!(lookup(&map, "b", ttl).map(|(_, fresh)| fresh), Some(false));
    }

    #[test]
    fn one_entry_marked_stale_leaves_the_others_fresh() {
        let map: Map<Option<Arc<u32>>> = Map::new(MAX_MAP_BYTES);
        let ttl = Duration::from_secs(60);
        insert(&map, "a", Some(Arc::new(1)), changes(&map));
        insert(&map, "b", Some(Arc::new(2)), changes(&map));
        mark_stale(&map, Some("a"));
        assert_eq!(lookup(&map, "a", ttl).map(|(_, fresh)| fresh), Some(false));
        assert_eq!(lookup(&map, "b", ttl).map(|(_, fresh)| fresh), Some(true));
        assert_eq!(
            lookup(&map, "b", Duration::ZERO).map(|(_, fresh)| fresh),
            Some(false),
            "past its TTL"
        );
    }
}
