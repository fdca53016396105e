//! Changes to an existing account: its password (knowing the current one,
//! or by a mailed code when it is forgotten) and its e-mail address
//! (confirmed from the new one, the old one told). None of them touches the
//! devices' end-to-end keys: a reset signs every device out, and the keys of
//! devices that log in again are theirs as before.
use vestnik_core::limits::{
    EMAIL_CODE_DIGITS, EMAIL_CODE_MAX_ATTEMPTS, EMAIL_CODE_RESEND_SECS, EMAIL_CODE_TTL_SECS,
    PASSWORD_MAX_CHARS,
};
use vestnik_core::{token, Action, Email};
use vestnik_mail::Mail;
use vestnik_proto::{
    EmailChangeConfirm, EmailChangeRequest, PasswordChangeRequest, PasswordResetConfirm,
    PasswordResetRequest,
};
use vestnik_store::{AccountCodeRow, CodePurpose, SessionAuth, StoreError, UserRow};

use crate::{password, AuthError, AuthService, RequestMeta};

impl AuthService {
    /// Counts one `account_change` for the caller: what an export costs.
    pub async fn limit_account_change(&self, auth: &SessionAuth) -> Result<(), AuthError> {
        self.rate_limit(Action::AccountChange, &auth.user_id).await
    }

