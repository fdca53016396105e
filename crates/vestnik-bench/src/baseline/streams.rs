//! Redis's own limits: XADD throughput and XADD-to-XREAD latency.
use anyhow::bail;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{histogram, now_ns, record, round2, summary};

use super::*;

/// Every bulk string in a reply, depth first.
pub(super) fn strings(v: &redis::Value, out: &mut Vec<Vec<u8>>) {
    match v {
        redis::Value::BulkString(b) => out.push(b.clone()),
        redis::Value::SimpleString(s) => out.push(s.as_bytes().to_vec()),
        redis::Value::Array(a) | redis::Value::Set(a) => a.iter().for_each(|x| strings(x, out)),
        redis::Value::Map(m) => m.iter().for_each(|(k, x)| {
            strings(k, out);
            strings(x, out);
        }),
        _ => {}
    }
}

pub(super) async fn redis_bench(url: &str, opts: &Opts) -> anyhow::Result<Value> {
    let client = redis::Client::open(url)?;
    let mut w = client.get_multiplexed_async_connection().await?;
    let mut r = client.get_multiplexed_async_connection().await?;
    let key = format!("vestnik-bench-baseline:{}", rand_suffix());

    // Round trips: XADD on one connection, observed by a blocked XREAD on another.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(16);
    let rkey = key.clone();
    let reader = tokio::spawn(async move {
        let mut last = "0-0".to_owned();
        loop {
            let v: redis::Value = redis::cmd("XREAD")
                .arg("BLOCK")
                .arg(2000)
                .arg("COUNT")
                .arg(100)
                .arg("STREAMS")
                .arg(&rkey)
                .arg(&last)
                .query_async(&mut r)
                .await?;
            let mut s = Vec::new();
            strings(&v, &mut s);
            if s.is_empty() {
                return Ok::<_, anyhow::Error>(());
            }
            // [key, id, "t", ns, id, "t", ns, …]
            for entry in s[1..].chunks(3) {
                if let [id, _, ns] = entry {
                    last = String::from_utf8_lossy(id).into_owned();
                    let sent: u64 = String::from_utf8_lossy(ns).parse().unwrap_or(0);
                    if tx.send(now_ns().saturating_sub(sent)).await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    });
    let mut rtt = histogram();
    let deadline = Instant::now() + Duration::from_secs_f64(opts.duration);
    let t0 = Instant::now();
    let mut n = 0u64;
    while Instant::now() < deadline && n < 1_000_000 {
        let _: String = redis::cmd("XADD")
            .arg(&key)
            .arg("MAXLEN")
            .arg("~")
            .arg(10_000)
            .arg("*")
            .arg("t")
            .arg(now_ns())
            .query_async(&mut w)
            .await?;
        match tokio::time::timeout(Duration::from_secs(2), rx.recv()).await {
            Ok(Some(ns)) => record(&mut rtt, ns),
            _ => bail!("the XREAD reader stopped"),
        }
        n += 1;
    }
    let rtt_secs = t0.elapsed().as_secs_f64();
    drop(rx);
    reader.abort();

    // Throughput: concurrent XADDs over one multiplexed connection.
    let count = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(opts.duration);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (mut w, key, count) = (w.clone(), key.clone(), count.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while Instant::now() < deadline && i < 10_000_000 {
                let _: String = redis::cmd("XADD")
                    .arg(&key)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(10_000)
                    .arg("*")
                    .arg("t")
                    .arg(i)
                    .query_async(&mut w)
                    .await?;
                i += 1;
                count.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let xadd_secs = t0.elapsed().as_secs_f64();
    let _: i64 = redis::cmd("DEL").arg(&key).query_async(&mut w).await?;
    Ok(json!({
        "xadd_to_xread": summary(&rtt),
        "xadd_xread_round_trips_per_sec": round2(n as f64 / rtt_secs),
        "xadd_per_sec_32_concurrent": round2(count.load(Ordering::Relaxed) as f64 / xadd_secs),
    }))
}
