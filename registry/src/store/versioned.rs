//! Read-modify-write of an endpoint that cannot lose a concurrent change. The admin API
//! and the dispatcher (disabling an endpoint that answered 410 or kept failing) both
//! rewrite endpoints; a plain read-then-`HSET` from each could re-enable an endpoint
//! the other had just disabled, or bring back one just deleted.
//!
//! So a write names the version it was read at: the stored JSON itself, which changes
//! on every write because sealing uses a fresh nonce. A Lua script compares and sets
//! in one step.

use redis::AsyncCommands;

use super::{RegistryError, RegistryStore};
use crate::model::Endpoint;

/// The stored form an endpoint was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointVersion(String);

/// What [`RegistryStore::replace_endpoint`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replaced {
    /// Written.
    Done,
    /// The endpoint was deleted since it was read; nothing was written.
    Gone,
    /// Someone else wrote it since it was read; nothing was written.
    Changed,
}

/// `KEYS[1]` hash, `ARGV[1]` field, `ARGV[2]` expected value, `ARGV[3]` new value.
const COMPARE_AND_SET: &str = "local cur = redis.call('HGET', KEYS[1], ARGV[1]) \
    if not cur then return 0 end \
    if cur ~= ARGV[2] then return -1 end \
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) return 1";

impl RegistryStore {
    /// One endpoint of a tenant and the version it was read at.
    pub async fn get_endpoint_versioned(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<(Endpoint, EndpointVersion)>, RegistryError> {
        let key = self.names.redis_key(&format!("endpoints:{tenant_id}"));
        let mut c = self.redis.clone();
        let raw: Option<String> = self.run(c.hget(&key, id)).await?;
        raw.map(|r| Ok((self.open_endpoint(&key, &r)?, EndpointVersion(r))))
            .transpose()
    }

    /// Write `e` only if it is still stored as it was at `read_at`.
    pub async fn replace_endpoint(&self, e: &Endpoint, read_at: &EndpointVersion) -> Result<Replaced, RegistryError> {
        let key = self.names.redis_key(&format!("endpoints:{}", e.tenant_id));
        let json = self.seal_endpoint(e);
        let mut c = self.redis.clone();
        let outcome: i64 = self
            .run(
                redis::cmd("EVAL")
                    .arg(COMPARE_AND_SET)
                    .arg(1)
                    .arg(&key)
                    .arg(&e.id)
                    .arg(&read_at.0)
                    .arg(json)
                    .query_async(&mut c),
            )
            .await?;
        Ok(match outcome {
            1 => Replaced::Done,
            0 => Replaced::Gone,
            _ => Replaced::Changed,
        })
    }
}
