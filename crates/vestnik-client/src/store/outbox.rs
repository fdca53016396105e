//! The outbox: every message this device writes waits here, in order,
//! with its history row, until the server accepts or refuses it. What was
//! encrypted for it is stored before it leaves, so a resend sends the same
//! bytes.
use sqlx::Row;
use vestnik_proto::{Envelope, Sent};
use zeroize::Zeroizing;

use super::{now_ms, Store};
use crate::error::{ClientError, Result};

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
    /// An edit: the message it replaces.
    pub(crate) edit_of: Option<String>,
}

impl Store {
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
        edit_of: Option<&str>,
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
                 sender_device_id, direction, state, body, stored_at, attachment, edit_of)
             VALUES (?, ?, ?, ?, ?, ?, 'out', 'pending', ?, ?, ?, ?)",
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
        .bind(edit_of)
        .execute(&mut *tx)
        .await?;
        if let Some(target) = edit_of {
            // Shown edited here at once; other devices when it arrives.
            let target_local: String =
                sqlx::query_scalar("SELECT local_id FROM messages WHERE message_id = ?")
                    .bind(target)
                    .fetch_one(&mut *tx)
                    .await?;
            let body = self
                .sealer
                .seal(&format!("message:{target_local}"), text.as_bytes())?;
            sqlx::query("UPDATE messages SET body = ?, edited_at = ? WHERE local_id = ?")
                .bind(body)
                .bind(now)
                .bind(&target_local)
                .execute(&mut *tx)
                .await?;
        }
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

    /// The oldest queued message.
    pub(crate) async fn outbox_head(&self) -> Result<Option<OutboxItem>> {
        let Some(r) = sqlx::query(
            "SELECT o.local_id, o.client_msg_id, o.peer_user_id, o.conversation_id, o.envelopes, m.body,
                 o.kind, o.ciphertext, o.session_id, m.attachment, m.edit_of
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
            edit_of: r.try_get(10)?,
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
}
