//! SQL of media metadata and per-user storage usage, shared by both backends
//! like `sql.rs`. Usage moves only in the transaction that inserts or deletes
//! the row it accounts for, so concurrent grants, deletes and reapers on
//! several nodes can neither pass the quota nor count a row twice.

macro_rules! impl_media_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::MediaStore for $store {
            async fn create_media(&self, m: &$crate::MediaRow, quota: i64) -> $crate::Result<$crate::MediaCreate> {
                let mut tx = self.write().begin().await?;
                sqlx::query("INSERT INTO media_usage (user_id, bytes) VALUES ($1, 0) ON CONFLICT (user_id) DO NOTHING")
                    .bind(&m.owner_id)
                    .execute(&mut *tx)
                    .await?;
                // One conditional statement: the row lock it takes settles races.
                let grown = sqlx::query("UPDATE media_usage SET bytes = bytes + $2 WHERE user_id = $1 AND bytes + $2 <= $3")
                    .bind(&m.owner_id)
                    .bind(m.size)
                    .bind(quota)
                    .execute(&mut *tx)
                    .await?;
                if grown.rows_affected() == 0 {
                    let used: i64 = sqlx::query_scalar("SELECT bytes FROM media_usage WHERE user_id = $1")
                        .bind(&m.owner_id)
                        .fetch_one(&mut *tx)
                        .await?;
                    tx.rollback().await?;
                    return Ok($crate::MediaCreate::OverQuota { used });
                }
                sqlx::query(
                    "INSERT INTO media (id, owner_id, conversation_id, object_key, size, sha256, class, state, created_at, upload_expires_at, expires_at, thumbnail_key)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(&m.id)
                .bind(&m.owner_id)
                .bind(&m.conversation_id)
                .bind(&m.object_key)
                .bind(m.size)
                .bind(&m.sha256)
                .bind(&m.class)
                .bind(&m.state)
                .bind(m.created_at)
                .bind(m.upload_expires_at)
                .bind(m.expires_at)
                .bind(&m.thumbnail_key)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok($crate::MediaCreate::Created)
            }

            async fn media(&self, id: &str) -> $crate::Result<Option<$crate::MediaRow>> {
                Ok(sqlx::query_as(concat!("SELECT ", $crate::sql_media::media_columns!(), " FROM media WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(self.write())
                    .await?)
            }

            async fn mark_media_ready(&self, id: &str, now: i64, thumbnail_key: Option<&str>) -> $crate::Result<bool> {
                let r = sqlx::query("UPDATE media SET state = 'ready', thumbnail_key = $3 WHERE id = $1 AND state = 'pending' AND upload_expires_at > $2")
                    .bind(id)
                    .bind(now)
                    .bind(thumbnail_key)
                    .execute(self.write())
                    .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn delete_media(&self, id: &str) -> $crate::Result<Option<$crate::MediaRow>> {
                let mut tx = self.write().begin().await?;
                let row: Option<$crate::MediaRow> =
                    sqlx::query_as(concat!("DELETE FROM media WHERE id = $1 RETURNING ", $crate::sql_media::media_columns!()))
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                if let Some(m) = &row {
                    sqlx::query("UPDATE media_usage SET bytes = bytes - $2 WHERE user_id = $1")
                        .bind(&m.owner_id)
                        .bind(m.size)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(row)
            }

            async fn reapable_media(&self, now: i64, limit: i64) -> $crate::Result<Vec<$crate::MediaRow>> {
                Ok(sqlx::query_as(concat!(
                    "SELECT ", $crate::sql_media::media_columns!(), " FROM media WHERE expires_at <= $1
                     UNION SELECT ", $crate::sql_media::media_columns!(), " FROM media WHERE state = 'pending' AND upload_expires_at <= $1
                     ORDER BY expires_at LIMIT $2"
                ))
                .bind(now)
                .bind(limit)
                .fetch_all(self.write())
                .await?)
            }

            async fn media_usage(&self, user_id: &str) -> $crate::Result<i64> {
                Ok(sqlx::query_scalar("SELECT bytes FROM media_usage WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_optional(self.write())
                    .await?
                    .unwrap_or(0))
            }
        }
    };
}
pub(crate) use impl_media_store;

macro_rules! media_columns {
    () => {
        "id, owner_id, conversation_id, object_key, size, sha256, class, state, created_at, upload_expires_at, expires_at, thumbnail_key"
    };
}
pub(crate) use media_columns;
