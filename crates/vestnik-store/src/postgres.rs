//! PostgreSQL: the shared system of record when several nodes run.
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::time::Duration;

pub struct PgStore {
    pool: PgPool,
}

/// Arbitrary constant naming the migration advisory lock.
const MIGRATION_LOCK: &str = "SELECT pg_advisory_xact_lock(7365617217)";

impl PgStore {
    pub async fn connect(url: &str, pool_size: u32) -> crate::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(pool_size.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    fn read(&self) -> &PgPool {
        &self.pool
    }

    fn write(&self) -> &PgPool {
        &self.pool
    }
}

crate::sql::impl_sql_store!(PgStore);
crate::sql_messaging::impl_messaging_store!(PgStore, sqlx::Postgres, true);
crate::sql_media::impl_media_store!(PgStore);
crate::sql_groups::impl_group_store!(PgStore, sqlx::Postgres);

#[async_trait::async_trait]
impl crate::Store for PgStore {
    async fn ping(&self) -> crate::Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn migrate(&self) -> crate::Result<Vec<i64>> {
        crate::migrate::run_migrations!(&self.pool, postgres, Some(MIGRATION_LOCK))
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }
}

/// SKIP LOCKED: concurrent claims take different keys instead of queueing on
/// (and then missing) the same row.
const CLAIM_ONE_TIME_KEY: &str = "DELETE FROM one_time_keys WHERE device_id = $1 AND key_id =
     (SELECT key_id FROM one_time_keys WHERE device_id = $1 ORDER BY created_at, key_id LIMIT 1 FOR UPDATE SKIP LOCKED)
     RETURNING key_id, public_key";
