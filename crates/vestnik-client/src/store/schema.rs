//! The tables of the local store: the first version's, then additive
//! migrations counted by `PRAGMA user_version`.
use sqlx::{Row, SqlitePool};

use super::Store;
use crate::error::Result;

pub(super) const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS peer_devices (
        device_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        identity_key TEXT NOT NULL,
        signing_key TEXT NOT NULL,
        active INTEGER NOT NULL,
        seen_at INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS peer_devices_user ON peer_devices (user_id)",
    "CREATE TABLE IF NOT EXISTS device_lists (
        user_id TEXT PRIMARY KEY,
        fresh INTEGER NOT NULL,
        fetched_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS conversations (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        peer_user_id TEXT,
        members TEXT NOT NULL,
        created_at INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS conversations_peer ON conversations (peer_user_id)",
    "CREATE TABLE IF NOT EXISTS messages (
        pos INTEGER PRIMARY KEY AUTOINCREMENT,
        local_id TEXT NOT NULL UNIQUE,
        message_id TEXT UNIQUE,
        client_msg_id TEXT,
        conversation_id TEXT,
        peer_user_id TEXT,
        seq INTEGER,
        sender_user_id TEXT NOT NULL,
        sender_device_id TEXT NOT NULL,
        direction TEXT NOT NULL,
        state TEXT NOT NULL,
        body BLOB NOT NULL,
        sent_at INTEGER,
        stored_at INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS messages_conversation ON messages (conversation_id, seq)",
    "CREATE TABLE IF NOT EXISTS outbox (
        pos INTEGER PRIMARY KEY AUTOINCREMENT,
        local_id TEXT NOT NULL UNIQUE,
        client_msg_id TEXT NOT NULL UNIQUE,
        peer_user_id TEXT NOT NULL,
        conversation_id TEXT,
        envelopes TEXT,
        created_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS receipts (
        message_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (message_id, device_id))",
    "CREATE TABLE IF NOT EXISTS seen (
        message_id TEXT PRIMARY KEY,
        outcome TEXT NOT NULL,
        at INTEGER NOT NULL)",
];

/// Additive schema changes, each applied once in order in one transaction;
/// `PRAGMA user_version` counts those applied (stores made before groups
/// have version 0 and the tables of `SCHEMA`).
const MIGRATIONS: &[&[&str]] = &[
    &[
        // Group messages share the outbox (one order for everything this
        // device writes): a Megolm ciphertext instead of Olm envelopes.
        "ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'direct'",
        "ALTER TABLE outbox ADD COLUMN ciphertext TEXT",
        "ALTER TABLE outbox ADD COLUMN session_id TEXT",
        // The member devices of a group (GET /v1/conversations/{id}/devices),
        // stale after `devices_changed`, a `system` event or a reconnect.
        "CREATE TABLE group_devices (
        conversation_id TEXT PRIMARY KEY,
        devices TEXT NOT NULL,
        fresh INTEGER NOT NULL,
        fetched_at INTEGER NOT NULL)",
        // This device's current outbound Megolm session per group, with the
        // member devices it is meant for (any change means a new session).
        "CREATE TABLE group_outbound (
        conversation_id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        devices TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        rotate INTEGER NOT NULL DEFAULT 0)",
        // Which device got which of our sessions, from which ratchet index:
        // what a key request may get again.
        "CREATE TABLE group_shares (
        session_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        identity_key TEXT NOT NULL,
        shared_index INTEGER NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (session_id, device_id))",
        // Every Megolm session this device can decrypt (ours and received),
        // bound to one conversation and one sending device.
        "CREATE TABLE group_sessions (
        session_id TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL,
        sender_user_id TEXT NOT NULL,
        sender_device_id TEXT NOT NULL,
        at INTEGER NOT NULL)",
        "CREATE INDEX group_sessions_conversation ON group_sessions (conversation_id)",
        // Ratchet indices already decrypted: a second message at the same index
        // is a replay.
        "CREATE TABLE group_indices (
        session_id TEXT NOT NULL,
        message_index INTEGER NOT NULL,
        message_id TEXT NOT NULL,
        PRIMARY KEY (session_id, message_index))",
        // Group messages whose session key has not arrived yet (the frame as
        // received, ciphertext and all), decrypted once it does.
        "CREATE TABLE group_pending (
        message_id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        frame TEXT NOT NULL,
        at INTEGER NOT NULL)",
        "CREATE INDEX group_pending_session ON group_pending (session_id, seq)",
        "CREATE TABLE system_events (
        event_id TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL,
        event TEXT NOT NULL,
        at INTEGER NOT NULL)",
    ],
    &[
        // Channels this device reads: whether posts are plaintext (public) or
        // under the publishers' Megolm sessions (private), and the last seq of
        // the log read so far (live pushes do not move it: a log read after a
        // reconnect fills whatever was missed).
        "CREATE TABLE channels (
        conversation_id TEXT PRIMARY KEY,
        public INTEGER NOT NULL,
        cursor INTEGER NOT NULL DEFAULT 0)",
    ],
    &[
        // A file's descriptor (media id, key, digest), sealed like the body.
        "ALTER TABLE messages ADD COLUMN attachment BLOB",
    ],
    &[
        // Display names of the users this device has met, sealed; NULL when
        // the user has none. Refetched after a day, or when pushed.
        "CREATE TABLE profiles (
        user_id TEXT PRIMARY KEY,
        display_name BLOB,
        fetched_at INTEGER NOT NULL)",
    ],
    &[
        // An outgoing edit's row names the message it replaces (the row is
        // sent, never shown); an edited message has the edit's server time.
        "ALTER TABLE messages ADD COLUMN edit_of TEXT",
        "ALTER TABLE messages ADD COLUMN edited_at INTEGER",
    ],
    &[
        // The profile picture's id as the server last said; its bytes are
        // kept (sealed) under that id, one picture per user.
        "ALTER TABLE profiles ADD COLUMN avatar TEXT",
        "CREATE TABLE avatars (
        avatar_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        image BLOB NOT NULL)",
        "CREATE INDEX avatars_user ON avatars (user_id)",
    ],
];

impl Store {
    pub(super) async fn migrate(pool: &SqlitePool) -> Result<()> {
        let applied: i64 = sqlx::query("PRAGMA user_version")
            .fetch_one(pool)
            .await?
            .try_get(0)?;
        for (i, statements) in MIGRATIONS.iter().enumerate() {
            let version = i64::try_from(i).unwrap_or(i64::MAX).saturating_add(1);
            if applied >= version {
                continue;
            }
            let mut tx = pool.begin().await?;
            for stmt in *statements {
                sqlx::query(stmt).execute(&mut *tx).await?;
            }
            // PRAGMA takes no bind parameters; `version` is our own integer.
            sqlx::query(&format!("PRAGMA user_version = {version}"))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(())
    }
}
