//! Listing and deleting registry records, for the admin API.
//!
//! Lists page by id with a cursor (the last id of the previous page), so they rest on
//! sorted sets whose members all score 0: `ZRANGEBYLEX (<cursor> + LIMIT 0 n` reads
//! one page in id order, whatever the size of the set. Keys (under the namespace):
//! - `tenant-index` → every tenant id
//! - `account-index` → every account id; `account-index:tenant:<tenant id>` and
//!   `account-index:connector:<connector>` → the ids of that tenant's or connector's
//!   accounts.
//!
//! [`RegistryStore::put_tenant`] and [`RegistryStore::put_account`] keep them in step
//! with the records in the same `MULTI`. Records written before the indexes existed
//! are indexed once, on first use (`account-index-built` marks that done).

use redis::AsyncCommands;

use super::{RegistryError, RegistryStore};
use crate::model::{Account, Tenant};

/// One page of a list, in id order.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The cursor of the next page, `None` on the last one.
    pub next_cursor: Option<String>,
}

/// Which accounts to list; both set means accounts of that tenant and connector.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccountQuery<'a> {
    pub tenant_id: Option<&'a str>,
    pub connector: Option<&'a str>,
}

/// What deleting a tenant removed, so the caller can announce it to the caches.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeletedTenant {
    pub endpoint_ids: Vec<String>,
    pub account_ids: Vec<String>,
}

/// Deletes `KEYS[1]` only while it still holds `ARGV[1]`: a routing-index entry another
/// account has taken over since is left alone.
const DELETE_IF_EQUAL: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

impl RegistryStore {
    pub(super) fn tenant_index(&self) -> String {
        self.names.redis_key("tenant-index")
    }

    fn account_indexes(&self, tenant_id: &str, connector: &str) -> [String; 3] {
        [
            self.names.redis_key("account-index"),
            self.names.redis_key(&format!("account-index:tenant:{tenant_id}")),
            self.names.redis_key(&format!("account-index:connector:{connector}")),
        ]
    }

    pub(super) fn index_account(&self, pipe: &mut redis::Pipeline, id: &str, tenant_id: &str, connector: &str) {
        for key in self.account_indexes(tenant_id, connector) {
            pipe.zadd(key, id, 0).ignore();
        }
    }

    pub(super) fn unindex_account(&self, pipe: &mut redis::Pipeline, id: &str, tenant_id: &str, connector: &str) {
        for key in self.account_indexes(tenant_id, connector) {
            pipe.zrem(key, id).ignore();
        }
    }

    /// Up to `n` ids of the sorted index `key` that sort after `after`.
    async fn ids_after(&self, key: &str, after: Option<&str>, n: usize) -> Result<Vec<String>, RegistryError> {
        let min = after.map_or_else(|| "-".to_string(), |a| format!("({a}"));
        let mut c = self.redis.clone();
        self.run(c.zrangebylex_limit(key, min, "+", 0, n as isize)).await
    }

    /// Tenants in id order, `limit` per page, after the cursor `after`.
    pub async fn list_tenants(&self, after: Option<&str>, limit: usize) -> Result<Page<Tenant>, RegistryError> {
        if after.is_none() {
            self.backfill_tenant_index().await?;
        }
        let mut ids = self.ids_after(&self.tenant_index(), after, limit + 1).await?;
        let more = ids.len() > limit;
        ids.truncate(limit);
        let next_cursor = if more { ids.last().cloned() } else { None };
        if ids.is_empty() {
            return Ok(Page {
                items: Vec::new(),
                next_cursor,
            });
        }
        let keys: Vec<String> = ids
            .iter()
            .map(|id| self.names.redis_key(&format!("tenant:{id}")))
            .collect();
        let mut c = self.redis.clone();
        let raw: Vec<Option<String>> = self.run(c.mget(&keys)).await?;
        let mut items = Vec::with_capacity(raw.len());
        // A tenant deleted between the two reads is simply not on the page.
        for (key, r) in keys.iter().zip(raw) {
            if let Some(r) = r {
                items.push(Self::decode(key, &r)?);
            }
        }
        Ok(Page { items, next_cursor })
    }

    /// Tenants created before the index existed are only in the `tenants` set: copy
    /// them over when the two disagree (one round trip when they agree).
    async fn backfill_tenant_index(&self) -> Result<(), RegistryError> {
        let (set, index) = (self.names.redis_key("tenants"), self.tenant_index());
        let mut c = self.redis.clone();
        let (in_set, in_index): (usize, usize) = self
            .run(redis::pipe().scard(&set).zcard(&index).query_async(&mut c))
            .await?;
        if in_set > in_index {
            let ids: Vec<String> = self.run(c.smembers(&set)).await?;
            let members: Vec<(i64, String)> = ids.into_iter().map(|id| (0, id)).collect();
            let _: usize = self.run(c.zadd_multiple(&index, &members)).await?;
        }
        Ok(())
    }

