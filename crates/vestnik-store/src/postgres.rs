//! PostgreSQL: the shared system of record when several nodes run.
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::time::Duration;

use crate::{AckBatchItem, NewMessage, OutboxRow, StoredMessage};
use vestnik_core::limits::PG_ANALYZE_MIN_CHANGES as ANALYZE_MIN_CHANGES;
use vestnik_core::limits::PG_QUEUE_VACUUM_MIN_DEAD as QUEUE_VACUUM_MIN_DEAD;

/// The store on PostgreSQL.
pub struct PgStore {
    pool: PgPool,
    turns: crate::bulk::postgres::TurnConnections,
}

/// The longest any statement may run (the writer turns' too).
const STATEMENT_TIMEOUT: &str = "15s";
/// The longest a request waits for a connection (the database being away
/// looks like this: connections cannot be opened).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Arbitrary constant naming the migration advisory lock.
const MIGRATION_LOCK: &str = "SELECT pg_advisory_xact_lock(7365617217)";

impl PgStore {
    /// Connects with a pool of `pool_size` connections (at least 1).
    pub async fn connect(url: &str, pool_size: u32) -> crate::Result<Self> {
        // Every statement is bounded, so a stuck or overloaded server makes
        // requests fail (503) in bounded time instead of holding them.
        let options = url
            .parse::<sqlx::postgres::PgConnectOptions>()?
            .options([("statement_timeout", STATEMENT_TIMEOUT)]);
        let pool = PgPoolOptions::new()
            .max_connections(pool_size.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // sqlx pings a connection before lending it (and again when it
            // comes back): a round trip per query. A connection that broke
            // while idle fails its next query instead, and the ping on its
            // return drops it.
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        let turns = crate::bulk::postgres::TurnConnections::new(&pool);
        Ok(Self { pool, turns })
    }
}

impl crate::queries::Backend for PgStore {
    type Db = sqlx::Postgres;

    /// SKIP LOCKED: concurrent claims take different keys instead of queueing on
    /// (and then missing) the same row.
    const CLAIM_ONE_TIME_KEY: &'static str = "DELETE FROM one_time_keys WHERE device_id = $1 AND key_id =
     (SELECT key_id FROM one_time_keys WHERE device_id = $1 ORDER BY created_at, key_id LIMIT 1 FOR UPDATE SKIP LOCKED)
     RETURNING key_id, public_key";

    fn read(&self) -> &PgPool {
        &self.pool
    }

    fn write(&self) -> &PgPool {
        &self.pool
    }

    async fn store_and_ack(
        &self,
        sends: &[NewMessage],
        acks: &[AckBatchItem],
        now: i64,
        expires_at: i64,
    ) -> crate::Result<(Vec<StoredMessage>, Vec<Vec<OutboxRow>>)> {
        crate::bulk::postgres::store_and_ack(&self.turns, sends, acks, now, expires_at).await
    }
}

#[async_trait::async_trait]
impl crate::Store for PgStore {
    async fn ping(&self) -> crate::Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn migrate(&self) -> crate::Result<Vec<i64>> {
        crate::migrate::run_migrations(&self.pool, |m| m.postgres, Some(MIGRATION_LOCK)).await
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }

    /// The outbox is a queue: every row is deleted within moments of its
    /// insert, tens of thousands a second under load. Left to autovacuum
    /// (whose defaults wait for 20 % of the table to be dead, and which some
    /// installations turn off) its dead rows and index entries pile up and
    /// every insert, delete and lookup slows down with them: measured, the
    /// table grew 12 MB/s and throughput fell by a quarter within 40 s. So
    /// every node vacuums it once enough has been deleted; SKIP_LOCKED makes a
    /// node whose peer is already vacuuming skip its turn instead of waiting,
    /// and TRUNCATE false keeps the vacuum from taking the exclusive lock that
    /// would stall every insert while it returns empty pages to the OS.
    ///
    /// Where autovacuum is off, nothing else refreshes the planner's
    /// statistics either, and plans made for tables believed empty (a seq
    /// scan of `devices` per receipt batch, say) get slower as the tables
    /// grow; so then the node also analyzes tables that changed by a tenth.
    async fn housekeep(&self) -> crate::Result<Vec<String>> {
        // At most one ANALYZE per table per 10 s, whichever node ran it.
        let tables: Vec<(String, i64, i64, i64, bool)> = sqlx::query_as(
            "SELECT relname::text, n_live_tup, n_dead_tup, n_mod_since_analyze,
                    current_setting('autovacuum') = 'on'
                    OR COALESCE(GREATEST(last_analyze, last_autoanalyze) > now() - interval '10 seconds', false)
             FROM pg_stat_user_tables WHERE schemaname = current_schema()",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut done = Vec::new();
        for (table, live, dead, modified, analyzed_elsewhere) in tables {
            if table == "outbox" && dead >= QUEUE_VACUUM_MIN_DEAD && dead >= live / 5 {
                sqlx::query("VACUUM (SKIP_LOCKED, TRUNCATE false) outbox")
                    .execute(&self.pool)
                    .await?;
                done.push("vacuum outbox".to_owned());
            }
            if !analyzed_elsewhere && modified >= ANALYZE_MIN_CHANGES + live / 10 {
                // The name comes from the catalog of our own schema; quoted
                // all the same.
                sqlx::query(&format!("ANALYZE \"{}\"", table.replace('"', "\"\"")))
                    .execute(&self.pool)
                    .await?;
                done.push(format!("analyze {table}"));
            }
        }
        Ok(done)
    }
}
