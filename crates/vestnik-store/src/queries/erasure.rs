//! Deleting an account and everything that points at it, in one
//! transaction: `ErasureStore`.

use super::dialect::query;
use super::Backend;
use crate::{ErasedAccount, ErasureStore, Result, Succession};

#[async_trait::async_trait]
impl<S: Backend> ErasureStore for S {
    async fn erase_account(&self, user_id: &str, email: &str) -> Result<ErasedAccount> {
        let mut tx = self.write().begin().await?;
        let mut erased = ErasedAccount::default();

        // Groups and channels: the owner's pass on, the rest are left.
        let memberships: Vec<(String, String, String)> = query(
            "SELECT m.conversation_id, c.kind, m.role FROM members m JOIN conversations c ON c.id = m.conversation_id
             WHERE m.user_id = $1 ORDER BY m.conversation_id",
        )
        .bind(user_id)
        .fetch_all(&mut tx)
        .await?;
        for (conversation_id, kind, role) in memberships {
            if kind == "direct" {
                // Its key names both users; the other keeps their copy of
                // the history on their devices.
                erased.direct.push(conversation_id);
                continue;
            }
            if role != "owner" {
                erased.left.push((conversation_id, kind));
                continue;
            }
            // The longest-standing admin (a channel's publisher), else member.
            let heir: Option<String> = query(
                "SELECT user_id FROM members WHERE conversation_id = $1 AND user_id <> $2
                 ORDER BY CASE WHEN role IN ('admin', 'publisher') THEN 0 ELSE 1 END, joined_at, user_id LIMIT 1",
            )
            .bind(&conversation_id)
            .bind(user_id)
            .scalar_optional(&mut tx)
            .await?;
            match heir {
                Some(heir) => {
                    query("UPDATE members SET role = 'owner' WHERE conversation_id = $1 AND user_id = $2")
                        .bind(&conversation_id)
                        .bind(&heir)
                        .execute(&mut tx)
                        .await?;
                    erased.succession.push(Succession {
                        conversation_id,
                        kind,
                        new_owner: heir,
                    });
                }
                None => erased.dissolved.push(conversation_id),
            }
        }
        for conversation_id in erased.direct.iter().chain(erased.dissolved.iter()) {
            // Envelopes name their conversation without a foreign key.
            query("DELETE FROM outbox WHERE conversation_id = $1")
                .bind(conversation_id)
                .execute(&mut tx)
                .await?;
            query("DELETE FROM conversations WHERE id = $1")
                .bind(conversation_id)
                .execute(&mut tx)
                .await?;
        }

        erased.device_ids = query("SELECT id FROM devices WHERE user_id = $1")
            .bind(user_id)
            .scalar_all(&mut tx)
            .await?;
        for device_id in &erased.device_ids {
            query("DELETE FROM outbox WHERE device_id = $1")
                .bind(device_id)
                .execute(&mut tx)
                .await?;
        }
        // What it sent and nobody fetched yet, and the records and bodies of
        // its group messages and channel posts.
        query("DELETE FROM outbox WHERE sender_user_id = $1")
            .bind(user_id)
            .execute(&mut tx)
            .await?;
        // By device: (sender_device_id, client_msg_id) is indexed, the
        // sender's user id is not (a scan of every message ever stored).
        // Devices are never deleted before this, so every one is here.
        for device_id in &erased.device_ids {
            query("DELETE FROM messages WHERE sender_device_id = $1")
                .bind(device_id)
                .execute(&mut tx)
                .await?;
        }

        let media: Vec<(String, Option<String>)> =
            query("DELETE FROM media WHERE owner_id = $1 RETURNING object_key, thumbnail_key")
                .bind(user_id)
                .fetch_all(&mut tx)
                .await?;
        for (object, thumbnail) in media {
            erased.object_keys.push(object);
            erased.object_keys.extend(thumbnail);
        }
        for sql in [
            "DELETE FROM media_usage WHERE user_id = $1",
            "DELETE FROM invites WHERE created_by = $1",
            "UPDATE bans SET banned_by = NULL WHERE banned_by = $1",
            "UPDATE group_invitations SET invited_by = NULL WHERE invited_by = $1",
            "UPDATE conversations SET created_by = NULL WHERE created_by = $1",
            "DELETE FROM read_markers WHERE user_id = $1",
            "DELETE FROM blocks WHERE user_id = $1 OR blocked_user_id = $1",
            // The trail stays (security reviews need it) without what says
            // who or where: no address, agent or detail.
            "UPDATE audit_log SET ip = NULL, user_agent = NULL, detail = NULL WHERE user_id = $1",
            // Devices, keys, sessions, memberships, bans, codes: by cascade.
            "DELETE FROM users WHERE id = $1",
        ] {
            query(sql).bind(user_id).execute(&mut tx).await?;
        }
        query("DELETE FROM email_codes WHERE email = $1")
            .bind(email)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(erased)
    }
}
