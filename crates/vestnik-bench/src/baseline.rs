//! `baseline`: this machine's raw limits, measured by the same tool, so the
//! server's figures can be stated as a fraction of them:
//! - PostgreSQL: batched inserts of messages and their outbox rows, same
//!   schema and indexes as the server, the server's durability settings
//!   (whatever the database is configured with: `synchronous_commit` is reported);
//! - SQLite: the same, WAL with `synchronous = NORMAL` like the server;
//! - Redis: XADD → blocked XREAD round trips (the cross-node event path), and
//!   concurrent XADD throughput;
//! - a bare WebSocket echo server (a child process of this binary) with
//!   message-sized frames: round trips per second, and latency at a fixed rate.
use anyhow::{bail, Context};
use futures::{FutureExt, SinkExt, StreamExt};
use hdrhistogram::Histogram;
use rand::{Rng, RngCore};
use serde_json::{json, Value};
use sqlx::{Connection, QueryBuilder};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;
use tokio::time::{Instant as TokioInstant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{self, histogram, now_ns, record, round2, summary};

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// PostgreSQL to measure (a scratch table is created and dropped)
    #[arg(long)]
    pub pg_url: Option<String>,
    /// Redis to measure (scratch keys under a random prefix, deleted after)
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Measure SQLite in a scratch file in this directory (default: the temp dir)
    #[arg(long)]
    pub sqlite_dir: Option<PathBuf>,
    /// Skip SQLite
    #[arg(long)]
    pub no_sqlite: bool,
    /// Skip the WebSocket echo
    #[arg(long)]
    pub no_echo: bool,
    /// Seconds per measurement
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Messages per transaction in the batched-insert test (the server's batches hold up to 256)
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Outbox rows per message (envelopes)
    #[arg(long, default_value_t = 3)]
    pub envelopes: usize,
    /// Receipt rows per message in the full-cycle test (queued to the
    /// sender's devices, then deleted when they ack)
    #[arg(long, default_value_t = 2)]
    pub receipts: usize,
    /// Concurrent PostgreSQL writers (the server runs 2 per path)
    #[arg(long, default_value_t = 2)]
    pub pg_writers: usize,
    /// WebSocket echo: connections
    #[arg(long, default_value_t = 64)]
    pub echo_connections: usize,
    /// WebSocket echo: frames in flight per connection (closed loop)
    #[arg(long, default_value_t = 4)]
    pub echo_window: usize,
    /// WebSocket echo: frame size in bytes (a 3-envelope send frame is ~950)
    #[arg(long, default_value_t = 1000)]
    pub echo_bytes: usize,
    /// WebSocket echo: round trips per second for the latency measurement
    #[arg(long, default_value_t = 2000.0)]
    pub echo_rate: f64,
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[arg(long, default_value = "")]
    pub label: String,
}

fn rand_suffix() -> String {
    let mut b = [0u8; 4];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|b| format!("{b:02x}")).collect()
}

fn ensure_loopback_url(url: &str) -> anyhow::Result<()> {
    let after = url.split("://").nth(1).context("expected scheme://host")?;
    let host_port = after.rsplit('@').next().unwrap_or(after);
    let host_port = host_port.split('/').next().unwrap_or(host_port);
    let host = host_port
        .rsplit_once(':')
        .map_or(host_port, |(h, _)| h)
        .trim_matches(['[', ']']);
    let ok = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !ok {
        bail!("{host}: only loopback services are measured");
    }
    Ok(())
}

/// The server's schema of the two tables (migrations 2, 5 and 7), minus the
/// columns the hot path leaves empty.
fn schema(suffix: &str, serial: &str) -> [String; 3] {
    [
        format!(
            "CREATE TABLE bench_messages_{suffix} (id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, seq BIGINT NOT NULL,
             sender_user_id TEXT NOT NULL, sender_device_id TEXT NOT NULL, client_msg_id TEXT NOT NULL, created_at BIGINT NOT NULL,
             UNIQUE (sender_device_id, client_msg_id))"
        ),
        format!(
            "CREATE TABLE bench_outbox_{suffix} (id {serial}, device_id TEXT NOT NULL, kind TEXT NOT NULL, message_id TEXT NOT NULL,
             conversation_id TEXT NOT NULL, seq BIGINT NOT NULL, sender_user_id TEXT NOT NULL, sender_device_id TEXT NOT NULL,
             msg_type BIGINT NOT NULL, body TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL)"
        ),
        format!("CREATE INDEX bench_outbox_device_{suffix} ON bench_outbox_{suffix} (device_id, id)"),
    ]
}

