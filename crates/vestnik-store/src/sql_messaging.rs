//! SQL of the key directory and of message delivery, shared by both backends
//! like `sql.rs`. The multi-row statements of the delivery hot path are
//! per backend, in `crate::bulk`.

/// `$bulk`: the backend's module of hot-path statements in `crate::bulk`.
macro_rules! impl_messaging_store {
    ($store:ty, $db:ty, $bulk:ident) => {
        #[async_trait::async_trait]
        impl $crate::KeyStore for $store {
            async fn upload_keys(
                &self,
                device_id: &str,
                otks: &[(String, String)],
                fallback: Option<&$crate::FallbackKey>,
                now: i64,
                max_keys: i64,
            ) -> $crate::Result<i64> {
                let mut tx = self.write().begin().await?;
                for (key_id, public_key) in otks {
                    sqlx::query(
                        "INSERT INTO one_time_keys (device_id, key_id, public_key, created_at) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (device_id, key_id) DO NOTHING",
                    )
                    .bind(device_id)
                    .bind(key_id)
                    .bind(public_key)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM one_time_keys WHERE device_id = $1")
                    .bind(device_id)
                    .fetch_one(&mut *tx)
                    .await?;
                if n > max_keys {
                    return Err($crate::StoreError::TooManyKeys { max: max_keys });
                }
                if let Some(fb) = fallback {
                    sqlx::query(
                        "INSERT INTO fallback_keys (device_id, key_id, public_key, signature, created_at) VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (device_id) DO UPDATE SET key_id = $2, public_key = $3, signature = $4, created_at = $5",
                    )
                    .bind(device_id)
                    .bind(&fb.key_id)
                    .bind(&fb.public_key)
                    .bind(&fb.signature)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(n)
            }

            async fn claim_keys(&self, user_id: &str) -> $crate::Result<Vec<$crate::KeyBundleRow>> {
                let devices = self.active_devices(&[user_id.to_owned()]).await?;
                let mut out = Vec::with_capacity(devices.len());
                for device in devices {
                    let otk: Option<(String, String)> = sqlx::query_as(CLAIM_ONE_TIME_KEY)
                        .bind(&device.device_id)
                        .fetch_optional(self.write())
                        .await?;
                    let fb: Option<(String, String, String)> =
                        sqlx::query_as("SELECT key_id, public_key, signature FROM fallback_keys WHERE device_id = $1")
                            .bind(&device.device_id)
                            .fetch_optional(self.write())
                            .await?;
                    out.push($crate::KeyBundleRow {
                        device,
                        one_time_key: otk,
                        fallback_key: fb.map(|(key_id, public_key, signature)| $crate::FallbackKey { key_id, public_key, signature }),
                    });
                }
                Ok(out)
            }

            async fn active_devices(&self, user_ids: &[String]) -> $crate::Result<Vec<$crate::PublicDeviceRow>> {
                if user_ids.is_empty() {
                    return Ok(Vec::new());
                }
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "SELECT user_id, id AS device_id, identity_key, signing_key FROM devices WHERE revoked_at IS NULL AND user_id IN (",
                );
                let mut sep = qb.separated(", ");
                for u in user_ids {
                    sep.push_bind(u.as_str());
                }
                qb.push(") ORDER BY user_id, created_at, id");
                Ok(qb.build_query_as::<$crate::PublicDeviceRow>().fetch_all(self.read()).await?)
            }
        }

        #[async_trait::async_trait]
        impl $crate::MessageStore for $store {
            async fn direct_conversation(&self, id: &str, a: &str, b: &str, now: i64) -> $crate::Result<$crate::ConversationRow> {
                let key = if a < b { format!("{a}:{b}") } else { format!("{b}:{a}") };
                let mut tx = self.write().begin().await?;
                sqlx::query(
                    "INSERT INTO conversations (id, kind, direct_key, created_at) VALUES ($1, 'direct', $2, $3)
                     ON CONFLICT (direct_key) DO NOTHING",
                )
                .bind(id)
                .bind(&key)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let row: $crate::ConversationRow =
                    sqlx::query_as("SELECT id, kind, created_at, last_seq, title, topic, avatar_ref, visibility FROM conversations WHERE direct_key = $1")
                        .bind(&key)
                        .fetch_one(&mut *tx)
                        .await?;
                for u in [a, b] {
                    sqlx::query(
                        "INSERT INTO members (conversation_id, user_id, role, joined_at) VALUES ($1, $2, 'member', $3)
                         ON CONFLICT (conversation_id, user_id) DO NOTHING",
                    )
                    .bind(&row.id)
                    .bind(u)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(row)
            }

            async fn conversation(&self, id: &str) -> $crate::Result<Option<$crate::ConversationRow>> {
                Ok(sqlx::query_as("SELECT id, kind, created_at, last_seq, title, topic, avatar_ref, visibility FROM conversations WHERE id = $1")
                    .bind(id)
                    .fetch_optional(self.read())
                    .await?)
            }

            async fn members(&self, conversation_id: &str) -> $crate::Result<Vec<String>> {
                Ok(sqlx::query_scalar("SELECT user_id FROM members WHERE conversation_id = $1 ORDER BY user_id")
                    .bind(conversation_id)
                    .fetch_all(self.read())
                    .await?)
            }

            async fn conversations_of(&self, user_id: &str) -> $crate::Result<Vec<$crate::ConversationRow>> {
                Ok(sqlx::query_as(
                    "SELECT c.id, c.kind, c.created_at, c.last_seq, c.title, c.topic, c.avatar_ref, c.visibility FROM conversations c JOIN members m ON m.conversation_id = c.id
                     WHERE m.user_id = $1 ORDER BY c.created_at, c.id",
                )
                .bind(user_id)
                .fetch_all(self.read())
                .await?)
            }

            async fn partners_of(&self, user_id: &str) -> $crate::Result<Vec<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT DISTINCT m2.user_id FROM members m1 JOIN members m2 ON m1.conversation_id = m2.conversation_id
                     JOIN conversations c ON c.id = m1.conversation_id
                     WHERE m1.user_id = $1 AND m2.user_id <> $1 AND c.kind <> 'channel'",
                )
                .bind(user_id)
                .fetch_all(self.read())
                .await?)
            }

            /// Counting stops past the limit, so a large group costs no more
            /// than a small one.
            async fn presence_audience(&self, user_id: &str, largest_group: i64) -> $crate::Result<Vec<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT DISTINCT m2.user_id FROM members m2
                     WHERE m2.user_id <> $1 AND m2.conversation_id IN (
                       SELECT c.id FROM members m1 JOIN conversations c ON c.id = m1.conversation_id
                       WHERE m1.user_id = $1 AND (c.kind = 'direct' OR (c.kind = 'group' AND (SELECT count(*) FROM
                         (SELECT 1 FROM members m3 WHERE m3.conversation_id = c.id LIMIT $2 + 1) AS capped) <= $2)))",
                )
                .bind(user_id)
                .bind(largest_group)
                .fetch_all(self.read())
                .await?)
            }

            async fn send_context(&self, conversation_id: &str, sender: &str) -> $crate::Result<$crate::SendContext> {
                let rows: Vec<(String, Option<String>, Option<String>, Option<String>, bool, String)> = sqlx::query_as(
                    "SELECT m.user_id, d.id, d.identity_key, d.signing_key,
                            EXISTS (SELECT 1 FROM blocks b WHERE b.user_id = m.user_id AND b.blocked_user_id = $2),
                            c.kind
                     FROM members m JOIN conversations c ON c.id = m.conversation_id
                     LEFT JOIN devices d ON d.user_id = m.user_id AND d.revoked_at IS NULL
                     WHERE m.conversation_id = $1 ORDER BY m.user_id, d.created_at, d.id",
                )
                .bind(conversation_id)
                .bind(sender)
                .fetch_all(self.read())
                .await?;
                let mut ctx = $crate::SendContext::default();
                for (user_id, device_id, identity_key, signing_key, blocked, kind) in rows {
                    ctx.kind = kind;
                    ctx.blocked |= blocked && user_id != sender;
                    if ctx.members.last() != Some(&user_id) {
                        ctx.members.push(user_id.clone());
                    }
                    if let (Some(device_id), Some(identity_key), Some(signing_key)) = (device_id, identity_key, signing_key) {
                        ctx.devices.push($crate::PublicDeviceRow { user_id, device_id, identity_key, signing_key });
                    }
                }
                Ok(ctx)
            }

            async fn set_read_marker(&self, conversation_id: &str, user_id: &str, seq: i64, now: i64) -> $crate::Result<bool> {
                let r = sqlx::query(
                    "INSERT INTO read_markers (conversation_id, user_id, seq, at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (conversation_id, user_id) DO UPDATE SET seq = $3, at = $4 WHERE read_markers.seq < $3",
                )
                .bind(conversation_id)
                .bind(user_id)
                .bind(seq)
                .bind(now)
                .execute(self.write())
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn read_markers(&self, conversation_id: &str) -> $crate::Result<Vec<(String, i64, i64)>> {
                Ok(sqlx::query_as("SELECT user_id, seq, at FROM read_markers WHERE conversation_id = $1 ORDER BY user_id")
                    .bind(conversation_id)
                    .fetch_all(self.read())
                    .await?)
            }

                        async fn presence_info(&self, user_ids: &[String]) -> $crate::Result<Vec<(String, Option<i64>, String)>> {
                if user_ids.is_empty() {
                    return Ok(Vec::new());
                }
                let mut qb = sqlx::QueryBuilder::<$db>::new("SELECT id, last_seen_at, presence_visibility FROM users WHERE id IN (");
                let mut sep = qb.separated(", ");
                for u in user_ids {
                    sep.push_bind(u.as_str());
                }
                qb.push(")");
                Ok(qb.build_query_as().fetch_all(self.read()).await?)
            }

            async fn set_last_seen(&self, user_id: &str, at: i64) -> $crate::Result<()> {
                sqlx::query("UPDATE users SET last_seen_at = $2 WHERE id = $1").bind(user_id).bind(at).execute(self.write()).await?;
                Ok(())
            }

            async fn set_presence_visibility(&self, user_id: &str, visibility: &str) -> $crate::Result<()> {
                sqlx::query("UPDATE users SET presence_visibility = $2 WHERE id = $1")
                    .bind(user_id)
                    .bind(visibility)
                    .execute(self.write())
                    .await?;
                Ok(())
            }

            async fn set_block(&self, user_id: &str, blocked: &str, on: bool, now: i64) -> $crate::Result<()> {
                let q = if on {
                    "INSERT INTO blocks (user_id, blocked_user_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
                } else {
                    "DELETE FROM blocks WHERE user_id = $1 AND blocked_user_id = $2 AND $3 = $3"
                };
                sqlx::query(q).bind(user_id).bind(blocked).bind(now).execute(self.write()).await?;
                Ok(())
            }

                        async fn stored_message(&self, sender_device_id: &str, client_msg_id: &str) -> $crate::Result<Option<(String, i64, i64)>> {
                Ok(sqlx::query_as("SELECT id, seq, created_at FROM messages WHERE sender_device_id = $1 AND client_msg_id = $2")
                    .bind(sender_device_id)
                    .bind(client_msg_id)
                    .fetch_optional(self.read())
                    .await?)
            }

            async fn outbox(&self, device_id: &str, after: i64, limit: i64) -> $crate::Result<Vec<$crate::OutboxRow>> {
                Ok(sqlx::query_as(concat!(
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

            async fn store_and_ack(&self, sends: &[$crate::NewMessage], acks: &[$crate::AckBatchItem], now: i64, expires_at: i64) -> $crate::Result<(Vec<$crate::StoredMessage>, Vec<Vec<$crate::OutboxRow>>)> {
                $crate::bulk::$bulk::store_and_ack(self.turn_writer(), sends, acks, now, expires_at).await
            }

            async fn expire(&self, now: i64, message_cutoff: i64, limit: i64) -> $crate::Result<u64> {
                let a = sqlx::query("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE expires_at < $1 LIMIT $2)")
                    .bind(now)
                    .bind(limit)
                    .execute(self.write())
                    .await?;
                let b = sqlx::query("DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE created_at < $1 LIMIT $2)")
                    .bind(message_cutoff)
                    .bind(limit)
                    .execute(self.write())
                    .await?;
                Ok(a.rows_affected() + b.rows_affected())
            }
        }
    };
}
pub(crate) use impl_messaging_store;
