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
//!
//! One file per kind of data, each an `impl Store` block over the one
//! connection opened here: `account` (who this device is, its tokens and
//! its sealed Olm state), `devices` (other users' device keys),
//! `conversations`, `channels`, `outbox` (what waits to be sent),
//! `messages` (history, dedup marks, receipts, group messages waiting for
//! their key) and `groups` (Megolm sessions and member devices); `schema`
//! holds the tables and their migrations. This file opens the store and
//! holds the sealing helpers they share.
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
use zeroize::Zeroizing;

use crate::config::StoreKey;
use crate::error::{ClientError, Result};
use crate::seal::Sealer;

mod account;
mod channels;
mod conversations;
mod devices;
mod groups;
mod messages;
mod outbox;
mod profiles;
mod schema;

pub(crate) use account::{Account, Tokens};
pub(crate) use conversations::ConversationRow;
pub(crate) use groups::GroupSessionRow;
pub(crate) use messages::{IncomingRow, Stored};
pub(crate) use outbox::{OutboxItem, OutboxKind};
use schema::SCHEMA;

const SALT_LEN: usize = 16;
const CHECK: &[u8] = b"vestnik-client-store-v1";

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The sealed store of one device (see the module docs).
pub(crate) struct Store {
    pool: SqlitePool,
    sealer: Sealer,
    local_secret: Zeroizing<Vec<u8>>,
    path: String,
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

    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
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
                None,
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
