//! Redis implementations, for several nodes sharing one Redis.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::RedisConn;

use crate::{effective_ttl, BucketModel, BusError, Decision, Kv, Rate, RateLimiter};
use vestnik_core::limits::REDIS_CONNECT_TIMEOUT as CONNECT_TIMEOUT;
use vestnik_core::limits::REDIS_RESPONSE_TIMEOUT as RESPONSE_TIMEOUT;

/// Where Redis is: its URL (`redis://`, or `rediss://` for TLS) and, for a
/// server whose certificate a private CA signed, that CA (PEM). Without one,
/// TLS trusts the system's roots.
#[derive(Clone, Default)]
pub struct RedisTarget {
    url: String,
    root_cert: Option<Vec<u8>>,
}

impl std::fmt::Debug for RedisTarget {
    // The URL may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTarget")
            .field("tls", &self.url.starts_with("rediss://"))
            .field("root_cert", &self.root_cert.is_some())
            .finish()
    }
}

impl RedisTarget {
    /// Redis at `url`.
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            root_cert: None,
        }
    }

    /// Trusts the CA in `pem` for the server's TLS certificate.
    pub fn with_root_cert(mut self, pem: Vec<u8>) -> Self {
        self.root_cert = Some(pem);
        self
    }

    /// A client for it (no connection is made yet).
    pub fn client(&self) -> Result<redis::Client, BusError> {
        let built = match &self.root_cert {
            Some(pem) => redis::Client::build_with_tls(
                self.url.as_str(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
            None => redis::Client::open(self.url.as_str()),
        };
        built.map_err(|e| BusError::Redis(format!("invalid redis url: {e}")))
    }
}

/// Connects with a 5 s overall timeout. The error names the address but never
/// the URL, which may carry a password.
pub async fn connect_redis(target: &RedisTarget) -> Result<RedisConn, BusError> {
    let client = target.client()?;
    let addr = client.get_connection_info().addr.to_string();
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(CONNECT_TIMEOUT)
        .set_response_timeout(RESPONSE_TIMEOUT)
        // One retry after about a second: enough to ride out a Redis restart,
        // while during an outage requests fail fast (the caller answers 503)
        // instead of queueing behind the default, much longer backoff.
        .set_number_of_retries(1)
        .set_max_delay(1_000);
    match tokio::time::timeout(
        CONNECT_TIMEOUT,
        ConnectionManager::new_with_config(client, config),
    )
    .await
    {
        Ok(Ok(conn)) => {
            tracing::info!(%addr, "connected to redis");
            Ok(RedisConn::new(conn))
        }
        Ok(Err(e)) => Err(BusError::Redis(format!("cannot connect to {addr}: {e}"))),
        Err(_) => Err(BusError::Redis(format!(
            "cannot connect to {addr}: timed out after {} s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// INCR and the expiry in one script so a crash in between cannot leave a
/// counter that never resets. Checking PTTL rather than `v == 1` also repairs a
/// key that somehow lost its expiry.
const INCR_SCRIPT: &str = r"
local v = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return v
";

/// [`Kv`] in Redis, shared by every node; keys live under `{prefix}:`.
pub struct RedisKv {
    conn: RedisConn,
    prefix: String,
    incr: redis::Script,
}

impl RedisKv {
    /// Keys are written under `prefix` (the `redis_prefix` config key).
    pub fn new(conn: RedisConn, prefix: &str) -> Self {
        Self {
            conn,
            prefix: format!("{prefix}:"),
            incr: redis::Script::new(INCR_SCRIPT),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

#[async_trait::async_trait]
impl Kv for RedisKv {
    async fn get(&self, key: &str) -> Result<Option<String>, BusError> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("GET")
            .arg(self.key(key))
            .query_async(&mut conn)
            .await?)
    }

    async fn set(&self, key: &str, value: &str, ttl_ms: u64) -> Result<(), BusError> {
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("PX")
            .arg(effective_ttl(ttl_ms))
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    async fn set_nx(&self, key: &str, value: &str, ttl_ms: u64) -> Result<bool, BusError> {
        let mut conn = self.conn.clone();
        // Replies OK when set and nil when the key already existed.
        let reply: Option<String> = redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(effective_ttl(ttl_ms))
            .query_async(&mut conn)
            .await?;
        Ok(reply.is_some())
    }

    async fn del(&self, keys: &[String]) -> Result<(), BusError> {
        // DEL without arguments is a syntax error.
        if keys.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let keys: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        redis::cmd("DEL")
            .arg(keys)
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    async fn incr(&self, key: &str, ttl_ms: u64) -> Result<i64, BusError> {
        let mut conn = self.conn.clone();
        Ok(self
            .incr
            .key(self.key(key))
            .arg(effective_ttl(ttl_ms))
            .invoke_async(&mut conn)
            .await?)
    }

    async fn ping(&self) -> Result<(), BusError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING").query_async::<()>(&mut conn).await?;
        Ok(())
    }
}

/// The token bucket of [`BucketModel`], read-modify-written atomically.
///
/// Time comes from Redis `TIME`, not the caller, so nodes with skewed clocks
/// still share one consistent bucket. Amounts are integral units; they stay
/// exact as Lua doubles below 2^53 and are written with `%.0f` because Lua's
/// default number formatting keeps only 14 significant digits. A bucket that
/// has refilled completely is indistinguishable from no bucket, so the key
/// expires exactly then.
///
/// KEYS[1] bucket; ARGV: full, cost (units per token), refill (units per ms).
/// Returns {allowed (0/1), retry_after_ms}.
const BUCKET_SCRIPT: &str = r"
local full = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local refill = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'l', 't')
local level = tonumber(state[1])
local last = tonumber(state[2])
if level == nil or last == nil then
  level = full
  last = now
end
local elapsed = now - last
if elapsed < 0 then
  elapsed = 0
end
level = math.min(full, level + elapsed * refill)
if level < cost then
  return {0, math.ceil((cost - level) / refill)}
end
level = level - cost
redis.call('HSET', KEYS[1], 'l', string.format('%.0f', level), 't', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((full - level) / refill)))
return {1, 0}
";

/// [`RateLimiter`] in Redis: one token bucket per key, updated atomically by a Lua script.
pub struct RedisRateLimiter {
    conn: RedisConn,
    prefix: String,
    script: redis::Script,
}

impl RedisRateLimiter {
    /// Buckets live under `{prefix}:rl:` so that a `RedisKv` sharing the prefix
    /// cannot collide with them (a string where a hash is expected fails).
    pub fn new(conn: RedisConn, prefix: &str) -> Self {
        Self {
            conn,
            prefix: format!("{prefix}:rl:"),
            script: redis::Script::new(BUCKET_SCRIPT),
        }
    }
}

#[async_trait::async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(&self, key: &str, rate: Rate) -> Result<Decision, BusError> {
        let model = match BucketModel::new(rate) {
            Ok(model) => model,
            Err(decision) => return Ok(decision),
        };
        let mut conn = self.conn.clone();
        // Passed as decimal strings: u128 has no Redis argument encoding.
        let (allowed, retry_after_ms): (i64, i64) = self
            .script
            .key(format!("{}{key}", self.prefix))
            .arg(model.full.to_string())
            .arg(model.cost.to_string())
            .arg(model.refill_per_ms.to_string())
            .invoke_async(&mut conn)
            .await?;
        Ok(if allowed == 1 {
            Decision::Allowed
        } else {
            Decision::Limited {
                retry_after_ms: u64::try_from(retry_after_ms).unwrap_or(0).max(1),
            }
        })
    }
}
