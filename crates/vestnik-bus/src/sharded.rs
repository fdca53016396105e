//! A bounded, sharded map of expiring entries shared by the in-memory stores.
//!
//! Sharding keeps lock contention low on the request hot path; a random hasher
//! picks the shard so clients cannot aim all their keys (e.g. chosen IPs or
//! user names) at one shard. Expired entries are dropped lazily on access and in
//! amortised sweeps, and a hard per-shard cap bounds memory even when every
//! entry is still live.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard, PoisonError};
use vestnik_core::limits::MEMORY_MIN_SWEEP_LEN as MIN_SWEEP_LEN;
pub(crate) use vestnik_core::limits::MEMORY_SHARDS as SHARDS;

pub(crate) trait Expiring {
    /// The entry is dead (or, for buckets, equivalent to absent) at and after this instant.
    fn expires_at_ms(&self) -> i64;
}

pub(crate) struct ShardedMap<V> {
    shards: Box<[Mutex<Shard<V>>]>,
    hasher: std::collections::hash_map::RandomState,
}

pub(crate) struct Shard<V> {
    map: HashMap<String, V>,
    /// The next sweep runs when the map reaches this size; doubling it after
    /// each sweep keeps the cost amortised O(1) per insert.
    sweep_at: usize,
    cap: usize,
}

impl<V: Expiring> ShardedMap<V> {
    pub(crate) fn new(max_entries: usize) -> Self {
        let cap = max_entries.div_ceil(SHARDS).max(1);
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    map: HashMap::new(),
                    sweep_at: MIN_SWEEP_LEN.min(cap),
                    cap,
                })
            })
            .collect();
        Self {
            shards,
            hasher: Default::default(),
        }
    }

    pub(crate) fn shard(&self, key: &str) -> MutexGuard<'_, Shard<V>> {
        // Truncation is fine: only the low bits choose the shard.
        let idx = (self.hasher.hash_one(key) as usize) % self.shards.len();
        // A panic while holding the lock cannot leave an entry half-written in a
        // way that matters for a cache, so keep serving rather than cascade.
        self.shards[idx]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).map.len())
            .sum()
    }
}

impl<V: Expiring> Shard<V> {
    /// The live entry for `key`, dropping it first if it has expired.
    pub(crate) fn get_live(&mut self, key: &str, now_ms: i64) -> Option<&mut V> {
        if self
            .map
            .get(key)
            .is_some_and(|v| v.expires_at_ms() <= now_ms)
        {
            self.map.remove(key);
            return None;
        }
        self.map.get_mut(key)
    }

    pub(crate) fn remove(&mut self, key: &str) {
        self.map.remove(key);
    }

    /// Inserts or replaces `key`, making room first if a new entry would
    /// exceed the sweep threshold or the cap.
    pub(crate) fn insert(&mut self, key: &str, value: V, now_ms: i64) {
        if let Some(slot) = self.map.get_mut(key) {
            *slot = value;
            return;
        }
        if self.map.len() >= self.sweep_at || self.map.len() >= self.cap {
            self.make_room(now_ms);
        }
        self.map.insert(key.to_owned(), value);
    }

    fn make_room(&mut self, now_ms: i64) {
        self.map.retain(|_, v| v.expires_at_ms() > now_ms);
        if self.map.len() >= self.cap {
            // Everything is live. Evict a batch rather than one entry so the
            // O(n) scan is paid once per `cap / 16` inserts, and evict the
            // entries closest to expiry: they had the least left to protect.
            self.evict_soonest((self.cap / 16).max(1));
        }
        self.sweep_at = (self.map.len() * 2).clamp(MIN_SWEEP_LEN.min(self.cap), self.cap);
        // Give back memory after a burst; keep headroom to avoid regrowing at once.
        let wanted = (self.map.len() * 2).max(MIN_SWEEP_LEN.min(self.cap));
        if self.map.capacity() > wanted * 2 {
            self.map.shrink_to(wanted);
        }
    }

    fn evict_soonest(&mut self, count: usize) {
        let count = count.min(self.map.len());
        if count == 0 {
            return;
        }
        let mut expiries: Vec<i64> = self.map.values().map(Expiring::expires_at_ms).collect();
        let (below, &mut threshold, _) = expiries.select_nth_unstable(count - 1);
        let strictly_below = below.iter().filter(|&&e| e < threshold).count();
        // Ties at the threshold are evicted only as far as needed, so many
        // entries sharing one expiry cannot empty the whole shard.
        let mut ties_to_evict = count - strictly_below;
        self.map.retain(|_, v| {
            let e = v.expires_at_ms();
            if e < threshold {
                false
            } else if e == threshold && ties_to_evict > 0 {
                ties_to_evict -= 1;
                false
            } else {
                true
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct E(i64);
    impl Expiring for E {
        fn expires_at_ms(&self) -> i64 {
            self.0
        }
    }

    #[test]
    fn live_entries_are_capped_and_soonest_evicted() {
        let map = ShardedMap::<E>::new(SHARDS * 32);
        for i in 0..10_000 {
            map.shard(&format!("k{i}"))
                .insert(&format!("k{i}"), E(1_000 + i), 0);
        }
        assert!(map.len() <= SHARDS * 32, "len {}", map.len());
        // The most recently inserted keys expire last, so they must survive.
        assert!(map.shard("k9999").get_live("k9999", 0).is_some());
    }

    #[test]
    fn expired_entries_are_swept_when_the_shard_grows() {
        let map = ShardedMap::<E>::new(1_000_000);
        for i in 0..200_000 {
            let k = format!("k{i}");
            // Every key expires immediately after it is written.
            map.shard(&k).insert(&k, E(i), i);
        }
        // Without sweeping all 200k would remain; with it each shard stays near
        // its sweep threshold.
        assert!(map.len() <= SHARDS * MIN_SWEEP_LEN, "len {}", map.len());
    }

    #[test]
    fn ties_do_not_empty_the_shard() {
        let mut shard = Shard {
            map: HashMap::new(),
            sweep_at: 64,
            cap: 64,
        };
        for i in 0..64 {
            shard.insert(&format!("k{i}"), E(10), 0);
        }
        shard.insert("new", E(10), 0);
        // One batch of cap / 16 made room for the new key.
        assert_eq!(shard.map.len(), 64 - 4 + 1);
    }
}