/// One batch: `batch` messages and `batch × envelopes` outbox rows.
struct Batch {
    messages: Vec<[String; 4]>,
    outbox: Vec<(String, String, String)>,
}

fn make_batch(batch: usize, envelopes: usize, writer: usize, n: &mut u64, body: &str) -> Batch {
    let mut messages = Vec::with_capacity(batch);
    let mut outbox = Vec::with_capacity(batch * envelopes);
    for _ in 0..batch {
        *n += 1;
        let id = format!("{writer:04}{:028}", *n);
        let conv = format!("c{:031}", *n % 1000);
        for e in 0..envelopes {
            outbox.push((
                format!("d{:031}", (*n * 7 + e as u64) % 2000),
                id.clone(),
                body.to_owned(),
            ));
        }
        messages.push([id, conv, format!("s{writer:031}"), format!("m{n}")]);
    }
    Batch { messages, outbox }
}

/// `INSERT` of the batch's message rows.
macro_rules! messages_insert {
    ($db:ty, $suffix:expr, $messages:expr) => {{
        let mut q = QueryBuilder::<$db>::new(format!(
            "INSERT INTO bench_messages_{} (id, conversation_id, seq, sender_user_id, sender_device_id, client_msg_id, created_at) ",
            $suffix
        ));
        q.push_values($messages, |mut r, m| {
            r.push_bind(m[0].as_str())
                .push_bind(m[1].as_str())
                .push_bind(1i64)
                .push_bind(m[2].as_str())
                .push_bind(m[2].as_str())
                .push_bind(m[3].as_str())
                .push_bind(0i64);
        });
        q
    }};
}

/// `INSERT` of outbox rows (device, message id, body) of one kind.
macro_rules! outbox_insert {
    ($db:ty, $suffix:expr, $rows:expr, $kind:expr) => {{
        let mut q = QueryBuilder::<$db>::new(format!(
            "INSERT INTO bench_outbox_{} (device_id, kind, message_id, conversation_id, seq, sender_user_id, sender_device_id, msg_type, body, created_at, expires_at) ",
            $suffix
        ));
        q.push_values($rows, |mut r, o| {
            r.push_bind(o.0.as_str())
                .push_bind($kind)
                .push_bind(o.1.as_str())
                .push_bind("c")
                .push_bind(1i64)
                .push_bind("u")
                .push_bind("s")
                .push_bind(1i64)
                .push_bind(o.2.as_str())
                .push_bind(0i64)
                .push_bind(0i64);
        });
        q
    }};
}

macro_rules! insert_batch {
    ($db:ty, $conn:expr, $suffix:expr, $b:expr) => {{
        let mut tx = $conn.begin().await?;
        messages_insert!($db, $suffix, &$b.messages)
            .build()
            .execute(&mut *tx)
            .await?;
        outbox_insert!($db, $suffix, &$b.outbox, "message")
            .build()
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }};
}

/// One protocol cycle of a batch, in 3 commits: store the messages and
/// their envelopes; delete the envelopes (the recipients' acks) and queue
/// the receipts; delete the receipts (the sender's acks).
macro_rules! full_cycle {
    ($db:ty, $conn:expr, $suffix:expr, $b:expr, $receipts:expr, $insert_rows:ident, $delete_rows:ident) => {{
        let mut tx = $conn.begin().await?;
        messages_insert!($db, $suffix, &$b.messages)
            .build()
            .execute(&mut *tx)
            .await?;
        let envelope_ids = $insert_rows(&mut tx, &$suffix, "message", &$b.outbox).await?;
        tx.commit().await?;

        let receipt_rows: Vec<(String, String, String)> = $b
            .messages
            .iter()
            .flat_map(|m| {
                (0..$receipts).map(move |r| (format!("{}{r}", m[2]), m[0].clone(), "[]".to_owned()))
            })
            .collect();
        let mut tx = $conn.begin().await?;
        $delete_rows(&mut tx, &$suffix, &envelope_ids).await?;
        let receipt_ids = $insert_rows(&mut tx, &$suffix, "receipt", &receipt_rows).await?;
        tx.commit().await?;

        let mut tx = $conn.begin().await?;
        $delete_rows(&mut tx, &$suffix, &receipt_ids).await?;
        tx.commit().await?;
    }};
}