    /// Sets a new password, confirmed by the current one; optionally signs
    /// out every other device. The account's address is told.
    pub async fn change_password(
        &self,
        meta: &RequestMeta,
        auth: &SessionAuth,
        req: &PasswordChangeRequest,
    ) -> Result<(), AuthError> {
        self.rate_limit(Action::AccountChange, &auth.user_id)
            .await?;
        let user = self.signed_in_user(auth).await?;
        password::check_password_policy(req.new_password.expose(), &user.email)?;
        self.confirm_password(meta, auth, &user, req.current_password.expose())
            .await?;
        let hash = password::hash_password(req.new_password.expose().to_owned()).await?;
        let now = self.clock.now_ms();
        self.store.set_password_hash(&user.id, &hash, now).await?;
        if req.sign_out_other_devices {
            let others: Vec<String> = self
                .store
                .list_devices(&user.id)
                .await?
                .into_iter()
                .filter(|d| d.id != auth.device_id)
                .map(|d| d.id)
                .collect();
            if !others.is_empty() {
                let revoked = self
                    .store
                    .revoke_devices(&user.id, Some(&others), now)
                    .await?;
                self.forget_devices(&user.id, revoked).await?;
            }
        }
        let detail = format!(r#"{{"signed_out_others":{}}}"#, req.sign_out_other_devices);
        self.audit(
            meta,
            Some(&user.id),
            Some(&auth.device_id),
            "password_changed",
            Some(detail),
        )
        .await;
        self.notify(
            &user.email,
            "Vestnik: your password was changed",
            "The password of your Vestnik account was changed.\n\
             If it was not you, reset it now and check the devices signed in to your account.\n",
        )
        .await;
        Ok(())
    }

    /// Mails a reset code to the address if it has an active account; the
    /// answer is the same either way.
    pub async fn request_password_reset(
        &self,
        meta: &RequestMeta,
        req: &PasswordResetRequest,
    ) -> Result<(), AuthError> {
        let email = Email::parse(&req.email)?;
        self.rate_limit(Action::AuthPerEmail, email.as_str())
            .await?;
        self.require_pow_if_suspicious(meta.ip.as_deref(), email.as_str(), req.pow.as_ref())
            .await?;
        let Some(user) = self.active_user_by_email(email.as_str()).await? else {
            return Ok(());
        };
        self.rate_limit(Action::AccountChange, &user.id).await?;
        let code = self
            .put_code(&user.id, CodePurpose::PasswordReset, email.as_str(), None)
            .await?;
        self.send_code(
            &user.id,
            CodePurpose::PasswordReset,
            Mail {
                to: email.to_string(),
                subject: "Your Vestnik password reset code".into(),
                text: format!(
                    "Your Vestnik password reset code is {code}.\n\nIt expires in {} minutes. \
                     Using it signs out every device of your account. If you did not ask for it, \
                     ignore this mail: your password stays as it is.\n",
                    EMAIL_CODE_TTL_SECS / 60
                ),
            },
        )
        .await?;
        self.audit(meta, Some(&user.id), None, "password_reset_requested", None)
            .await;
        Ok(())
    }

    /// Sets a new password with the mailed code (and the second factor when
    /// 2FA is on), then ends every session of the account.
    pub async fn confirm_password_reset(
        &self,
        meta: &RequestMeta,
        req: &PasswordResetConfirm,
    ) -> Result<(), AuthError> {
        let email = Email::parse(&req.email)?;
        self.rate_limit(Action::AuthPerEmail, email.as_str())
            .await?;
        password::check_password_policy(req.new_password.expose(), email.as_str())?;
        let Some(user) = self.active_user_by_email(email.as_str()).await? else {
            self.record_failure(meta.ip.as_deref(), email.as_str())
                .await?;
            return Err(AuthError::InvalidCode);
        };
        let code_hash = self
            .check_code(
                meta,
                &user,
                CodePurpose::PasswordReset,
                email.as_str(),
                req.code.expose(),
            )
            .await?;
        if user.totp_enabled() {
            self.second_factor(meta, &user, req.totp.as_ref(), req.recovery_code.as_ref())
                .await?;
        }
        let hash = password::hash_password(req.new_password.expose().to_owned()).await?;
        if !self
            .store
            .consume_account_code(&user.id, CodePurpose::PasswordReset, &code_hash)
            .await?
        {
            // A concurrent reset with the same code won.
            return Err(AuthError::InvalidCode);
        }
        let now = self.clock.now_ms();
        self.store.set_password_hash(&user.id, &hash, now).await?;
        let revoked = self.store.revoke_devices(&user.id, None, now).await?;
        self.forget_devices(&user.id, revoked).await?;
        self.audit(meta, Some(&user.id), None, "password_reset", None)
            .await;
        self.notify(
            &user.email,
            "Vestnik: your password was reset",
            "The password of your Vestnik account was reset with a code mailed here, and every \
             device was signed out.\nIf it was not you, reset it again now.\n",
        )
        .await;
        Ok(())
    }

    /// Mails a code to the new address to confirm it (or, when another
    /// account has it, a notice instead: the answer does not tell).
    pub async fn request_email_change(
        &self,
        meta: &RequestMeta,
        auth: &SessionAuth,
        req: &EmailChangeRequest,
    ) -> Result<(), AuthError> {
        let new_email = Email::parse(&req.new_email)?;
        if !vestnik_mail::is_deliverable(new_email.as_str()) {
            return Err(AuthError::UndeliverableEmail);
        }
        self.rate_limit(Action::AccountChange, &auth.user_id)
            .await?;
        self.rate_limit(Action::AuthPerEmail, new_email.as_str())
            .await?;
        let user = self.signed_in_user(auth).await?;
        self.confirm_password(meta, auth, &user, req.password.expose())
            .await?;
        let taken = self
            .store
            .user_by_email(new_email.as_str())
            .await?
            .is_some();
        if taken {
            // The address's owner hears of it; the caller cannot tell.
            self.notify(
                new_email.as_str(),
                "Vestnik: address change attempt",
                "Someone tried to move another Vestnik account to this address, which already \
                 has one. Nothing changed. If it was you, sign in with this address instead.\n",
            )
            .await;
        } else {
            let code = self
                .put_code(
                    &user.id,
                    CodePurpose::EmailChange,
                    new_email.as_str(),
                    Some(new_email.as_str()),
                )
                .await?;
            self.send_code(
                &user.id,
                CodePurpose::EmailChange,
                Mail {
                    to: new_email.to_string(),
                    subject: "Your Vestnik address confirmation code".into(),
                    text: format!(
                        "Your Vestnik address confirmation code is {code}.\n\nIt expires in {} \
                         minutes. If you did not ask for it, ignore this mail.\n",
                        EMAIL_CODE_TTL_SECS / 60
                    ),
                },
            )
            .await?;
        }
        self.audit(
            meta,
            Some(&user.id),
            Some(&auth.device_id),
            "email_change_requested",
            None,
        )
        .await;
        Ok(())
    }

    /// Moves the account to the address the code was mailed to; the old
    /// address is told.
    pub async fn confirm_email_change(
        &self,
        meta: &RequestMeta,
        auth: &SessionAuth,
        req: &EmailChangeConfirm,
    ) -> Result<vestnik_proto::Account, AuthError> {
        self.rate_limit(Action::AccountChange, &auth.user_id)
            .await?;
        let user = self.signed_in_user(auth).await?;
        let pending = self
            .store
            .account_code(&user.id, CodePurpose::EmailChange)
            .await?;
        let Some(new_email) = pending.and_then(|p| p.new_email) else {
            return Err(AuthError::InvalidCode);
        };
        let code_hash = self
            .check_code(
                meta,
                &user,
                CodePurpose::EmailChange,
                &new_email,
                req.code.expose(),
            )
            .await?;
        if !self
            .store
            .consume_account_code(&user.id, CodePurpose::EmailChange, &code_hash)
            .await?
        {
            return Err(AuthError::InvalidCode);
        }
        match self
            .store
            .set_email(&user.id, &new_email, self.clock.now_ms())
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(AuthError::EmailTaken),
            Err(e) => return Err(e.into()),
        }
        self.audit(
            meta,
            Some(&user.id),
            Some(&auth.device_id),
            "email_changed",
            None,
        )
        .await;
        self.notify(
            &user.email,
            "Vestnik: your address was changed",
            "Your Vestnik account now uses another e-mail address; this one no longer signs in.\n\
             If it was not you, contact the server's operator.\n",
        )
        .await;
        self.account(auth).await
    }

