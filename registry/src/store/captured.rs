//! Values a provider hands over once, unsigned, to finish a subscription (Notion's
//! `verification_token`, which it also signs with from then on): the ingress keeps
//! them here, sealed, for the operator to read through the admin API.
//!
//! Key: `captured:<account id>` → a list, newest first, of at most [`KEEP`] JSON
//! records, expiring [`TTL_SECS`] after the last capture. Anyone who knows an
//! account's URL can add one, so nothing trusts them: an operator reads them, and
//! pastes the right one into the provider (which refuses a wrong one) and into the
//! account's signing secrets. A flood only pushes out older ones.

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use switchyard_core::secret::Secret;

use super::{RegistryError, RegistryStore};

/// How many captures are kept per account.
pub const KEEP: isize = 5;
/// How long captures are kept after the last one: a week.
pub const TTL_SECS: i64 = 7 * 24 * 3600;

/// One captured value, opened.
#[derive(Debug, Clone)]
pub struct Captured {
    pub value: Secret,
    /// Unix seconds.
    pub captured_at: i64,
}

#[derive(Serialize, Deserialize)]
struct StoredCapture {
    sealed: String,
    captured_at: i64,
}

fn aad(account_id: &str) -> String {
    format!("captured:{account_id}")
}

impl RegistryStore {
    pub(super) fn captured_key(&self, account_id: &str) -> String {
        self.names.redis_key(&format!("captured:{account_id}"))
    }

    /// Keep `value`, handed over at `now` (Unix seconds), for `account_id`.
    pub async fn capture(&self, account_id: &str, value: &Secret, now: i64) -> Result<(), RegistryError> {
        let record = StoredCapture {
            sealed: self.sealer.seal(value, &aad(account_id)),
            captured_at: now,
        };
        let json = serde_json::to_string(&record).expect("a capture serializes");
        let key = self.captured_key(account_id);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .lpush(&key, json)
            .ignore()
            .ltrim(&key, 0, KEEP - 1)
            .ignore()
            .expire(&key, TTL_SECS)
            .ignore();
        let mut c = self.redis.clone();
        let () = self.run(pipe.query_async(&mut c)).await?;
        Ok(())
    }

    /// The values kept for `account_id`, newest first.
    pub async fn captured(&self, account_id: &str) -> Result<Vec<Captured>, RegistryError> {
        let key = self.captured_key(account_id);
        let mut c = self.redis.clone();
        let raw: Vec<String> = self.run(c.lrange(&key, 0, KEEP - 1)).await?;
        raw.iter()
            .map(|r| {
                let s: StoredCapture = Self::decode(&key, r)?;
                Ok(Captured {
                    value: self.sealer.open(&s.sealed, &aad(account_id))?,
                    captured_at: s.captured_at,
                })
            })
            .collect()
    }

    /// Forget what was kept for `account_id` (its deletion, or once adopted).
    pub async fn forget_captured(&self, account_id: &str) -> Result<(), RegistryError> {
        let mut c = self.redis.clone();
        let _: i64 = self.run(c.del(self.captured_key(account_id))).await?;
        Ok(())
    }
}
