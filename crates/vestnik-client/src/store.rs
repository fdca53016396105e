//! The local store: one SQLite file per device.
//!
//! Sealed (unreadable without the store key): the Olm account and sessions
//! (`Device::to_encrypted`), the session tokens, the account record and every
//! message body. In the clear, because the client queries by them and the
//! server knows them anyway: user, device, conversation and message ids,
//! sequence numbers, timestamps, public identity keys, receipts, the Olm and
//! Megolm ciphertexts waiting in the outbox or for a group key (end-to-end
//! encrypted already), Megolm session ids with the conversation and device
//! each belongs to, and the ratchet indices already read. The Megolm
//! sessions themselves live in the sealed device state.
//!
//! Every step that must not be half-done is one transaction: a decrypted
//! message is stored together with the ratchet state that decrypted it and
//! its id in the dedup table, before it is acknowledged; an encrypted send is
//! stored together with the ratchet state that encrypted it, before it leaves.
use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqliteLockingMode, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};
use vestnik_proto::{
    Conversation, Envelope, IncomingMessage, PublicDevice, Receipt, Sent, SystemEvent,
};
use zeroize::Zeroizing;

use crate::config::StoreKey;
use crate::error::{ClientError, Result};
use crate::seal::Sealer;
use crate::types::{Attachment, Direction, HistoryEntry, MessageState};

const SALT_LEN: usize = 16;
const CHECK: &[u8] = b"vestnik-client-store-v1";

const SCHEMA: &[&str] = &[
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
];

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Who this device is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Account {
    pub(crate) server_url: String,
    pub(crate) email: String,
    pub(crate) user_id: String,
    pub(crate) device_id: String,
}

/// The device-bound session.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Tokens {
    pub(crate) access_token: String,
    pub(crate) refresh_token: String,
}

/// How a queued message is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutboxKind {
    /// Olm envelopes for every device of a direct conversation.
    Direct,
    /// One Megolm ciphertext for a group.
    Group,
    /// A channel post: plaintext (public) or one Megolm ciphertext (private).
    Channel,
}

impl OutboxKind {
    fn as_str(self) -> &'static str {
        match self {
            OutboxKind::Direct => "direct",
            OutboxKind::Group => "group",
            OutboxKind::Channel => "channel",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "group" => OutboxKind::Group,
            "channel" => OutboxKind::Channel,
            _ => OutboxKind::Direct,
        }
    }
}

/// A queued outgoing message.
pub(crate) struct OutboxItem {
    pub(crate) local_id: String,
    pub(crate) client_msg_id: String,
    pub(crate) kind: OutboxKind,
    /// Empty for a group message.
    pub(crate) peer_user_id: String,
    pub(crate) conversation_id: Option<String>,
    pub(crate) envelopes: Option<Vec<Envelope>>,
    /// A group message encrypted before an earlier attempt, with its session.
    pub(crate) ciphertext: Option<(String, String)>,
    pub(crate) text: Zeroizing<String>,
    /// The attachment descriptor (JSON) of a file message.
    pub(crate) attachment: Option<Zeroizing<String>>,
}

/// This device's current outbound Megolm session of a group.
pub(crate) struct OutboundRow {
    pub(crate) session_id: String,
    /// device id → identity key of the member devices it was made for.
    pub(crate) devices: BTreeMap<String, String>,
    pub(crate) created_at: i64,
    pub(crate) rotate: bool,
}

/// Who a Megolm session belongs to.
pub(crate) struct GroupSessionRow {
    pub(crate) conversation_id: String,
    pub(crate) sender_user_id: String,
    pub(crate) sender_device_id: String,
}

/// A decrypted message on its way into history.
pub(crate) struct IncomingRow<'a> {
    pub(crate) message_id: &'a str,
    pub(crate) client_msg_id: &'a str,
    pub(crate) conversation_id: &'a str,
    pub(crate) peer_user_id: Option<&'a str>,
    pub(crate) seq: i64,
    pub(crate) sender_user_id: &'a str,
    pub(crate) sender_device_id: &'a str,
    pub(crate) direction: Direction,
    pub(crate) body: &'a str,
    /// The attachment descriptor (JSON) of a file message.
    pub(crate) attachment: Option<String>,
    pub(crate) sent_at: i64,
    /// For a group message: its Megolm session and ratchet index (recorded
    /// so the same index is never accepted twice).
    pub(crate) group: Option<(&'a str, u32)>,
}

/// A cached conversation.
#[derive(Debug, Clone)]
pub(crate) struct ConversationRow {
    pub(crate) id: String,
    pub(crate) members: Vec<String>,
}

pub(crate) struct Store {
    pool: SqlitePool,
    sealer: Sealer,
    local_secret: Zeroizing<Vec<u8>>,
    path: String,
}

fn direction_str(d: Direction) -> &'static str {
    match d {
        Direction::Incoming => "in",
        Direction::Outgoing => "out",
    }
}

