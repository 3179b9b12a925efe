//! The registry as the hot path reads it: an in-process cache in front of Redis.
//!
//! - A change made through the admin API is announced on the core-NATS subject
//!   [`switchyard_core::names::Names::registry_changes`]; every cache drops the entry at once.
//! - Entries also expire after a TTL, a safety net for a missed announcement.
//! - When Redis is unreachable, an expired entry is served stale rather than failing:
//!   the ingress keeps accepting webhooks for known accounts through a Redis outage.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::model::{Account, Endpoint};
use super::store::{RegistryError, RegistryStore};

struct Cached<T> {
    value: T,
    fetched: Instant,
    /// A change was announced: refetch, but keep serving this while Redis is down.
    invalidated: bool,
}

/// Bytes one map may hold (keys plus a fixed cost per entry). Accounts and endpoints are
/// few and small next to this; only a flood of unknown ids could reach it.
const MAX_MAP_BYTES: usize = 8 << 20;
/// What an entry costs besides its key: the slot, the value's `Arc`, the timestamps.
const ENTRY_OVERHEAD: usize = 96;

/// One cache map, bounded in bytes. When full, the entries for ids that do not exist
/// (negative entries: cheap to look up again, and what a flood of made-up ids creates)
/// go first; only if that is not enough does everything go.
struct Bounded<T> {
    entries: HashMap<String, Cached<T>>,
    bytes: usize,
    /// Announcements seen so far. A value read from Redis while one arrived may predate
    /// the change it announced: it is stored already marked for refetching.
    changes: u64,
}

impl<T> Default for Bounded<T> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            bytes: 0,
            changes: 0,
        }
    }
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

fn weight(key: &str) -> usize {
    key.len() + ENTRY_OVERHEAD
}

type Map<T> = Mutex<Bounded<T>>;

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
            accounts: Mutex::default(),
            by_external: Mutex::default(),
            endpoints: Mutex::default(),
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
fn lookup<T: Clone>(map: &Map<T>, key: &str, ttl: Duration) -> Option<(T, bool)> {
    let m = map.lock().expect("cache lock");
    m.entries
        .get(key)
        .map(|c| (c.value.clone(), !c.invalidated && c.fetched.elapsed() < ttl))
}

/// Mark one entry (or, with `None`, every entry) for refetching.
fn mark_stale<T>(map: &Map<T>, key: Option<&str>) {
    let mut m = map.lock().expect("cache lock");
    m.changes += 1;
    match key {
        Some(k) => {
            if let Some(c) = m.entries.get_mut(k) {
                c.invalidated = true;
            }
        }
        None => m.entries.values_mut().for_each(|c| c.invalidated = true),
    }
}

/// Announcements the map has seen: read before a fetch, handed to [`insert`].
fn changes<T>(map: &Map<T>) -> u64 {
    map.lock().expect("cache lock").changes
}

/// Store `value`, fetched when the map had seen `seen` announcements: if one came
/// while it was read, it is stored marked for refetching (the change may be newer).
fn insert<T: Negative>(map: &Map<T>, key: &str, value: T, seen: u64) {
    insert_within(map, key, value, MAX_MAP_BYTES, seen)
}

fn insert_within<T: Negative>(map: &Map<T>, key: &str, value: T, budget: usize, seen: u64) {
    let mut m = map.lock().expect("cache lock");
    let m = &mut *m;
    let raced = m.changes != seen;
    if let Some(old) = m.entries.remove(key) {
        drop(old);
        m.bytes -= weight(key);
    }
    let w = weight(key);
    if m.bytes + w > budget {
        m.entries.retain(|_, c| !c.value.is_negative());
        m.bytes = m.entries.keys().map(|k| weight(k)).sum();
        if m.bytes + w > budget {
            m.entries.clear();
            m.bytes = 0;
        }
        // Give the memory back rather than keep the flood's high-water mark.
        m.entries.shrink_to_fit();
    }
    m.bytes += w;
    m.entries.insert(
        key.to_string(),
        Cached {
            value,
            fetched: Instant::now(),
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
    fn a_flood_of_unknown_ids_stays_within_the_budget_and_keeps_known_entries() {
        let map: Map<Option<Arc<u32>>> = Mutex::default();
        let budget = 64 * 1024;
        insert_within(&map, "known", Some(Arc::new(1)), budget, 0);
        for i in 0..10_000 {
            insert_within(&map, &format!("unknown-{i:040}"), None, budget, 0);
            let m = map.lock().unwrap();
            assert!(m.bytes <= budget, "{} bytes", m.bytes);
            assert_eq!(m.bytes, m.entries.keys().map(|k| weight(k)).sum::<usize>());
        }
        assert!(
            lookup(&map, "known", Duration::from_secs(60)).is_some(),
            "a known account survives the flood"
        );
    }

    #[test]
    fn replacing_an_entry_does_not_count_it_twice() {
        let map: Map<Option<Arc<u32>>> = Mutex::default();
        for _ in 0..100 {
            insert_within(&map, "a", Some(Arc::new(1)), 1024, 0);
        }
        assert_eq!(map.lock().unwrap().bytes, weight("a"));
    }

    /// A value read while a change was announced may predate it: it serves, but the
    /// next lookup reads again instead of trusting it for the TTL.
    #[test]
    fn a_value_read_across_an_announcement_is_refetched() {
        let map: Map<Option<Arc<u32>>> = Mutex::default();
        let ttl = Duration::from_secs(60);
        let seen = changes(&map);
        mark_stale(&map, Some("t"));
        insert(&map, "t", Some(Arc::new(1)), seen);
        assert_eq!(lookup(&map, "t", ttl), Some((Some(Arc::new(1)), false)));
        let seen = changes(&map);
        insert(&map, "t", Some(Arc::new(2)), seen);
        assert_eq!(lookup(&map, "t", ttl), Some((Some(Arc::new(2)), true)));
    }
}
