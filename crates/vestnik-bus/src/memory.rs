//! In-process implementations for a single node.

use std::sync::Arc;

use vestnik_core::Clock;

use crate::sharded::{Expiring, ShardedMap};
use crate::{effective_ttl, BucketModel, BusError, Decision, Kv, Rate, RateLimiter};
use vestnik_core::limits::MEMORY_MAX_BUCKETS as DEFAULT_MAX_BUCKETS;
use vestnik_core::limits::MEMORY_MAX_KV_ENTRIES as DEFAULT_MAX_KV_ENTRIES;

fn expiry(now_ms: i64, ttl_ms: u64) -> i64 {
    now_ms.saturating_add(i64::try_from(effective_ttl(ttl_ms)).unwrap_or(i64::MAX))
}

struct KvEntry {
    value: String,
    expires_at_ms: i64,
}

impl Expiring for KvEntry {
    fn expires_at_ms(&self) -> i64 {
        self.expires_at_ms
    }
}

/// [`Kv`] in process memory for a single node, sharded and bounded in size.
pub struct MemoryKv {
    clock: Arc<dyn Clock>,
    map: ShardedMap<KvEntry>,
}

impl MemoryKv {
    /// Bounded by [`vestnik_core::limits::MEMORY_MAX_KV_ENTRIES`]; expiry is judged by `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self::with_max_entries(clock, DEFAULT_MAX_KV_ENTRIES)
    }

    /// When full of live entries, those closest to expiry are evicted first.
    pub fn with_max_entries(clock: Arc<dyn Clock>, max_entries: usize) -> Self {
        Self {
            clock,
            map: ShardedMap::new(max_entries),
        }
    }
}

#[async_trait::async_trait]
impl Kv for MemoryKv {
    async fn get(&self, key: &str) -> Result<Option<String>, BusError> {
        let now = self.clock.now_ms();
        Ok(self
            .map
            .shard(key)
            .get_live(key, now)
            .map(|e| e.value.clone()))
    }

    async fn set(&self, key: &str, value: &str, ttl_ms: u64) -> Result<(), BusError> {
        let now = self.clock.now_ms();
        let entry = KvEntry {
            value: value.to_owned(),
            expires_at_ms: expiry(now, ttl_ms),
        };
        self.map.shard(key).insert(key, entry, now);
        Ok(())
    }

    async fn set_nx(&self, key: &str, value: &str, ttl_ms: u64) -> Result<bool, BusError> {
        let now = self.clock.now_ms();
        let mut shard = self.map.shard(key);
        if shard.get_live(key, now).is_some() {
            return Ok(false);
        }
        let entry = KvEntry {
            value: value.to_owned(),
            expires_at_ms: expiry(now, ttl_ms),
        };
        shard.insert(key, entry, now);
        Ok(true)
    }

    async fn del(&self, keys: &[String]) -> Result<(), BusError> {
        for key in keys {
            self.map.shard(key).remove(key);
        }
        Ok(())
    }

    async fn incr(&self, key: &str, ttl_ms: u64) -> Result<i64, BusError> {
        let now = self.clock.now_ms();
        let mut shard = self.map.shard(key);
        if let Some(entry) = shard.get_live(key, now) {
            let invalid = |reason: &str| BusError::InvalidValue {
                key: key.to_owned(),
                reason: reason.to_owned(),
            };
            let current: i64 = entry.value.parse().map_err(|_| invalid("not an integer"))?;
            let next = current
                .checked_add(1)
                .ok_or_else(|| invalid("increment would overflow"))?;
            entry.value = next.to_string();
            return Ok(next);
        }
        let entry = KvEntry {
            value: "1".to_owned(),
            expires_at_ms: expiry(now, ttl_ms),
        };
        shard.insert(key, entry, now);
        Ok(1)
    }

    async fn ping(&self) -> Result<(), BusError> {
        Ok(())
    }
}

struct Bucket {
    /// Units left (see [`BucketModel`]) as of `updated_ms`.
    level: u128,
    updated_ms: i64,
    /// From this instant the bucket is full again, which is the same as absent.
    full_at_ms: i64,
}

impl Expiring for Bucket {
    fn expires_at_ms(&self) -> i64 {
        self.full_at_ms
    }
}

/// [`RateLimiter`] in process memory for a single node, sharded and bounded in size.
pub struct MemoryRateLimiter {
    clock: Arc<dyn Clock>,
    map: ShardedMap<Bucket>,
}

