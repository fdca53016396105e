//! Group and channel membership, roles, settings and invites: `GroupStore`.

use sqlx::Transaction;

use super::dialect::{placeholders, query, Dialect};
use super::Backend;
use crate::{
    BanRow, GroupStore, InviteListRow, InviteRow, JoinOutcome, LogRow, MemberRow, MessageMeta,
    NewGroup, OutboxRow, Result, SystemEventRow, TransferOutcome,
};

/// Roles that may create invites; a member's invites live only while they
/// hold one of these.
const INVITING_ROLES: &str = "('owner', 'admin')";

#[async_trait::async_trait]
impl<S: Backend> GroupStore for S {
    async fn create_group(&self, g: &NewGroup) -> Result<()> {
        let mut tx = self.write().begin().await?;
        query(
            "INSERT INTO conversations (id, kind, created_at, title, topic, created_by, visibility) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&g.id)
        .bind(&g.kind)
        .bind(g.created_at)
        .bind(&g.title)
        .bind(&g.topic)
        .bind(&g.creator)
        .bind(&g.visibility)
        .execute(&mut tx)
        .await?;
        let owner = [(g.creator.clone(), "owner".to_owned())];
        for (user_id, role) in owner.iter().chain(g.members.iter()) {
            query(
                "INSERT INTO members (conversation_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (conversation_id, user_id) DO NOTHING",
            )
            .bind(&g.id)
            .bind(user_id)
            .bind(role)
            .bind(g.created_at)
            .execute(&mut tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn members_with_roles(&self, conversation_id: &str) -> Result<Vec<MemberRow>> {
        Ok(query(
            "SELECT user_id, role, joined_at FROM members WHERE conversation_id = $1 ORDER BY joined_at, user_id",
        )
        .bind(conversation_id)
        .fetch_all(self.read())
        .await?)
    }

    async fn channel_staff(&self, conversation_id: &str, viewer: &str) -> Result<Vec<MemberRow>> {
        Ok(query(
            "SELECT user_id, role, joined_at FROM members WHERE conversation_id = $1 AND role <> 'subscriber'
             UNION SELECT user_id, role, joined_at FROM members WHERE conversation_id = $1 AND user_id = $2
             ORDER BY joined_at, user_id",
        )
        .bind(conversation_id)
        .bind(viewer)
        .fetch_all(self.read())
        .await?)
    }

    async fn member_role(&self, conversation_id: &str, user_id: &str) -> Result<Option<String>> {
        // From the writer: a role change must be seen by the next check.
        Ok(
            query("SELECT role FROM members WHERE conversation_id = $1 AND user_id = $2")
                .bind(conversation_id)
                .bind(user_id)
                .scalar_optional(self.write())
                .await?,
        )
    }

    async fn add_member(
        &self,
        conversation_id: &str,
        user_id: &str,
        role: &str,
        now: i64,
        limit: i64,
    ) -> Result<JoinOutcome> {
        let mut tx = self.write().begin().await?;
        let outcome = add_member_tx(&mut tx, conversation_id, user_id, role, now, limit).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn remove_member(&self, conversation_id: &str, user_id: &str) -> Result<bool> {
        let mut tx = self.write().begin().await?;
        let removed = remove_tx(&mut tx, conversation_id, user_id).await?;
        tx.commit().await?;
        Ok(removed)
    }

    async fn set_role(&self, conversation_id: &str, user_id: &str, role: &str) -> Result<bool> {
        let mut tx = self.write().begin().await?;
        let set = query("UPDATE members SET role = $3 WHERE conversation_id = $1 AND user_id = $2")
            .bind(conversation_id)
            .bind(user_id)
            .bind(role)
            .execute(&mut tx)
            .await?;
        prune_invites(&mut tx, conversation_id, user_id).await?;
        tx.commit().await?;
        Ok(set == 1)
    }

    async fn transfer_ownership(
        &self,
        conversation_id: &str,
        from: &str,
        to: &str,
        demoted_role: &str,
    ) -> Result<TransferOutcome> {
        let mut tx = self.write().begin().await?;
        // Demoting first, only while `from` is still the owner: a concurrent
        // transfer waits on this row (PostgreSQL) or on the writer (SQLite),
        // then finds no owner to demote and changes nothing.
        let demoted = query(
            "UPDATE members SET role = $3 WHERE conversation_id = $1 AND user_id = $2 AND role = 'owner'",
        )
        .bind(conversation_id)
        .bind(from)
        .bind(demoted_role)
        .execute(&mut tx)
        .await?;
        if demoted != 1 {
            return Ok(TransferOutcome::NotOwner);
        }
        let promoted =
            query("UPDATE members SET role = 'owner' WHERE conversation_id = $1 AND user_id = $2")
                .bind(conversation_id)
                .bind(to)
                .execute(&mut tx)
                .await?;
        if promoted != 1 {
            return Ok(TransferOutcome::NotMember);
        }
        // A channel's old owner becomes a publisher, who may not invite.
        prune_invites(&mut tx, conversation_id, from).await?;
        tx.commit().await?;
        Ok(TransferOutcome::Transferred)
    }

    async fn update_conversation(
        &self,
        conversation_id: &str,
        title: Option<&str>,
        topic: Option<&str>,
        avatar_ref: Option<&str>,
    ) -> Result<()> {
        query(
            "UPDATE conversations SET title = COALESCE($2, title), topic = COALESCE($3, topic),
             avatar_ref = COALESCE($4, avatar_ref) WHERE id = $1",
        )
        .bind(conversation_id)
        .bind(title)
        .bind(topic)
        .bind(avatar_ref)
        .execute(self.write())
        .await?;
        Ok(())
    }

    async fn create_invite(&self, i: &InviteRow) -> Result<()> {
        query(
            "INSERT INTO invites (token_hash, conversation_id, created_by, uses, max_uses, expires_at, created_at)
             VALUES ($1, $2, $3, 0, $4, $5, $6)",
        )
        .bind(&i.token_hash)
        .bind(&i.conversation_id)
        .bind(&i.created_by)
        .bind(i.max_uses)
        .bind(i.expires_at)
        .bind(i.created_at)
        .execute(self.write())
        .await?;
        Ok(())
    }

    async fn redeem_invite(
        &self,
        token_hash: &str,
        user_id: &str,
        now: i64,
        limit: i64,
    ) -> Result<(JoinOutcome, Option<String>)> {
        let mut tx = self.write().begin().await?;
        // The creator must still hold a role that invites: a link outlives
        // no demotion or removal, even one that raced its deletion.
        let invite: Option<(String, String, bool)> = query(&format!(
            "SELECT i.conversation_id, c.kind, i.uses < i.max_uses FROM invites i
             JOIN conversations c ON c.id = i.conversation_id
             JOIN members m ON m.conversation_id = i.conversation_id AND m.user_id = i.created_by AND m.role IN {INVITING_ROLES}
             WHERE i.token_hash = $1 AND i.expires_at > $2"
        ))
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&mut tx)
        .await?;
        let Some((conversation_id, kind, uses_left)) = invite else {
            return Ok((JoinOutcome::Invalid, None));
        };
        // A member following the link again is told so, used up or not.
        let member: Option<String> =
            query("SELECT role FROM members WHERE conversation_id = $1 AND user_id = $2")
                .bind(&conversation_id)
                .bind(user_id)
                .scalar_optional(&mut tx)
                .await?;
        if member.is_some() {
            return Ok((JoinOutcome::AlreadyMember, Some(conversation_id)));
        }
        if !uses_left {
            return Ok((JoinOutcome::Invalid, None));
        }
        let (role, limit) = if kind == "channel" {
            ("subscriber", i64::MAX)
        } else {
            ("member", limit)
        };
        let outcome = add_member_tx(&mut tx, &conversation_id, user_id, role, now, limit).await?;
        if outcome == JoinOutcome::Joined {
            // Guarded again: a concurrent redemption may have taken the last use.
            let used = query(
                "UPDATE invites SET uses = uses + 1 WHERE token_hash = $1 AND uses < max_uses",
            )
            .bind(token_hash)
            .execute(&mut tx)
            .await?;
            if used != 1 {
                return Ok((JoinOutcome::Invalid, None));
            }
        }
        tx.commit().await?;
        Ok((outcome, Some(conversation_id)))
    }

    async fn invites(&self, conversation_id: &str, now: i64) -> Result<Vec<InviteListRow>> {
        Ok(query(
            "SELECT token_hash, created_by, uses, max_uses, expires_at, created_at FROM invites
             WHERE conversation_id = $1 AND expires_at > $2 AND uses < max_uses
             ORDER BY created_at DESC, token_hash",
        )
        .bind(conversation_id)
        .bind(now)
        .fetch_all(self.read())
        .await?)
    }

    async fn revoke_invite(&self, conversation_id: &str, invite_id: &str) -> Result<bool> {
        // Ids are the hash's first 32 hex characters; the caller checked
        // the form, so this is never a wildcard.
        let n = query(
            "DELETE FROM invites WHERE conversation_id = $1 AND substr(token_hash, 1, 32) = $2",
        )
        .bind(conversation_id)
        .bind(invite_id)
        .execute(self.write())
        .await?;
        Ok(n > 0)
    }

    async fn ban(&self, conversation_id: &str, user_id: &str, by: &str, now: i64) -> Result<bool> {
        let mut tx = self.write().begin().await?;
        query(
            "INSERT INTO bans (conversation_id, user_id, banned_by, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (conversation_id, user_id) DO NOTHING",
        )
        .bind(conversation_id)
        .bind(user_id)
        .bind(by)
        .bind(now)
        .execute(&mut tx)
        .await?;
        let removed = remove_tx(&mut tx, conversation_id, user_id).await?;
        tx.commit().await?;
        Ok(removed)
    }

    async fn is_banned(&self, conversation_id: &str, user_id: &str) -> Result<bool> {
        let at: Option<i64> =
            query("SELECT created_at FROM bans WHERE conversation_id = $1 AND user_id = $2")
                .bind(conversation_id)
                .bind(user_id)
                .scalar_optional(self.write())
                .await?;
        Ok(at.is_some())
    }

    async fn set_mute(
        &self,
        conversation_id: &str,
        user_id: &str,
        until: Option<i64>,
    ) -> Result<bool> {
        let q = match until {
            Some(until) => query(
                "UPDATE members SET muted_until = $3 WHERE conversation_id = $1 AND user_id = $2",
            )
            .bind(conversation_id)
            .bind(user_id)
            .bind(until),
            None => query(
                "UPDATE members SET muted_until = NULL WHERE conversation_id = $1 AND user_id = $2",
            )
            .bind(conversation_id)
            .bind(user_id),
        };
        Ok(q.execute(self.write()).await? == 1)
    }

    async fn muted_until(&self, conversation_id: &str, user_id: &str) -> Result<Option<i64>> {
        let until: Option<Option<i64>> =
            query("SELECT muted_until FROM members WHERE conversation_id = $1 AND user_id = $2")
                .bind(conversation_id)
                .bind(user_id)
                .scalar_optional(self.write())
                .await?;
        Ok(until.flatten())
    }

    async fn message_meta(&self, message_id: &str) -> Result<Option<MessageMeta>> {
        Ok(
            // A channel's deletion records (msg_type 4) are not messages to delete.
            query("SELECT conversation_id, sender_user_id, created_at FROM messages WHERE id = $1 AND COALESCE(msg_type, 0) <> 4")
                .bind(message_id)
                .fetch_optional(self.write())
                .await?,
        )
    }

    async fn delete_for_everyone(&self, conversation_id: &str, message_id: &str) -> Result<()> {
        let mut tx = self.write().begin().await?;
        query("UPDATE messages SET body = NULL WHERE id = $1")
            .bind(message_id)
            .execute(&mut tx)
            .await?;
        // Through the members' devices: the outbox is indexed by device.
        query(
            "DELETE FROM outbox WHERE message_id = $1 AND kind IN ('message', 'group') AND device_id IN (
               SELECT d.id FROM members m JOIN devices d ON d.user_id = m.user_id WHERE m.conversation_id = $2)",
        )
        .bind(message_id)
        .bind(conversation_id)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn unban(&self, conversation_id: &str, user_id: &str) -> Result<bool> {
        let n = query("DELETE FROM bans WHERE conversation_id = $1 AND user_id = $2")
            .bind(conversation_id)
            .bind(user_id)
            .execute(self.write())
            .await?;
        Ok(n == 1)
    }

    async fn bans(&self, conversation_id: &str) -> Result<Vec<BanRow>> {
        Ok(query(
            "SELECT user_id, banned_by, created_at FROM bans WHERE conversation_id = $1
             ORDER BY created_at DESC, user_id",
        )
        .bind(conversation_id)
        .fetch_all(self.read())
        .await?)
    }

    async fn member_devices(&self, conversation_id: &str) -> Result<Vec<String>> {
        Ok(query(
            "SELECT d.id FROM members m JOIN devices d ON d.user_id = m.user_id AND d.revoked_at IS NULL
             WHERE m.conversation_id = $1",
        )
        .bind(conversation_id)
        .scalar_all(self.read())
        .await?)
    }

    async fn log(&self, conversation_id: &str, after_seq: i64, limit: i64) -> Result<Vec<LogRow>> {
        Ok(query(
            "SELECT id, seq, sender_user_id, sender_device_id, COALESCE(msg_type, 0) AS msg_type, COALESCE(body, '') AS body, created_at
             FROM messages WHERE conversation_id = $1 AND seq > $2 AND body IS NOT NULL ORDER BY seq LIMIT $3",
        )
        .bind(conversation_id)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(self.read())
        .await?)
    }

    async fn managers(&self, conversation_id: &str) -> Result<Vec<String>> {
        Ok(query(
            "SELECT user_id FROM members WHERE conversation_id = $1 AND role IN ('owner', 'admin', 'publisher')",
        )
        .bind(conversation_id)
        .scalar_all(self.read())
        .await?)
    }

    async fn push_system(&self, e: &SystemEventRow, user_ids: &[String]) -> Result<Vec<OutboxRow>> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "INSERT INTO outbox (device_id, kind, message_id, conversation_id, seq, sender_user_id, sender_device_id, msg_type, body, created_at, expires_at)
             SELECT id, 'system', $1, $2, 0, $3, '', 0, $4, $5, $6
             FROM devices WHERE revoked_at IS NULL AND user_id IN ({})
             RETURNING id, device_id, kind, message_id, conversation_id, seq, sender_user_id, sender_device_id, msg_type, body, created_at",
            placeholders(7, user_ids.len())
        );
        Ok(query(&sql)
            .bind(&e.event_id)
            .bind(&e.conversation_id)
            .bind(&e.actor)
            .bind(&e.body)
            .bind(e.created_at)
            .bind(e.expires_at)
            .bind_all(user_ids)
            .fetch_all(self.write())
            .await?)
    }
}

/// Locks the conversation row (PostgreSQL; SQLite has one writer), then
/// counts, so the limit holds under concurrent joins.
async fn add_member_tx<DB: Dialect>(
    tx: &mut Transaction<'_, DB>,
    conversation_id: &str,
    user_id: &str,
    role: &str,
    now: i64,
    limit: i64,
) -> Result<JoinOutcome> {
    let locked = query("UPDATE conversations SET last_seq = last_seq WHERE id = $1")
        .bind(conversation_id)
        .execute(&mut *tx)
        .await?;
    if locked != 1 {
        return Ok(JoinOutcome::Invalid);
    }
    let existing: Option<String> =
        query("SELECT role FROM members WHERE conversation_id = $1 AND user_id = $2")
            .bind(conversation_id)
            .bind(user_id)
            .scalar_optional(&mut *tx)
            .await?;
    if existing.is_some() {
        return Ok(JoinOutcome::AlreadyMember);
    }
    let banned: Option<i64> =
        query("SELECT created_at FROM bans WHERE conversation_id = $1 AND user_id = $2")
            .bind(conversation_id)
            .bind(user_id)
            .scalar_optional(&mut *tx)
            .await?;
    if banned.is_some() {
        return Ok(JoinOutcome::Banned);
    }
    // Channels have no limit: skip the count, which grows with them.
    let n: i64 = if limit == i64::MAX {
        0
    } else {
        query("SELECT COUNT(*) FROM members WHERE conversation_id = $1")
            .bind(conversation_id)
            .scalar_one(&mut *tx)
            .await?
    };
    if n >= limit {
        return Ok(JoinOutcome::Full);
    }
    query(
        "INSERT INTO members (conversation_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(conversation_id)
    .bind(user_id)
    .bind(role)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(JoinOutcome::Joined)
}

/// Deletes the invites `user_id` made unless they still hold a role that
/// may invite (left, removed, banned or demoted: their links stop working).
async fn prune_invites<DB: Dialect>(
    tx: &mut Transaction<'_, DB>,
    conversation_id: &str,
    user_id: &str,
) -> Result<()> {
    query(&format!(
        "DELETE FROM invites WHERE conversation_id = $1 AND created_by = $2
         AND NOT EXISTS (SELECT 1 FROM members WHERE conversation_id = $1 AND user_id = $2 AND role IN {INVITING_ROLES})"
    ))
    .bind(conversation_id)
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Removes a member and the invites they made; true when they were one.
async fn remove_tx<DB: Dialect>(
    tx: &mut Transaction<'_, DB>,
    conversation_id: &str,
    user_id: &str,
) -> Result<bool> {
    let removed = query("DELETE FROM members WHERE conversation_id = $1 AND user_id = $2")
        .bind(conversation_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    prune_invites(tx, conversation_id, user_id).await?;
    Ok(removed == 1)
}
