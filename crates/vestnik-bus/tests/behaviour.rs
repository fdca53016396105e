//! One behaviour suite, written once and run against both implementations, so
//! a single-node deployment and a Redis-backed cluster behave the same.
//!
//! Redis tests use the server at `VESTNIK_TEST_REDIS_URL` (default
//! redis://127.0.0.1:6379) under a fresh random prefix, so they can run in
//! parallel and next to real data. Without Redis they are skipped with a
//! warning, except under `CI=true`, where skipping would hide a broken setup.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use vestnik_bus::{
    connect_redis, Decision, Kv, MemoryKv, MemoryRateLimiter, Rate, RateLimiter, RedisKv,
    RedisRateLimiter,
};
use vestnik_core::clock::ManualClock;

/// Short enough to keep the Redis tests fast, long enough to be a real TTL.
const SHORT_TTL: u64 = 100;
const LONG_TTL: u64 = 60_000;
/// Polling step while waiting for something time-dependent.
const STEP_MS: u64 = 10;
/// Real expiry and scheduling are not exact; on a busy machine allow this much
/// beyond the nominal time before declaring failure.
const REAL_SLACK: Duration = Duration::from_secs(3);

/// How time passes for the implementation under test.
enum Time {
    /// In-memory implementations read an injected clock: time moves only when
    /// the test says so, which also makes boundaries exact.
    Manual(ManualClock),
    /// Redis keeps its own time.
    Real,
}

impl Time {
    async fn pass(&self, ms: u64) {
        match self {
            Time::Manual(clock) => clock.advance_ms(i64::try_from(ms).expect("small duration")),
            Time::Real => tokio::time::sleep(Duration::from_millis(ms)).await,
        }
    }

    /// Polls `cond` while time passes until it holds. On the manual clock it
    /// must hold by exactly `within_ms`; in real time a slack is allowed.
    async fn eventually(
        &self,
        within_ms: u64,
        what: &str,
        mut cond: impl AsyncFnMut() -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_millis(within_ms) + REAL_SLACK;
        let mut waited_ms = 0;
        loop {
            if cond().await? {
                return Ok(());
            }
            let expired = match self {
                Time::Manual(_) => waited_ms >= within_ms,
                Time::Real => Instant::now() >= deadline,
            };
            if expired {
                bail!("{what}: still false after waiting {waited_ms} ms (limit {within_ms} ms)");
            }
            self.pass(STEP_MS).await;
            waited_ms += STEP_MS;
        }
    }
}

fn memory_kv() -> (Arc<dyn Kv>, Time) {
    let clock = ManualClock::default();
    (
        Arc::new(MemoryKv::new(Arc::new(clock.clone()))),
        Time::Manual(clock),
    )
}

fn memory_limiter() -> (Arc<dyn RateLimiter>, Time) {
    let clock = ManualClock::default();
    (
        Arc::new(MemoryRateLimiter::new(Arc::new(clock.clone()))),
        Time::Manual(clock),
    )
}

/// `None` means "skip": Redis is down and this is not CI.
async fn redis_conn() -> Option<vestnik_bus::RedisConn> {
    let url = std::env::var("VESTNIK_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    match connect_redis(&vestnik_bus::RedisTarget::new(&url)).await {
        Ok(conn) => Some(conn),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!(
                "CI=true but Redis is unreachable ({e}); start Redis or set VESTNIK_TEST_REDIS_URL"
            )
        }
        Err(e) => {
            eprintln!("WARNING: skipping Redis test, Redis is unreachable: {e}");
            None
        }
    }
}

fn test_prefix() -> String {
    format!("vestnik-test:{}", uuid::Uuid::new_v4())
}

async fn redis_kv() -> Option<(Arc<dyn Kv>, Time)> {
    let conn = redis_conn().await?;
    Some((Arc::new(RedisKv::new(conn, &test_prefix())), Time::Real))
}

