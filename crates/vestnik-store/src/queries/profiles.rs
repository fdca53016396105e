//! Display names, profile pictures, and who may see them: `ProfileStore`.

use super::dialect::{placeholders, query};
use super::Backend;
use crate::{ProfileRow, ProfileStore, Result};

#[async_trait::async_trait]
impl<S: Backend> ProfileStore for S {
    async fn set_display_name(&self, user_id: &str, name: Option<&str>, now: i64) -> Result<()> {
        query("UPDATE users SET display_name = $2, updated_at = $3 WHERE id = $1")
            .bind(user_id)
            .bind(name)
            .bind(now)
            .execute(self.write())
            .await?;
        Ok(())
    }

    async fn profiles(&self, viewer: &str, user_ids: &[String]) -> Result<Vec<ProfileRow>> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT u.id, u.display_name, u.avatar_media_id FROM users u
             WHERE u.id IN ({}) AND u.status = 'active' AND (u.id = $1 OR EXISTS (
               SELECT 1 FROM members a
               JOIN members b ON b.conversation_id = a.conversation_id
               JOIN conversations c ON c.id = a.conversation_id
               WHERE a.user_id = $1 AND b.user_id = u.id
                 AND (c.kind <> 'channel' OR a.role <> 'subscriber' OR b.role <> 'subscriber')))
             ORDER BY u.id",
            placeholders(2, user_ids.len())
        );
        Ok(query(&sql)
            .bind(viewer)
            .bind_all(user_ids)
            .fetch_all(self.read())
            .await?)
    }
}
