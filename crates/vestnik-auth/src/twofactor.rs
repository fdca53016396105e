//! Turning TOTP 2FA on and off, each confirmed by a code.
use rand::RngCore;
use vestnik_core::limits::{RECOVERY_CODES, TOTP_SETUP_TTL_SECS};
use vestnik_proto::{RecoveryCodes, TotpSetup};
use vestnik_store::SessionAuth;

use crate::{totp, AuthError, AuthService, RequestMeta};

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
        code: &str,
    ) -> Result<(), AuthError> {
        let user = self
            .store
            .user_by_id(&auth.user_id)
            .await?
            .ok_or(AuthError::Unauthenticated)?;
        if !user.totp_enabled() {
            return Err(AuthError::TotpNotEnabled);
        }
        let ok = self.check_totp(&user, code).await? || self.use_recovery_code(&user, code).await?;
        if !ok {
            self.audit(
                meta,
                Some(&user.id),
                Some(&auth.device_id),
                "totp_disable_failed",
                None,
            )
            .await;
            return Err(AuthError::InvalidTotp);
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