async fn redis_limiter() -> Option<(Arc<dyn RateLimiter>, Time)> {
    let conn = redis_conn().await?;
    Some((
        Arc::new(RedisRateLimiter::new(conn, &test_prefix())),
        Time::Real,
    ))
}

mod kv_cases {
    use super::*;

    pub async fn get_set_and_expiry(kv: Arc<dyn Kv>, time: Time) -> anyhow::Result<()> {
        ensure!(kv.get("missing").await?.is_none());

        kv.set("long", "v1", LONG_TTL).await?;
        ensure!(kv.get("long").await?.as_deref() == Some("v1"));
        kv.set("long", "v2", LONG_TTL).await?;
        ensure!(kv.get("long").await?.as_deref() == Some("v2"));

        // Overwriting also replaces the TTL.
        kv.set("short", "old", LONG_TTL).await?;
        kv.set("short", "new", SHORT_TTL).await?;
        if let Time::Manual(clock) = &time {
            clock.advance_ms(i64::try_from(SHORT_TTL).expect("small") - 1);
            ensure!(kv.get("short").await?.as_deref() == Some("new"));
            clock.advance_ms(1);
            ensure!(
                kv.get("short").await?.is_none(),
                "expired exactly at the TTL"
            );
        }
        time.eventually(SHORT_TTL, "short key expires", async || {
            Ok(kv.get("short").await?.is_none())
        })
        .await?;
        ensure!(kv.get("long").await?.as_deref() == Some("v2"));
        Ok(())
    }

    pub async fn set_nx_is_single_use(kv: Arc<dyn Kv>, time: Time) -> anyhow::Result<()> {
        ensure!(kv.set_nx("marker", "first", LONG_TTL).await?);
        ensure!(!kv.set_nx("marker", "second", LONG_TTL).await?);
        ensure!(kv.get("marker").await?.as_deref() == Some("first"));

        ensure!(kv.set_nx("brief", "x", SHORT_TTL).await?);
        time.eventually(
            SHORT_TTL,
            "marker can be set again once expired",
            async || kv.set_nx("brief", "y", SHORT_TTL).await.map_err(Into::into),
        )
        .await?;
        Ok(())
    }

    pub async fn concurrent_set_nx_has_one_winner(
        kv: Arc<dyn Kv>,
        _time: Time,
    ) -> anyhow::Result<()> {
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let kv = kv.clone();
                tokio::spawn(async move { kv.set_nx("race", &i.to_string(), LONG_TTL).await })
            })
            .collect();
        let mut winners = 0;
        for task in tasks {
            if task.await?? {
                winners += 1;
            }
        }
        ensure!(winners == 1, "{winners} callers set the marker");
        Ok(())
    }

    pub async fn del_removes_only_given_keys(kv: Arc<dyn Kv>, _time: Time) -> anyhow::Result<()> {
        for key in ["a", "b", "c"] {
            kv.set(key, "v", LONG_TTL).await?;
        }
        kv.del(&["a".to_owned(), "b".to_owned(), "never-set".to_owned()])
            .await?;
        ensure!(kv.get("a").await?.is_none());
        ensure!(kv.get("b").await?.is_none());
        ensure!(kv.get("c").await?.as_deref() == Some("v"));
        kv.del(&[]).await?;
        ensure!(
            kv.set_nx("a", "again", LONG_TTL).await?,
            "deleted key is free"
        );
        Ok(())
    }

    pub async fn incr_counts_and_expires(kv: Arc<dyn Kv>, time: Time) -> anyhow::Result<()> {
        for expected in 1..=3 {
            ensure!(kv.incr("count", LONG_TTL).await? == expected);
        }
        ensure!(kv.get("count").await?.as_deref() == Some("3"));

        // A fixed window: incrementing throughout must not push the expiry
        // back, so the counter starts over about one TTL after creation.
        ensure!(kv.incr("window", SHORT_TTL).await? == 1);
        let mut last = 1;
        time.eventually(SHORT_TTL, "window counter resets", async || {
            let v = kv.incr("window", SHORT_TTL).await?;
            if v == 1 {
                return Ok(true);
            }
            ensure!(v == last + 1, "counter jumped from {last} to {v}");
            last = v;
            Ok(false)
        })
        .await?;
        Ok(())
    }

    pub async fn concurrent_incr_is_atomic(kv: Arc<dyn Kv>, _time: Time) -> anyhow::Result<()> {
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let kv = kv.clone();
                tokio::spawn(async move { kv.incr("hits", LONG_TTL).await })
            })
            .collect();
        let mut seen = Vec::new();
        for task in tasks {
            seen.push(task.await??);
        }
        seen.sort_unstable();
        ensure!(seen == (1..=50).collect::<Vec<i64>>(), "got {seen:?}");
        Ok(())
    }

    pub async fn ping(kv: Arc<dyn Kv>, _time: Time) -> anyhow::Result<()> {
        kv.ping().await?;
        Ok(())
    }
}

