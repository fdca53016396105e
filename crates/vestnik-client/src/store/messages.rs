//! What arrived: history rows (bodies sealed), the dedup marks (`seen`)
//! that make delivery at-least-once safe, receipts, system events, and group
//! messages waiting for their session key.
use sqlx::Row;
use vestnik_proto::{IncomingMessage, Receipt, SystemEvent};

use super::{now_ms, Store};
use crate::error::{ClientError, Result};
use crate::types::{Attachment, Direction, HistoryEntry, MessageState};

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
    /// An edit: the message whose text this replaces.
    pub(crate) edit_of: Option<&'a str>,
}

/// One of this account's sent messages, as an edit needs it.
pub(crate) struct OwnMessage {
    /// The other user, in a direct chat.
    pub(crate) peer_user_id: Option<String>,
    /// Server time.
    pub(crate) sent_at: i64,
}

/// What storing a decrypted message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    /// A new history row.
    Message,
    /// An edit applied to an earlier message.
    Edit,
    /// An edit refused (not the sender's, unknown, or too late): recorded
    /// as seen, nothing shown.
    Ignored,
}

fn direction_str(d: Direction) -> &'static str {
    match d {
        Direction::Incoming => "in",
        Direction::Outgoing => "out",
    }
}

impl Store {
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
    ) -> Result<Stored> {
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
        if let Some(target) = m.edit_of {
            let stored = self.apply_edit(&mut tx, m, target).await?;
            Self::put_device(&mut tx, device_blob).await?;
            tx.commit().await?;
            return Ok(stored);
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
        Ok(Stored::Message)
    }

    /// Replaces the text of `target` with an edit's, if the edit's sender
    /// wrote it in the same conversation at most `EDIT_WINDOW_MS` before
    /// (server times, which the sender cannot choose).
    async fn apply_edit(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        m: &IncomingRow<'_>,
        target: &str,
    ) -> Result<Stored> {
        let row = sqlx::query(
            "SELECT local_id, sent_at FROM messages WHERE message_id = ? AND sender_user_id = ?
             AND conversation_id = ? AND state <> 'deleted'",
        )
        .bind(target)
        .bind(m.sender_user_id)
        .bind(m.conversation_id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(row) = row else {
            return Ok(Stored::Ignored);
        };
        let local_id: String = row.try_get(0)?;
        let sent_at: Option<i64> = row.try_get(1)?;
        if sent_at.is_none_or(|t| m.sent_at - t > crate::EDIT_WINDOW_MS || m.sent_at < t) {
            return Ok(Stored::Ignored);
        }
        let body = self
            .sealer
            .seal(&format!("message:{local_id}"), m.body.as_bytes())?;
        // Edits may arrive out of order: the latest one wins.
        sqlx::query(
            "UPDATE messages SET body = ?, edited_at = ? WHERE local_id = ? AND COALESCE(edited_at, 0) <= ?",
        )
        .bind(body)
        .bind(m.sent_at)
        .bind(&local_id)
        .bind(m.sent_at)
        .execute(&mut **tx)
        .await?;
        Ok(Stored::Edit)
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

    /// One of `me`'s sent messages in a conversation: its peer (direct
    /// chats) and server time.
    pub(crate) async fn own_sent_message(
        &self,
        conversation_id: &str,
        message_id: &str,
        me: &str,
    ) -> Result<Option<OwnMessage>> {
        let row = sqlx::query(
            "SELECT m.peer_user_id, m.sent_at, c.peer_user_id FROM messages m
             LEFT JOIN conversations c ON c.id = m.conversation_id
             WHERE m.message_id = ? AND m.conversation_id = ? AND m.sender_user_id = ?
               AND m.sent_at IS NOT NULL AND m.state <> 'deleted'",
        )
        .bind(message_id)
        .bind(conversation_id)
        .bind(me)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| -> Result<OwnMessage> {
            let own: Option<String> = r.try_get(0)?;
            let conv: Option<String> = r.try_get(2)?;
            Ok(OwnMessage {
                peer_user_id: own.or(conv),
                sent_at: r.try_get(1)?,
            })
        })
        .transpose()
    }

    /// The kind of a known conversation (`direct`, `group`, `channel`).
    pub(crate) async fn conversation_kind(&self, conversation_id: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT kind FROM conversations WHERE id = ?")
                .bind(conversation_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// A message deleted for everyone: its body and attachment are erased
    /// here too, the row stays (marked `deleted`) so the history shows it.
    pub(crate) async fn forget_message_body(&self, message_id: &str) -> Result<()> {
        let local: Option<String> =
            sqlx::query_scalar("SELECT local_id FROM messages WHERE message_id = ?")
                .bind(message_id)
                .fetch_optional(&self.pool)
                .await?;
        let Some(local_id) = local else {
            return Ok(());
        };
        let empty = self.sealer.seal(&format!("message:{local_id}"), b"")?;
        sqlx::query(
            "UPDATE messages SET body = ?, attachment = NULL, state = 'deleted' WHERE local_id = ?",
        )
        .bind(empty)
        .bind(&local_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every conversation with messages on this device: (id, kind, peer).
    pub(crate) async fn history_conversations(
        &self,
    ) -> Result<Vec<(String, String, Option<String>)>> {
        Ok(sqlx::query_as(
            "SELECT DISTINCT m.conversation_id, COALESCE(c.kind, ''), c.peer_user_id
             FROM messages m LEFT JOIN conversations c ON c.id = m.conversation_id
             WHERE m.conversation_id IS NOT NULL AND m.edit_of IS NULL ORDER BY m.conversation_id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

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
                        WHERE r.message_id = m.message_id ORDER BY device_id)) AS delivered, m.attachment,
                    m.edited_at
                FROM messages m WHERE m.conversation_id = ? AND m.edit_of IS NULL
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
                    edited_at: r.try_get(14)?,
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
}