    /// Sets who may find the account by its address.
    pub async fn set_discovery(
        &self,
        meta: &RequestMeta,
        auth: &SessionAuth,
        req: &vestnik_proto::DiscoverySettings,
    ) -> Result<(), AuthError> {
        self.store
            .set_find_by_email(&auth.user_id, req.find_by_email.as_str())
            .await?;
        self.audit(
            meta,
            Some(&auth.user_id),
            Some(&auth.device_id),
            "discovery_changed",
            Some(format!(
                r#"{{"find_by_email":"{}"}}"#,
                req.find_by_email.as_str()
            )),
        )
        .await;
        Ok(())
    }

    /// The active account with this address, if any (pending and disabled
    /// ones read as absent).
    async fn active_user_by_email(&self, email: &str) -> Result<Option<UserRow>, AuthError> {
        Ok(self
            .store
            .user_by_email(email)
            .await?
            .filter(UserRow::is_active))
    }

    pub(crate) async fn signed_in_user(&self, auth: &SessionAuth) -> Result<UserRow, AuthError> {
        self.store
            .user_by_id(&auth.user_id)
            .await?
            .filter(UserRow::is_active)
            .ok_or(AuthError::Unauthenticated)
    }

    /// The signed-in user's password, asked again before a change.
    pub(crate) async fn confirm_password(
        &self,
        meta: &RequestMeta,
        auth: &SessionAuth,
        user: &UserRow,
        given: &str,
    ) -> Result<(), AuthError> {
        let hash = user.password_hash.clone().unwrap_or_default();
        let ok = given.chars().count() <= PASSWORD_MAX_CHARS
            && !hash.is_empty()
            && password::verify_password(given.to_owned(), hash).await?;
        if ok {
            return Ok(());
        }
        self.audit(
            meta,
            Some(&user.id),
            Some(&auth.device_id),
            "password_check_failed",
            None,
        )
        .await;
        Err(AuthError::WrongPassword)
    }