mod limiter_cases {
    use super::*;

    async fn drain(limiter: &dyn RateLimiter, key: &str, rate: Rate) -> anyhow::Result<()> {
        for i in 0..rate.capacity {
            let decision = limiter.check(key, rate).await?;
            ensure!(
                decision == Decision::Allowed,
                "check {i} on {key}: {decision:?}"
            );
        }
        Ok(())
    }

    fn retry_after(decision: Decision) -> anyhow::Result<u64> {
        match decision {
            Decision::Limited { retry_after_ms } => Ok(retry_after_ms),
            Decision::Allowed => bail!("expected to be limited"),
        }
    }

    pub async fn allows_capacity_then_limits(
        limiter: Arc<dyn RateLimiter>,
        _time: Time,
    ) -> anyhow::Result<()> {
        // One token per 12 s.
        let rate = Rate {
            capacity: 5,
            per_secs: 60,
        };
        drain(&*limiter, "ip:1.2.3.4:auth", rate).await?;
        let retry = retry_after(limiter.check("ip:1.2.3.4:auth", rate).await?)?;
        // Just drained, so close to a full token interval (exact on the manual clock).
        ensure!((11_000..=12_000).contains(&retry), "retry_after {retry} ms");
        // Being refused takes nothing, so the wait does not grow.
        let again = retry_after(limiter.check("ip:1.2.3.4:auth", rate).await?)?;
        ensure!(again <= retry, "retry_after grew from {retry} to {again}");
        Ok(())
    }

    pub async fn refills_over_time(
        limiter: Arc<dyn RateLimiter>,
        time: Time,
    ) -> anyhow::Result<()> {
        // One token per 100 ms.
        let rate = Rate {
            capacity: 10,
            per_secs: 1,
        };
        drain(&*limiter, "k", rate).await?;
        let retry = retry_after(limiter.check("k", rate).await?)?;
        ensure!((1..=100).contains(&retry), "retry_after {retry} ms");

        // Waiting as advised is enough for exactly one more request.
        time.pass(retry).await;
        ensure!(limiter.check("k", rate).await? == Decision::Allowed);
        retry_after(limiter.check("k", rate).await?)?;

        // A full refill restores the burst, but never more than capacity.
        time.pass(1_000 + 200).await;
        drain(&*limiter, "k", rate).await?;
        retry_after(limiter.check("k", rate).await?)?;

        // Polling also gets through once a token is back.
        time.eventually(100, "a token comes back", async || {
            Ok(limiter.check("k", rate).await? == Decision::Allowed)
        })
        .await?;
        Ok(())
    }

    pub async fn keys_are_independent(
        limiter: Arc<dyn RateLimiter>,
        _time: Time,
    ) -> anyhow::Result<()> {
        let rate = Rate {
            capacity: 2,
            per_secs: 60,
        };
        drain(&*limiter, "a", rate).await?;
        retry_after(limiter.check("a", rate).await?)?;
        drain(&*limiter, "b", rate).await?;
        retry_after(limiter.check("b", rate).await?)?;
        retry_after(limiter.check("a", rate).await?)?;
        Ok(())
    }

