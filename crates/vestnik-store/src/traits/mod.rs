//! One trait per kind of data, and `Store`, all of them together.
mod accounts;
mod conversations;

pub use accounts::*;
pub use conversations::*;

use async_trait::async_trait;

use crate::*;

/// Everything a node needs from its database.
#[async_trait]
pub trait Store:
    UserStore
    + DeviceStore
    + AuditStore
    + KeyStore
    + MessageStore
    + GroupStore
    + MediaStore
    + ErasureStore
    + ProfileStore
    + ContactStore
{
    /// Checks the database answers.
    async fn ping(&self) -> Result<()>;
    /// Applies pending migrations; returns the versions applied now.
    async fn migrate(&self) -> Result<Vec<i64>>;
    /// A name for logs and metrics (`sqlite`, `postgres`); callers decide
    /// nothing by it: what differs is asked for by capability below.
    fn backend(&self) -> &'static str;
    /// Whether `store_and_ack` runs synchronously on one writer connection
    /// (SQLite through rusqlite): then there is exactly one batch writer, and
    /// it needs a thread of its own rather than a worker of the runtime.
    fn blocking_single_writer(&self) -> bool {
        false
    }
    /// Reclaims the rows the delivery queue has deleted, and refreshes planner
    /// statistics, where the database leaves that to a vacuum; returns what it
    /// did. Cheap to call every `housekeep_interval`: it acts only when
    /// enough has changed.
    async fn housekeep(&self) -> Result<Vec<String>>;
    /// How often a node calls `housekeep`.
    fn housekeep_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }
}