fn body() -> String {
    use base64::Engine;
    let mut raw = [0u8; common::CIPHERTEXT_RAW];
    rand::thread_rng().fill_bytes(&mut raw);
    base64::engine::general_purpose::STANDARD.encode(raw)
}

fn insert_result(
    messages: u64,
    commits: u64,
    secs: f64,
    envelopes: usize,
    h: &Histogram<u64>,
) -> Value {
    json!({
        "messages_per_sec": round2(messages as f64 / secs),
        "rows_per_sec": round2((messages * (1 + envelopes as u64)) as f64 / secs),
        "commits_per_sec": round2(commits as f64 / secs),
        "commit_latency": summary(h),
    })
}

type WriterResult = anyhow::Result<(u64, u64, Histogram<u64>)>;

/// Waits for the writers; returns messages, commits (or cycles), their
/// latencies and the seconds the writers ran.
async fn join_writers(
    tasks: Vec<tokio::task::JoinHandle<WriterResult>>,
) -> anyhow::Result<(u64, u64, Histogram<u64>, f64)> {
    let t0 = Instant::now();
    let (mut msgs, mut commits, mut h) = (0, 0, histogram());
    for t in tasks {
        let (n, c, hh) = t.await??;
        msgs += n;
        commits += c;
        let _ = h.add(hh);
    }
    Ok((msgs, commits, h, t0.elapsed().as_secs_f64()))
}

async fn drop_scratch(admin: &mut sqlx::PgConnection, suffix: &str) -> anyhow::Result<()> {
    for t in ["messages", "outbox"] {
        sqlx::query(&format!("DROP TABLE bench_{t}_{suffix}"))
            .execute(&mut *admin)
            .await?;
    }
    Ok(())
}

/// Scratch bench tables in PostgreSQL; returns their suffix and the admin
/// connection that drops them (`drop_scratch`).
async fn pg_scratch(url: &str) -> anyhow::Result<(String, sqlx::PgConnection)> {
    let suffix = rand_suffix();
    let mut admin = sqlx::PgConnection::connect(url).await?;
    for s in schema(&suffix, "BIGSERIAL PRIMARY KEY") {
        sqlx::query(&s).execute(&mut admin).await?;
    }
    Ok((suffix, admin))
}

async fn pg_inserts(url: &str, opts: &Opts, batch: usize, writers: usize) -> anyhow::Result<Value> {
    let (suffix, mut admin) = pg_scratch(url).await?;
    let deadline = Instant::now() + Duration::from_secs_f64(opts.duration);
    let mut tasks = Vec::new();
    for w in 0..writers.max(1) {
        let (url, suffix, envelopes) = (url.to_owned(), suffix.clone(), opts.envelopes);
        tasks.push(tokio::spawn(async move {
            let mut conn = sqlx::PgConnection::connect(&url).await?;
            let (mut h, mut n, mut commits) = (histogram(), 0u64, 0u64);
            let body = body();
            while Instant::now() < deadline && commits < 10_000_000 {
                let b = make_batch(batch, envelopes, w, &mut n, &body);
                let t = now_ns();
                insert_batch!(sqlx::Postgres, conn, suffix, b);
                record(&mut h, now_ns() - t);
                commits += 1;
            }
            Ok::<_, anyhow::Error>((n, commits, h))
        }));
    }
    let (msgs, commits, h, secs) = join_writers(tasks).await?;
    let sync: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(&mut admin)
        .await?;
    drop_scratch(&mut admin, &suffix).await?;
    let mut v = insert_result(msgs, commits, secs, opts.envelopes, &h);
    v["synchronous_commit"] = json!(sync);
    v["writers"] = json!(writers);
    v["messages_per_commit"] = json!(batch);
    Ok(v)
}

