//! The multi-row statements of the delivery hot path, one module per backend
//! with the same functions. PostgreSQL binds each column as one array
//! (`UNNEST`), so every statement has one fixed text: it is parsed and planned
//! once per connection instead of once per batch size, and its plan (index
//! lookups) does not depend on table statistics, which a fresh or
//! never-analyzed database lacks. SQLite has no arrays: it gets `VALUES`
//! lists, chunked under its bound-parameter limit.
pub(crate) mod postgres;
pub(crate) mod sqlite;

/// A message row to insert.
pub(crate) struct MessageInsert<'a> {
    pub id: &'a str,
    pub conversation_id: &'a str,
    pub seq: i64,
    pub sender_user_id: &'a str,
    pub sender_device_id: &'a str,
    pub client_msg_id: &'a str,
    pub created_at: i64,
    pub msg_type: Option<i64>,
    pub body: Option<&'a str>,
}

/// An outbox row to insert (a message envelope for one device).
pub(crate) struct OutboxInsert<'a> {
    pub device_id: &'a str,
    pub kind: &'a str,
    pub message_id: &'a str,
    pub conversation_id: &'a str,
    pub seq: i64,
    pub sender_user_id: &'a str,
    pub sender_device_id: &'a str,
    pub msg_type: i64,
    pub body: &'a str,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A receipt to queue for every active device of `sender`: `acker` (a device
/// of `acker_user`) has the messages listed in `body`.
pub(crate) struct ReceiptInsert<'a> {
    pub first_message_id: &'a str,
    pub conversation_id: &'a str,
    pub seq: i64,
    pub acker_user: &'a str,
    pub acker_device: &'a str,
    pub sender: &'a str,
    pub body: &'a str,
}

/// An outbox row deleted by an ack: device_id, kind, message_id,
/// conversation_id, seq, sender_user_id.
pub(crate) type AckedRow = (String, String, String, String, i64, String);

/// A stored message found by its sender's retry key: sender_device_id,
/// client_msg_id, id, seq, created_at.
pub(crate) type KnownMessage = (String, String, String, i64, i64);
