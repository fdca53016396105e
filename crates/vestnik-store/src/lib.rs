//! The server's system of record: one [`Store`] trait per kind of data and two
//! implementations chosen at run time — SQLite (embedded default, WAL mode) and
//! PostgreSQL (shared by several nodes). Every operation that must be atomic is
//! one method here, executed in one transaction, so callers cannot half-apply it.
// The server's lint wall (as vestnik-crypto's): bad input and failed
// backends are errors, never a panic of the process.
#![deny(clippy::expect_used, clippy::panic, clippy::unwrap_used)]
#![warn(missing_docs)]

mod bulk;
mod error;
mod migrate;
mod postgres;
mod queries;
mod rows;
mod sqlite;
mod traits;

use std::sync::Arc;

pub use error::{Result, StoreError};
pub use migrate::MIGRATIONS;
pub use postgres::PgStore;
pub use rows::*;
pub use sqlite::SqliteStore;
pub use traits::*;

/// Opens the store named by a URL: `postgres://…`, or `sqlite:<path>`.
pub async fn open(url: &str, pool_size: u32) -> Result<Arc<dyn Store>> {
    open_with(url, pool_size, Durability::default()).await
}

/// What an answered commit survives on SQLite (PostgreSQL commits are
/// durable by its own settings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// An OS crash or power loss (`synchronous = FULL`): the default.
    #[default]
    PowerLoss,
    /// A process crash only (`synchronous = NORMAL`): fewer fsyncs.
    ProcessCrash,
}

/// [`open`] with the SQLite durability chosen.
pub async fn open_with(
    url: &str,
    pool_size: u32,
    durability: Durability,
) -> Result<Arc<dyn Store>> {
    if url.starts_with("postgres") {
        Ok(Arc::new(PgStore::connect(url, pool_size).await?))
    } else {
        Ok(Arc::new(
            SqliteStore::open(url, pool_size, durability).await?,
        ))
    }
}
