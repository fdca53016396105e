//! The SQL both backends share. The statements use `$n` placeholders and the
//! subset of SQL that PostgreSQL and SQLite (≥ 3.35: UPSERT, RETURNING) agree
//! on, so the queries are written once and expanded per backend by a macro
//! into concrete code; each backend struct provides `read()` and `write()` pools.

macro_rules! impl_sql_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::UserStore for $store {
            async fn user_by_email(&self, email: &str) -> $crate::Result<Option<$crate::UserRow>> {
                Ok(sqlx::query_as::<_, $crate::UserRow>(concat!($crate::sql::user_select!(), " WHERE email = $1"))
                    .bind(email)
                    .fetch_optional(self.read())
                    .await?)
            }

            async fn user_by_id(&self, id: &str) -> $crate::Result<Option<$crate::UserRow>> {
                Ok(sqlx::query_as::<_, $crate::UserRow>(concat!($crate::sql::user_select!(), " WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(self.read())
                    .await?)
            }

            async fn create_pending_user(&self, id: &str, email: &str, now: i64) -> $crate::Result<()> {
                sqlx::query(
                    "INSERT INTO users (id, email, status, created_at, updated_at) VALUES ($1, $2, 'pending', $3, $3)
                     ON CONFLICT (email) DO NOTHING",
                )
                .bind(id)
                .bind(email)
                .bind(now)
                .execute(self.write())
                .await?;
                Ok(())
            }

            async fn put_email_code(&self, c: &$crate::EmailCodeRow, resend_cutoff: i64) -> $crate::Result<bool> {
                let r = sqlx::query(
                    "INSERT INTO email_codes (email, code_hash, expires_at, attempts, sent_at) VALUES ($1, $2, $3, 0, $4)
                     ON CONFLICT (email) DO UPDATE SET code_hash = $2, expires_at = $3, attempts = 0, sent_at = $4
                     WHERE email_codes.sent_at < $5",
                )
                .bind(&c.email)
                .bind(&c.code_hash)
                .bind(c.expires_at)
                .bind(c.sent_at)
                .bind(resend_cutoff)
                .execute(self.write())
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn email_code(&self, email: &str) -> $crate::Result<Option<$crate::EmailCodeRow>> {
                Ok(sqlx::query_as::<_, $crate::EmailCodeRow>(
                    "SELECT email, code_hash, expires_at, attempts, sent_at FROM email_codes WHERE email = $1",
                )
                .bind(email)
                .fetch_optional(self.read())
                .await?)
            }

            async fn bump_email_code_attempts(&self, email: &str) -> $crate::Result<i64> {
                let n: Option<i64> = sqlx::query_scalar(
                    "UPDATE email_codes SET attempts = attempts + 1 WHERE email = $1 RETURNING attempts",
                )
                .bind(email)
                .fetch_optional(self.write())
                .await?;
                Ok(n.unwrap_or(i64::MAX))
            }

            async fn delete_email_code(&self, email: &str) -> $crate::Result<()> {
                sqlx::query("DELETE FROM email_codes WHERE email = $1").bind(email).execute(self.write()).await?;
                Ok(())
            }

            async fn complete_registration(&self, reg: &$crate::CompleteRegistration) -> $crate::Result<()> {
                let mut tx = self.write().begin().await?;
                let consumed = sqlx::query("DELETE FROM email_codes WHERE email = $1 AND code_hash = $2")
                    .bind(&reg.email)
                    .bind(&reg.code_hash)
                    .execute(&mut *tx)
                    .await?;
                if consumed.rows_affected() != 1 {
                    return Err($crate::StoreError::CodeConsumed);
                }
                let activated = sqlx::query(
                    "UPDATE users SET status = 'active', password_hash = $2, updated_at = $3
                     WHERE id = $1 AND status = 'pending'",
                )
                .bind(&reg.device.user_id)
                .bind(&reg.password_hash)
                .bind(reg.now)
                .execute(&mut *tx)
                .await?;
                if activated.rows_affected() != 1 {
                    return Err($crate::StoreError::NotPending);
                }
                $crate::sql::insert_device!(tx, &reg.device);
                $crate::sql::insert_session!(tx, &reg.session);
                $crate::sql::insert_audit!(tx, &reg.audit);
                tx.commit().await?;
                Ok(())
            }

            async fn set_totp_pending(&self, user_id: &str, secret_enc: &str, expires_at: i64) -> $crate::Result<()> {
                sqlx::query("UPDATE users SET totp_pending_enc = $2, totp_pending_expires_at = $3 WHERE id = $1")
                    .bind(user_id)
                    .bind(secret_enc)
                    .bind(expires_at)
                    .execute(self.write())
                    .await?;
                Ok(())
            }

            async fn enable_totp(&self, user_id: &str, secret_enc: &str, step: i64, recovery: &[String], now: i64) -> $crate::Result<()> {
                let mut tx = self.write().begin().await?;
                sqlx::query(
                    "UPDATE users SET totp_secret_enc = $2, totp_last_step = $3, totp_pending_enc = NULL,
                     totp_pending_expires_at = NULL, updated_at = $4 WHERE id = $1",
                )
                .bind(user_id)
                .bind(secret_enc)
                .bind(step)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
                for h in recovery {
                    sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                        .bind(user_id)
                        .bind(h)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn disable_totp(&self, user_id: &str, now: i64) -> $crate::Result<()> {
                let mut tx = self.write().begin().await?;
                sqlx::query(
                    "UPDATE users SET totp_secret_enc = NULL, totp_last_step = NULL, totp_pending_enc = NULL,
                     totp_pending_expires_at = NULL, updated_at = $2 WHERE id = $1",
                )
                .bind(user_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn use_totp_step(&self, user_id: &str, step: i64) -> $crate::Result<bool> {
                let r = sqlx::query(
                    "UPDATE users SET totp_last_step = $2
                     WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)",
                )
                .bind(user_id)
                .bind(step)
                .execute(self.write())
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn use_recovery_code(&self, user_id: &str, code_hash: &str, now: i64) -> $crate::Result<bool> {
                let r = sqlx::query(
                    "UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
                )
                .bind(user_id)
                .bind(code_hash)
                .bind(now)
                .execute(self.write())
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn unused_recovery_codes(&self, user_id: &str) -> $crate::Result<i64> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL")
                    .bind(user_id)
                    .fetch_one(self.read())
                    .await?)
            }

            async fn list_users(&self, after_email: Option<&str>, limit: i64) -> $crate::Result<Vec<$crate::UserRow>> {
                Ok(sqlx::query_as::<_, $crate::UserRow>(concat!(
                    $crate::sql::user_select!(),
                    " WHERE email > $1 ORDER BY email LIMIT $2"
                ))
                .bind(after_email.unwrap_or(""))
                .bind(limit)
                .fetch_all(self.read())
                .await?)
            }

            async fn set_user_status(&self, user_id: &str, status: $crate::UserStatus, now: i64) -> $crate::Result<bool> {
                let r = sqlx::query("UPDATE users SET status = $2, updated_at = $3 WHERE id = $1")
                    .bind(user_id)
                    .bind(status.as_str())
                    .bind(now)
                    .execute(self.write())
                    .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn set_admin(&self, user_id: &str, admin: bool) -> $crate::Result<()> {
                sqlx::query("UPDATE users SET is_admin = $2 WHERE id = $1").bind(user_id).bind(admin).execute(self.write()).await?;
                Ok(())
            }

            async fn upsert_admin(&self, id: &str, email: &str, password_hash: &str, now: i64) -> $crate::Result<()> {
                sqlx::query(
                    "INSERT INTO users (id, email, password_hash, status, is_admin, created_at, updated_at)
                     VALUES ($1, $2, $3, 'active', TRUE, $4, $4)
                     ON CONFLICT (email) DO UPDATE SET password_hash = $3, status = 'active', is_admin = TRUE, updated_at = $4",
                )
                .bind(id)
                .bind(email)
                .bind(password_hash)
                .bind(now)
                .execute(self.write())
                .await?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::DeviceStore for $store {
            async fn create_device_session(&self, device: &$crate::NewDevice, session: &$crate::NewSession, max_devices: i64) -> $crate::Result<()> {
                let mut tx = self.write().begin().await?;
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM devices WHERE user_id = $1 AND revoked_at IS NULL")
                    .bind(&device.user_id)
                    .fetch_one(&mut *tx)
                    .await?;
                if n >= max_devices {
                    return Err($crate::StoreError::TooManyDevices { max: max_devices });
                }
                $crate::sql::insert_device!(tx, device);
                $crate::sql::insert_session!(tx, session);
                tx.commit().await?;
                Ok(())
            }

            async fn list_devices(&self, user_id: &str) -> $crate::Result<Vec<$crate::DeviceRow>> {
                Ok(sqlx::query_as::<_, $crate::DeviceRow>(
                    "SELECT id, user_id, name, platform, identity_key, signing_key, created_at FROM devices
                     WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at, id",
                )
                .bind(user_id)
                .fetch_all(self.read())
                .await?)
            }

            async fn session_by_access(&self, access_hash: &str, now: i64) -> $crate::Result<Option<$crate::SessionAuth>> {
                Ok(sqlx::query_as::<_, $crate::SessionAuth>(
                    "SELECT s.id AS session_id, s.user_id, s.device_id, s.access_expires_at, u.is_admin
                     FROM sessions s JOIN users u ON u.id = s.user_id
                     WHERE s.access_hash = $1 AND s.revoked_at IS NULL AND s.access_expires_at > $2 AND u.status = 'active'",
                )
                .bind(access_hash)
                .bind(now)
                .fetch_optional(self.read())
                .await?)
            }

            async fn prune_used_refresh_tokens(&self, used_before: i64, limit: i64) -> $crate::Result<u64> {
                Ok(sqlx::query(
                    "DELETE FROM used_refresh_tokens WHERE refresh_hash IN
                     (SELECT refresh_hash FROM used_refresh_tokens WHERE used_at < $1 LIMIT $2)",
                )
                .bind(used_before)
                .bind(limit)
                .execute(self.write())
                .await?
                .rows_affected())
            }

            async fn rotate_refresh(&self, old: &str, next: &$crate::NextTokens, now: i64, retry_since: i64) -> $crate::Result<$crate::RotateOutcome> {
                let mut tx = self.write().begin().await?;
                let current: Option<(String, String, String, i64, String)> = sqlx::query_as(
                    "SELECT s.id, s.user_id, s.device_id, s.refresh_expires_at, s.access_hash
                     FROM sessions s JOIN users u ON u.id = s.user_id
                     WHERE s.refresh_hash = $1 AND s.revoked_at IS NULL AND u.status = 'active'",
                )
                .bind(old)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((session_id, user_id, device_id, refresh_expires_at, old_access_hash)) = current else {
                    return $crate::sql::already_rotated!(tx, old, retry_since);
                };
                if refresh_expires_at <= now {
                    return Ok($crate::RotateOutcome::Expired);
                }
                // The refresh_hash guard makes a concurrent rotation of the same
                // token lose cleanly instead of forking the family; the loser
                // then reads what the winner left, as a retry would.
                let r = sqlx::query(
                    "UPDATE sessions SET access_hash = $2, access_expires_at = $3, refresh_hash = $4, refresh_expires_at = $5
                     WHERE id = $1 AND refresh_hash = $6 AND revoked_at IS NULL",
                )
                .bind(&session_id)
                .bind(&next.access_hash)
                .bind(next.access_expires_at)
                .bind(&next.refresh_hash)
                .bind(next.refresh_expires_at)
                .bind(old)
                .execute(&mut *tx)
                .await?;
                if r.rows_affected() != 1 {
                    return $crate::sql::already_rotated!(tx, old, retry_since);
                }
                // Only the newest successor can still be the session's, so the
                // older sealed ones go.
                sqlx::query("UPDATE used_refresh_tokens SET successor = NULL WHERE session_id = $1 AND successor IS NOT NULL")
                    .bind(&session_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO used_refresh_tokens (refresh_hash, session_id, used_at, successor_hash, successor)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(old)
                .bind(&session_id)
                .bind(now)
                .bind(&next.refresh_hash)
                .bind(&next.sealed)
                .execute(&mut *tx)
                .await?;
                let is_admin: bool = sqlx::query_scalar("SELECT is_admin FROM users WHERE id = $1")
                    .bind(&user_id)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok($crate::RotateOutcome::Rotated {
                    session: $crate::SessionAuth {
                        session_id,
                        user_id,
                        device_id,
                        access_expires_at: next.access_expires_at,
                        is_admin,
                    },
                    old_access_hash,
                })
            }

            async fn revoke_devices(&self, user_id: &str, device_ids: Option<&[String]>, now: i64) -> $crate::Result<Vec<String>> {
                let mut tx = self.write().begin().await?;
                let ids: Vec<String> = match device_ids {
                    Some(ids) => ids.to_vec(),
                    None => sqlx::query_scalar("SELECT id FROM devices WHERE user_id = $1 AND revoked_at IS NULL")
                        .bind(user_id)
                        .fetch_all(&mut *tx)
                        .await?,
                };
                let mut hashes = Vec::new();
                for id in &ids {
                    let mut h: Vec<String> = sqlx::query_scalar(
                        "UPDATE sessions SET revoked_at = $3 WHERE device_id = $1 AND user_id = $2 AND revoked_at IS NULL
                         RETURNING access_hash",
                    )
                    .bind(id)
                    .bind(user_id)
                    .bind(now)
                    .fetch_all(&mut *tx)
                    .await?;
                    hashes.append(&mut h);
                    let r = sqlx::query("UPDATE devices SET revoked_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL")
                        .bind(id)
                        .bind(user_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    if r.rows_affected() == 1 {
                        sqlx::query("DELETE FROM one_time_keys WHERE device_id = $1").bind(id).execute(&mut *tx).await?;
                        sqlx::query("DELETE FROM fallback_keys WHERE device_id = $1").bind(id).execute(&mut *tx).await?;
                    }
                }
                tx.commit().await?;
                Ok(hashes)
            }

            async fn one_time_key_count(&self, device_id: &str) -> $crate::Result<i64> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM one_time_keys WHERE device_id = $1")
                    .bind(device_id)
                    .fetch_one(self.read())
                    .await?)
            }
        }

        #[async_trait::async_trait]
        impl $crate::AuditStore for $store {
            async fn append_audit(&self, e: &$crate::AuditEvent) -> $crate::Result<()> {
                let mut tx = self.write().begin().await?;
                $crate::sql::insert_audit!(tx, e);
                tx.commit().await?;
                Ok(())
            }

            async fn list_audit(&self, user_id: &str, before: Option<i64>, limit: i64) -> $crate::Result<Vec<$crate::AuditRow>> {
                Ok(sqlx::query_as::<_, $crate::AuditRow>(
                    "SELECT id, user_id, device_id, event, ip, user_agent, request_id, detail, created_at FROM audit_log
                     WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
                )
                .bind(user_id)
                .bind(before.unwrap_or(i64::MAX))
                .bind(limit)
                .fetch_all(self.read())
                .await?)
            }
        }
    };
}
pub(crate) use impl_sql_store;

macro_rules! user_select {
    () => {
        "SELECT id, email, password_hash, status, is_admin, totp_secret_enc, totp_last_step, totp_pending_enc, totp_pending_expires_at, created_at FROM users"
    };
}
pub(crate) use user_select;

macro_rules! insert_device {
    ($tx:ident, $d:expr) => {{
        let d: &$crate::NewDevice = $d;
        sqlx::query(
            "INSERT INTO devices (id, user_id, name, platform, identity_key, signing_key, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&d.id)
        .bind(&d.user_id)
        .bind(&d.name)
        .bind(&d.platform)
        .bind(&d.identity_key)
        .bind(&d.signing_key)
        .bind(d.created_at)
        .execute(&mut *$tx)
        .await?;
        sqlx::query("INSERT INTO fallback_keys (device_id, key_id, public_key, signature, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&d.id)
            .bind(&d.fallback_key.key_id)
            .bind(&d.fallback_key.public_key)
            .bind(&d.fallback_key.signature)
            .bind(d.created_at)
            .execute(&mut *$tx)
            .await?;
        for (key_id, public_key) in &d.one_time_keys {
            sqlx::query("INSERT INTO one_time_keys (device_id, key_id, public_key, created_at) VALUES ($1, $2, $3, $4)")
                .bind(&d.id)
                .bind(key_id)
                .bind(public_key)
                .bind(d.created_at)
                .execute(&mut *$tx)
                .await?;
        }
    }};
}
pub(crate) use insert_device;

macro_rules! insert_session {
    ($tx:ident, $s:expr) => {{
        let s: &$crate::NewSession = $s;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, device_id, access_hash, access_expires_at, refresh_hash, refresh_expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&s.id)
        .bind(&s.user_id)
        .bind(&s.device_id)
        .bind(&s.access_hash)
        .bind(s.access_expires_at)
        .bind(&s.refresh_hash)
        .bind(s.refresh_expires_at)
        .bind(s.created_at)
        .execute(&mut *$tx)
        .await?;
    }};
}
pub(crate) use insert_session;

macro_rules! insert_audit {
    ($tx:ident, $e:expr) => {{
        let e: &$crate::AuditEvent = $e;
        sqlx::query(
            "INSERT INTO audit_log (user_id, device_id, event, ip, user_agent, request_id, detail, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&e.user_id)
        .bind(&e.device_id)
        .bind(&e.event)
        .bind(&e.ip)
        .bind(&e.user_agent)
        .bind(&e.request_id)
        .bind(&e.detail)
        .bind(e.created_at)
        .execute(&mut *$tx)
        .await?;
    }};
}
pub(crate) use insert_audit;

/// What a refresh token that is no longer current means: a retry of its
/// recent rotation (its successor still current), reuse, or nothing known.
macro_rules! already_rotated {
    ($tx:expr, $old:expr, $retry_since:expr) => {{
        type Used = (String, String, i64, Option<String>, Option<Vec<u8>>, String, Option<i64>, String);
        let used: Option<Used> = sqlx::query_as(
            "SELECT s.user_id, s.device_id, r.used_at, r.successor_hash, r.successor, s.refresh_hash, s.revoked_at, u.status
             FROM used_refresh_tokens r JOIN sessions s ON s.id = r.session_id JOIN users u ON u.id = s.user_id
             WHERE r.refresh_hash = $1",
        )
        .bind($old)
        .fetch_optional(&mut *$tx)
        .await?;
        Ok(match used {
            Some((user_id, device_id, used_at, Some(successor), Some(sealed), current, None, status))
                if used_at >= $retry_since && successor == current && status == "active" =>
            {
                $crate::RotateOutcome::Retry { sealed, user_id, device_id }
            }
            Some((user_id, device_id, ..)) => $crate::RotateOutcome::Reused { user_id, device_id },
            None => $crate::RotateOutcome::Unknown,
        })
    }};
}
pub(crate) use already_rotated;
