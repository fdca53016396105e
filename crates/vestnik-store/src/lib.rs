//! The server's system of record: one [`Store`] trait per kind of data and two
//! implementations chosen at run time — SQLite (embedded default, WAL mode) and
//! PostgreSQL (shared by several nodes). Every operation that must be atomic is
//! one method here, executed in one transaction, so callers cannot half-apply it.

mod migrate;
mod postgres;
mod rows;
mod sql;
mod sqlite;

use async_trait::async_trait;
use std::sync::Arc;

pub use migrate::MIGRATIONS;
pub use postgres::PgStore;
pub use rows::*;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration {version} failed: {reason}")]
    Migration { version: i64, reason: String },
    /// The e-mail code was consumed or replaced by a concurrent request.
    #[error("the verification code is no longer valid")]
    CodeConsumed,
    #[error("the account is not awaiting verification")]
    NotPending,
    #[error("expected at most {max} active devices")]
    TooManyDevices { max: i64 },
    #[error("{0} already exists")]
    Conflict(&'static str),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Accounts, e-mail codes, 2FA state and recovery codes.
#[async_trait]
pub trait UserStore: Send + Sync {
    async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>>;
    async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>>;
    /// Creates a pending account unless one exists for the address (races are
    /// settled by the unique index: exactly one row wins).
    async fn create_pending_user(&self, id: &str, email: &str, now: i64) -> Result<()>;
    /// Stores a fresh code unless one was sent after `resend_cutoff`; false when throttled.
    async fn put_email_code(&self, code: &EmailCodeRow, resend_cutoff: i64) -> Result<bool>;
    async fn email_code(&self, email: &str) -> Result<Option<EmailCodeRow>>;
    /// Counts a wrong guess; returns the attempts so far.
    async fn bump_email_code_attempts(&self, email: &str) -> Result<i64>;
    async fn delete_email_code(&self, email: &str) -> Result<()>;
    /// Consumes the code, activates the account, creates the first device with
    /// its keys and a session, and records the audit event — all or nothing.
    async fn complete_registration(&self, reg: &CompleteRegistration) -> Result<()>;
    async fn set_totp_pending(
        &self,
        user_id: &str,
        secret_enc: &str,
        expires_at: i64,
    ) -> Result<()>;
    async fn enable_totp(
        &self,
        user_id: &str,
        secret_enc: &str,
        step: i64,
        recovery_hashes: &[String],
        now: i64,
    ) -> Result<()>;
    async fn disable_totp(&self, user_id: &str, now: i64) -> Result<()>;
    /// Marks a TOTP time step used; false when it (or a later one) already was,
    /// which is what stops a code being replayed.
    async fn use_totp_step(&self, user_id: &str, step: i64) -> Result<bool>;
    /// Marks a recovery code used; false when unknown or already used.
    async fn use_recovery_code(&self, user_id: &str, code_hash: &str, now: i64) -> Result<bool>;
    async fn unused_recovery_codes(&self, user_id: &str) -> Result<i64>;
    async fn list_users(&self, after_email: Option<&str>, limit: i64) -> Result<Vec<UserRow>>;
    /// Sets the status of an existing account; false when there is none.
    async fn set_user_status(&self, user_id: &str, status: UserStatus, now: i64) -> Result<bool>;
    /// Creates an active administrator, or promotes the existing account.
    async fn upsert_admin(
        &self,
        id: &str,
        email: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<()>;
}

/// Devices, their public keys and their sessions.
#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// A login: a new device with its keys and its first session.
    async fn create_device_session(
        &self,
        device: &NewDevice,
        session: &NewSession,
        max_devices: i64,
    ) -> Result<()>;
    async fn list_devices(&self, user_id: &str) -> Result<Vec<DeviceRow>>;
    async fn session_by_access(&self, access_hash: &str, now: i64) -> Result<Option<SessionAuth>>;
    /// Rotates a refresh token; detects reuse of an already rotated one.
    async fn rotate_refresh(
        &self,
        old_refresh_hash: &str,
        next: &NextTokens,
        now: i64,
    ) -> Result<RotateOutcome>;
    /// Revokes devices (all of the user's when `device_ids` is None), their
    /// sessions and their one-time and fallback keys. Returns the access-token
    /// hashes that caches must forget.
    async fn revoke_devices(
        &self,
        user_id: &str,
        device_ids: Option<&[String]>,
        now: i64,
    ) -> Result<Vec<String>>;
    async fn one_time_key_count(&self, device_id: &str) -> Result<i64>;
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(&self, event: &AuditEvent) -> Result<()>;
    /// Newest first; `before` pages backwards by id.
    async fn list_audit(
        &self,
        user_id: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRow>>;
}

/// Everything a node needs from its database.
#[async_trait]
pub trait Store: UserStore + DeviceStore + AuditStore {
    async fn ping(&self) -> Result<()>;
    /// Applies pending migrations; returns the versions applied now.
    async fn migrate(&self) -> Result<Vec<i64>>;
    fn backend(&self) -> &'static str;
}

/// Opens the store named by a URL: `postgres://…`, or `sqlite:<path>`.
pub async fn open(url: &str, pool_size: u32) -> Result<Arc<dyn Store>> {
    if url.starts_with("postgres") {
        Ok(Arc::new(PgStore::connect(url, pool_size).await?))
    } else {
        Ok(Arc::new(SqliteStore::open(url, pool_size).await?))
    }
}