    /// Stores a fresh code for `purpose`, bound to `address`; throttled
    /// like registration codes.
    async fn put_code(
        &self,
        user_id: &str,
        purpose: CodePurpose,
        address: &str,
        new_email: Option<&str>,
    ) -> Result<String, AuthError> {
        let now = self.clock.now_ms();
        let code = token::random_digits(EMAIL_CODE_DIGITS);
        let row = AccountCodeRow {
            user_id: user_id.to_owned(),
            purpose: purpose.as_str().to_owned(),
            code_hash: self.code_hash(purpose, address, &code),
            new_email: new_email.map(str::to_owned),
            expires_at: now + EMAIL_CODE_TTL_SECS * 1000,
            attempts: 0,
            sent_at: now,
        };
        if self
            .store
            .put_account_code(&row, now - EMAIL_CODE_RESEND_SECS * 1000)
            .await?
        {
            return Ok(code);
        }
        let sent_at = self
            .store
            .account_code(user_id, purpose)
            .await?
            .map_or(now, |c| c.sent_at);
        let retry_after_ms = (sent_at + EMAIL_CODE_RESEND_SECS * 1000 - now).max(1000) as u64;
        Err(AuthError::ResendTooSoon { retry_after_ms })
    }

    /// Mails a code; when the mail does not leave, forgets the code so the
    /// user can ask again at once.
    async fn send_code(
        &self,
        user_id: &str,
        purpose: CodePurpose,
        mail: Mail,
    ) -> Result<(), AuthError> {
        if let Err(e) = self.mailer.send(mail).await {
            if let Some(row) = self.store.account_code(user_id, purpose).await? {
                self.store
                    .consume_account_code(user_id, purpose, &row.code_hash)
                    .await?;
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// Checks a code without consuming it; returns its hash, which the
    /// caller consumes once everything else held.
    async fn check_code(
        &self,
        meta: &RequestMeta,
        user: &UserRow,
        purpose: CodePurpose,
        address: &str,
        given: &str,
    ) -> Result<String, AuthError> {
        let now = self.clock.now_ms();
        let Some(row) = self.store.account_code(&user.id, purpose).await? else {
            self.record_failure(meta.ip.as_deref(), &user.email).await?;
            return Err(AuthError::InvalidCode);
        };
        if row.attempts >= EMAIL_CODE_MAX_ATTEMPTS {
            return Err(AuthError::CodeBurned);
        }
        if row.expires_at <= now {
            return Err(AuthError::InvalidCode);
        }
        let hash = self.code_hash(purpose, address, given.trim());
        if token::ct_eq(hash.as_bytes(), row.code_hash.as_bytes()) {
            return Ok(row.code_hash);
        }
        let attempts = self
            .store
            .bump_account_code_attempts(&user.id, purpose)
            .await?;
        self.record_failure(meta.ip.as_deref(), &user.email).await?;
        self.audit(
            meta,
            Some(&user.id),
            None,
            "account_code_failed",
            Some(format!(r#"{{"purpose":"{}"}}"#, purpose.as_str())),
        )
        .await;
        Err(if attempts >= EMAIL_CODE_MAX_ATTEMPTS {
            AuthError::CodeBurned
        } else {
            AuthError::InvalidCode
        })
    }

    fn code_hash(&self, purpose: CodePurpose, address: &str, code: &str) -> String {
        self.keys
            .hash_code(purpose.as_str(), &format!("{address}:{code}"))
    }

    /// A notice about the account; one that does not leave is logged, not
    /// failed (the change it reports is done).
    pub(crate) async fn notify(&self, to: &str, subject: &str, text: &str) {
        let mail = Mail {
            to: to.to_owned(),
            subject: subject.to_owned(),
            text: text.to_owned(),
        };
        if let Err(e) = self.mailer.send(mail).await {
            tracing::warn!(error = %e, "an account notice was not sent");
        }
    }
}