impl MemoryRateLimiter {
    /// Bounded by [`vestnik_core::limits::MEMORY_MAX_BUCKETS`]; refill is judged by `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self::with_max_entries(clock, DEFAULT_MAX_BUCKETS)
    }

    /// When full, the buckets closest to refilling are dropped first, which
    /// errs towards letting a client through rather than blocking it.
    pub fn with_max_entries(clock: Arc<dyn Clock>, max_entries: usize) -> Self {
        Self {
            clock,
            map: ShardedMap::new(max_entries),
        }
    }
}

#[async_trait::async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn check(&self, key: &str, rate: Rate) -> Result<Decision, BusError> {
        let model = match BucketModel::new(rate) {
            Ok(model) => model,
            Err(decision) => return Ok(decision),
        };
        let now = self.clock.now_ms();
        let mut shard = self.map.shard(key);
        let level = match shard.get_live(key, now) {
            Some(bucket) => {
                // A clock stepping backwards must not drain the bucket.
                let elapsed = u128::try_from(now.saturating_sub(bucket.updated_ms)).unwrap_or(0);
                bucket
                    .level
                    .saturating_add(elapsed.saturating_mul(model.refill_per_ms))
                    .min(model.full)
            }
            None => model.full,
        };
        if level < model.cost {
            // Nothing to store: the existing state already yields this level.
            return Ok(Decision::Limited {
                retry_after_ms: model.ms_until(level, model.cost).max(1),
            });
        }
        let level = level - model.cost;
        let full_at_ms = now
            .saturating_add(i64::try_from(model.ms_until(level, model.full)).unwrap_or(i64::MAX));
        let bucket = Bucket {
            level,
            updated_ms: now,
            full_at_ms,
        };
        shard.insert(key, bucket, now);
        Ok(Decision::Allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vestnik_core::clock::ManualClock;

    #[tokio::test]
    async fn kv_stays_bounded() -> Result<(), BusError> {
        let clock = ManualClock::default();
        let kv = MemoryKv::with_max_entries(Arc::new(clock.clone()), 6_400);
        for i in 0..50_000 {
            kv.set(&format!("k{i}"), "v", 60_000).await?;
        }
        assert!(kv.map.len() <= 6_400, "len {}", kv.map.len());
        // The newest keys live longest, so they are kept.
        assert_eq!(kv.get("k49999").await?.as_deref(), Some("v"));
        Ok(())
    }

    #[tokio::test]
    async fn limiter_drops_refilled_buckets() -> Result<(), BusError> {
        let clock = ManualClock::default();
        let limiter = MemoryRateLimiter::new(Arc::new(clock.clone()));
        let rate = Rate {
            capacity: 5,
            per_secs: 1,
        };
        for i in 0..300_000 {
            limiter.check(&format!("ip:{i}"), rate).await?;
            // Each bucket refills fully within a second, so old ones are dead weight.
            clock.advance_ms(1);
        }
        // Never more than a shard's sweep threshold (1024) per shard.
        assert!(limiter.map.len() <= 64 * 1024, "len {}", limiter.map.len());
        Ok(())
    }

    #[tokio::test]
    async fn limiter_stays_bounded() -> Result<(), BusError> {
        let clock = ManualClock::default();
        let limiter = MemoryRateLimiter::with_max_entries(Arc::new(clock), 6_400);
        let rate = Rate {
            capacity: 5,
            per_secs: 3600,
        };
        for i in 0..50_000 {
            assert_eq!(
                limiter.check(&format!("ip:{i}"), rate).await?,
                Decision::Allowed
            );
        }
        assert!(limiter.map.len() <= 6_400, "len {}", limiter.map.len());
        Ok(())
    }

    #[tokio::test]
    async fn incr_rejects_non_integers() -> Result<(), BusError> {
        let kv = MemoryKv::new(Arc::new(ManualClock::default()));
        kv.set("k", "abc", 1_000).await?;
        assert!(matches!(
            kv.incr("k", 1_000).await,
            Err(BusError::InvalidValue { .. })
        ));
        kv.set("k", &i64::MAX.to_string(), 1_000).await?;
        assert!(kv.incr("k", 1_000).await.is_err());
        Ok(())
    }

    #[tokio::test]
    async fn degenerate_rates() -> Result<(), BusError> {
        let limiter = MemoryRateLimiter::new(Arc::new(ManualClock::default()));
        let never = Rate {
            capacity: 0,
            per_secs: 60,
        };
        assert_eq!(
            limiter.check("k", never).await?,
            Decision::Limited {
                retry_after_ms: 60_000
            }
        );
        let always = Rate {
            capacity: 1,
            per_secs: 0,
        };
        for _ in 0..10 {
            assert_eq!(limiter.check("k", always).await?, Decision::Allowed);
        }
        Ok(())
    }
}
