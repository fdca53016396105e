//! Contacts, group-add settings and invitations: `ContactStore`.

use super::dialect::{placeholders, query};
use super::Backend;
use crate::{ContactStore, InvitationRow, Result};

#[async_trait::async_trait]
impl<S: Backend> ContactStore for S {
    async fn add_contact(&self, user_id: &str, contact: &str, now: i64) -> Result<()> {
        query(
            "INSERT INTO contacts (user_id, contact_user_id, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (user_id, contact_user_id) DO NOTHING",
        )
        .bind(user_id)
        .bind(contact)
        .bind(now)
        .execute(self.write())
        .await?;
        Ok(())
    }

    async fn remove_contact(&self, user_id: &str, contact: &str) -> Result<bool> {
        let n = query("DELETE FROM contacts WHERE user_id = $1 AND contact_user_id = $2")
            .bind(user_id)
            .bind(contact)
            .execute(self.write())
            .await?;
        Ok(n == 1)
    }

    async fn contacts(&self, user_id: &str) -> Result<Vec<String>> {
        Ok(query(
            "SELECT contact_user_id FROM contacts WHERE user_id = $1 ORDER BY contact_user_id",
        )
        .bind(user_id)
        .scalar_all(self.read())
        .await?)
    }

    async fn having_contact(&self, owners: &[String], who: &str) -> Result<Vec<String>> {
        if owners.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT user_id FROM contacts WHERE contact_user_id = $1 AND user_id IN ({})",
            placeholders(2, owners.len())
        );
        Ok(query(&sql)
            .bind(who)
            .bind_all(owners)
            .scalar_all(self.read())
            .await?)
    }

    async fn set_group_adds(&self, user_id: &str, who: &str) -> Result<()> {
        query("UPDATE users SET group_adds = $2 WHERE id = $1")
            .bind(user_id)
            .bind(who)
            .execute(self.write())
            .await?;
        Ok(())
    }

    async fn group_add_policies(
        &self,
        user_ids: &[String],
        adder: &str,
    ) -> Result<Vec<(String, String, bool)>> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT u.id, u.group_adds,
               EXISTS (SELECT 1 FROM contacts c WHERE c.user_id = u.id AND c.contact_user_id = $1)
             FROM users u WHERE u.id IN ({})",
            placeholders(2, user_ids.len())
        );
        Ok(query(&sql)
            .bind(adder)
            .bind_all(user_ids)
            .fetch_all(self.write())
            .await?)
    }

    async fn put_invitation(&self, i: &InvitationRow) -> Result<()> {
        query(
            "INSERT INTO group_invitations (conversation_id, user_id, invited_by, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (conversation_id, user_id) DO UPDATE SET invited_by = $3, created_at = $4, expires_at = $5",
        )
        .bind(&i.conversation_id)
        .bind(&i.user_id)
        .bind(&i.invited_by)
        .bind(i.created_at)
        .bind(i.expires_at)
        .execute(self.write())
        .await?;
        Ok(())
    }

    async fn invitations(&self, user_id: &str, now: i64) -> Result<Vec<InvitationRow>> {
        Ok(query(
            "SELECT conversation_id, user_id, invited_by, created_at, expires_at FROM group_invitations
             WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at DESC, conversation_id",
        )
        .bind(user_id)
        .bind(now)
        .fetch_all(self.read())
        .await?)
    }

    async fn take_invitation(
        &self,
        conversation_id: &str,
        user_id: &str,
        now: i64,
    ) -> Result<bool> {
        let live = query(
            "DELETE FROM group_invitations WHERE conversation_id = $1 AND user_id = $2 AND expires_at > $3",
        )
        .bind(conversation_id)
        .bind(user_id)
        .bind(now)
        .execute(self.write())
        .await?;
        // An expired one is cleared on the way.
        query("DELETE FROM group_invitations WHERE conversation_id = $1 AND user_id = $2")
            .bind(conversation_id)
            .bind(user_id)
            .execute(self.write())
            .await?;
        Ok(live == 1)
    }
}
