//! Conversations, presence, blocks and the outbox: `MessageStore`. Storing
//! and acknowledging messages (the delivery hot path) is per backend, in
//! `crate::bulk`, reached through `Backend::store_and_ack`.

use super::dialect::{placeholders, query};
use super::Backend;
use crate::{
    AckBatchItem, BlockRelations, ConversationRow, Cutoffs, MessageStore, NewMessage, OutboxRow,
    PublicDeviceRow, Result, SendContext, StoredMessage, StoredRetry,
};

#[async_trait::async_trait]
impl<S: Backend> MessageStore for S {
    async fn direct_conversation(
        &self,
        id: &str,
        a: &str,
        b: &str,
        now: i64,
    ) -> Result<ConversationRow> {
        let key = if a < b {
            format!("{a}:{b}")
        } else {
            format!("{b}:{a}")
        };
        let mut tx = self.write().begin().await?;
        query(
            "INSERT INTO conversations (id, kind, direct_key, created_at) VALUES ($1, 'direct', $2, $3)
             ON CONFLICT (direct_key) DO NOTHING",
        )
        .bind(id)
        .bind(&key)
        .bind(now)
        .execute(&mut tx)
        .await?;
        let row: ConversationRow = query(
            "SELECT id, kind, created_at, last_seq, title, topic, avatar_ref, visibility FROM conversations WHERE direct_key = $1",
        )
        .bind(&key)
        .fetch_one(&mut tx)
        .await?;
        for u in [a, b] {
            query(
                "INSERT INTO members (conversation_id, user_id, role, joined_at) VALUES ($1, $2, 'member', $3)
                 ON CONFLICT (conversation_id, user_id) DO NOTHING",
            )
            .bind(&row.id)
            .bind(u)
            .bind(now)
            .execute(&mut tx)
            .await?;
        }
        tx.commit().await?;
        Ok(row)
    }

