//! Why a store operation failed.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database (through sqlx) refused or failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// From the SQLite batch writer, which runs its statements directly.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A migration could not be applied.
    #[error("migration {version} failed: {reason}")]
    Migration {
        /// The migration's version.
        version: i64,
        /// What went wrong.
        reason: String,
    },
    /// The e-mail code was consumed or replaced by a concurrent request.
    #[error("the verification code is no longer valid")]
    CodeConsumed,
    /// The account is active or disabled, not pending.
    #[error("the account is not awaiting verification")]
    NotPending,
    /// The user already has the most active devices allowed.
    #[error("expected at most {max} active devices")]
    TooManyDevices {
        /// The limit.
        max: i64,
    },
    /// An upload would leave the device more one-time keys than allowed.
    #[error("expected at most {max} one-time keys on the server for a device")]
    TooManyKeys {
        /// The limit.
        max: i64,
    },
    /// A unique value (named) is already taken.
    #[error("{0} already exists")]
    Conflict(&'static str),
}

impl StoreError {
    /// The database could not be reached or did not answer in time (as
    /// opposed to refusing the request): callers answer 503 and retry, and
    /// nothing is half-done (the transaction rolled back).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(e) => match e {
                sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::WorkerCrashed => true,
                // Class 08: connection exceptions; 57014: statement timeout;
                // 57P01-03: the server is shutting down or starting;
                // 53300: too many connections.
                sqlx::Error::Database(db) => db.code().is_some_and(|c| {
                    c.starts_with("08")
                        || matches!(&*c, "57014" | "57P01" | "57P02" | "57P03" | "53300")
                }),
                _ => false,
            },
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ),
            _ => false,
        }
    }
}

/// A store operation's result.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
