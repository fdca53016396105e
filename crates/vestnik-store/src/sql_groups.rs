//! SQL of group and channel membership, shared by both backends like `sql.rs`.

macro_rules! impl_group_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::GroupStore for $store {
            async fn create_group(&self, g: &$crate::NewGroup) -> $crate::Result<()> {
                let mut tx = self.write().begin().await?;
                sqlx::query(
                    "INSERT INTO conversations (id, kind, created_at, title, topic, created_by, visibility) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&g.id)
                .bind(&g.kind)
                .bind(g.created_at)
                .bind(&g.title)
                .bind(&g.topic)
                .bind(&g.creator)
                .bind(&g.visibility)
                .execute(&mut *tx)
                .await?;
                let owner = [(g.creator.clone(), "owner".to_owned())];
                for (user_id, role) in owner.iter().chain(g.members.iter()) {
                    sqlx::query(
                        "INSERT INTO members (conversation_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (conversation_id, user_id) DO NOTHING",
                    )
                    .bind(&g.id)
                    .bind(user_id)
                    .bind(role)
                    .bind(g.created_at)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn members_with_roles(&self, conversation_id: &str) -> $crate::Result<Vec<$crate::MemberRow>> {
                Ok(sqlx::query_as("SELECT user_id, role, joined_at FROM members WHERE conversation_id = $1 ORDER BY joined_at, user_id")
                    .bind(conversation_id)
                    .fetch_all(self.read())
                    .await?)
            }

            async fn channel_staff(&self, conversation_id: &str, viewer: &str) -> $crate::Result<Vec<$crate::MemberRow>> {
                Ok(sqlx::query_as(
                    "SELECT user_id, role, joined_at FROM members WHERE conversation_id = $1 AND role <> 'subscriber'
                     UNION SELECT user_id, role, joined_at FROM members WHERE conversation_id = $1 AND user_id = $2
                     ORDER BY joined_at, user_id",
                )
                .bind(conversation_id)
                .bind(viewer)
                .fetch_all(self.read())
                .await?)
            }

            async fn member_role(&self, conversation_id: &str, user_id: &str) -> $crate::Result<Option<String>> {
                // From the writer: a role change must be seen by the next check.
                Ok(sqlx::query_scalar("SELECT role FROM members WHERE conversation_id = $1 AND user_id = $2")
                    .bind(conversation_id)
                    .bind(user_id)
                    .fetch_optional(self.write())
                    .await?)
            }

            async fn add_member(&self, conversation_id: &str, user_id: &str, role: &str, now: i64, limit: i64) -> $crate::Result<$crate::JoinOutcome> {
                let mut tx = self.write().begin().await?;
                let outcome = add_member_tx(&mut tx, conversation_id, user_id, role, now, limit).await?;
                tx.commit().await?;
                Ok(outcome)
            }

            async fn remove_member(&self, conversation_id: &str, user_id: &str) -> $crate::Result<bool> {
                let r = sqlx::query("DELETE FROM members WHERE conversation_id = $1 AND user_id = $2")
                    .bind(conversation_id)
                    .bind(user_id)
                    .execute(self.write())
                    .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn set_role(&self, conversation_id: &str, user_id: &str, role: &str) -> $crate::Result<bool> {
                let r = sqlx::query("UPDATE members SET role = $3 WHERE conversation_id = $1 AND user_id = $2")
                    .bind(conversation_id)
                    .bind(user_id)
                    .bind(role)
                    .execute(self.write())
                    .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn transfer_ownership(&self, conversation_id: &str, from: &str, to: &str, demoted_role: &str) -> $crate::Result<bool> {
                let mut tx = self.write().begin().await?;
                let r = sqlx::query("UPDATE members SET role = 'owner' WHERE conversation_id = $1 AND user_id = $2")
                    .bind(conversation_id)
                    .bind(to)
                    .execute(&mut *tx)
                    .await?;
                if r.rows_affected() != 1 {
                    return Ok(false);
                }
                sqlx::query("UPDATE members SET role = $3 WHERE conversation_id = $1 AND user_id = $2")
                    .bind(conversation_id)
                    .bind(from)
                    .bind(demoted_role)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn update_conversation(&self, conversation_id: &str, title: Option<&str>, topic: Option<&str>, avatar_ref: Option<&str>) -> $crate::Result<()> {
                sqlx::query(
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

            async fn create_invite(&self, i: &$crate::InviteRow) -> $crate::Result<()> {
                sqlx::query(
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

            async fn redeem_invite(&self, token_hash: &str, user_id: &str, now: i64, limit: i64) -> $crate::Result<($crate::JoinOutcome, Option<String>)> {
                let mut tx = self.write().begin().await?;
                let invite: Option<(String, String, bool)> = sqlx::query_as(
                    "SELECT i.conversation_id, c.kind, i.uses < i.max_uses FROM invites i JOIN conversations c ON c.id = i.conversation_id
                     WHERE i.token_hash = $1 AND i.expires_at > $2",
                )
                .bind(token_hash)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((conversation_id, kind, uses_left)) = invite else {
                    return Ok(($crate::JoinOutcome::Invalid, None));
                };
                // A member following the link again is told so, used up or not.
                let member: Option<String> = sqlx::query_scalar("SELECT role FROM members WHERE conversation_id = $1 AND user_id = $2")
                    .bind(&conversation_id)
                    .bind(user_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if member.is_some() {
                    return Ok(($crate::JoinOutcome::AlreadyMember, Some(conversation_id)));
                }
                if !uses_left {
                    return Ok(($crate::JoinOutcome::Invalid, None));
                }
                let (role, limit) = if kind == "channel" { ("subscriber", i64::MAX) } else { ("member", limit) };
                let outcome = add_member_tx(&mut tx, &conversation_id, user_id, role, now, limit).await?;
                if outcome == $crate::JoinOutcome::Joined {
                    // Guarded again: a concurrent redemption may have taken the last use.
                    let r = sqlx::query("UPDATE invites SET uses = uses + 1 WHERE token_hash = $1 AND uses < max_uses")
                        .bind(token_hash)
                        .execute(&mut *tx)
                        .await?;
                    if r.rows_affected() != 1 {
                        return Ok(($crate::JoinOutcome::Invalid, None));
                    }
                }
                tx.commit().await?;
                Ok((outcome, Some(conversation_id)))
            }

            async fn member_devices(&self, conversation_id: &str) -> $crate::Result<Vec<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT d.id FROM members m JOIN devices d ON d.user_id = m.user_id AND d.revoked_at IS NULL
                     WHERE m.conversation_id = $1",
                )
                .bind(conversation_id)
                .fetch_all(self.read())
                .await?)
            }

            async fn log(&self, conversation_id: &str, after_seq: i64, limit: i64) -> $crate::Result<Vec<$crate::LogRow>> {
                Ok(sqlx::query_as(
                    "SELECT id, seq, sender_user_id, sender_device_id, COALESCE(msg_type, 0) AS msg_type, COALESCE(body, '') AS body, created_at
                     FROM messages WHERE conversation_id = $1 AND seq > $2 AND body IS NOT NULL ORDER BY seq LIMIT $3",
                )
                .bind(conversation_id)
                .bind(after_seq)
                .bind(limit)
                .fetch_all(self.read())
                .await?)
            }

            async fn managers(&self, conversation_id: &str) -> $crate::Result<Vec<String>> {
                Ok(sqlx::query_scalar("SELECT user_id FROM members WHERE conversation_id = $1 AND role IN ('owner', 'admin', 'publisher')")
                    .bind(conversation_id)
                    .fetch_all(self.read())
                    .await?)
            }

            async fn push_system(
                &self,
                e: &$crate::SystemEventRow,
                user_ids: &[String],
            ) -> $crate::Result<Vec<$crate::OutboxRow>> {
                if user_ids.is_empty() {
                    return Ok(Vec::new());
                }
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO outbox (device_id, kind, message_id, conversation_id, seq, sender_user_id, sender_device_id, msg_type, body, created_at, expires_at) SELECT id, 'system', ",
                );
                qb.push_bind(e.event_id.as_str())
                    .push(", ")
                    .push_bind(e.conversation_id.as_str())
                    .push(", 0, ")
                    .push_bind(e.actor.as_str())
                    .push(", '', 0, ")
                    .push_bind(e.body.as_str())
                    .push(", ")
                    .push_bind(e.created_at)
                    .push(", ")
                    .push_bind(e.expires_at)
                    .push(" FROM devices WHERE revoked_at IS NULL AND user_id IN (");
                let mut sep = qb.separated(", ");
                for u in user_ids {
                    sep.push_bind(u.as_str());
                }
                qb.push(") RETURNING id, device_id, kind, message_id, conversation_id, seq, sender_user_id, sender_device_id, msg_type, body, created_at");
                Ok(qb.build_query_as().fetch_all(self.write()).await?)
            }
        }

        /// Locks the conversation row (PostgreSQL; SQLite has one writer), then
        /// counts, so the limit holds under concurrent joins.
        async fn add_member_tx(
            tx: &mut sqlx::Transaction<'_, $db>,
            conversation_id: &str,
            user_id: &str,
            role: &str,
            now: i64,
            limit: i64,
        ) -> $crate::Result<$crate::JoinOutcome> {
            let locked = sqlx::query("UPDATE conversations SET last_seq = last_seq WHERE id = $1")
                .bind(conversation_id)
                .execute(&mut **tx)
                .await?;
            if locked.rows_affected() != 1 {
                return Ok($crate::JoinOutcome::Invalid);
            }
            let existing: Option<String> = sqlx::query_scalar("SELECT role FROM members WHERE conversation_id = $1 AND user_id = $2")
                .bind(conversation_id)
                .bind(user_id)
                .fetch_optional(&mut **tx)
                .await?;
            if existing.is_some() {
                return Ok($crate::JoinOutcome::AlreadyMember);
            }
            // Channels have no limit: skip the count, which grows with them.
            let n: i64 = if limit == i64::MAX {
                0
            } else {
                sqlx::query_scalar("SELECT COUNT(*) FROM members WHERE conversation_id = $1")
                    .bind(conversation_id)
                    .fetch_one(&mut **tx)
                    .await?
            };
            if n >= limit {
                return Ok($crate::JoinOutcome::Full);
            }
            sqlx::query("INSERT INTO members (conversation_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)")
                .bind(conversation_id)
                .bind(user_id)
                .bind(role)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            Ok($crate::JoinOutcome::Joined)
        }
    };
}
pub(crate) use impl_group_store;