impl Store {
    /// Opens (creating if needed) the store and checks the key.
    pub(crate) async fn open(path: &Path, key: &StoreKey) -> Result<Self> {
        let display = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                ClientError::InvalidInput(format!("creating {}: {e}", dir.display()))
            })?;
        }
        // Exclusive: a second client on the same file (which would fork the
        // Olm ratchets) is refused instead of corrupting the state.
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .locking_mode(SqliteLockingMode::Exclusive)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(2));
        let in_use = |e: sqlx::Error| match &e {
            sqlx::Error::Database(d) if d.message().contains("locked") => {
                ClientError::StoreInUse(display.clone())
            }
            _ => ClientError::Store(e),
        };
        // One connection: every write is serialised in-process, so SQLite never
        // answers SQLITE_BUSY on a lock upgrade.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(options)
            .await
            .map_err(in_use)?;
        // Released at once on failure, so the file is not left locked.
        let setup = async {
            for stmt in SCHEMA {
                sqlx::query(stmt).execute(&pool).await.map_err(in_use)?;
            }
            Self::migrate(&pool).await?;
            let salt = match Self::meta_raw(&pool, "salt").await? {
                Some(s) => s,
                None => {
                    let mut s = vec![0u8; SALT_LEN];
                    OsRng.fill_bytes(&mut s);
                    sqlx::query("INSERT OR IGNORE INTO meta (key, value) VALUES ('salt', ?)")
                        .bind(&s)
                        .execute(&pool)
                        .await?;
                    Self::meta_raw(&pool, "salt")
                        .await?
                        .ok_or_else(|| ClientError::Protocol("store salt vanished".into()))?
                }
            };
            let local_secret = match key {
                StoreKey::Secret(s) => {
                    if s.len() < vestnik_crypto::MIN_LOCAL_SECRET_LEN {
                        return Err(ClientError::InvalidInput(format!(
                            "store key: expected at least {} bytes of key material, got {}",
                            vestnik_crypto::MIN_LOCAL_SECRET_LEN,
                            s.len()
                        )));
                    }
                    s.clone()
                }
                StoreKey::Passphrase(p) => {
                    let (p, salt) = (p.clone(), salt.clone());
                    let key = tokio::task::spawn_blocking(move || {
                        vestnik_crypto::derive_local_key(p.as_bytes(), &salt)
                    })
                    .await
                    .map_err(|e| ClientError::InvalidInput(format!("key derivation: {e}")))??;
                    Zeroizing::new(key.as_bytes().to_vec())
                }
            };
            let sealer = Sealer::new(&local_secret, &salt)?;
            match Self::meta_raw(&pool, "check").await? {
                Some(blob) => {
                    if sealer.open("check", &blob)?.as_slice() != CHECK {
                        return Err(ClientError::WrongStoreKey);
                    }
                }
                None => {
                    let blob = sealer.seal("check", CHECK)?;
                    sqlx::query("INSERT INTO meta (key, value) VALUES ('check', ?)")
                        .bind(blob)
                        .execute(&pool)
                        .await?;
                }
            }
            Ok::<_, ClientError>((sealer, local_secret))
        }
        .await;
        let (sealer, local_secret) = match setup {
            Ok(v) => v,
            Err(e) => {
                pool.close().await;
                return Err(e);
            }
        };
        Ok(Self {
            pool,
            sealer,
            local_secret,
            path: display,
        })
    }

    async fn migrate(pool: &SqlitePool) -> Result<()> {
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

    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    /// Seals the device for storage.
    pub(crate) fn seal_device(&self, device: &vestnik_crypto::Device) -> Result<String> {
        Ok(device.to_encrypted(&self.local_secret)?)
    }

    /// The fallback key last accepted by the server: (key id, when it was
    /// first uploaded). Not secret.
    pub(crate) async fn fallback_uploaded(&self) -> Result<Option<(String, i64)>> {
        Ok(Self::meta_raw(&self.pool, "fallback_uploaded")
            .await?
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|text| {
                let (id, at) = text.split_once('|')?;
                Some((id.to_owned(), at.parse().ok()?))
            }))
    }

    pub(crate) async fn set_fallback_uploaded(&self, key_id: &str, at: i64) -> Result<()> {
        sqlx::query("INSERT INTO meta (key, value) VALUES ('fallback_uploaded', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(format!("{key_id}|{at}").into_bytes())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn meta_raw(pool: &SqlitePool, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(sqlx::query("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(pool)
            .await?
            .map(|r| r.try_get::<Vec<u8>, _>(0))
            .transpose()?)
    }

    async fn sealed_json<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Result<Option<T>> {
        match Self::meta_raw(&self.pool, key).await? {
            None => Ok(None),
            Some(blob) => {
                let json = self.sealer.open(key, &blob)?;
                serde_json::from_slice(&json)
                    .map(Some)
                    .map_err(|_| ClientError::WrongStoreKey)
            }
        }
    }

    fn seal_json<T: Serialize>(&self, key: &str, value: &T) -> Result<Vec<u8>> {
        let json = Zeroizing::new(
            serde_json::to_vec(value).map_err(|e| ClientError::Protocol(e.to_string()))?,
        );
        self.sealer.seal(key, &json)
    }

    pub(crate) async fn account(&self) -> Result<Option<Account>> {
        self.sealed_json("account").await
    }

    pub(crate) async fn tokens(&self) -> Result<Option<Tokens>> {
        self.sealed_json("tokens").await
    }

    pub(crate) async fn device(&self) -> Result<Option<vestnik_crypto::Device>> {
        match Self::meta_raw(&self.pool, "device").await? {
            None => Ok(None),
            Some(blob) => {
                let text = String::from_utf8(blob).map_err(|_| ClientError::WrongStoreKey)?;
                match vestnik_crypto::Device::from_encrypted(&text, &self.local_secret) {
                    Ok(d) => Ok(Some(d)),
                    Err(vestnik_crypto::CryptoError::StateAuthentication) => {
                        Err(ClientError::WrongStoreKey)
                    }
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// Stores a freshly registered device: account, tokens and Olm state at once.
    pub(crate) async fn save_registration(
        &self,
        account: &Account,
        tokens: &Tokens,
        device_blob: &str,
    ) -> Result<()> {
        let account_blob = self.seal_json("account", account)?;
        let tokens_blob = self.seal_json("tokens", tokens)?;
        let mut tx = self.pool.begin().await?;
        for (k, v) in [
            ("account", account_blob),
            ("tokens", tokens_blob),
            ("device", device_blob.as_bytes().to_vec()),
        ] {
            sqlx::query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
                .bind(k)
                .bind(v)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn save_tokens(&self, tokens: Option<&Tokens>) -> Result<()> {
        match tokens {
            Some(t) => {
                let blob = self.seal_json("tokens", t)?;
                sqlx::query("INSERT INTO meta (key, value) VALUES ('tokens', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
                    .bind(blob)
                    .execute(&self.pool)
                    .await?;
            }
            None => {
                sqlx::query("DELETE FROM meta WHERE key = 'tokens'")
                    .execute(&self.pool)
                    .await?;
            }
        }
        Ok(())
    }

    async fn put_device(conn: &mut sqlx::SqliteConnection, device_blob: &str) -> Result<()> {
        sqlx::query("INSERT INTO meta (key, value) VALUES ('device', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(device_blob.as_bytes())
            .execute(conn)
            .await?;
        Ok(())
    }

    pub(crate) async fn save_device(&self, device_blob: &str) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        Self::put_device(&mut conn, device_blob).await
    }

    // ---------- device directory cache ----------

    /// The cached keys of a device (active or not).
    pub(crate) async fn known_device(&self, device_id: &str) -> Result<Option<PublicDevice>> {
        let row = sqlx::query(
            "SELECT user_id, device_id, identity_key, signing_key FROM peer_devices WHERE device_id = ?",
        )
        .bind(device_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(PublicDevice {
                user_id: r.try_get(0)?,
                device_id: r.try_get(1)?,
                identity_key: r.try_get(2)?,
                signing_key: r.try_get(3)?,
            })
        })
        .transpose()
    }

    /// A user's active devices, if the cached list is fresh.
    pub(crate) async fn device_list(&self, user_id: &str) -> Result<Option<Vec<PublicDevice>>> {
        let fresh: Option<i64> = sqlx::query("SELECT fresh FROM device_lists WHERE user_id = ?")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        if fresh != Some(1) {
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT user_id, device_id, identity_key, signing_key FROM peer_devices
             WHERE user_id = ? AND active = 1 ORDER BY device_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(PublicDevice {
                    user_id: r.try_get(0)?,
                    device_id: r.try_get(1)?,
                    identity_key: r.try_get(2)?,
                    signing_key: r.try_get(3)?,
                })
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// Replaces the cached device list of `user_id` with `devices` (all of
    /// which must belong to that user). A device id keeps the keys it was
    /// first seen with: a change is refused as [`ClientError::IdentityKeyChanged`].
    pub(crate) async fn replace_device_list(
        &self,
        user_id: &str,
        devices: &[PublicDevice],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for d in devices {
            if d.user_id != user_id {
                return Err(ClientError::Protocol(format!(
                    "device list of {user_id}: expected only its devices, got one of {}",
                    d.user_id
                )));
            }
            let known = sqlx::query(
                "SELECT user_id, identity_key, signing_key FROM peer_devices WHERE device_id = ?",
            )
            .bind(&d.device_id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(r) = known {
                let (u, ik, sk): (String, String, String) =
                    (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
                if u != d.user_id || ik != d.identity_key || sk != d.signing_key {
                    return Err(ClientError::IdentityKeyChanged {
                        user_id: d.user_id.clone(),
                        device_id: d.device_id.clone(),
                        known: ik,
                        got: d.identity_key.clone(),
                    });
                }
            }
        }
        let now = now_ms();
        sqlx::query("UPDATE peer_devices SET active = 0 WHERE user_id = ?")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        for d in devices {
            sqlx::query(
                "INSERT INTO peer_devices (device_id, user_id, identity_key, signing_key, active, seen_at)
                 VALUES (?, ?, ?, ?, 1, ?)
                 ON CONFLICT (device_id) DO UPDATE SET active = 1, seen_at = excluded.seen_at",
            )
            .bind(&d.device_id)
            .bind(&d.user_id)
            .bind(&d.identity_key)
            .bind(&d.signing_key)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO device_lists (user_id, fresh, fetched_at) VALUES (?, 1, ?)
             ON CONFLICT (user_id) DO UPDATE SET fresh = 1, fetched_at = excluded.fetched_at",
        )
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn mark_device_list_stale(&self, user_id: &str) -> Result<()> {
        sqlx::query("UPDATE device_lists SET fresh = 0 WHERE user_id = ?")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---------- conversations ----------

    pub(crate) async fn save_conversation(&self, c: &Conversation, me: &str) -> Result<()> {
        // Only a direct conversation is found by its peer.
        let peer = (c.kind == "direct")
            .then(|| c.member_user_ids.iter().find(|u| *u != me).cloned())
            .flatten();
        let members = serde_json::to_string(&c.member_user_ids)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        sqlx::query(
            "INSERT INTO conversations (id, kind, peer_user_id, members, created_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, peer_user_id = excluded.peer_user_id,
                 members = excluded.members, created_at = excluded.created_at",
        )
        .bind(&c.id)
        .bind(&c.kind)
        .bind(peer)
        .bind(members)
        .bind(c.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    fn conversation_row(r: sqlx::sqlite::SqliteRow) -> Result<ConversationRow> {
        let members: String = r.try_get(1)?;
        Ok(ConversationRow {
            id: r.try_get(0)?,
            members: serde_json::from_str(&members).unwrap_or_default(),
        })
    }

    // ---------- channels ----------

    /// Records a channel this device reads (its cursor is kept).
    pub(crate) async fn save_channel(&self, conversation_id: &str, public: bool) -> Result<()> {
        sqlx::query(
            "INSERT INTO channels (conversation_id, public) VALUES (?, ?)
             ON CONFLICT (conversation_id) DO UPDATE SET public = excluded.public",
        )
        .bind(conversation_id)
        .bind(public)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// `Some(public)` for a channel this device knows, with its cursor.
    pub(crate) async fn channel(&self, conversation_id: &str) -> Result<Option<(bool, i64)>> {
        Ok(
            sqlx::query_as("SELECT public, cursor FROM channels WHERE conversation_id = ?")
                .bind(conversation_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub(crate) async fn channel_ids(&self) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT conversation_id FROM channels ORDER BY conversation_id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// The log has been read up to `seq` (never moves back).
    pub(crate) async fn advance_channel_cursor(
        &self,
        conversation_id: &str,
        seq: i64,
    ) -> Result<()> {
        sqlx::query("UPDATE channels SET cursor = MAX(cursor, ?) WHERE conversation_id = ?")
            .bind(seq)
            .bind(conversation_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stops following a channel (left or removed).
    pub(crate) async fn forget_channel(&self, conversation_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM channels WHERE conversation_id = ?")
            .bind(conversation_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The direct conversation with `peer`, if known with its members.
    pub(crate) async fn conversation_with(&self, peer: &str) -> Result<Option<ConversationRow>> {
        sqlx::query(
            "SELECT id, members FROM conversations WHERE peer_user_id = ? AND kind = 'direct' AND members != '[]'
             ORDER BY created_at LIMIT 1",
        )
        .bind(peer)
        .fetch_optional(&self.pool)
        .await?
        .map(Self::conversation_row)
        .transpose()
    }

    pub(crate) async fn conversation(&self, id: &str) -> Result<Option<ConversationRow>> {
        sqlx::query("SELECT id, members FROM conversations WHERE id = ? AND members != '[]'")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(Self::conversation_row)
            .transpose()
    }

    // ---------- outgoing ----------

    /// Writes a new outgoing message to history and the outbox.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn queue_outgoing(
        &self,
        local_id: &str,
        client_msg_id: &str,
        kind: OutboxKind,
        peer_user_id: &str,
        conversation_id: Option<&str>,
        text: &str,
        attachment: Option<&str>,
        me_user: &str,
        me_device: &str,
    ) -> Result<()> {
        let body = self
            .sealer
            .seal(&format!("message:{local_id}"), text.as_bytes())?;
        let attachment = self.seal_attachment(local_id, attachment)?;
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO messages (local_id, client_msg_id, conversation_id, peer_user_id, sender_user_id,
                 sender_device_id, direction, state, body, stored_at, attachment)
             VALUES (?, ?, ?, ?, ?, ?, 'out', 'pending', ?, ?, ?)",
        )
        .bind(local_id)
        .bind(client_msg_id)
        .bind(conversation_id)
        .bind((kind == OutboxKind::Direct).then_some(peer_user_id))
        .bind(me_user)
        .bind(me_device)
        .bind(body)
        .bind(now)
        .bind(attachment)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO outbox (local_id, client_msg_id, kind, peer_user_id, conversation_id, created_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(local_id)
        .bind(client_msg_id)
        .bind(kind.as_str())
        .bind(peer_user_id)
        .bind(conversation_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    fn seal_attachment(&self, local_id: &str, json: Option<&str>) -> Result<Option<Vec<u8>>> {
        json.map(|j| {
            self.sealer
                .seal(&format!("attachment:{local_id}"), j.as_bytes())
        })
        .transpose()
    }

    fn open_attachment(
        &self,
        local_id: &str,
        sealed: Option<Vec<u8>>,
    ) -> Result<Option<Zeroizing<String>>> {
        sealed
            .map(|b| {
                self.sealer
                    .open_string(&format!("attachment:{local_id}"), &b)
            })
            .transpose()
    }

    /// The oldest queued message.
    pub(crate) async fn outbox_head(&self) -> Result<Option<OutboxItem>> {
        let Some(r) = sqlx::query(
            "SELECT o.local_id, o.client_msg_id, o.peer_user_id, o.conversation_id, o.envelopes, m.body,
                 o.kind, o.ciphertext, o.session_id, m.attachment
             FROM outbox o JOIN messages m ON m.local_id = o.local_id ORDER BY o.pos LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let local_id: String = r.try_get(0)?;
        let envelopes: Option<String> = r.try_get(4)?;
        let body: Vec<u8> = r.try_get(5)?;
        let kind: String = r.try_get(6)?;
        let ciphertext: Option<String> = r.try_get(7)?;
        let session_id: Option<String> = r.try_get(8)?;
        let attachment = self.open_attachment(&local_id, r.try_get(9)?)?;
        Ok(Some(OutboxItem {
            attachment,
            kind: OutboxKind::parse(&kind),
            ciphertext: ciphertext.zip(session_id),
            text: self
                .sealer
                .open_string(&format!("message:{local_id}"), &body)?,
            local_id,
            client_msg_id: r.try_get(1)?,
            peer_user_id: r.try_get(2)?,
            conversation_id: r.try_get(3)?,
            envelopes: envelopes
                .map(|e| serde_json::from_str(&e))
                .transpose()
                .map_err(|e| ClientError::Protocol(format!("stored envelopes: {e}")))?,
        }))
    }

    pub(crate) async fn outbox_len(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) FROM outbox")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
    }

    pub(crate) async fn set_outbox_conversation(
        &self,
        local_id: &str,
        conversation_id: &str,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for table in ["outbox", "messages"] {
            sqlx::query(&format!(
                "UPDATE {table} SET conversation_id = ? WHERE local_id = ?"
            ))
            .bind(conversation_id)
            .bind(local_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Stores the envelopes of a queued message with the ratchet state that made them.
    pub(crate) async fn save_envelopes(
        &self,
        local_id: &str,
        envelopes: &[Envelope],
        device_blob: &str,
    ) -> Result<()> {
        let json =
            serde_json::to_string(envelopes).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE outbox SET envelopes = ? WHERE local_id = ?")
            .bind(json)
            .bind(local_id)
            .execute(&mut *tx)
            .await?;
        Self::put_device(&mut tx, device_blob).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The server accepted a queued message.
    pub(crate) async fn complete_send(&self, local_id: &str, sent: &Sent) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM outbox WHERE local_id = ?")
            .bind(local_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE messages SET message_id = ?, seq = ?, sent_at = ?, conversation_id = ?, state = 'sent'
             WHERE local_id = ?",
        )
        .bind(&sent.message_id)
        .bind(sent.seq)
        .bind(sent.sent_at)
        .bind(&sent.conversation_id)
        .bind(local_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The server refused a queued message for good.
    pub(crate) async fn fail_send(&self, local_id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM outbox WHERE local_id = ?")
            .bind(local_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE messages SET state = 'failed' WHERE local_id = ?")
            .bind(local_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    // ---------- incoming ----------

    pub(crate) async fn is_seen(&self, message_id: &str) -> Result<bool> {
        Ok(sqlx::query("SELECT 1 FROM seen WHERE message_id = ?")
            .bind(message_id)
            .fetch_optional(&self.pool)
            .await?
            .is_some())
    }

    /// Stores a decrypted message with the ratchet state that decrypted it.
    pub(crate) async fn store_incoming(
        &self,
        m: &IncomingRow<'_>,
        device_blob: &str,
    ) -> Result<()> {
        let local_id = uuid::Uuid::new_v4().simple().to_string();
        let body = self
            .sealer
            .seal(&format!("message:{local_id}"), m.body.as_bytes())?;
        let attachment = self.seal_attachment(&local_id, m.attachment.as_deref())?;
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        // A group message may have waited for its key as `pending`.
        sqlx::query(
            "INSERT INTO seen (message_id, outcome, at) VALUES (?, 'ok', ?)
             ON CONFLICT (message_id) DO UPDATE SET outcome = 'ok', at = excluded.at",
        )
        .bind(m.message_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some((session_id, index)) = m.group {
            sqlx::query(
                "INSERT INTO group_indices (session_id, message_index, message_id) VALUES (?, ?, ?)",
            )
            .bind(session_id)
            .bind(i64::from(index))
            .bind(m.message_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM group_pending WHERE message_id = ?")
                .bind(m.message_id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO messages (local_id, message_id, client_msg_id, conversation_id, peer_user_id, seq,
                 sender_user_id, sender_device_id, direction, state, body, sent_at, stored_at, attachment)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'received', ?, ?, ?, ?)",
        )
        .bind(&local_id)
        .bind(m.message_id)
        .bind(m.client_msg_id)
        .bind(m.conversation_id)
        .bind(m.peer_user_id)
        .bind(m.seq)
        .bind(m.sender_user_id)
        .bind(m.sender_device_id)
        .bind(direction_str(m.direction))
        .bind(body)
        .bind(m.sent_at)
        .bind(now)
        .bind(attachment)
        .execute(&mut *tx)
        .await?;
        // A placeholder until the conversation is fetched; an incoming direct
        // message names the peer, enough to find the conversation by peer.
        sqlx::query(
            "INSERT INTO conversations (id, kind, peer_user_id, members, created_at)
             VALUES (?1, CASE WHEN EXISTS (SELECT 1 FROM channels WHERE conversation_id = ?1) THEN 'channel'
                              ELSE ?2 END, ?3, '[]', ?4)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(m.conversation_id)
        .bind(if m.group.is_some() { "group" } else { "direct" })
        .bind(m.group.is_none().then_some(m.peer_user_id).flatten())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        Self::put_device(&mut tx, device_blob).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a message that will never be readable (or, as `outcome`
    /// says, needed no history row), so it is not handled twice.
    pub(crate) async fn store_rejected(
        &self,
        message_id: &str,
        outcome: &str,
        device_blob: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO seen (message_id, outcome, at) VALUES (?, ?, ?)
             ON CONFLICT (message_id) DO UPDATE SET outcome = excluded.outcome, at = excluded.at",
        )
        .bind(message_id)
        .bind(outcome)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM group_pending WHERE message_id = ?")
            .bind(message_id)
            .execute(&mut *tx)
            .await?;
        if let Some(blob) = device_blob {
            Self::put_device(&mut tx, blob).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Stores a receipt; false when it was already known.
    /// Records that `r`'s device has `message_id`; false when known already.
    pub(crate) async fn store_receipt(&self, message_id: &str, r: &Receipt) -> Result<bool> {
        let done = sqlx::query(
            "INSERT OR IGNORE INTO receipts (message_id, device_id, user_id, at) VALUES (?, ?, ?, ?)",
        )
        .bind(message_id)
        .bind(&r.device_id)
        .bind(&r.user_id)
        .bind(r.at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    // ---------- groups ----------

    /// Stores a group message's Megolm ciphertext with the ratchet state
    /// that made it, before it leaves (a resend sends the same bytes).
    pub(crate) async fn save_group_ciphertext(
        &self,
        local_id: &str,
        session_id: &str,
        ciphertext: &str,
        device_blob: &str,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE outbox SET ciphertext = ?, session_id = ? WHERE local_id = ?")
            .bind(ciphertext)
            .bind(session_id)
            .bind(local_id)
            .execute(&mut *tx)
            .await?;
        Self::put_device(&mut tx, device_blob).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A group's member devices as last fetched, and whether that is still
    /// believed current.
    pub(crate) async fn group_devices(
        &self,
        conversation_id: &str,
    ) -> Result<Option<(Vec<PublicDevice>, bool)>> {
        let Some(r) =
            sqlx::query("SELECT devices, fresh FROM group_devices WHERE conversation_id = ?")
                .bind(conversation_id)
                .fetch_optional(&self.pool)
                .await?
        else {
            return Ok(None);
        };
        let devices: String = r.try_get(0)?;
        let fresh: i64 = r.try_get(1)?;
        let devices = serde_json::from_str(&devices)
            .map_err(|e| ClientError::Protocol(format!("stored group devices: {e}")))?;
        Ok(Some((devices, fresh == 1)))
    }

    pub(crate) async fn save_group_devices(
        &self,
        conversation_id: &str,
        devices: &[PublicDevice],
    ) -> Result<()> {
        let json =
            serde_json::to_string(devices).map_err(|e| ClientError::Protocol(e.to_string()))?;
        sqlx::query(
            "INSERT INTO group_devices (conversation_id, devices, fresh, fetched_at) VALUES (?, ?, 1, ?)
             ON CONFLICT (conversation_id) DO UPDATE SET devices = excluded.devices, fresh = 1,
                 fetched_at = excluded.fetched_at",
        )
        .bind(conversation_id)
        .bind(json)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks one group's (or, with None, every group's) member devices as
    /// needing a fetch before the next use.
    pub(crate) async fn mark_group_devices_stale(
        &self,
        conversation_id: Option<&str>,
    ) -> Result<()> {
        match conversation_id {
            Some(c) => {
                sqlx::query("UPDATE group_devices SET fresh = 0 WHERE conversation_id = ?")
                    .bind(c)
                    .execute(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("UPDATE group_devices SET fresh = 0")
                    .execute(&self.pool)
                    .await?
            }
        };
        Ok(())
    }

    pub(crate) async fn group_outbound(
        &self,
        conversation_id: &str,
    ) -> Result<Option<OutboundRow>> {
        let Some(r) = sqlx::query(
            "SELECT session_id, devices, created_at, rotate FROM group_outbound WHERE conversation_id = ?",
        )
        .bind(conversation_id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let devices: String = r.try_get(1)?;
        let rotate: i64 = r.try_get(3)?;
        Ok(Some(OutboundRow {
            session_id: r.try_get(0)?,
            devices: serde_json::from_str(&devices)
                .map_err(|e| ClientError::Protocol(format!("stored outbound session: {e}")))?,
            created_at: r.try_get(2)?,
            rotate: rotate != 0,
        }))
    }

    /// Makes `session_id` the group's outbound session (for `devices`), with
    /// the device state that holds it, in one transaction.
    pub(crate) async fn start_group_session(
        &self,
        conversation_id: &str,
        session_id: &str,
        devices: &BTreeMap<String, String>,
        me: (&str, &str),
        device_blob: &str,
    ) -> Result<()> {
        let json =
            serde_json::to_string(devices).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO group_outbound (conversation_id, session_id, devices, created_at, rotate)
             VALUES (?, ?, ?, ?, 0)
             ON CONFLICT (conversation_id) DO UPDATE SET session_id = excluded.session_id,
                 devices = excluded.devices, created_at = excluded.created_at, rotate = 0",
        )
        .bind(conversation_id)
        .bind(session_id)
        .bind(json)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        Self::insert_group_session(&mut tx, session_id, conversation_id, me.0, me.1).await?;
        Self::put_device(&mut tx, device_blob).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The next group message must use a new session (a member left).
    pub(crate) async fn flag_rotation(&self, conversation_id: &str) -> Result<()> {
        sqlx::query("UPDATE group_outbound SET rotate = 1 WHERE conversation_id = ?")
            .bind(conversation_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// device id → (identity key, index) of the devices `session_id` went to.
    pub(crate) async fn group_shares(
        &self,
        session_id: &str,
    ) -> Result<BTreeMap<String, (String, u32)>> {
        let rows = sqlx::query(
            "SELECT device_id, identity_key, shared_index FROM group_shares WHERE session_id = ?",
        )
        .bind(session_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let index: i64 = r.try_get(2)?;
                Ok((
                    r.try_get(0)?,
                    (r.try_get(1)?, u32::try_from(index).unwrap_or(u32::MAX)),
                ))
            })
            .collect()
    }

    pub(crate) async fn record_shares(
        &self,
        session_id: &str,
        devices: &[PublicDevice],
        index: u32,
    ) -> Result<()> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        for d in devices {
            // A device keeps the earliest index it was given.
            sqlx::query(
                "INSERT INTO group_shares (session_id, device_id, identity_key, shared_index, at)
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT (session_id, device_id) DO NOTHING",
            )
            .bind(session_id)
            .bind(&d.device_id)
            .bind(&d.identity_key)
            .bind(i64::from(index))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn insert_group_session(
        conn: &mut sqlx::SqliteConnection,
        session_id: &str,
        conversation_id: &str,
        sender_user_id: &str,
        sender_device_id: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO group_sessions (session_id, conversation_id, sender_user_id, sender_device_id, at)
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (session_id) DO NOTHING",
        )
        .bind(session_id)
        .bind(conversation_id)
        .bind(sender_user_id)
        .bind(sender_device_id)
        .bind(now_ms())
        .execute(conn)
        .await?;
        Ok(())
    }

    pub(crate) async fn group_session(&self, session_id: &str) -> Result<Option<GroupSessionRow>> {
        sqlx::query(
            "SELECT conversation_id, sender_user_id, sender_device_id FROM group_sessions WHERE session_id = ?",
        )
        .bind(session_id)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| {
            Ok(GroupSessionRow {
                conversation_id: r.try_get(0)?,
                sender_user_id: r.try_get(1)?,
                sender_device_id: r.try_get(2)?,
            })
        })
        .transpose()
    }

    /// The Megolm sessions this device can read in a conversation.
    pub(crate) async fn group_sessions_of(&self, conversation_id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT session_id FROM group_sessions WHERE conversation_id = ? ORDER BY at, session_id",
        )
        .bind(conversation_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// Records a received session key (already imported into the device)
    /// with the device state and the key message's dedup mark, at once.
    pub(crate) async fn save_received_session(
        &self,
        message_id: &str,
        session_id: &str,
        owner: &GroupSessionRow,
        device_blob: &str,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO seen (message_id, outcome, at) VALUES (?, 'group_key', ?)
             ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(message_id)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        Self::insert_group_session(
            &mut tx,
            session_id,
            &owner.conversation_id,
            &owner.sender_user_id,
            &owner.sender_device_id,
        )
        .await?;
        Self::put_device(&mut tx, device_blob).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn index_used(&self, session_id: &str, index: u32) -> Result<bool> {
        Ok(
            sqlx::query("SELECT 1 FROM group_indices WHERE session_id = ? AND message_index = ?")
                .bind(session_id)
                .bind(i64::from(index))
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    /// Keeps a group message until its session key arrives; it counts as
    /// seen (a duplicate delivery is dropped) but stays out of history.
    pub(crate) async fn add_pending(&self, m: &IncomingMessage, session_id: &str) -> Result<()> {
        let frame = serde_json::to_string(m).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO seen (message_id, outcome, at) VALUES (?, 'pending', ?) ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(&m.message_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO group_pending (message_id, session_id, seq, frame, at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(&m.message_id)
        .bind(session_id)
        .bind(m.seq)
        .bind(frame)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn pending_count(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) FROM group_pending")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
    }

    pub(crate) async fn is_pending(&self, message_id: &str) -> Result<bool> {
        Ok(
            sqlx::query("SELECT 1 FROM group_pending WHERE message_id = ?")
                .bind(message_id)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    /// The messages waiting for `session_id`, in server order.
    pub(crate) async fn pending_for(&self, session_id: &str) -> Result<Vec<IncomingMessage>> {
        let rows =
            sqlx::query("SELECT frame FROM group_pending WHERE session_id = ? ORDER BY seq, at")
                .bind(session_id)
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|r| {
                let frame: String = r.try_get(0)?;
                serde_json::from_str(&frame)
                    .map_err(|e| ClientError::Protocol(format!("stored pending message: {e}")))
            })
            .collect()
    }

    /// Sessions that messages wait for and whose key is known by now.
    pub(crate) async fn pending_sessions_known(&self) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT DISTINCT p.session_id FROM group_pending p
             JOIN group_sessions s ON s.session_id = p.session_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// Records a system event; false when it was already known.
    pub(crate) async fn store_system_event(&self, e: &SystemEvent) -> Result<bool> {
        let done = sqlx::query(
            "INSERT OR IGNORE INTO system_events (event_id, conversation_id, event, at) VALUES (?, ?, ?, ?)",
        )
        .bind(&e.event_id)
        .bind(&e.conversation_id)
        .bind(&e.event)
        .bind(e.at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    // ---------- history ----------

    /// The newest `limit` messages of a conversation, oldest first (server
    /// order; pending messages last, in the order they were written).
    pub(crate) async fn history(
        &self,
        conversation_id: &str,
        limit: i64,
    ) -> Result<Vec<HistoryEntry>> {
        let rows = sqlx::query(
            "SELECT * FROM (
                SELECT m.local_id, m.message_id, m.client_msg_id, m.conversation_id, m.seq, m.sender_user_id,
                    m.sender_device_id, m.direction, m.state, m.body, m.sent_at, m.pos,
                    (SELECT group_concat(device_id, ',') FROM (SELECT device_id FROM receipts r
                        WHERE r.message_id = m.message_id ORDER BY device_id)) AS delivered, m.attachment
                FROM messages m WHERE m.conversation_id = ?
                ORDER BY (m.seq IS NULL) DESC, m.seq DESC, m.pos DESC LIMIT ?
             ) ORDER BY (seq IS NULL), seq, pos",
        )
        .bind(conversation_id)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let local_id: String = r.try_get(0)?;
                let body: Vec<u8> = r.try_get(9)?;
                let direction: String = r.try_get(7)?;
                let state: String = r.try_get(8)?;
                let delivered: Option<String> = r.try_get(12)?;
                let attachment = self
                    .open_attachment(&local_id, r.try_get(13)?)?
                    .map(|j| serde_json::from_str::<Attachment>(&j))
                    .transpose()
                    .map_err(|e| ClientError::Protocol(format!("stored attachment: {e}")))?;
                Ok(HistoryEntry {
                    attachment,
                    body: self
                        .sealer
                        .open_string(&format!("message:{local_id}"), &body)?
                        .to_string(),
                    local_id,
                    message_id: r.try_get(1)?,
                    client_msg_id: r.try_get(2)?,
                    conversation_id: r.try_get(3)?,
                    seq: r.try_get(4)?,
                    sender_user_id: r.try_get(5)?,
                    sender_device_id: r.try_get(6)?,
                    direction: if direction == "in" {
                        Direction::Incoming
                    } else {
                        Direction::Outgoing
                    },
                    state: MessageState::parse(&state),
                    sent_at: r.try_get(10)?,
                    delivered_to: delivered
                        .map(|d| d.split(',').map(str::to_owned).collect())
                        .unwrap_or_default(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_store_opens_only_with_its_passphrase_and_seals_what_it_holds() -> Result<()> {
        let path = std::env::temp_dir().join(format!(
            "vestnik-client-store-{}.db",
            uuid::Uuid::new_v4().simple()
        ));
        let store = Store::open(&path, &StoreKey::passphrase("correct horse")).await?;
        store
            .queue_outgoing(
                "l1",
                "c1",
                OutboxKind::Direct,
                "peer",
                None,
                "a very secret body",
                Some(r#"{"media_id":"m1","key":"a secret key"}"#),
                "me",
                "dev",
            )
            .await?;
        let head = store.outbox_head().await?.ok_or(ClientError::Closed)?;
        assert_eq!(head.text.as_str(), "a very secret body");
        assert!(head.attachment.is_some_and(|a| a.contains("a secret key")));
        store.close().await;

        let bytes = std::fs::read(&path).unwrap_or_default();
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let all = [bytes, std::fs::read(&wal).unwrap_or_default()].concat();
        assert!(!all.windows(6).any(|w| w == b"secret"));

        let wrong = Store::open(&path, &StoreKey::passphrase("wrong horse")).await;
        assert!(matches!(wrong, Err(ClientError::WrongStoreKey)));
        let short = Store::open(&path, &StoreKey::secret(vec![1u8; 8])).await;
        assert!(matches!(short, Err(ClientError::InvalidInput(_))));
        let again = Store::open(&path, &StoreKey::passphrase("correct horse")).await?;
        assert_eq!(again.outbox_len().await?, 1);
        again.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            let _ = std::fs::remove_file(std::path::PathBuf::from(p));
        }
        Ok(())
    }
}
