//! Media metadata and per-user storage usage: `MediaStore`. Usage moves only
//! in the transaction that inserts or deletes the row it accounts for, so
//! concurrent grants, deletes and reapers on several nodes can neither pass
//! the quota nor count a row twice.
//!
//! The statements that return rows list `MediaRow`'s columns in full.

use super::dialect::query;
use super::dialect::Dialect;
use super::Backend;
use crate::{AvatarSwap, MediaCreate, MediaRow, MediaStore, Result};
use sqlx::Transaction;

#[async_trait::async_trait]
impl<S: Backend> MediaStore for S {
    async fn create_media(&self, m: &MediaRow, quota: i64) -> Result<MediaCreate> {
        let mut tx = self.write().begin().await?;
        let created = insert_media(&mut tx, m, quota).await?;
        if matches!(created, MediaCreate::Created) {
            tx.commit().await?;
        }
        Ok(created)
    }

    async fn media(&self, id: &str) -> Result<Option<MediaRow>> {
        Ok(query(
            "SELECT id, owner_id, conversation_id, object_key, size, sha256, class, state, created_at, upload_expires_at, expires_at, thumbnail_key
             FROM media WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.write())
        .await?)
    }

    async fn mark_media_ready(
        &self,
        id: &str,
        now: i64,
        thumbnail_key: Option<&str>,
    ) -> Result<bool> {
        let marked = query(
            "UPDATE media SET state = 'ready', thumbnail_key = $3 WHERE id = $1 AND state = 'pending' AND upload_expires_at > $2",
        )
        .bind(id)
        .bind(now)
        .bind(thumbnail_key)
        .execute(self.write())
        .await?;
        Ok(marked == 1)
    }

    async fn delete_media(&self, id: &str) -> Result<Option<MediaRow>> {
        let mut tx = self.write().begin().await?;
        let row = remove_media(&mut tx, id).await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn replace_avatar(
        &self,
        user_id: &str,
        new: Option<&MediaRow>,
        quota: i64,
    ) -> Result<AvatarSwap> {
        let mut tx = self.write().begin().await?;
        // A no-op write first: it takes the user's row lock (PostgreSQL) or
        // the write lock (SQLite), so two replacements cannot both read the
        // same previous picture and leave one new row pointed at by nothing.
        let found = query("UPDATE users SET avatar_media_id = avatar_media_id WHERE id = $1")
            .bind(user_id)
            .execute(&mut tx)
            .await?;
        if found == 0 {
            return Ok(AvatarSwap::NoSuchUser);
        }
        let previous_id: Option<String> = query("SELECT avatar_media_id FROM users WHERE id = $1")
            .bind(user_id)
            .scalar_one(&mut tx)
            .await?;
        // Freed before the new one is counted: a replacement needs room for
        // the larger of the two, not their sum.
        let previous = match &previous_id {
            Some(id) => remove_media(&mut tx, id).await?,
            None => None,
        };
        if let Some(m) = new {
            if let MediaCreate::OverQuota { used } = insert_media(&mut tx, m, quota).await? {
                return Ok(AvatarSwap::OverQuota { used });
            }
        }
        query("UPDATE users SET avatar_media_id = $2 WHERE id = $1")
            .bind(user_id)
            .bind(new.map(|m| m.id.as_str()))
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(AvatarSwap::Replaced {
            previous: previous.map(Box::new),
        })
    }

    async fn reapable_media(&self, now: i64, limit: i64) -> Result<Vec<MediaRow>> {
        Ok(query(
            "SELECT id, owner_id, conversation_id, object_key, size, sha256, class, state, created_at, upload_expires_at, expires_at, thumbnail_key
             FROM media WHERE expires_at <= $1
             UNION SELECT id, owner_id, conversation_id, object_key, size, sha256, class, state, created_at, upload_expires_at, expires_at, thumbnail_key
             FROM media WHERE state = 'pending' AND upload_expires_at <= $1
             ORDER BY expires_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.write())
        .await?)
    }

    async fn media_usage(&self, user_id: &str) -> Result<i64> {
        Ok(query("SELECT bytes FROM media_usage WHERE user_id = $1")
            .bind(user_id)
            .scalar_optional(self.write())
            .await?
            .unwrap_or(0))
    }
}

/// Counts `m` against its owner's quota and inserts it, in `tx`; on
/// `OverQuota` nothing was written (the caller rolls back or drops `tx`).
async fn insert_media<DB: Dialect>(
    tx: &mut Transaction<'_, DB>,
    m: &MediaRow,
    quota: i64,
) -> Result<MediaCreate> {
    query(
        "INSERT INTO media_usage (user_id, bytes) VALUES ($1, 0) ON CONFLICT (user_id) DO NOTHING",
    )
    .bind(&m.owner_id)
    .execute(&mut *tx)
    .await?;
    // One conditional statement: the row lock it takes settles races.
    let grown =
        query("UPDATE media_usage SET bytes = bytes + $2 WHERE user_id = $1 AND bytes + $2 <= $3")
            .bind(&m.owner_id)
            .bind(m.size)
            .bind(quota)
            .execute(&mut *tx)
            .await?;
    if grown == 0 {
        let used: i64 = query("SELECT bytes FROM media_usage WHERE user_id = $1")
            .bind(&m.owner_id)
            .scalar_one(&mut *tx)
            .await?;
        return Ok(MediaCreate::OverQuota { used });
    }
    query(
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
    Ok(MediaCreate::Created)
}

/// Deletes the row and releases its bytes, in `tx`.
async fn remove_media<DB: Dialect>(
    tx: &mut Transaction<'_, DB>,
    id: &str,
) -> Result<Option<MediaRow>> {
    let row: Option<MediaRow> = query(
        "DELETE FROM media WHERE id = $1
         RETURNING id, owner_id, conversation_id, object_key, size, sha256, class, state, created_at, upload_expires_at, expires_at, thumbnail_key",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(m) = &row {
        query("UPDATE media_usage SET bytes = bytes - $2 WHERE user_id = $1")
            .bind(&m.owner_id)
            .bind(m.size)
            .execute(&mut *tx)
            .await?;
    }
    Ok(row)
}
