//! The SQL both backends share, one module per kind of data, each
//! implementing its store trait once for every [`Backend`]. The statements
//! use `$n` placeholders and the subset of SQL that PostgreSQL and SQLite
//! (≥ 3.35: UPSERT, RETURNING) agree on; [`dialect`] runs them on either.
//! What does differ between the backends is in [`Backend`]; the multi-row
//! statements of the delivery hot path are per backend, in `crate::bulk`.
//!
//! A query is a plain method of its store trait, for example:
//!
//! ```text
//! async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>> {
//!     Ok(query("SELECT … FROM users WHERE id = $1")
//!         .bind(id)
//!         .fetch_optional(self.read())
//!         .await?)
//! }
//! ```

pub(crate) mod dialect;

mod audit;
mod contacts;
mod devices;
mod erasure;
mod groups;
mod keys;
mod media;
mod messaging;
mod profiles;
mod users;

use std::future::Future;

use sqlx::Pool;

use crate::{AckBatchItem, NewMessage, OutboxRow, Result, StoredMessage};
use dialect::Dialect;

/// A backend's store: its pools, and the little that is not common SQL.
/// `UserStore`, `DeviceStore`, `AuditStore`, `KeyStore`, `MessageStore`,
/// `GroupStore` and `MediaStore` are implemented for every `Backend`.
pub(crate) trait Backend: Send + Sync + 'static {
    type Db: Dialect;

    /// Pops a device's oldest one-time key (`$1`: the device), returning
    /// `key_id, public_key`; concurrent claims must never get the same key.
    const CLAIM_ONE_TIME_KEY: &'static str;

    /// For reads (on SQLite, read-only connections beside the one writer).
    fn read(&self) -> &Pool<Self::Db>;

    /// For writes, transactions, and reads that must see the writer's
    /// latest state.
    fn write(&self) -> &Pool<Self::Db>;

    /// The delivery hot path: `MessageStore::store_and_ack`.
    fn store_and_ack(
        &self,
        sends: &[NewMessage],
        acks: &[AckBatchItem],
        now: i64,
        expires_at: i64,
    ) -> impl Future<Output = Result<(Vec<StoredMessage>, Vec<Vec<OutboxRow>>)>> + Send;
}