    async fn conversation(&self, id: &str) -> Result<Option<ConversationRow>> {
        Ok(query(
            "SELECT id, kind, created_at, last_seq, title, topic, avatar_ref, visibility FROM conversations WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.read())
        .await?)
    }

    async fn members(&self, conversation_id: &str) -> Result<Vec<String>> {
        Ok(
            query("SELECT user_id FROM members WHERE conversation_id = $1 ORDER BY user_id")
                .bind(conversation_id)
                .scalar_all(self.read())
                .await?,
        )
    }

    async fn conversations_of(&self, user_id: &str) -> Result<Vec<ConversationRow>> {
        Ok(query(
            "SELECT c.id, c.kind, c.created_at, c.last_seq, c.title, c.topic, c.avatar_ref, c.visibility FROM conversations c JOIN members m ON m.conversation_id = c.id
             WHERE m.user_id = $1 ORDER BY c.created_at, c.id",
        )
        .bind(user_id)
        .fetch_all(self.read())
        .await?)
    }

    async fn partners_of(&self, user_id: &str) -> Result<Vec<String>> {
        Ok(query(
            "SELECT DISTINCT m2.user_id FROM members m1 JOIN members m2 ON m1.conversation_id = m2.conversation_id
             JOIN conversations c ON c.id = m1.conversation_id
             WHERE m1.user_id = $1 AND m2.user_id <> $1 AND c.kind <> 'channel'",
        )
        .bind(user_id)
        .scalar_all(self.read())
        .await?)
    }

    /// Counting stops past the limit, so a large group costs no more
    /// than a small one.
    async fn presence_audience(&self, user_id: &str, largest_group: i64) -> Result<Vec<String>> {
        Ok(query(
            "SELECT DISTINCT m2.user_id FROM members m2
             WHERE m2.user_id <> $1 AND m2.conversation_id IN (
               SELECT c.id FROM members m1 JOIN conversations c ON c.id = m1.conversation_id
               WHERE m1.user_id = $1 AND (c.kind = 'direct' OR (c.kind = 'group' AND (SELECT count(*) FROM
                 (SELECT 1 FROM members m3 WHERE m3.conversation_id = c.id LIMIT $2 + 1) AS capped) <= $2)))",
        )
        .bind(user_id)
        .bind(largest_group)
        .scalar_all(self.read())
        .await?)
    }

    async fn send_context(&self, conversation_id: &str, sender: &str) -> Result<SendContext> {
        type Row = (
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            bool,
            String,
            Option<i64>,
        );
        let rows: Vec<Row> = query(
            "SELECT m.user_id, d.id, d.identity_key, d.signing_key,
                    EXISTS (SELECT 1 FROM blocks b WHERE b.user_id = m.user_id AND b.blocked_user_id = $2),
                    c.kind, m.muted_until
             FROM members m JOIN conversations c ON c.id = m.conversation_id
             LEFT JOIN devices d ON d.user_id = m.user_id AND d.revoked_at IS NULL
             WHERE m.conversation_id = $1 ORDER BY m.user_id, d.created_at, d.id",
        )
        .bind(conversation_id)
        .bind(sender)
        .fetch_all(self.read())
        .await?;
        let mut ctx = SendContext::default();
        for (user_id, device_id, identity_key, signing_key, blocked, kind, muted_until) in rows {
            ctx.kind = kind;
            ctx.blocked |= blocked && user_id != sender;
            if user_id == sender {
                ctx.sender_muted_until = muted_until;
            }
            if ctx.members.last() != Some(&user_id) {
                ctx.members.push(user_id.clone());
            }
            if let (Some(device_id), Some(identity_key), Some(signing_key)) =
                (device_id, identity_key, signing_key)
            {
                ctx.devices.push(PublicDeviceRow {
                    user_id,
                    device_id,
                    identity_key,
                    signing_key,
                });
            }
        }
        Ok(ctx)
    }

    async fn set_read_marker(
        &self,
        conversation_id: &str,
        user_id: &str,
        seq: i64,
        now: i64,
    ) -> Result<bool> {
        let moved = query(
            "INSERT INTO read_markers (conversation_id, user_id, seq, at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (conversation_id, user_id) DO UPDATE SET seq = $3, at = $4 WHERE read_markers.seq < $3",
        )
        .bind(conversation_id)
        .bind(user_id)
        .bind(seq)
        .bind(now)
        .execute(self.write())
        .await?;
        Ok(moved == 1)
    }

    async fn read_markers(&self, conversation_id: &str) -> Result<Vec<(String, i64, i64)>> {
        Ok(query(
            "SELECT user_id, seq, at FROM read_markers WHERE conversation_id = $1 ORDER BY user_id",
        )
        .bind(conversation_id)
        .fetch_all(self.read())
        .await?)
    }

    async fn presence_info(
        &self,
        user_ids: &[String],
    ) -> Result<Vec<(String, Option<i64>, String)>> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT id, last_seen_at, presence_visibility FROM users WHERE id IN ({})",
            placeholders(1, user_ids.len())
        );
        Ok(query(&sql)
            .bind_all(user_ids)
            .fetch_all(self.read())
            .await?)
    }

    async fn set_last_seen(&self, user_id: &str, at: i64) -> Result<()> {
        query("UPDATE users SET last_seen_at = $2 WHERE id = $1")
            .bind(user_id)
            .bind(at)
            .execute(self.write())
            .await?;
        Ok(())
    }

    async fn set_presence_visibility(&self, user_id: &str, visibility: &str) -> Result<()> {
        query("UPDATE users SET presence_visibility = $2 WHERE id = $1")
            .bind(user_id)
            .bind(visibility)
            .execute(self.write())
            .await?;
        Ok(())
    }

    async fn set_block(&self, user_id: &str, blocked: &str, on: bool, now: i64) -> Result<()> {
        // Both statements take the same three arguments.
        let sql = if on {
            "INSERT INTO blocks (user_id, blocked_user_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM blocks WHERE user_id = $1 AND blocked_user_id = $2 AND $3 = $3"
        };
        query(sql)
            .bind(user_id)
            .bind(blocked)
            .bind(now)
            .execute(self.write())
            .await?;
        Ok(())
    }

    async fn block_relations(&self, user_id: &str) -> Result<BlockRelations> {
        let blocked: Vec<(String,)> =
            query("SELECT blocked_user_id FROM blocks WHERE user_id = $1")
                .bind(user_id)
                .fetch_all(self.read())
                .await?;
        let blocked_by: Vec<(String,)> =
            query("SELECT user_id FROM blocks WHERE blocked_user_id = $1")
                .bind(user_id)
                .fetch_all(self.read())
                .await?;
        Ok(BlockRelations {
            blocked: blocked.into_iter().map(|(u,)| u).collect(),
            blocked_by: blocked_by.into_iter().map(|(u,)| u).collect(),
        })
    }

    async fn stored_message(
        &self,
        sender_device_id: &str,
        client_msg_id: &str,
    ) -> Result<Option<StoredRetry>> {
        Ok(query(
            "SELECT id, conversation_id, seq, created_at FROM messages WHERE sender_device_id = $1 AND client_msg_id = $2",
        )
        .bind(sender_device_id)
        .bind(client_msg_id)
        .fetch_optional(self.read())
        .await?)
    }

    async fn outbox(&self, device_id: &str, after: i64, limit: i64) -> Result<Vec<OutboxRow>> {
        Ok(query(concat!(
            "SELECT o.id, o.device_id, o.kind, o.message_id, o.conversation_id, o.seq, o.sender_user_id, o.sender_device_id, ",
            "COALESCE(m.msg_type, o.msg_type) AS msg_type, COALESCE(m.body, o.body) AS body, o.created_at",
            " FROM outbox o LEFT JOIN messages m ON o.kind = 'group' AND m.id = o.message_id",
            // A group row whose message the reaper already took is about to expire too.
            " WHERE o.device_id = $1 AND o.id > $2 AND (o.kind <> 'group' OR m.id IS NOT NULL) ORDER BY o.id LIMIT $3"
        ))
        .bind(device_id)
        .bind(after)
        .bind(limit)
        .fetch_all(self.read())
        .await?)
    }

    async fn store_and_ack(
        &self,
        sends: &[NewMessage],
        acks: &[AckBatchItem],
        now: i64,
        expires_at: i64,
    ) -> Result<(Vec<StoredMessage>, Vec<Vec<OutboxRow>>)> {
        Backend::store_and_ack(self, sends, acks, now, expires_at).await
    }

    async fn expire(&self, now: i64, cutoffs: Cutoffs, limit: i64) -> Result<u64> {
        let outbox = query(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE expires_at < $1 LIMIT $2)",
        )
        .bind(now)
        .bind(limit)
        .execute(self.write())
        .await?;
        // A channel's posts are its history, not a delivery queue: they
        // outlive `message_retention_days`. The scan walks old channel posts
        // on the way (one index range, joined to `conversations`).
        let messages = query(
            "DELETE FROM messages WHERE id IN (SELECT m.id FROM messages m JOIN conversations c ON c.id = m.conversation_id
             WHERE m.created_at < $1 AND c.kind <> 'channel' LIMIT $2)",
        )
        .bind(cutoffs.messages)
        .bind(limit)
        .execute(self.write())
        .await?;
        let posts = match cutoffs.channel_posts {
            None => 0,
            Some(cutoff) => {
                query(
                    "DELETE FROM messages WHERE id IN (SELECT m.id FROM messages m JOIN conversations c ON c.id = m.conversation_id
                     WHERE m.created_at < $1 AND c.kind = 'channel' LIMIT $2)",
                )
                .bind(cutoff)
                .bind(limit)
                .execute(self.write())
                .await?
            }
        };
        Ok(outbox + messages + posts)
    }
}
