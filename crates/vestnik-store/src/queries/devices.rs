//! Devices, their first keys and their sessions: `DeviceStore`, and the
//! inserts that registration shares with login.

use sqlx::Transaction;

use super::dialect::{query, Dialect};
use super::Backend;
use crate::{
    DeviceRow, DeviceStore, NewDevice, NewSession, NextTokens, Result, RevokedDevices,
    RotateOutcome, SessionAuth, StoreError,
};

#[async_trait::async_trait]
impl<S: Backend> DeviceStore for S {
    async fn create_device_session(
        &self,
        device: &NewDevice,
        session: &NewSession,
        max_devices: i64,
    ) -> Result<()> {
        let mut tx = self.write().begin().await?;
        let n: i64 =
            query("SELECT COUNT(*) FROM devices WHERE user_id = $1 AND revoked_at IS NULL")
                .bind(&device.user_id)
                .scalar_one(&mut tx)
                .await?;
        if n >= max_devices {
            return Err(StoreError::TooManyDevices { max: max_devices });
        }
        insert_device(&mut tx, device).await?;
        insert_session(&mut tx, session).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_devices(&self, user_id: &str) -> Result<Vec<DeviceRow>> {
        Ok(query(
            "SELECT id, user_id, name, platform, identity_key, signing_key, created_at FROM devices
             WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at, id",
        )
        .bind(user_id)
        .fetch_all(self.read())
        .await?)
    }

    async fn session_by_access(&self, access_hash: &str, now: i64) -> Result<Option<SessionAuth>> {
        Ok(query(
            "SELECT s.id AS session_id, s.user_id, s.device_id, s.access_expires_at, u.is_admin
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.access_hash = $1 AND s.revoked_at IS NULL AND s.access_expires_at > $2 AND u.status = 'active'",
        )
        .bind(access_hash)
        .bind(now)
        .fetch_optional(self.read())
        .await?)
    }

    async fn prune_used_refresh_tokens(&self, used_before: i64, limit: i64) -> Result<u64> {
        Ok(query(
            "DELETE FROM used_refresh_tokens WHERE refresh_hash IN
             (SELECT refresh_hash FROM used_refresh_tokens WHERE used_at < $1 LIMIT $2)",
        )
        .bind(used_before)
        .bind(limit)
        .execute(self.write())
        .await?)
    }

    async fn rotate_refresh(
        &self,
        old: &str,
        next: &NextTokens,
        now: i64,
        retry_since: i64,
    ) -> Result<RotateOutcome> {
        let mut tx = self.write().begin().await?;
        let current: Option<(String, String, String, i64, String)> = query(
            "SELECT s.id, s.user_id, s.device_id, s.refresh_expires_at, s.access_hash
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.refresh_hash = $1 AND s.revoked_at IS NULL AND u.status = 'active'",
        )
        .bind(old)
        .fetch_optional(&mut tx)
        .await?;
        let Some((session_id, user_id, device_id, refresh_expires_at, old_access_hash)) = current
        else {
            return already_rotated(&mut tx, old, retry_since).await;
        };
        if refresh_expires_at <= now {
            return Ok(RotateOutcome::Expired);
        }
        // The refresh_hash guard makes a concurrent rotation of the same
        // token lose cleanly instead of forking the family; the loser
        // then reads what the winner left, as a retry would.
        let rotated = query(
            "UPDATE sessions SET access_hash = $2, access_expires_at = $3, refresh_hash = $4, refresh_expires_at = $5
             WHERE id = $1 AND refresh_hash = $6 AND revoked_at IS NULL",
        )
        .bind(&session_id)
        .bind(&next.access_hash)
        .bind(next.access_expires_at)
        .bind(&next.refresh_hash)
        .bind(next.refresh_expires_at)
        .bind(old)
        .execute(&mut tx)
        .await?;
        if rotated != 1 {
            return already_rotated(&mut tx, old, retry_since).await;
        }
        // Only the newest successor can still be the session's, so the
        // older sealed ones go.
        query(
            "UPDATE used_refresh_tokens SET successor = NULL WHERE session_id = $1 AND successor IS NOT NULL",
        )
        .bind(&session_id)
        .execute(&mut tx)
        .await?;
        query(
            "INSERT INTO used_refresh_tokens (refresh_hash, session_id, used_at, successor_hash, successor)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(old)
        .bind(&session_id)
        .bind(now)
        .bind(&next.refresh_hash)
        .bind(&next.sealed)
        .execute(&mut tx)
        .await?;
        let is_admin: bool = query("SELECT is_admin FROM users WHERE id = $1")
            .bind(&user_id)
            .scalar_one(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(RotateOutcome::Rotated {
            session: SessionAuth {
                session_id,
                user_id,
                device_id,
                access_expires_at: next.access_expires_at,
                is_admin,
            },
            old_access_hash,
        })
    }

    async fn revoke_devices(
        &self,
        user_id: &str,
        device_ids: Option<&[String]>,
        now: i64,
    ) -> Result<RevokedDevices> {
        let mut tx = self.write().begin().await?;
        let ids: Vec<String> = match device_ids {
            Some(ids) => ids.to_vec(),
            None => {
                query("SELECT id FROM devices WHERE user_id = $1 AND revoked_at IS NULL")
                    .bind(user_id)
                    .scalar_all(&mut tx)
                    .await?
            }
        };
        let mut revoked_ids = Vec::new();
        let mut hashes = Vec::new();
        for id in &ids {
            let mut h: Vec<String> = query(
                "UPDATE sessions SET revoked_at = $3 WHERE device_id = $1 AND user_id = $2 AND revoked_at IS NULL
                 RETURNING access_hash",
            )
            .bind(id)
            .bind(user_id)
            .bind(now)
            .scalar_all(&mut tx)
            .await?;
            hashes.append(&mut h);
            let revoked = query(
                "UPDATE devices SET revoked_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
            )
            .bind(id)
            .bind(user_id)
            .bind(now)
            .execute(&mut tx)
            .await?;
            if revoked == 1 {
                revoked_ids.push(id.clone());
                query("DELETE FROM one_time_keys WHERE device_id = $1")
                    .bind(id)
                    .execute(&mut tx)
                    .await?;
                query("DELETE FROM fallback_keys WHERE device_id = $1")
                    .bind(id)
                    .execute(&mut tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(RevokedDevices {
            device_ids: revoked_ids,
            access_hashes: hashes,
        })
    }

    async fn devices_revoked_since(&self, since: i64, limit: i64) -> Result<Vec<String>> {
        Ok(
            query("SELECT id FROM devices WHERE revoked_at >= $1 ORDER BY revoked_at LIMIT $2")
                .bind(since)
                .bind(limit)
                .scalar_all(self.read())
                .await?,
        )
    }

    async fn live_session(&self, session_id: &str, now: i64) -> Result<Option<SessionAuth>> {
        Ok(query(
            "SELECT s.id AS session_id, s.user_id, s.device_id, s.access_expires_at, u.is_admin
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id = $1 AND s.revoked_at IS NULL AND s.access_expires_at > $2 AND u.status = 'active'",
        )
        .bind(session_id)
        .bind(now)
        .fetch_optional(self.read())
        .await?)
    }

    async fn one_time_key_count(&self, device_id: &str) -> Result<i64> {
        Ok(
            query("SELECT COUNT(*) FROM one_time_keys WHERE device_id = $1")
                .bind(device_id)
                .scalar_one(self.read())
                .await?,
        )
    }
}

/// A device with its fallback key and first one-time keys.
pub(super) async fn insert_device<DB: Dialect>(
    tx: &mut Transaction<'_, DB>,
    d: &NewDevice,
) -> Result<()> {
    query(
        "INSERT INTO devices (id, user_id, name, platform, identity_key, signing_key, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&d.id)
    .bind(&d.user_id)
    .bind(&d.name)
    .bind(&d.platform)
    .bind(&d.identity_key)
    .bind(&d.signing_key)
    .bind(d.created_at)
    .execute(&mut *tx)
    .await?;
    query(
        "INSERT INTO fallback_keys (device_id, key_id, public_key, signature, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&d.id)
    .bind(&d.fallback_key.key_id)
    .bind(&d.fallback_key.public_key)
    .bind(&d.fallback_key.signature)
    .bind(d.created_at)
    .execute(&mut *tx)
    .await?;
    for (key_id, public_key) in &d.one_time_keys {
        query(
            "INSERT INTO one_time_keys (device_id, key_id, public_key, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&d.id)
        .bind(key_id)
        .bind(public_key)
        .bind(d.created_at)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

pub(super) async fn insert_session<DB: Dialect>(
    tx: &mut Transaction<'_, DB>,
    s: &NewSession,
) -> Result<()> {
    query(
        "INSERT INTO sessions (id, user_id, device_id, access_hash, access_expires_at, refresh_hash, refresh_expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&s.id)
    .bind(&s.user_id)
    .bind(&s.device_id)
    .bind(&s.access_hash)
    .bind(s.access_expires_at)
    .bind(&s.refresh_hash)
    .bind(s.refresh_expires_at)
    .bind(s.created_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// What a refresh token that is no longer current means: a retry of its
/// recent rotation (its successor still current), reuse, or nothing known.
/// Leaves the transaction uncommitted: it changed nothing.
async fn already_rotated<DB: Dialect>(
    tx: &mut Transaction<'_, DB>,
    old: &str,
    retry_since: i64,
) -> Result<RotateOutcome> {
    type Used = (
        String,
        String,
        i64,
        Option<String>,
        Option<Vec<u8>>,
        String,
        Option<i64>,
        String,
    );
    let used: Option<Used> = query(
        "SELECT s.user_id, s.device_id, r.used_at, r.successor_hash, r.successor, s.refresh_hash, s.revoked_at, u.status
         FROM used_refresh_tokens r JOIN sessions s ON s.id = r.session_id JOIN users u ON u.id = s.user_id
         WHERE r.refresh_hash = $1",
    )
    .bind(old)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(match used {
        Some((
            user_id,
            device_id,
            used_at,
            Some(successor),
            Some(sealed),
            current,
            None,
            status,
        )) if used_at >= retry_since && successor == current && status == "active" => {
            RotateOutcome::Retry {
                sealed,
                user_id,
                device_id,
            }
        }
        Some((user_id, device_id, ..)) => RotateOutcome::Reused { user_id, device_id },
        None => RotateOutcome::Unknown,
    })
}
