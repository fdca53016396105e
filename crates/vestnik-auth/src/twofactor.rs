//! Turning TOTP 2FA on and off, each confirmed by a code.
use rand::RngCore;
use vestnik_core::limits::{RECOVERY_CODES, TOTP_SETUP_TTL_SECS};
use vestnik_proto::{RecoveryCodes, TotpSetup};
use vestnik_store::SessionAuth;

use crate::{totp, AuthError, AuthService, RequestMeta};
use vestnik_core::limits::PASSWORD_MAX_CHARS;
use vestnik_core::Action;

/// 10 characters of base32 (50 bits), shown as `xxxxx-xxxxx`.
fn recovery_code() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut bytes = [0u8; 10];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let s: String = bytes
        .iter()
        .map(|b| ALPHABET[(*b & 31) as usize] as char)
        .collect();
    format!("{}-{}", &s[..5], &s[5..])
}

impl AuthService {
    /// Starts 2FA setup: a new TOTP secret (and its `otpauth://` URI) that stays pending until
    /// confirmed with [`AuthService::totp_enable`] within `TOTP_SETUP_TTL_SECS`.
    pub async fn totp_setup(
        &self,
        meta: &RequestMeta,
        auth: &SessionAuth,
    ) -> Result<TotpSetup, AuthError> {
        self.rate_limit(Action::TwoFactorChange, &auth.user_id)
            .await?;
        let user = self
            .store
            .user_by_id(&auth.user_id)
            .await?
            .ok_or(AuthError::Unauthenticated)?;
        if user.totp_enabled() {
            return Err(AuthError::TotpAlreadyEnabled);
        }
        let mut secret = [0u8; 20];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let sealed = self.keys.seal_totp(&user.id, &secret)?;
        let expires = self.clock.now_ms() + TOTP_SETUP_TTL_SECS * 1000;
        self.store
            .set_totp_pending(&user.id, &sealed, expires)
            .await?;
        self.audit(
            meta,
            Some(&user.id),
            Some(&auth.device_id),
            "totp_setup",
            None,
        )
        .await;
        Ok(TotpSetup {
            secret: totp::base32(&secret).into(),
            otpauth_uri: totp::otpauth_uri(&self.settings.issuer, &user.email, &secret).into(),
        })
    }

    /// Turns 2FA on once `code` proves the authenticator has the pending secret; returns the
    /// single-use recovery codes, shown only this once.
    pub async fn totp_enable(
        &self,
        meta: &RequestMeta,
        auth: &SessionAuth,
        code: &str,
    ) -> Result<RecoveryCodes, AuthError> {
        self.rate_limit(Action::TwoFactorChange, &auth.user_id)
            .await?;
        let user = self
            .store
            .user_by_id(&auth.user_id)
            .await?
            .ok_or(AuthError::Unauthenticated)?;
        if user.totp_enabled() {
            return Err(AuthError::TotpAlreadyEnabled);
        }
        let now = self.clock.now_ms();
        let (Some(sealed), Some(expires)) = (&user.totp_pending_enc, user.totp_pending_expires_at)
        else {
            return Err(AuthError::NoTotpSetup);
        };
        if expires <= now {
            return Err(AuthError::NoTotpSetup);
        }
        let secret = self.keys.open_totp(&user.id, sealed)?;
        let Some(step) = totp::matching_step(&secret, code, now.div_euclid(1000)) else {
            return Err(AuthError::InvalidTotp);
        };
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| recovery_code()).collect();
        let hashes: Vec<String> = codes
            .iter()
            .map(|c| {
                self.keys
                    .hash_code(&format!("recovery:{}", user.id), &c.replace('-', ""))
            })
            .collect();
        self.store
            .enable_totp(&user.id, sealed, step, &hashes, now)
            .await?;
        self.audit(
            meta,
            Some(&user.id),
            Some(&auth.device_id),
            "totp_enabled",
            None,
        )
        .await;
        Ok(RecoveryCodes {
            recovery_codes: codes.into_iter().map(Into::into).collect(),
        })
    }

    /// Confirmed by a current TOTP code or an unused recovery code.
    pub async fn totp_disable(
        &self,
        meta: &RequestMeta,
        auth: &SessionAuth,
        password: &str,
        code: &str,
    ) -> Result<(), AuthError> {
        self.rate_limit(Action::TwoFactorChange, &auth.user_id)
            .await?;
        // After too many failures the account is locked out of this for a
        // while, whatever the next attempt says.
        let lock = format!("2fa-disable-lock:{}", auth.user_id);
        if self.kv.get(&lock).await?.is_some() {
            return Err(AuthError::RateLimited {
                retry_after_ms: 60_000,
            });
        }
        let user = self
            .store
            .user_by_id(&auth.user_id)
            .await?
            .ok_or(AuthError::Unauthenticated)?;
        if !user.totp_enabled() {
            return Err(AuthError::TotpNotEnabled);
        }
        let hash = user.password_hash.clone().unwrap_or_default();
        let password_ok = password.chars().count() <= PASSWORD_MAX_CHARS
            && !hash.is_empty()
            && crate::password::verify_password(password.to_owned(), hash).await?;
        let ok = password_ok
            && (self.check_totp(&user, code).await? || self.use_recovery_code(&user, code).await?);
        if !ok {
            self.audit(
                meta,
                Some(&user.id),
                Some(&auth.device_id),
                "totp_disable_failed",
                None,
            )
            .await;
            if let Err(vestnik_bus::LimitError::Limited { retry_after_ms }) = self
                .limits
                .check(Action::TwoFactorDisableFailures, &user.id)
                .await
            {
                self.kv.set(&lock, "1", retry_after_ms).await?;
                return Err(AuthError::RateLimited { retry_after_ms });
            }
            return Err(if password_ok {
                AuthError::InvalidTotp
            } else {
                AuthError::BadCredentials
            });
        }
        self.store
            .disable_totp(&user.id, self.clock.now_ms())
            .await?;
        self.audit(
            meta,
            Some(&user.id),
            Some(&auth.device_id),
            "totp_disabled",
            None,
        )
        .await;
        Ok(())
    }
}
