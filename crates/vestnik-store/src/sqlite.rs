//! SQLite in WAL mode: many readers, and one writer connection so that write
//! transactions queue in-process instead of failing with SQLITE_BUSY.
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;

use crate::{AckBatchItem, NewMessage, OutboxRow, StoredMessage};
use std::time::Duration;
use vestnik_core::limits::SQLITE_CHECKPOINT_EVERY as CHECKPOINT_EVERY;
use vestnik_core::limits::SQLITE_ROW_BUFFER as ROW_BUFFER;

/// The store on SQLite.
pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
    /// Copies the WAL back into the database (see `housekeep`).
    checkpoint: SqlitePool,
    /// (WAL pages, pages copied) as the last checkpoint left them.
    last_checkpoint: std::sync::Mutex<(i64, i64)>,
}

/// WAL pages (64 MiB) after which the writer checkpoints by itself. Only
/// the writer can bring the WAL back to its start: a checkpoint by another
/// connection under steady writes never catches up with the last commit,
/// and the WAL is restarted only by the first write after one that did.
/// Measured at 2,000 msg/s: 18,000 WAL pages a second, and without this the
/// WAL grew to 890 MB in 10 s.
const WRITER_AUTOCHECKPOINT_PAGES: &str = "16384";

impl SqliteStore {
    /// `url` is `sqlite:<path>` or `sqlite://<path>`; the file is created if missing.
    pub async fn open(
        url: &str,
        readers: u32,
        durability: crate::Durability,
    ) -> crate::Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match durability {
                // Every commit reaches the disk (fsync of the WAL): `sent`
                // survives an OS crash or a power loss.
                crate::Durability::PowerLoss => SqliteSynchronous::Full,
                // The WAL is synced only at checkpoints: durable against a
                // process crash; a power loss can drop the last commits but
                // never corrupts.
                crate::Durability::ProcessCrash => SqliteSynchronous::Normal,
            })
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // Statement journals (each multi-row insert in a transaction
            // keeps one) in memory rather than in temp files.
            .pragma("temp_store", "MEMORY")
            // A write batch returns thousands of rows (RETURNING), a backlog
            // page hundreds; with the default 50-row channel a connection's
            // thread stopped every 50 rows until a busy async task took them
            // (measured: `throughput` on SQLite 2,600 → 3,360 msg/s).
            .row_buffer_size(ROW_BUFFER);
        // The pool pings a connection before lending it out by default: for
        // an in-process file that checks nothing, and each ping was a round
        // trip to the connection's thread on every write batch.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(
                opts.clone()
                    .pragma("wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES),
            )
            .await?;
        let checkpoint = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(readers.max(1))
            .test_before_acquire(false)
            .connect_with(opts.read_only(true))
            .await?;
        Ok(Self {
            read,
            write,
            checkpoint,
            last_checkpoint: std::sync::Mutex::new((0, 0)),
        })
    }
}

impl crate::queries::Backend for SqliteStore {
    type Db = sqlx::Sqlite;

    /// The single writer connection makes this pop atomic.
    const CLAIM_ONE_TIME_KEY: &'static str =
        "DELETE FROM one_time_keys WHERE device_id = $1 AND key_id =
     (SELECT key_id FROM one_time_keys WHERE device_id = $1 ORDER BY created_at, key_id LIMIT 1)
     RETURNING key_id, public_key";

    fn read(&self) -> &SqlitePool {
        &self.read
    }

    fn write(&self) -> &SqlitePool {
        &self.write
    }

    async fn store_and_ack(
        &self,
        sends: &[NewMessage],
        acks: &[AckBatchItem],
        now: i64,
        expires_at: i64,
    ) -> crate::Result<(Vec<StoredMessage>, Vec<Vec<OutboxRow>>)> {
        crate::bulk::sqlite::store_and_ack(&self.write, sends, acks, now, expires_at).await
    }
}

#[async_trait::async_trait]
impl crate::Store for SqliteStore {
    async fn ping(&self) -> crate::Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    async fn migrate(&self) -> crate::Result<Vec<i64>> {
        crate::migrate::run_migrations(&self.write, |m| m.sqlite, None).await
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn blocking_single_writer(&self) -> bool {
        true
    }

    fn housekeep_interval(&self) -> Duration {
        CHECKPOINT_EVERY
    }

    /// SQLite puts deleted pages on its free list and reuses them, and its
    /// planner needs no statistics for the indexed lookups we make. What it
    /// does need is checkpoints, and by default the connection whose commit
    /// crosses 1,000 WAL pages runs one, with its writes and fsync: that is
    /// the single writer, and measured under `throughput` checkpoints took
    /// 15 % of its time. Here a connection of their own copies the WAL back
    /// every call (PASSIVE: it never waits for, nor blocks, the writer or
    /// the readers), so most of that work moves off the writer's thread (what
    /// stays there: `WRITER_AUTOCHECKPOINT_PAGES`).
    async fn housekeep(&self) -> crate::Result<Vec<String>> {
        let (busy, wal_pages, copied): (i64, i64, i64) =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&self.checkpoint)
                .await?;
        // Called ten times a second: only a checkpoint that found something
        // new is worth reporting.
        let mut last = self
            .last_checkpoint
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let changed = *last != (wal_pages, copied);
        *last = (wal_pages, copied);
        Ok(if wal_pages > 0 && changed {
            vec![format!(
                "checkpoint {copied}/{wal_pages} pages (busy {busy})"
            )]
        } else {
            Vec::new()
        })
    }
}
