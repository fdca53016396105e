//! The profiles this device has met (display names and profile pictures),
//! sealed at rest.
use sqlx::Row;

use super::Store;
use crate::error::Result;

/// A cached profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CachedProfile {
    pub user_id: String,
    pub display_name: Option<String>,
    pub avatar: Option<String>,
}

impl Store {
    /// Caches a user's profile (`None`s: they have no name, no picture).
    pub(crate) async fn save_profile(
        &self,
        user_id: &str,
        display_name: Option<&str>,
        avatar: Option<&str>,
        now: i64,
    ) -> Result<()> {
        let sealed = display_name
            .map(|n| {
                self.sealer
                    .seal(&format!("profile:{user_id}"), n.as_bytes())
            })
            .transpose()?;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO profiles (user_id, display_name, avatar, fetched_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (user_id) DO UPDATE SET display_name = excluded.display_name,
               avatar = excluded.avatar, fetched_at = excluded.fetched_at",
        )
        .bind(user_id)
        .bind(sealed)
        .bind(avatar)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // A replaced or removed picture's bytes are of no further use.
        sqlx::query("DELETE FROM avatars WHERE user_id = ? AND avatar_id IS NOT ?")
            .bind(user_id)
            .bind(avatar)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Cached profiles fetched after `fresh_since`.
    pub(crate) async fn cached_profiles(
        &self,
        user_ids: &[String],
        fresh_since: i64,
    ) -> Result<Vec<CachedProfile>> {
        let mut out = Vec::with_capacity(user_ids.len());
        for id in user_ids {
            let row = sqlx::query(
                "SELECT display_name, avatar FROM profiles WHERE user_id = ? AND fetched_at >= ?",
            )
            .bind(id)
            .bind(fresh_since)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(r) = row {
                let sealed: Option<Vec<u8>> = r.try_get(0)?;
                let display_name = sealed
                    .map(|b| {
                        self.sealer
                            .open_string(&format!("profile:{id}"), &b)
                            .map(|s| s.to_string())
                    })
                    .transpose()?;
                out.push(CachedProfile {
                    user_id: id.clone(),
                    display_name,
                    avatar: r.try_get(1)?,
                });
            }
        }
        Ok(out)
    }

    /// The bytes of a profile picture, if this device fetched them.
    pub(crate) async fn cached_avatar(&self, avatar_id: &str) -> Result<Option<Vec<u8>>> {
        let sealed: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT image FROM avatars WHERE avatar_id = ?")
                .bind(avatar_id)
                .fetch_optional(&self.pool)
                .await?;
        sealed
            .map(|b| {
                self.sealer
                    .open(&format!("avatar:{avatar_id}"), &b)
                    .map(|p| p.to_vec())
            })
            .transpose()
    }

    /// Keeps a profile picture's bytes, replacing the user's earlier one.
    pub(crate) async fn save_avatar(
        &self,
        user_id: &str,
        avatar_id: &str,
        image: &[u8],
    ) -> Result<()> {
        let sealed = self.sealer.seal(&format!("avatar:{avatar_id}"), image)?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM avatars WHERE user_id = ?")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO avatars (avatar_id, user_id, image) VALUES (?, ?, ?)")
            .bind(avatar_id)
            .bind(user_id)
            .bind(sealed)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
