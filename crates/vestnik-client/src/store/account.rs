//! Who this device is: the account record and session tokens (sealed
//! JSON), the Olm account and sessions (`Device::to_encrypted`, which holds
//! the Megolm sessions too), and which fallback key the server last
//! accepted. All live in the `meta` table.
use serde::{Deserialize, Serialize};

use super::Store;
use crate::error::{ClientError, Result};

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

impl Store {
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

    pub(super) async fn put_device(
        conn: &mut sqlx::SqliteConnection,
        device_blob: &str,
    ) -> Result<()> {
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
}
