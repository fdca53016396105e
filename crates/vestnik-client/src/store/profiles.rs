//! The display names this device has met, sealed at rest.
use sqlx::Row;

use super::Store;
use crate::error::Result;

impl Store {
    /// Caches a user's display name (`None`: they have none).
    pub(crate) async fn save_profile(
        &self,
        user_id: &str,
        display_name: Option<&str>,
        now: i64,
    ) -> Result<()> {
        let sealed = display_name
            .map(|n| {
                self.sealer
                    .seal(&format!("profile:{user_id}"), n.as_bytes())
            })
            .transpose()?;
        sqlx::query(
            "INSERT INTO profiles (user_id, display_name, fetched_at) VALUES (?, ?, ?)
             ON CONFLICT (user_id) DO UPDATE SET display_name = excluded.display_name, fetched_at = excluded.fetched_at",
        )
        .bind(user_id)
        .bind(sealed)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Cached profiles fetched after `fresh_since`: (user id, name).
    pub(crate) async fn cached_profiles(
        &self,
        user_ids: &[String],
        fresh_since: i64,
    ) -> Result<Vec<(String, Option<String>)>> {
        let mut out = Vec::with_capacity(user_ids.len());
        for id in user_ids {
            let row = sqlx::query(
                "SELECT display_name FROM profiles WHERE user_id = ? AND fetched_at >= ?",
            )
            .bind(id)
            .bind(fresh_since)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(r) = row {
                let sealed: Option<Vec<u8>> = r.try_get(0)?;
                let name = sealed
                    .map(|b| {
                        self.sealer
                            .open_string(&format!("profile:{id}"), &b)
                            .map(|s| s.to_string())
                    })
                    .transpose()?;
                out.push((id.clone(), name));
            }
        }
        Ok(out)
    }
}
