//! Versioned migrations, one SQL file per version and dialect, applied in order
//! inside a transaction each and recorded in `schema_migrations`.

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

pub static MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "auth",
        sqlite: include_str!("../migrations/sqlite/0001_auth.sql"),
        postgres: include_str!("../migrations/postgres/0001_auth.sql"),
    },
    Migration {
        version: 2,
        name: "messaging",
        sqlite: include_str!("../migrations/sqlite/0002_messaging.sql"),
        postgres: include_str!("../migrations/postgres/0002_messaging.sql"),
    },
    Migration {
        version: 3,
        name: "read_markers",
        sqlite: include_str!("../migrations/sqlite/0003_read_markers.sql"),
        postgres: include_str!("../migrations/postgres/0003_read_markers.sql"),
    },
    Migration {
        version: 4,
        name: "presence",
        sqlite: include_str!("../migrations/sqlite/0004_presence.sql"),
        postgres: include_str!("../migrations/postgres/0004_presence.sql"),
    },
    Migration {
        version: 5,
        name: "groups",
        sqlite: include_str!("../migrations/sqlite/0005_groups.sql"),
        postgres: include_str!("../migrations/postgres/0005_groups.sql"),
    },
    Migration {
        version: 6,
        name: "media",
        sqlite: include_str!("../migrations/sqlite/0006_media.sql"),
        postgres: include_str!("../migrations/postgres/0006_media.sql"),
    },
    Migration {
        version: 7,
        name: "outbox_expiry",
        sqlite: include_str!("../migrations/sqlite/0007_outbox_expiry.sql"),
        postgres: include_str!("../migrations/postgres/0007_outbox_expiry.sql"),
    },
    Migration {
        version: 8,
        name: "refresh_retry",
        sqlite: include_str!("../migrations/sqlite/0008_refresh_retry.sql"),
        postgres: include_str!("../migrations/postgres/0008_refresh_retry.sql"),
    },
];

pub(crate) const CREATE_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Applies what is missing. `$lock` is run first inside each transaction (an
/// advisory lock on PostgreSQL so nodes starting together do not race).
macro_rules! run_migrations {
    ($pool:expr, $field:ident, $lock:expr) => {{
        let pool = $pool;
        let lock: Option<&'static str> = $lock;
        sqlx::query($crate::migrate::CREATE_TABLE)
            .execute(pool)
            .await?;
        let mut applied_now = Vec::new();
        for m in $crate::migrate::MIGRATIONS {
            let mut tx = pool.begin().await?;
            if let Some(lock) = lock {
                sqlx::query(lock).execute(&mut *tx).await?;
            }
            let done: Option<i64> =
                sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                    .bind(m.version)
                    .fetch_optional(&mut *tx)
                    .await?;
            if done.is_some() {
                continue;
            }
            // Statements are split on `;` (migration files keep semicolons out of
            // literals) because each runs as a prepared statement.
            for stmt in m.$field.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                sqlx::query(stmt).execute(&mut *tx).await.map_err(|e| {
                    $crate::StoreError::Migration {
                        version: m.version,
                        reason: e.to_string(),
                    }
                })?;
            }
            sqlx::query(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(m.version)
            .bind(m.name)
            .bind($crate::migrate::now_ms())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            applied_now.push(m.version);
        }
        Ok(applied_now)
    }};
}
pub(crate) use run_migrations;