/// Deletes outbox rows by (device, id) as the server's ack does.
async fn pg_delete_rows(
    conn: &mut sqlx::PgConnection,
    suffix: &str,
    rows: &[(i64, String)],
) -> anyhow::Result<()> {
    let (ids, devices): (Vec<i64>, Vec<&str>) = rows.iter().map(|(i, d)| (*i, d.as_str())).unzip();
    sqlx::query(&format!(
        "DELETE FROM bench_outbox_{suffix} o USING UNNEST($1::text[], $2::int8[]) AS v(device_id, id)
         WHERE o.id = v.id AND o.device_id = v.device_id"
    ))
    .bind(devices)
    .bind(ids)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Deletes outbox rows by (device, id) as the server's ack does on SQLite.
async fn sqlite_delete_rows(
    conn: &mut sqlx::SqliteConnection,
    suffix: &str,
    rows: &[(i64, String)],
) -> anyhow::Result<()> {
    for chunk in rows.chunks(1000) {
        let mut q = QueryBuilder::<sqlx::Sqlite>::new(format!(
            "DELETE FROM bench_outbox_{suffix} WHERE id IN (SELECT o.id FROM bench_outbox_{suffix} o JOIN ("
        ));
        q.push_values(chunk, |mut r, (id, device)| {
            r.push_bind(device.as_str()).push_bind(*id);
        });
        q.push(") AS v ON o.id = v.column2 AND o.device_id = v.column1)");
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Defines an insert of outbox rows (device, message id, body) on one
/// backend, returning (id, device) of each.
macro_rules! insert_rows_fn {
    ($name:ident, $conn:ty, $db:ty) => {
        async fn $name(
            conn: &mut $conn,
            suffix: &str,
            kind: &str,
            rows: &[(String, String, String)],
        ) -> anyhow::Result<Vec<(i64, String)>> {
            let mut ids = Vec::with_capacity(rows.len());
            for chunk in rows.chunks(1000) {
                let mut q = outbox_insert!($db, suffix, chunk, kind);
                q.push(" RETURNING id, device_id");
                let mut got: Vec<(i64, String)> = q.build_query_as().fetch_all(&mut *conn).await?;
                ids.append(&mut got);
            }
            Ok(ids)
        }
    };
}
insert_rows_fn!(sqlite_insert_rows, sqlx::SqliteConnection, sqlx::Sqlite);
insert_rows_fn!(pg_insert_rows, sqlx::PgConnection, sqlx::Postgres);

/// The database work of the whole 1:1 protocol per message, batched as the
/// server batches it, with nothing else running: commit 1 stores the
/// message and its envelopes; commit 2 deletes the envelopes (the
/// recipients' acks) and queues the receipts; commit 3 deletes the receipts
/// (the sender's acks). The ceiling the database alone puts on throughput.
async fn pg_full_cycle(
    url: &str,
    opts: &Opts,
    batch: usize,
    writers: usize,
) -> anyhow::Result<Value> {
    let (suffix, mut admin) = pg_scratch(url).await?;
    let deadline = Instant::now() + Duration::from_secs_f64(opts.duration);
    let mut tasks = Vec::new();
    for w in 0..writers.max(1) {
        let (url, suffix, envelopes, receipts) = (
            url.to_owned(),
            suffix.clone(),
            opts.envelopes,
            opts.receipts,
        );
        tasks.push(tokio::spawn(async move {
            let mut conn = sqlx::PgConnection::connect(&url).await?;
            let (mut h, mut n, mut cycles) = (histogram(), 0u64, 0u64);
            let body = body();
            while Instant::now() < deadline && cycles < 10_000_000 {
                let b = make_batch(batch, envelopes, w, &mut n, &body);
                let t = now_ns();
                full_cycle!(
                    sqlx::Postgres,
                    conn,
                    suffix,
                    b,
                    receipts,
                    pg_insert_rows,
                    pg_delete_rows
                );
                record(&mut h, now_ns() - t);
                cycles += 1;
            }
            Ok::<_, anyhow::Error>((n, cycles, h))
        }));
    }
    let (msgs, cycles, h, secs) = join_writers(tasks).await?;
    drop_scratch(&mut admin, &suffix).await?;
    Ok(json!({
        "messages_per_sec": round2(msgs as f64 / secs),
        "commits_per_sec": round2((cycles * 3) as f64 / secs),
        "cycle_latency": summary(&h),
        "writers": writers,
        "messages_per_cycle": batch,
        "envelopes": opts.envelopes,
        "receipts": opts.receipts,
    }))
}

/// The full cycle on SQLite: one writer connection, as in the server.
async fn sqlite_full_cycle(
    dir: &std::path::Path,
    opts: &Opts,
    batch: usize,
) -> anyhow::Result<Value> {
    let suffix = rand_suffix();
    let (path, mut conn) = sqlite_scratch(dir, &suffix).await?;
    let deadline = Instant::now() + Duration::from_secs_f64(opts.duration);
    let (mut h, mut n, mut cycles) = (histogram(), 0u64, 0u64);
    let (body, receipts) = (body(), opts.receipts);
    let t0 = Instant::now();
    while Instant::now() < deadline && cycles < 10_000_000 {
        let b = make_batch(batch, opts.envelopes, 0, &mut n, &body);
        let t = now_ns();
        full_cycle!(
            sqlx::Sqlite,
            conn,
            suffix,
            b,
            receipts,
            sqlite_insert_rows,
            sqlite_delete_rows
        );
        record(&mut h, now_ns() - t);
        cycles += 1;
    }
    let secs = t0.elapsed().as_secs_f64();
    drop(conn);
    remove_sqlite(&path);
    Ok(json!({
        "messages_per_sec": round2(n as f64 / secs),
        "commits_per_sec": round2((cycles * 3) as f64 / secs),
        "cycle_latency": summary(&h),
        "messages_per_cycle": batch,
        "envelopes": opts.envelopes,
        "receipts": opts.receipts,
    }))
}

/// A scratch SQLite database with the bench tables, set up like the server's.
async fn sqlite_scratch(
    dir: &std::path::Path,
    suffix: &str,
) -> anyhow::Result<(PathBuf, sqlx::SqliteConnection)> {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    let path = dir.join(format!("vestnik-bench-baseline-{suffix}.db"));
    let opts_db = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .pragma("temp_store", "MEMORY");
    let mut conn = sqlx::SqliteConnection::connect_with(&opts_db).await?;
    for s in schema(suffix, "INTEGER PRIMARY KEY AUTOINCREMENT") {
        sqlx::query(&s).execute(&mut conn).await?;
    }
    Ok((path, conn))
}

fn remove_sqlite(path: &std::path::Path) {
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
    }
}

async fn sqlite_inserts(dir: &std::path::Path, opts: &Opts, batch: usize) -> anyhow::Result<Value> {
    let suffix = rand_suffix();
    let (path, mut conn) = sqlite_scratch(dir, &suffix).await?;
    let deadline = Instant::now() + Duration::from_secs_f64(opts.duration);
    let (mut h, mut n, mut commits) = (histogram(), 0u64, 0u64);
    let body = body();
    let t0 = Instant::now();
    while Instant::now() < deadline && commits < 10_000_000 {
        let b = make_batch(batch, opts.envelopes, 0, &mut n, &body);
        let t = now_ns();
        insert_batch!(sqlx::Sqlite, conn, suffix, b);
        record(&mut h, now_ns() - t);
        commits += 1;
    }
    let secs = t0.elapsed().as_secs_f64();
    drop(conn);
    remove_sqlite(&path);
    let mut v = insert_result(n, commits, secs, opts.envelopes, &h);
    v["synchronous"] = json!("NORMAL (WAL)");
    v["messages_per_commit"] = json!(batch);
    Ok(v)
}

/// Every bulk string in a reply, depth first.
fn strings(v: &redis::Value, out: &mut Vec<Vec<u8>>) {
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

async fn redis_bench(url: &str, opts: &Opts) -> anyhow::Result<Value> {
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

/// `echo-server`: echoes every WebSocket text or binary frame.
pub async fn echo_server(listen: &str) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        bail!("the echo server listens on loopback only");
    }
    println!("listening {addr}");
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            while let Some(Ok(m)) = ws.next().await {
                if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
                    return;
                }
            }
        });
    }
}