    /// Accounts in id order, `limit` per page, after the cursor `after`.
    pub async fn list_accounts(
        &self,
        query: AccountQuery<'_>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Account>, RegistryError> {
        let [all, by_tenant, by_connector] =
            self.account_indexes(query.tenant_id.unwrap_or(""), query.connector.unwrap_or(""));
        let index = match (query.tenant_id, query.connector) {
            (Some(_), _) => by_tenant,
            (None, Some(_)) => by_connector,
            (None, None) => all,
        };
        self.ensure_account_index().await?;
        let batch = limit + 1;
        let mut items: Vec<Account> = Vec::with_capacity(batch);
        let mut from = after.map(str::to_string);
        // With both filters the tenant's index is read and the connector filtered here,
        // so a page may take several reads.
        loop {
            let ids = self.ids_after(&index, from.as_deref(), batch).await?;
            let exhausted = ids.len() < batch;
            from = ids.last().cloned();
            let keys: Vec<String> = ids
                .iter()
                .map(|id| self.names.redis_key(&format!("account:{id}")))
                .collect();
            if !keys.is_empty() {
                let mut c = self.redis.clone();
                let raw: Vec<Option<String>> = self.run(c.mget(&keys)).await?;
                for (key, r) in keys.iter().zip(raw) {
                    let Some(r) = r else { continue };
                    let a = self.open_account(key, &r)?;
                    if query.connector.is_none_or(|c| c == a.connector) && items.len() < batch {
                        items.push(a);
                    }
                }
            }
            if exhausted || items.len() == batch {
                break;
            }
        }
        let more = items.len() > limit;
        items.truncate(limit);
        let next_cursor = if more { items.last().map(|a| a.id.clone()) } else { None };
        Ok(Page { items, next_cursor })
    }

    /// Index the accounts stored before the indexes existed, once per namespace.
    async fn ensure_account_index(&self) -> Result<(), RegistryError> {
        let marker = self.names.redis_key("account-index-built");
        let mut c = self.redis.clone();
        if self.run(c.exists::<_, bool>(&marker)).await? {
            return Ok(());
        }
        let pattern = self.names.redis_key("account:*");
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = self
                .run(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(500)
                        .query_async(&mut c),
                )
                .await?;
            if !keys.is_empty() {
                let raw: Vec<Option<String>> = self.run(c.mget(&keys)).await?;
                let mut pipe = redis::pipe();
                for (key, r) in keys.iter().zip(raw) {
                    // Only the ids are needed: no secret is opened.
                    if let Some(a) = r.map(|r| Self::decode::<super::StoredAccount>(key, &r)).transpose()? {
                        self.index_account(&mut pipe, &a.id, &a.tenant_id, &a.connector);
                    }
                }
                let () = self.run(pipe.query_async(&mut c)).await?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let () = self.run(c.set(&marker, 1)).await?;
        Ok(())
    }

    /// Delete an account, its routing-index entry and its index entries; `true` when
    /// it existed.
    pub async fn delete_account(&self, id: &str) -> Result<bool, RegistryError> {
        let Some(a) = self.get_account(id).await? else {
            return Ok(false);
        };
        let mut pipe = redis::pipe();
        pipe.atomic()
            .del(self.names.redis_key(&format!("account:{id}")))
            .ignore()
            .del(self.captured_key(id))
            .ignore();
        self.unindex_account(&mut pipe, id, &a.tenant_id, &a.connector);
        if let Some(ext) = &a.external_id {
            pipe.cmd("EVAL")
                .arg(DELETE_IF_EQUAL)
                .arg(1)
                .arg(self.external_key(&a.connector, ext))
                .arg(id)
                .ignore();
        }
        let mut c = self.redis.clone();
        let () = self.run(pipe.query_async(&mut c)).await?;
        Ok(true)
    }

    /// Delete a tenant with everything it has: its endpoints (deliveries to them stop
    /// once the caches drop them) and its accounts (their webhooks are then refused).
    /// `None` when there was no such tenant.
    pub async fn delete_tenant(&self, id: &str) -> Result<Option<DeletedTenant>, RegistryError> {
        if self.get_tenant(id).await?.is_none() {
            return Ok(None);
        }
        let endpoints = self.names.redis_key(&format!("endpoints:{id}"));
        let mut c = self.redis.clone();
        let endpoint_ids: Vec<String> = self.run(c.hkeys(&endpoints)).await?;
        let () = self
            .run(
                redis::pipe()
                    .atomic()
                    .del(self.names.redis_key(&format!("tenant:{id}")))
                    .ignore()
                    .srem(self.names.redis_key("tenants"), id)
                    .ignore()
                    .zrem(self.tenant_index(), id)
                    .ignore()
                    .del(&endpoints)
                    .ignore()
                    .query_async(&mut c),
            )
            .await?;
        self.ensure_account_index().await?;
        let [_, by_tenant, _] = self.account_indexes(id, "");
        let mut account_ids = Vec::new();
        loop {
            let ids = self.ids_after(&by_tenant, None, 100).await?;
            if ids.is_empty() {
                break;
            }
            for account in ids {
                if !self.delete_account(&account).await? {
                    // An index entry without its record: drop it so the loop ends.
                    let _: usize = self.run(c.zrem(&by_tenant, &account)).await?;
                }
                account_ids.push(account);
            }
        }
        Ok(Some(DeletedTenant {
            endpoint_ids,
            account_ids,
        }))
    }
}
