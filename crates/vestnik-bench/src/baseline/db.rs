//! The databases' own limits: batched inserts, full delivery cycles and
//! single commits on PostgreSQL and SQLite, in scratch tables.
use hdrhistogram::Histogram;
use rand::RngCore;
use serde_json::{json, Value};
use sqlx::{Connection, QueryBuilder};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::common::{self, histogram, now_ns, record, round2, summary};

use super::*;

/// The server's schema of the two tables (migrations 2, 5 and 7), minus the
/// columns the hot path leaves empty.
pub(super) fn schema(suffix: &str, serial: &str) -> [String; 3] {
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
pub(super) struct Batch {
    messages: Vec<[String; 4]>,
    outbox: Vec<(String, String, String)>,
}

pub(super) fn make_batch(
    batch: usize,
    envelopes: usize,
    writer: usize,
    n: &mut u64,
    body: &str,
) -> Batch {
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

pub(super) fn body() -> String {
    use base64::Engine;
    let mut raw = [0u8; common::CIPHERTEXT_RAW];
    rand::thread_rng().fill_bytes(&mut raw);
    base64::engine::general_purpose::STANDARD.encode(raw)
}

pub(super) fn insert_result(
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
pub(super) async fn join_writers(
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

pub(super) async fn drop_scratch(
    admin: &mut sqlx::PgConnection,
    suffix: &str,
) -> anyhow::Result<()> {
    for t in ["messages", "outbox"] {
        sqlx::query(&format!("DROP TABLE bench_{t}_{suffix}"))
            .execute(&mut *admin)
            .await?;
    }
    Ok(())
}

/// Scratch bench tables in PostgreSQL; returns their suffix and the admin
/// connection that drops them (`drop_scratch`).
pub(super) async fn pg_scratch(url: &str) -> anyhow::Result<(String, sqlx::PgConnection)> {
    let suffix = rand_suffix();
    let mut admin = sqlx::PgConnection::connect(url).await?;
    for s in schema(&suffix, "BIGSERIAL PRIMARY KEY") {
        sqlx::query(&s).execute(&mut admin).await?;
    }
    Ok((suffix, admin))
}

pub(super) async fn pg_inserts(
    url: &str,
    opts: &Opts,
    batch: usize,
    writers: usize,
) -> anyhow::Result<Value> {
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
pub(super) async fn pg_delete_rows(
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
pub(super) async fn sqlite_delete_rows(
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
pub(super) async fn pg_full_cycle(
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
pub(super) async fn sqlite_full_cycle(
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
pub(super) async fn sqlite_scratch(
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

pub(super) fn remove_sqlite(path: &std::path::Path) {
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
    }
}

pub(super) async fn sqlite_inserts(
    dir: &std::path::Path,
    opts: &Opts,
    batch: usize,
) -> anyhow::Result<Value> {
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