fn echo_frame(ns: u64, bytes: usize) -> Message {
    let mut s = format!("{ns:020}");
    s.extend(std::iter::repeat_n('x', bytes.saturating_sub(20)));
    Message::text(s)
}

fn echo_sent_at(m: &Message) -> Option<u64> {
    m.to_text().ok()?.get(..20)?.parse().ok()
}

/// Closed loop (rate = None) or fixed rate over `conns` connections.
async fn echo_client(
    addr: std::net::SocketAddr,
    opts: &Opts,
    rate: Option<f64>,
) -> anyhow::Result<Value> {
    let deadline = TokioInstant::now() + Duration::from_secs_f64(1.0 + opts.duration);
    let measure_from = now_ns() + 1_000_000_000;
    let measure_to = measure_from + (opts.duration * 1e9) as u64;
    let mut tasks = Vec::new();
    for i in 0..opts.echo_connections.max(1) {
        let src = common::source_ip(i, 4);
        let (window, bytes, conns) = (
            opts.echo_window.max(1),
            opts.echo_bytes,
            opts.echo_connections.max(1),
        );
        tasks.push(tokio::spawn(async move {
            let sock = tokio::net::TcpSocket::new_v4()?;
            if let Some(ip) = src {
                sock.bind(std::net::SocketAddr::new(ip, 0))?;
            }
            let stream = sock.connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut ws, _) = tokio_tungstenite::client_async_with_config(
                format!("ws://{addr}/"),
                stream,
                Some(common::ws_config()),
            )
            .await?;
            let mut h = histogram();
            let mut done = 0u64;
            match rate {
                None => {
                    for _ in 0..window {
                        ws.feed(echo_frame(now_ns(), bytes)).await?;
                    }
                    ws.flush().await?;
                    while TokioInstant::now() < deadline {
                        let Ok(Some(m)) = tokio::time::timeout_at(deadline, ws.next()).await else {
                            break;
                        };
                        let m = m?;
                        let now = now_ns();
                        if let Some(t) = echo_sent_at(&m) {
                            if now >= measure_from && now < measure_to {
                                record(&mut h, now - t);
                                done += 1;
                            }
                        }
                        ws.send(echo_frame(now_ns(), bytes)).await?;
                    }
                }
                Some(r) => {
                    let period = Duration::from_secs_f64(conns as f64 / r.max(1e-3));
                    let offset = Duration::from_nanos(
                        rand::thread_rng().gen_range(0..period.as_nanos().max(1) as u64),
                    );
                    let start = TokioInstant::now() + offset;
                    let start_ns = now_ns() + offset.as_nanos() as u64;
                    let mut tick = tokio::time::interval_at(start, period);
                    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
                    let mut k = 0u64;
                    loop {
                        tokio::select! {
                            _ = tick.tick() => {
                                if TokioInstant::now() >= deadline { break; }
                                let intended = start_ns + k * period.as_nanos() as u64;
                                k += 1;
                                ws.send(echo_frame(intended, bytes)).await?;
                            }
                            m = ws.next() => {
                                let Some(m) = m else { break };
                                let m = m?;
                                let now = now_ns();
                                if let Some(t) = echo_sent_at(&m) {
                                    if t >= measure_from && t < measure_to {
                                        record(&mut h, now - t);
                                        done += 1;
                                    }
                                }
                            }
                        }
                    }
                    // Answers still on their way.
                    while let Ok(Some(Ok(m))) =
                        tokio::time::timeout(Duration::from_millis(200), ws.next()).await
                    {
                        if let Some(t) = echo_sent_at(&m) {
                            if t >= measure_from && t < measure_to {
                                record(&mut h, now_ns() - t);
                                done += 1;
                            }
                        }
                    }
                }
            }
            let _ = ws.close(None).now_or_never();
            Ok::<_, anyhow::Error>((done, h))
        }));
    }
    let (mut done, mut h) = (0u64, histogram());
    for t in tasks {
        let (d, hh) = t.await??;
        done += d;
        let _ = h.add(hh);
    }
    Ok(json!({
        "round_trips_per_sec": round2(done as f64 / opts.duration),
        "round_trip": summary(&h),
    }))
}

