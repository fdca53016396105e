//! The one Redis connection a node's Redis parts share, behind a circuit
//! breaker. While Redis is away every command used to wait for the
//! connection manager's reconnect attempt (about a second each, several per
//! request), so requests that only use Redis as a cache took seconds. Now the
//! first connection-class failure opens the breaker: for the next
//! [`REDIS_BREAKER_OPEN`] every command fails at once, the callers' fallbacks
//! (a cache miss, a limit failing open or closed, the outbox) answer without
//! waiting, and then commands are let through again to see if Redis is back.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, Value};
pub use vestnik_core::limits::REDIS_BREAKER_OPEN;

/// A [`ConnectionManager`] with a circuit breaker; clones share both.
#[derive(Clone)]
pub struct RedisConn {
    inner: ConnectionManager,
    breaker: Arc<Breaker>,
}

impl RedisConn {
    pub(crate) fn new(inner: ConnectionManager) -> Self {
        Self {
            inner,
            breaker: Arc::new(Breaker::new()),
        }
    }

    /// Whether commands are being refused without trying Redis.
    pub fn is_open(&self) -> bool {
        self.breaker.is_open()
    }
}

struct Breaker {
    epoch: Instant,
    /// Milliseconds since `epoch` until which commands are refused (0: closed).
    open_until_ms: AtomicU64,
}

impl Breaker {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            open_until_ms: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn is_open(&self) -> bool {
        self.now_ms() < self.open_until_ms.load(Ordering::Relaxed)
    }

    fn check(&self) -> Result<(), RedisError> {
        if self.is_open() {
            return Err(RedisError::from((
                ErrorKind::IoError,
                "redis is unreachable; not retried for a moment",
            )));
        }
        Ok(())
    }

    fn observe<T>(&self, result: &Result<T, RedisError>) {
        if let Err(e) = result {
            // A refused command (wrong type, script error) says nothing
            // about Redis being reachable.
            let unreachable = e.is_io_error()
                || e.is_timeout()
                || e.is_connection_dropped()
                || e.is_connection_refusal();
            if unreachable {
                let until = self.now_ms() + REDIS_BREAKER_OPEN.as_millis() as u64;
                if self.open_until_ms.swap(until, Ordering::Relaxed) <= self.now_ms() {
                    metrics::counter!("vestnik_redis_breaker_opened_total").increment(1);
                    tracing::warn!(error = %e, "redis unreachable: commands fail fast for a moment");
                }
            }
        }
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            self.breaker.check()?;
            let result = self.inner.req_packed_command(cmd).await;
            self.breaker.observe(&result);
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            self.breaker.check()?;
            let result = self.inner.req_packed_commands(cmd, offset, count).await;
            self.breaker.observe(&result);
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}
