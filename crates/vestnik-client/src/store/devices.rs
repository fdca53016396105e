//! Other users' device keys as the directory gave them. A device id keeps
//! the keys it was first seen with, so a server swapping keys is caught.
use sqlx::Row;
use vestnik_proto::PublicDevice;

use super::{now_ms, Store};
use crate::error::{ClientError, Result};

impl Store {
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
}