    pub async fn concurrent_checks_are_atomic(
        limiter: Arc<dyn RateLimiter>,
        _time: Time,
    ) -> anyhow::Result<()> {
        // Slow refill so no token comes back during the test.
        let rate = Rate {
            capacity: 10,
            per_secs: 60,
        };
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move { limiter.check("hot", rate).await })
            })
            .collect();
        let mut allowed = 0;
        for task in tasks {
            if task.await?? == Decision::Allowed {
                allowed += 1;
            }
        }
        ensure!(allowed == 10, "{allowed} of 50 allowed");
        Ok(())
    }
}

/// Instantiates every case once per implementation.
macro_rules! suite {
    ($cases:ident, $($module:ident => $setup:expr),+ ; $list:tt) => {
        $( suite_for!($cases, $module, $setup, $list); )+
    };
}

macro_rules! suite_for {
    ($cases:ident, $module:ident, $setup:expr, [$($case:ident),+ $(,)?]) => {
        mod $module {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() -> anyhow::Result<()> {
                    let Some((subject, time)) = $setup.await else {
                        return Ok(());
                    };
                    $cases::$case(subject, time).await
                }
            )+
        }
    };
}

suite!(kv_cases,
    memory_kv_suite => async { Some(memory_kv()) },
    redis_kv_suite => redis_kv();
    [
        get_set_and_expiry,
        set_nx_is_single_use,
        concurrent_set_nx_has_one_winner,
        del_removes_only_given_keys,
        incr_counts_and_expires,
        concurrent_incr_is_atomic,
        ping,
    ]
);

suite!(limiter_cases,
    memory_limiter_suite => async { Some(memory_limiter()) },
    redis_limiter_suite => redis_limiter();
    [
        allows_capacity_then_limits,
        refills_over_time,
        keys_are_independent,
        concurrent_checks_are_atomic,
    ]
);

/// Keys land under `prefix:` and deployments with different prefixes sharing
/// one Redis do not see each other.
#[tokio::test]
async fn redis_prefixes_isolate() -> anyhow::Result<()> {
    let Some(conn) = redis_conn().await else {
        return Ok(());
    };
    let (p1, p2) = (test_prefix(), test_prefix());
    let one = RedisKv::new(conn.clone(), &p1);
    let two = RedisKv::new(conn.clone(), &p2);
    one.set("k", "v", LONG_TTL).await?;
    ensure!(two.get("k").await?.is_none());
    ensure!(two.set_nx("k", "w", LONG_TTL).await?);

    let mut raw = conn.clone();
    let stored: Option<String> = redis::cmd("GET")
        .arg(format!("{p1}:k"))
        .query_async(&mut raw)
        .await?;
    ensure!(stored.as_deref() == Some("v"));

    let limiter_one = RedisRateLimiter::new(conn.clone(), &p1);
    let limiter_two = RedisRateLimiter::new(conn, &p2);
    let rate = Rate {
        capacity: 1,
        per_secs: 60,
    };
    ensure!(limiter_one.check("k", rate).await? == Decision::Allowed);
    ensure!(limiter_two.check("k", rate).await? == Decision::Allowed);
    // Same prefix and key as the Kv entry above, yet no type clash.
    ensure!(matches!(
        limiter_one.check("k", rate).await?,
        Decision::Limited { .. }
    ));
    Ok(())
}

#[tokio::test]
async fn redis_connect_error_is_clear() {
    // Port 1 is reserved and closed: the connection is refused quickly.
    let started = Instant::now();
    let err = match connect_redis(&vestnik_bus::RedisTarget::new("redis://127.0.0.1:1")).await {
        Ok(_) => panic!("connected to a closed port"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(
        started.elapsed() <= Duration::from_secs(6),
        "took {:?}",
        started.elapsed()
    );
    let err = match connect_redis(&vestnik_bus::RedisTarget::new("not a url")).await {
        Ok(_) => panic!("accepted a bad url"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("invalid redis url"), "{err}");
}
