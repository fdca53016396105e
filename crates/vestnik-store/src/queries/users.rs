//! Accounts, e-mail codes, 2FA state and recovery codes: `UserStore`.

use super::dialect::query;
use super::{audit, devices, Backend};
use crate::{
    AccountCodeRow, CodePurpose, CompleteRegistration, EmailCodeRow, Result, StoreError, UserRow,
    UserStatus, UserStore,
};

#[async_trait::async_trait]
impl<S: Backend> UserStore for S {
    async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>> {
        Ok(query(
            "SELECT id, email, password_hash, status, is_admin, totp_secret_enc, totp_last_step, totp_pending_enc, totp_pending_expires_at, created_at, find_by_email, group_adds FROM users
             WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(self.read())
        .await?)
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>> {
        Ok(query(
            "SELECT id, email, password_hash, status, is_admin, totp_secret_enc, totp_last_step, totp_pending_enc, totp_pending_expires_at, created_at, find_by_email, group_adds FROM users
             WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.read())
        .await?)
    }

    async fn create_pending_user(&self, id: &str, email: &str, now: i64) -> Result<()> {
        query(
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

    async fn put_email_code(&self, c: &EmailCodeRow, resend_cutoff: i64) -> Result<bool> {
        let stored = query(
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
        Ok(stored == 1)
    }

    async fn email_code(&self, email: &str) -> Result<Option<EmailCodeRow>> {
        Ok(query(
            "SELECT email, code_hash, expires_at, attempts, sent_at FROM email_codes WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(self.read())
        .await?)
    }

    async fn bump_email_code_attempts(&self, email: &str) -> Result<i64> {
        let n: Option<i64> = query(
            "UPDATE email_codes SET attempts = attempts + 1 WHERE email = $1 RETURNING attempts",
        )
        .bind(email)
        .scalar_optional(self.write())
        .await?;
        Ok(n.unwrap_or(i64::MAX))
    }

    async fn delete_email_code(&self, email: &str) -> Result<()> {
        query("DELETE FROM email_codes WHERE email = $1")
            .bind(email)
            .execute(self.write())
            .await?;
        Ok(())
    }

    async fn put_account_code(&self, c: &AccountCodeRow, resend_cutoff: i64) -> Result<bool> {
        let stored = query(
            "INSERT INTO account_codes (user_id, purpose, code_hash, new_email, expires_at, attempts, sent_at)
             VALUES ($1, $2, $3, $4, $5, 0, $6)
             ON CONFLICT (user_id, purpose) DO UPDATE SET code_hash = $3, new_email = $4, expires_at = $5, attempts = 0, sent_at = $6
             WHERE account_codes.sent_at < $7",
        )
        .bind(&c.user_id)
        .bind(&c.purpose)
        .bind(&c.code_hash)
        .bind(&c.new_email)
        .bind(c.expires_at)
        .bind(c.sent_at)
        .bind(resend_cutoff)
        .execute(self.write())
        .await?;
        Ok(stored == 1)
    }

    async fn account_code(
        &self,
        user_id: &str,
        purpose: CodePurpose,
    ) -> Result<Option<AccountCodeRow>> {
        Ok(query(
            "SELECT user_id, purpose, code_hash, new_email, expires_at, attempts, sent_at FROM account_codes
             WHERE user_id = $1 AND purpose = $2",
        )
        .bind(user_id)
        .bind(purpose.as_str())
        .fetch_optional(self.write())
        .await?)
    }

    async fn bump_account_code_attempts(&self, user_id: &str, purpose: CodePurpose) -> Result<i64> {
        let n: Option<i64> = query(
            "UPDATE account_codes SET attempts = attempts + 1 WHERE user_id = $1 AND purpose = $2 RETURNING attempts",
        )
        .bind(user_id)
        .bind(purpose.as_str())
        .scalar_optional(self.write())
        .await?;
        Ok(n.unwrap_or(i64::MAX))
    }

    async fn consume_account_code(
        &self,
        user_id: &str,
        purpose: CodePurpose,
        code_hash: &str,
    ) -> Result<bool> {
        let n = query(
            "DELETE FROM account_codes WHERE user_id = $1 AND purpose = $2 AND code_hash = $3",
        )
        .bind(user_id)
        .bind(purpose.as_str())
        .bind(code_hash)
        .execute(self.write())
        .await?;
        Ok(n == 1)
    }

    async fn set_find_by_email(&self, user_id: &str, who: &str) -> Result<()> {
        query("UPDATE users SET find_by_email = $2 WHERE id = $1")
            .bind(user_id)
            .bind(who)
            .execute(self.write())
            .await?;
        Ok(())
    }

    async fn set_password_hash(&self, user_id: &str, hash: &str, now: i64) -> Result<()> {
        query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
            .bind(user_id)
            .bind(hash)
            .bind(now)
            .execute(self.write())
            .await?;
        Ok(())
    }

    async fn set_email(&self, user_id: &str, email: &str, now: i64) -> Result<()> {
        let updated = query("UPDATE users SET email = $2, updated_at = $3 WHERE id = $1")
            .bind(user_id)
            .bind(email)
            .bind(now)
            .execute(self.write())
            .await;
        match updated {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::Conflict("email"))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn complete_registration(&self, reg: &CompleteRegistration) -> Result<()> {
        let mut tx = self.write().begin().await?;
        let consumed = query("DELETE FROM email_codes WHERE email = $1 AND code_hash = $2")
            .bind(&reg.email)
            .bind(&reg.code_hash)
            .execute(&mut tx)
            .await?;
        if consumed != 1 {
            return Err(StoreError::CodeConsumed);
        }
        let activated = query(
            "UPDATE users SET status = 'active', password_hash = $2, updated_at = $3
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(&reg.device.user_id)
        .bind(&reg.password_hash)
        .bind(reg.now)
        .execute(&mut tx)
        .await?;
        if activated != 1 {
            return Err(StoreError::NotPending);
        }
        devices::insert_device(&mut tx, &reg.device).await?;
        devices::insert_session(&mut tx, &reg.session).await?;
        audit::insert_audit(&mut tx, &reg.audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_totp_pending(
        &self,
        user_id: &str,
        secret_enc: &str,
        expires_at: i64,
    ) -> Result<()> {
        query("UPDATE users SET totp_pending_enc = $2, totp_pending_expires_at = $3 WHERE id = $1")
            .bind(user_id)
            .bind(secret_enc)
            .bind(expires_at)
            .execute(self.write())
            .await?;
        Ok(())
    }

    async fn enable_totp(
        &self,
        user_id: &str,
        secret_enc: &str,
        step: i64,
        recovery: &[String],
        now: i64,
    ) -> Result<()> {
        let mut tx = self.write().begin().await?;
        query(
            "UPDATE users SET totp_secret_enc = $2, totp_last_step = $3, totp_pending_enc = NULL,
             totp_pending_expires_at = NULL, updated_at = $4 WHERE id = $1",
        )
        .bind(user_id)
        .bind(secret_enc)
        .bind(step)
        .bind(now)
        .execute(&mut tx)
        .await?;
        query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut tx)
            .await?;
        for h in recovery {
            query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                .bind(user_id)
                .bind(h)
                .execute(&mut tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn disable_totp(&self, user_id: &str, now: i64) -> Result<()> {
        let mut tx = self.write().begin().await?;
        query(
            "UPDATE users SET totp_secret_enc = NULL, totp_last_step = NULL, totp_pending_enc = NULL,
             totp_pending_expires_at = NULL, updated_at = $2 WHERE id = $1",
        )
        .bind(user_id)
        .bind(now)
        .execute(&mut tx)
        .await?;
        query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn use_totp_step(&self, user_id: &str, step: i64) -> Result<bool> {
        let used = query(
            "UPDATE users SET totp_last_step = $2
             WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)",
        )
        .bind(user_id)
        .bind(step)
        .execute(self.write())
        .await?;
        Ok(used == 1)
    }

    async fn use_recovery_code(&self, user_id: &str, code_hash: &str, now: i64) -> Result<bool> {
        let used = query(
            "UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
        )
        .bind(user_id)
        .bind(code_hash)
        .bind(now)
        .execute(self.write())
        .await?;
        Ok(used == 1)
    }

    async fn unused_recovery_codes(&self, user_id: &str) -> Result<i64> {
        Ok(
            query("SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL")
                .bind(user_id)
                .scalar_one(self.read())
                .await?,
        )
    }

    async fn list_users(&self, after_email: Option<&str>, limit: i64) -> Result<Vec<UserRow>> {
        Ok(query(
            "SELECT id, email, password_hash, status, is_admin, totp_secret_enc, totp_last_step, totp_pending_enc, totp_pending_expires_at, created_at, find_by_email, group_adds FROM users
             WHERE email > $1 ORDER BY email LIMIT $2",
        )
        .bind(after_email.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.read())
        .await?)
    }

    async fn set_user_status(&self, user_id: &str, status: UserStatus, now: i64) -> Result<bool> {
        let set = query("UPDATE users SET status = $2, updated_at = $3 WHERE id = $1")
            .bind(user_id)
            .bind(status.as_str())
            .bind(now)
            .execute(self.write())
            .await?;
        Ok(set == 1)
    }

    async fn set_admin(&self, user_id: &str, admin: bool) -> Result<()> {
        query("UPDATE users SET is_admin = $2 WHERE id = $1")
            .bind(user_id)
            .bind(admin)
            .execute(self.write())
            .await?;
        Ok(())
    }

    async fn upsert_admin(
        &self,
        id: &str,
        email: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<()> {
        query(
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