async fn echo_bench(opts: &Opts) -> anyhow::Result<Value> {
    let exe = std::env::current_exe()?;
    let mut child = tokio::process::Command::new(exe)
        .args(["echo-server", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("echo server stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .context("echo server did not start")??
        .context("echo server exited")?;
    let addr: std::net::SocketAddr = line
        .strip_prefix("listening ")
        .context("unexpected echo server output")?
        .parse()?;
    let pid = child.id();
    let cpu0 = common::CpuSample::take(pid);
    let closed = echo_client(addr, opts, None).await;
    let cpu = cpu0.cores_since(pid);
    let fixed = echo_client(addr, opts, Some(opts.echo_rate)).await;
    let _ = child.kill().await;
    Ok(json!({
        "frame_bytes": opts.echo_bytes,
        "connections": opts.echo_connections,
        "closed_loop": {"window": opts.echo_window, "measured": closed?, "cpu": cpu},
        "fixed_rate": {"rate": opts.echo_rate, "measured": fixed?},
    }))
}

pub async fn run(opts: Opts) -> anyhow::Result<()> {
    let mut measured = serde_json::Map::new();
    if let Some(url) = &opts.pg_url {
        ensure_loopback_url(url)?;
        eprintln!(
            "[baseline] PostgreSQL: {} writers × {} messages a commit",
            opts.pg_writers, opts.batch
        );
        measured.insert(
            "postgres_batched".into(),
            pg_inserts(url, &opts, opts.batch, opts.pg_writers).await?,
        );
        eprintln!(
            "[baseline] PostgreSQL full cycle: store, ack + {} receipts, receipt acks",
            opts.receipts
        );
        measured.insert(
            "postgres_full_cycle".into(),
            pg_full_cycle(url, &opts, opts.batch, opts.pg_writers).await?,
        );
        eprintln!("[baseline] PostgreSQL: 1 writer, 1 message a commit");
        measured.insert(
            "postgres_single".into(),
            pg_inserts(url, &opts, 1, 1).await?,
        );
    }
    if !opts.no_sqlite {
        let dir = opts.sqlite_dir.clone().unwrap_or_else(std::env::temp_dir);
        eprintln!("[baseline] SQLite: {} messages a commit", opts.batch);
        measured.insert(
            "sqlite_batched".into(),
            sqlite_inserts(&dir, &opts, opts.batch).await?,
        );
        eprintln!(
            "[baseline] SQLite full cycle: store, ack + {} receipts, receipt acks",
            opts.receipts
        );
        measured.insert(
            "sqlite_full_cycle".into(),
            sqlite_full_cycle(&dir, &opts, opts.batch).await?,
        );
        eprintln!("[baseline] SQLite: 1 message a commit");
        measured.insert(
            "sqlite_single".into(),
            sqlite_inserts(&dir, &opts, 1).await?,
        );
    }
    if let Some(url) = &opts.redis_url {
        ensure_loopback_url(url)?;
        eprintln!("[baseline] Redis");
        measured.insert("redis".into(), redis_bench(url, &opts).await?);
    }
    if !opts.no_echo {
        eprintln!("[baseline] WebSocket echo");
        measured.insert("websocket_echo".into(), echo_bench(&opts).await?);
    }
    let config = json!({
        "label": opts.label,
        "duration_secs": opts.duration,
        "messages_per_commit": opts.batch,
        "envelopes": opts.envelopes,
        "receipts": opts.receipts,
    });
    common::emit(
        &common::result("baseline", config, Value::Object(measured)),
        opts.json.as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_services_are_measured() {
        assert!(ensure_loopback_url("postgres://postgres@127.0.0.1:5432/test").is_ok());
        assert!(ensure_loopback_url("redis://localhost:6379").is_ok());
        assert!(ensure_loopback_url("redis://[::1]:6379").is_ok());
        assert!(ensure_loopback_url("postgres://u:p@db.example.org/x").is_err());
    }

    #[test]
    fn echo_frames_carry_their_send_time() {
        let m = echo_frame(1234, 1000);
        assert_eq!(m.len(), 1000);
        assert_eq!(echo_sent_at(&m), Some(1234));
    }
}
