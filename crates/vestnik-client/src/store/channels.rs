//! Channels this device reads: public or private, and how far their log
//! has been read.
use super::Store;
use crate::error::Result;

impl Store {
    /// Records a channel this device reads (its cursor is kept).
    pub(crate) async fn save_channel(&self, conversation_id: &str, public: bool) -> Result<()> {
        sqlx::query(
            "INSERT INTO channels (conversation_id, public) VALUES (?, ?)
             ON CONFLICT (conversation_id) DO UPDATE SET public = excluded.public",
        )
        .bind(conversation_id)
        .bind(public)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// `Some(public)` for a channel this device knows, with its cursor.
    pub(crate) async fn channel(&self, conversation_id: &str) -> Result<Option<(bool, i64)>> {
        Ok(
            sqlx::query_as("SELECT public, cursor FROM channels WHERE conversation_id = ?")
                .bind(conversation_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub(crate) async fn channel_ids(&self) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT conversation_id FROM channels ORDER BY conversation_id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// The log has been read up to `seq` (never moves back).
    pub(crate) async fn advance_channel_cursor(
        &self,
        conversation_id: &str,
        seq: i64,
    ) -> Result<()> {
        sqlx::query("UPDATE channels SET cursor = MAX(cursor, ?) WHERE conversation_id = ?")
            .bind(seq)
            .bind(conversation_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stops following a channel (left or removed).
    pub(crate) async fn forget_channel(&self, conversation_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM channels WHERE conversation_id = ?")
            .bind(conversation_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
