//! Versioned migrations, one SQL file per version and dialect, applied in order
//! inside a transaction each and recorded in `schema_migrations`.

use sqlx::Pool;

use crate::queries::dialect::{query, Dialect};

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// Every migration, by version.
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
    Migration {
        version: 9,
        name: "revocations",
        sqlite: include_str!("../migrations/sqlite/0009_revocations.sql"),
        postgres: include_str!("../migrations/postgres/0009_revocations.sql"),
    },
    Migration {
        version: 10,
        name: "account_codes",
        sqlite: include_str!("../migrations/sqlite/0010_account_codes.sql"),
        postgres: include_str!("../migrations/postgres/0010_account_codes.sql"),
    },
    Migration {
        version: 11,
        name: "consent",
        sqlite: include_str!("../migrations/sqlite/0011_consent.sql"),
        postgres: include_str!("../migrations/postgres/0011_consent.sql"),
    },
    Migration {
        version: 12,
        name: "moderation",
        sqlite: include_str!("../migrations/sqlite/0012_moderation.sql"),
        postgres: include_str!("../migrations/postgres/0012_moderation.sql"),
    },
    Migration {
        version: 13,
        name: "profiles",
        sqlite: include_str!("../migrations/sqlite/0013_profiles.sql"),
        postgres: include_str!("../migrations/postgres/0013_profiles.sql"),
    },
    Migration {
        version: 14,
        name: "contacts",
        sqlite: include_str!("../migrations/sqlite/0014_contacts.sql"),
        postgres: include_str!("../migrations/postgres/0014_contacts.sql"),
    },
    Migration {
        version: 15,
        name: "mutes",
        sqlite: include_str!("../migrations/sqlite/0015_mutes.sql"),
        postgres: include_str!("../migrations/postgres/0015_mutes.sql"),
    },
    Migration {
        version: 16,
        name: "avatars",
        sqlite: include_str!("../migrations/sqlite/0016_avatars.sql"),
        postgres: include_str!("../migrations/postgres/0016_avatars.sql"),
    },
];

const CREATE_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Applies what is missing, taking each migration's SQL for this backend
/// from `sql_of`. `lock` is run first inside each transaction (an advisory
/// lock on PostgreSQL so nodes starting together do not race).
pub(crate) async fn run_migrations<DB: Dialect>(
    pool: &Pool<DB>,
    sql_of: fn(&Migration) -> &'static str,
    lock: Option<&str>,
) -> crate::Result<Vec<i64>> {
    query(CREATE_TABLE).execute(pool).await?;
    let mut applied_now = Vec::new();
    for m in MIGRATIONS {
        let mut tx = pool.begin().await?;
        if let Some(lock) = lock {
            query(lock).execute(&mut tx).await?;
        }
        let done: Option<i64> = query("SELECT version FROM schema_migrations WHERE version = $1")
            .bind(m.version)
            .scalar_optional(&mut tx)
            .await?;
        if done.is_some() {
            continue;
        }
        // Statements are split on `;` (migration files keep semicolons out of
        // literals) because each runs as a prepared statement.
        for stmt in sql_of(m)
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            query(stmt)
                .execute(&mut tx)
                .await
                .map_err(|e| crate::StoreError::Migration {
                    version: m.version,
                    reason: e.to_string(),
                })?;
        }
        query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
            .bind(m.version)
            .bind(m.name)
            .bind(now_ms())
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        applied_now.push(m.version);
    }
    Ok(applied_now)
}
