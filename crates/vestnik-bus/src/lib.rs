//! Ephemeral state that several server nodes may need to share: a TTL key-value
//! store and a token bucket rate limiter.
//!
//! Every trait has an in-process implementation (one node, no dependencies) and a
//! Redis implementation (several nodes behind one Redis). Callers hold the traits
//! as `Arc<dyn Kv>` / `Arc<dyn RateLimiter>` and never learn which one they got.
// The server's lint wall (as vestnik-crypto's): bad input and failed
// backends are errors, never a panic of the process.
#![deny(clippy::expect_used, clippy::panic, clippy::unwrap_used)]
#![warn(missing_docs)]

mod events;
mod limits;
mod memory;
mod near_cache;
mod redis_conn;
mod redis_impl;
mod sharded;
mod signals;

pub use events::{
    EventBus, LocalEventBus, LocalPresence, Presence, RedisEventBus, RedisPresence, PRESENCE_TTL_MS,
};
pub use limits::{LimitError, Limits};
pub use memory::{MemoryKv, MemoryRateLimiter};
pub use near_cache::{NearCacheKv, NEAR_CACHE_TTL_MS};
pub use redis_conn::{RedisConn, REDIS_BREAKER_OPEN};
pub use redis_impl::{connect_redis, RedisKv, RedisRateLimiter, RedisTarget};
pub use signals::{LocalSignals, RedisSignals, Signal, Signals};

/// Everything nodes share, built once per node: in-process for a single
/// node, Redis-backed for several. Services take the parts they use.
#[derive(Clone)]
pub struct Cluster {
    /// The TTL cache (tokens, tickets, device lists, counters).
    pub kv: std::sync::Arc<dyn Kv>,
    /// Rate limits every node counts together.
    pub limiter: std::sync::Arc<dyn RateLimiter>,
    /// Which node holds which device's sockets.
    pub presence: std::sync::Arc<dyn Presence>,
    /// Frames routed to the node holding a socket.
    pub events: std::sync::Arc<dyn EventBus>,
    /// Broadcasts every node acts on (sessions that ended).
    pub signals: std::sync::Arc<dyn Signals>,
}

/// Why a cache, rate-limit, presence or event operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The Redis connection or command failed (the message of the Redis error).
    #[error("redis: {0}")]
    Redis(String),
    /// The stored value cannot be used for the operation (e.g. `incr` on a
    /// non-integer or an increment that would overflow).
    #[error("invalid value at key {key:?}: {reason}")]
    InvalidValue {
        /// The key as the caller named it (without the Redis prefix).
        key: String,
        /// What is wrong with the stored value.
        reason: String,
    },
}

impl From<redis::RedisError> for BusError {
    fn from(e: redis::RedisError) -> Self {
        BusError::Redis(e.to_string())
    }
}

/// Ephemeral key-value store with TTLs (token cache, counters, single-use markers).
///
/// Every entry has a TTL so nothing outlives its purpose; a `ttl_ms` of 0 is
/// treated as 1 ms (Redis rejects a zero expiry).
#[async_trait::async_trait]
pub trait Kv: Send + Sync + 'static {
    /// The live value at `key`, or `None` if absent or expired.
    async fn get(&self, key: &str) -> Result<Option<String>, BusError>;
    /// Stores `value` at `key` for `ttl_ms`, replacing any previous value and TTL.
    async fn set(&self, key: &str, value: &str, ttl_ms: u64) -> Result<(), BusError>;
    /// Sets only if absent; true when this call set it (single-use markers).
    async fn set_nx(&self, key: &str, value: &str, ttl_ms: u64) -> Result<bool, BusError>;
    /// Removes the keys (missing ones are ignored); revocations rely on it.
    async fn del(&self, keys: &[String]) -> Result<(), BusError>;
    /// Atomically increments and returns the new value; the TTL is set when the key is created (fixed window counters).
    async fn incr(&self, key: &str, ttl_ms: u64) -> Result<i64, BusError>;
    /// Health check for /readyz.
    async fn ping(&self) -> Result<(), BusError>;
}

pub use vestnik_core::rate_limits::Rate;

/// The answer of [`RateLimiter::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A token was taken; go ahead.
    Allowed,
    /// The bucket is empty; the caller answers 429 with `Retry-After`.
    Limited {
        /// Milliseconds until the next token is available.
        retry_after_ms: u64,
    },
}

/// Token bucket rate limiter.
#[async_trait::async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Takes one token from bucket `key` (e.g. "ip:1.2.3.4:auth"); full bucket at start.
    async fn check(&self, key: &str, rate: Rate) -> Result<Decision, BusError>;
}

/// Both implementations use the same integer model so they agree exactly.
///
/// Amounts are counted in "units" of `1 / (per_secs * 1000)` token, which makes
/// the refill an integral `capacity` units per millisecond even for rates such as
/// 3 per second, so no floating point drift accumulates in a stored bucket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BucketModel {
    /// Units in a full bucket.
    pub(crate) full: u128,
    /// Units in one token.
    pub(crate) cost: u128,
    /// Units refilled per millisecond.
    pub(crate) refill_per_ms: u128,
}

impl BucketModel {
    /// `Err` carries the decision for degenerate rates, which need no state.
    pub(crate) fn new(rate: Rate) -> Result<Self, Decision> {
        if rate.capacity == 0 {
            // A bucket that can never hold a token: always limited. Advise the
            // window length so a client does not spin.
            return Err(Decision::Limited {
                retry_after_ms: u64::from(rate.per_secs.max(1)) * 1000,
            });
        }
        if rate.per_secs == 0 {
            // Instant refill: the bucket can never run dry.
            return Err(Decision::Allowed);
        }
        let cost = u128::from(rate.per_secs) * 1000;
        Ok(Self {
            full: cost * u128::from(rate.capacity),
            cost,
            refill_per_ms: u128::from(rate.capacity),
        })
    }

    /// Milliseconds until `level` reaches `target` units (0 if already there).
    pub(crate) fn ms_until(&self, level: u128, target: u128) -> u64 {
        let missing = target.saturating_sub(level);
        u64::try_from(missing.div_ceil(self.refill_per_ms)).unwrap_or(u64::MAX)
    }
}

/// Runs `task` until it ends or the returned guard is dropped (a listener
/// that lives as long as the value holding the guard).
pub(crate) fn spawn_until_dropped(
    task: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio_util::sync::DropGuard {
    let stop = tokio_util::sync::CancellationToken::new();
    let cancelled = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = cancelled.cancelled() => {}
            _ = task => {}
        }
    });
    stop.drop_guard()
}

/// Redis rejects a zero expiry and the memory store would treat it as already
/// expired; one millisecond keeps both consistent.
pub(crate) fn effective_ttl(ttl_ms: u64) -> u64 {
    ttl_ms.max(1)
}
