//! A node-local copy of hot cache entries in front of the shared Redis `Kv`,
//! so that the access-token check and the device list cost no network round
//! trip on most requests.
//!
//! Only keys with one of the configured prefixes are kept locally, and only
//! for [`NEAR_CACHE_TTL_MS`]. Every `del` (revocation, device change) is
//! published on a Redis channel; each node evicts those keys when it hears
//! it, so a revoked token stops working on every node within the pub/sub
//! delay. While a node's subscription is down its local copy is cleared and
//! bypassed, so a missed message can never keep a revoked token alive. What
//! is left — a read racing the delete on another node, or a message racing a
//! disconnect — is bounded by the TTL.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::RedisConn;
use futures::StreamExt;

use crate::{BusError, Kv};
use vestnik_core::limits::NEAR_CACHE_MAX_ENTRIES as MAX_ENTRIES;
pub use vestnik_core::limits::NEAR_CACHE_TTL_MS;

type Local = Mutex<HashMap<String, (String, Instant)>>;

/// A [`Kv`] that keeps a node-local copy of hot keys in front of a shared (Redis) `Kv`,
/// invalidated on every node through Redis pub/sub (see the module docs).
pub struct NearCacheKv {
    shared: Arc<dyn Kv>,
    conn: RedisConn,
    channel: String,
    prefixes: Vec<String>,
    local: Arc<Local>,
    subscribed: Arc<AtomicBool>,
    /// Stops the invalidation listener when the cache is dropped.
    _listening: tokio_util::sync::DropGuard,
}

fn lock(local: &Local) -> std::sync::MutexGuard<'_, HashMap<String, (String, Instant)>> {
    // A panic while holding the lock cannot leave the map inconsistent (each
    // operation is one insert/remove), so a poisoned lock is still usable.
    local.lock().unwrap_or_else(|p| p.into_inner())
}

impl NearCacheKv {
    /// Wraps `shared` and starts the invalidation listener (needs a Tokio
    /// runtime). `prefixes` name the keys worth a local copy.
    pub fn new(
        shared: Arc<dyn Kv>,
        conn: RedisConn,
        target: &crate::RedisTarget,
        prefix: &str,
        prefixes: &[&str],
    ) -> Result<Self, BusError> {
        let client = target.client()?;
        let channel = format!("{prefix}invalidate");
        let local: Arc<Local> = Arc::default();
        let subscribed = Arc::new(AtomicBool::new(false));
        let listener = listen(client, channel.clone(), local.clone(), subscribed.clone());
        Ok(Self {
            shared,
            conn,
            channel,
            prefixes: prefixes.iter().map(|p| (*p).to_owned()).collect(),
            local,
            subscribed,
            _listening: crate::spawn_until_dropped(listener),
        })
    }

    /// Whether invalidations are being heard (until then nothing is kept locally).
    pub fn is_listening(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }

    fn cacheable(&self, key: &str) -> bool {
        self.subscribed.load(Ordering::Acquire) && self.prefixes.iter().any(|p| key.starts_with(p))
    }

    fn remember(&self, key: &str, value: &str, ttl_ms: u64) {
        let ttl = Duration::from_millis(ttl_ms.min(NEAR_CACHE_TTL_MS));
        let now = Instant::now();
        let mut map = lock(&self.local);
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, (_, expires)| *expires > now);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(key.to_owned(), (value.to_owned(), now + ttl));
    }
}

/// Keeps one subscription open; evicts what other nodes delete.
async fn listen(
    client: redis::Client,
    channel: String,
    local: Arc<Local>,
    subscribed: Arc<AtomicBool>,
) {
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => {
                if let Err(e) = pubsub.subscribe(&channel).await {
                    tracing::warn!(error = %e, "near cache: subscribe failed");
                } else {
                    // Anything deleted while we were not listening is gone
                    // from the local copy too.
                    lock(&local).clear();
                    subscribed.store(true, Ordering::Release);
                    let mut messages = pubsub.on_message();
                    while let Some(msg) = messages.next().await {
                        let payload: String = msg.get_payload().unwrap_or_default();
                        let mut map = lock(&local);
                        for key in payload.split('\n') {
                            map.remove(key);
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "near cache: cannot connect for invalidations"),
        }
        subscribed.store(false, Ordering::Release);
        lock(&local).clear();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[async_trait::async_trait]
impl Kv for NearCacheKv {
    async fn get(&self, key: &str) -> Result<Option<String>, BusError> {
        if self.cacheable(key) {
            if let Some((value, expires)) = lock(&self.local).get(key) {
                if *expires > Instant::now() {
                    return Ok(Some(value.clone()));
                }
            }
        }
        let value = self.shared.get(key).await?;
        if let Some(v) = &value {
            if self.cacheable(key) {
                self.remember(key, v, NEAR_CACHE_TTL_MS);
            }
        }
        Ok(value)
    }

    async fn set(&self, key: &str, value: &str, ttl_ms: u64) -> Result<(), BusError> {
        self.shared.set(key, value, ttl_ms).await?;
        if self.cacheable(key) {
            self.remember(key, value, ttl_ms);
        }
        Ok(())
    }

    async fn set_nx(&self, key: &str, value: &str, ttl_ms: u64) -> Result<bool, BusError> {
        self.shared.set_nx(key, value, ttl_ms).await
    }

    async fn del(&self, keys: &[String]) -> Result<(), BusError> {
        {
            let mut map = lock(&self.local);
            for k in keys {
                map.remove(k);
            }
        }
        self.shared.del(keys).await?;
        let cached: Vec<&str> = keys
            .iter()
            .map(String::as_str)
            .filter(|k| self.prefixes.iter().any(|p| k.starts_with(p.as_str())))
            .collect();
        if !cached.is_empty() {
            let mut conn = self.conn.clone();
            redis::cmd("PUBLISH")
                .arg(&self.channel)
                .arg(cached.join("\n"))
                .query_async::<i64>(&mut conn)
                .await?;
        }
        Ok(())
    }

    async fn incr(&self, key: &str, ttl_ms: u64) -> Result<i64, BusError> {
        self.shared.incr(key, ttl_ms).await
    }

    async fn ping(&self) -> Result<(), BusError> {
        self.shared.ping().await
    }
}
