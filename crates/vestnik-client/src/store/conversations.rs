//! Cached conversations: members, and the peer of a direct one (how a
//! send to a user finds its conversation).
use sqlx::Row;
use vestnik_proto::Conversation;

use super::Store;
use crate::error::{ClientError, Result};

/// A cached conversation.
#[derive(Debug, Clone)]
pub(crate) struct ConversationRow {
    pub(crate) id: String,
    pub(crate) members: Vec<String>,
}

impl Store {
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
}
