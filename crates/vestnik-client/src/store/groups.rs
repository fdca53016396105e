//! Megolm bookkeeping in the clear (the session keys themselves are in the
//! sealed device state): each group's member devices, this device's
//! outbound session per group and who got it from which index, every
//! session this device can read with the conversation and device it is
//! bound to, and the ratchet indices already read (replays).
use std::collections::BTreeMap;

use sqlx::Row;
use vestnik_proto::PublicDevice;

use super::{now_ms, Store};
use crate::error::{ClientError, Result};

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

impl Store {
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
}
