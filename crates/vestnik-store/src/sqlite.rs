//! SQLite in WAL mode: many readers, and one writer connection so that write
//! transactions queue in-process instead of failing with SQLITE_BUSY.
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
}

impl SqliteStore {
    /// `url` is `sqlite:<path>` or `sqlite://<path>`; the file is created if missing.
    pub async fn open(url: &str, readers: u32) -> crate::Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode is durable against process crashes and keeps
            // commits off fsync-per-transaction; power loss can drop the last
            // transactions but never corrupts.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(readers.max(1))
            .connect_with(opts.read_only(true))
            .await?;
        Ok(Self { read, write })
    }

    fn read(&self) -> &SqlitePool {
        &self.read
    }

    fn write(&self) -> &SqlitePool {
        &self.write
    }
}

crate::sql::impl_sql_store!(SqliteStore);
crate::sql_messaging::impl_messaging_store!(SqliteStore, sqlx::Sqlite, sqlite);
crate::sql_media::impl_media_store!(SqliteStore);
crate::sql_groups::impl_group_store!(SqliteStore, sqlx::Sqlite);

#[async_trait::async_trait]
impl crate::Store for SqliteStore {
    async fn ping(&self) -> crate::Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    async fn migrate(&self) -> crate::Result<Vec<i64>> {
        crate::migrate::run_migrations!(&self.write, sqlite, None::<&str>)
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }

    /// SQLite puts deleted pages on its free list and reuses them, and its
    /// planner needs no statistics for the indexed lookups we make.
    async fn housekeep(&self) -> crate::Result<Vec<String>> {
        Ok(Vec::new())
    }
}

/// The single writer connection makes this pop atomic.
const CLAIM_ONE_TIME_KEY: &str = "DELETE FROM one_time_keys WHERE device_id = $1 AND key_id =
     (SELECT key_id FROM one_time_keys WHERE device_id = $1 ORDER BY created_at, key_id LIMIT 1)
     RETURNING key_id, public_key";
