//! Login with e-mail + password (+ a TOTP or recovery code): creates a new
//! device and its session. Failures never tell whether the e-mail exists.
use vestnik_core::limits::{MAX_DEVICES_PER_USER, PASSWORD_MAX_CHARS};
use vestnik_core::Action;
use vestnik_core::{ids, Email};
use vestnik_proto::{LoginRequest, SessionTokens};
use vestnik_store::{StoreError, UserRow};

use crate::{device, password, totp, AuthError, AuthService, RequestMeta};

impl AuthService {
    /// Password login (plus TOTP or a recovery code when 2FA is on) that enrols a new device
    /// and returns its first tokens. Failures may demand a proof of work.
    pub async fn login(
        &self,
        meta: &RequestMeta,
        req: &LoginRequest,
    ) -> Result<SessionTokens, AuthError> {
        let email = Email::parse(&req.email).map_err(|_| AuthError::BadCredentials)?;
        self.rate_limit(Action::AuthPerEmail, email.as_str())
            .await?;
        self.require_pow_if_suspicious(meta.ip.as_deref(), email.as_str(), req.pow.as_ref())
            .await?;
        let now = self.clock.now_ms();
        // Validated before the slow password check so a bad body costs nothing.
        let device_id = ids::new_id();
        let mut new_device = device::validate(&req.device, device_id.clone(), String::new(), now)?;

        let user = self.store.user_by_email(email.as_str()).await?;
        let hash = user
            .as_ref()
            .and_then(|u| u.password_hash.clone())
            .unwrap_or_else(|| self.dummy_hash.clone());
        let long = req.password.expose().chars().count() > PASSWORD_MAX_CHARS;
        let ok = !long && password::verify_password(req.password.expose().to_owned(), hash).await?;
        let user = match user {
            Some(u) if ok && u.password_hash.is_some() && u.status != "pending" => u,
            other => {
                self.record_failure(meta.ip.as_deref(), email.as_str())
                    .await?;
                let uid = other.map(|u| u.id);
                self.audit(
                    meta,
                    uid.as_deref(),
                    None,
                    "login_failed",
                    Some(r#"{"reason":"password"}"#.into()),
                )
                .await;
                return Err(AuthError::BadCredentials);
            }
        };
        if !user.is_active() {
            self.audit(
                meta,
                Some(&user.id),
                None,
                "login_failed",
                Some(r#"{"reason":"disabled"}"#.into()),
            )
            .await;
            return Err(AuthError::AccountDisabled);
        }
        if user.totp_enabled() {
            self.second_factor(meta, &user, req.totp.as_ref(), req.recovery_code.as_ref())
                .await?;
        }

        new_device.user_id = user.id.clone();
        let (session, tokens) = self.new_session(&user.id, &device_id, now);
        match self
            .store
            .create_device_session(&new_device, &session, MAX_DEVICES_PER_USER)
            .await
        {
            Ok(()) => {}
            Err(StoreError::TooManyDevices { max }) => {
                return Err(AuthError::TooManyDevices { max })
            }
            Err(e) => return Err(e.into()),
        }
        self.forget_devices(&user.id, Default::default()).await?;
        self.audit(meta, Some(&user.id), Some(&device_id), "login_ok", None)
            .await;
        Ok(tokens)
    }

    /// Checks a TOTP code or a recovery code of an account with 2FA on;
    /// a failure counts towards proof of work.
    pub(crate) async fn second_factor(
        &self,
        meta: &RequestMeta,
        user: &UserRow,
        totp: Option<&vestnik_proto::Secret>,
        recovery_code: Option<&vestnik_proto::Secret>,
    ) -> Result<(), AuthError> {
        let ok = match (totp, recovery_code) {
            (Some(code), _) => self.check_totp(user, code.expose()).await?,
            (None, Some(rc)) => {
                let used = self.use_recovery_code(user, rc.expose()).await?;
                if used {
                    self.audit(meta, Some(&user.id), None, "recovery_code_used", None)
                        .await;
                }
                used
            }
            (None, None) => return Err(AuthError::TotpRequired),
        };
        if ok {
            return Ok(());
        }
        self.record_failure(meta.ip.as_deref(), &user.email).await?;
        self.audit(
            meta,
            Some(&user.id),
            None,
            "login_failed",
            Some(r#"{"reason":"second_factor"}"#.into()),
        )
        .await;
        Err(AuthError::InvalidTotp)
    }

    /// True when `code` is valid now and its step was not used before.
    pub(crate) async fn check_totp(&self, user: &UserRow, code: &str) -> Result<bool, AuthError> {
        let Some(sealed) = &user.totp_secret_enc else {
            return Ok(false);
        };
        let secret = self.keys.open_totp(&user.id, sealed)?;
        match totp::matching_step(&secret, code, self.clock.now_secs()) {
            Some(step) => Ok(self.store.use_totp_step(&user.id, step).await?),
            None => Ok(false),
        }
    }

    pub(crate) async fn use_recovery_code(
        &self,
        user: &UserRow,
        code: &str,
    ) -> Result<bool, AuthError> {
        let norm: String = code
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_lowercase();
        if norm.len() > 64 {
            return Ok(false);
        }
        let hash = self.keys.hash_code(&format!("recovery:{}", user.id), &norm);
        Ok(self
            .store
            .use_recovery_code(&user.id, &hash, self.clock.now_ms())
            .await?)
    }
}
