//! The key directory: `KeyStore`, one-time and fallback keys of devices.

use super::dialect::{placeholders, query};
use super::Backend;
use crate::{FallbackKey, KeyBundleRow, KeyStore, PublicDeviceRow, Result, StoreError};

#[async_trait::async_trait]
impl<S: Backend> KeyStore for S {
    async fn upload_keys(
        &self,
        device_id: &str,
        otks: &[(String, String)],
        fallback: Option<&FallbackKey>,
        now: i64,
        max_keys: i64,
    ) -> Result<i64> {
        let mut tx = self.write().begin().await?;
        for (key_id, public_key) in otks {
            query(
                "INSERT INTO one_time_keys (device_id, key_id, public_key, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (device_id, key_id) DO NOTHING",
            )
            .bind(device_id)
            .bind(key_id)
            .bind(public_key)
            .bind(now)
            .execute(&mut tx)
            .await?;
        }
        let n: i64 = query("SELECT COUNT(*) FROM one_time_keys WHERE device_id = $1")
            .bind(device_id)
            .scalar_one(&mut tx)
            .await?;
        if n > max_keys {
            return Err(StoreError::TooManyKeys { max: max_keys });
        }
        if let Some(fb) = fallback {
            query(
                "INSERT INTO fallback_keys (device_id, key_id, public_key, signature, created_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (device_id) DO UPDATE SET key_id = $2, public_key = $3, signature = $4, created_at = $5",
            )
            .bind(device_id)
            .bind(&fb.key_id)
            .bind(&fb.public_key)
            .bind(&fb.signature)
            .bind(now)
            .execute(&mut tx)
            .await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    async fn claim_keys(&self, user_id: &str) -> Result<Vec<KeyBundleRow>> {
        let devices = self.active_devices(&[user_id.to_owned()]).await?;
        let mut out = Vec::with_capacity(devices.len());
        for device in devices {
            let otk: Option<(String, String)> = query(S::CLAIM_ONE_TIME_KEY)
                .bind(&device.device_id)
                .fetch_optional(self.write())
                .await?;
            let fb: Option<(String, String, String)> = query(
                "SELECT key_id, public_key, signature FROM fallback_keys WHERE device_id = $1",
            )
            .bind(&device.device_id)
            .fetch_optional(self.write())
            .await?;
            out.push(KeyBundleRow {
                device,
                one_time_key: otk,
                fallback_key: fb.map(|(key_id, public_key, signature)| FallbackKey {
                    key_id,
                    public_key,
                    signature,
                }),
            });
        }
        Ok(out)
    }

    async fn active_devices(&self, user_ids: &[String]) -> Result<Vec<PublicDeviceRow>> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT user_id, id AS device_id, identity_key, signing_key FROM devices WHERE revoked_at IS NULL AND user_id IN ({}) ORDER BY user_id, created_at, id",
            placeholders(1, user_ids.len())
        );
        Ok(query(&sql)
            .bind_all(user_ids)
            .fetch_all(self.read())
            .await?)
    }
}
