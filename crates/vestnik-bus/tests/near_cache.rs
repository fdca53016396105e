//! The node-local cache in front of Redis: two instances play two nodes
//! sharing one Redis prefix. Needs Redis (skipped with a warning outside CI).
use std::sync::Arc;
use std::time::{Duration, Instant};

use vestnik_bus::{connect_redis, Kv, NearCacheKv, RedisKv, NEAR_CACHE_TTL_MS};

fn url() -> String {
    std::env::var("VESTNIK_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// (node a, node b, the shared Redis seen directly) or None to skip.
async fn two_nodes() -> Option<(NearCacheKv, NearCacheKv, Arc<dyn Kv>)> {
    let conn = match connect_redis(&vestnik_bus::RedisTarget::new(&url())).await {
        Ok(c) => c,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true but Redis is unreachable: {e}")
        }
        Err(e) => {
            eprintln!("WARNING: skipping Redis test, Redis is unreachable: {e}");
            return None;
        }
    };
    let prefix = format!("vestnik-test:{}:", uuid::Uuid::new_v4());
    let raw: Arc<dyn Kv> = Arc::new(RedisKv::new(conn.clone(), &prefix));
    let node = || {
        NearCacheKv::new(
            raw.clone(),
            conn.clone(),
            &vestnik_bus::RedisTarget::new(&url()),
            &prefix,
            &["at:"],
        )
        .expect("near cache")
    };
    let (a, b) = (node(), node());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(a.is_listening() && b.is_listening()) {
        assert!(Instant::now() < deadline, "never subscribed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Some((a, b, raw))
}

async fn eventually_gone(kv: &NearCacheKv, key: &str, within: Duration) -> Duration {
    let t0 = Instant::now();
    while kv.get(key).await.expect("get").is_some() {
        assert!(t0.elapsed() < within, "{key} still cached after {within:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    t0.elapsed()
}

#[tokio::test]
async fn a_delete_on_one_node_evicts_the_local_copy_on_the_others() {
    let Some((a, b, raw)) = two_nodes().await else {
        return;
    };
    a.set("at:tok", "session", 60_000).await.expect("set");
    assert_eq!(
        b.get("at:tok").await.expect("get").as_deref(),
        Some("session")
    );
    // Gone from Redis behind the nodes' backs: b still answers from its copy,
    // which is what saves the round trip.
    raw.del(&["at:tok".to_owned()]).await.expect("raw del");
    assert_eq!(
        b.get("at:tok").await.expect("get").as_deref(),
        Some("session")
    );
    // A delete through a node is heard by the other well before the TTL.
    a.set("at:tok", "session", 60_000).await.expect("set");
    a.del(&["at:tok".to_owned()]).await.expect("del");
    assert_eq!(
        a.get("at:tok").await.expect("get"),
        None,
        "the deleting node at once"
    );
    let took = eventually_gone(&b, "at:tok", Duration::from_millis(NEAR_CACHE_TTL_MS / 2)).await;
    eprintln!("evicted on the other node after {took:?}");
}

#[tokio::test]
async fn local_copies_expire_and_other_keys_are_never_kept() {
    let Some((a, b, raw)) = two_nodes().await else {
        return;
    };
    // Not a near-cached prefix: always read through.
    a.set("pow:1", "x", 60_000).await.expect("set");
    assert_eq!(b.get("pow:1").await.expect("get").as_deref(), Some("x"));
    raw.del(&["pow:1".to_owned()]).await.expect("raw del");
    assert_eq!(b.get("pow:1").await.expect("get"), None);
    // A local copy outlives a silent delete by at most the TTL.
    a.set("at:t2", "v", 60_000).await.expect("set");
    assert_eq!(b.get("at:t2").await.expect("get").as_deref(), Some("v"));
    raw.del(&["at:t2".to_owned()]).await.expect("raw del");
    eventually_gone(
        &b,
        "at:t2",
        Duration::from_millis(NEAR_CACHE_TTL_MS + 1_000),
    )
    .await;
    // A short-lived entry is not kept locally beyond its own TTL.
    a.set("at:t3", "v", 50).await.expect("set");
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(a.get("at:t3").await.expect("get"), None);
}
