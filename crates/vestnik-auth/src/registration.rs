//! Registration by e-mail code. The answers to `register` are the same whether
//! or not the address has an account; an existing owner gets a notice instead
//! of a code.
use vestnik_core::limits::{
    EMAIL_CODE_DIGITS, EMAIL_CODE_MAX_ATTEMPTS, EMAIL_CODE_RESEND_SECS, EMAIL_CODE_TTL_SECS,
};
use vestnik_core::Action;
use vestnik_core::{ids, token, Email};
use vestnik_mail::Mail;
use vestnik_proto::{RegisterRequest, SessionTokens, VerifyRequest};
use vestnik_store::{CompleteRegistration, EmailCodeRow, StoreError};

use crate::{device, password, AuthError, AuthService, RequestMeta};

impl AuthService {
    /// Starts registration: mails a verification code (or, for an address that already has an
    /// account, a warning instead, so the answer does not reveal which addresses are taken).
    pub async fn register(
        &self,
        meta: &RequestMeta,
        req: &RegisterRequest,
    ) -> Result<(), AuthError> {
        let email = Email::parse(&req.email)?;
        if !vestnik_mail::is_deliverable(email.as_str()) {
            return Err(AuthError::UndeliverableEmail);
        }
        if let Some(ip) = meta.ip.as_deref().and_then(|ip| ip.parse().ok()) {
            let key = vestnik_core::rate_limits::address_key(ip).to_string();
            self.rate_limit(Action::Registrations, &key).await?;
        }
        self.rate_limit(Action::AuthPerEmail, email.as_str())
            .await?;
        // As at login: an address or account with recent failures (wrong
        // codes or passwords) must solve a puzzle before more mail goes out.
        self.require_pow_if_suspicious(meta.ip.as_deref(), email.as_str(), req.pow.as_ref())
            .await?;
        let now = self.clock.now_ms();
        let existing = self.store.user_by_email(email.as_str()).await?;
        let already_active = existing.as_ref().is_some_and(|u| u.status != "pending");
        if existing.is_none() {
            self.store
                .create_pending_user(&ids::new_id(), email.as_str(), now)
                .await?;
        }
        let code = (!already_active).then(|| token::random_digits(EMAIL_CODE_DIGITS));
        let row = EmailCodeRow {
            email: email.to_string(),
            code_hash: code
                .as_ref()
                .map(|c| self.keys.hash_code("email", &format!("{email}:{c}"))),
            expires_at: now + EMAIL_CODE_TTL_SECS * 1000,
            attempts: 0,
            sent_at: now,
        };
        if !self
            .store
            .put_email_code(&row, now - EMAIL_CODE_RESEND_SECS * 1000)
            .await?
        {
            let sent_at = self
                .store
                .email_code(email.as_str())
                .await?
                .map_or(now, |c| c.sent_at);
            let retry_after_ms = (sent_at + EMAIL_CODE_RESEND_SECS * 1000 - now).max(1000) as u64;
            return Err(AuthError::ResendTooSoon { retry_after_ms });
        }
        let mail = match &code {
            Some(code) => Mail {
                to: email.to_string(),
                // The code stays out of the subject: mailers log subjects.
                subject: "Your Vestnik verification code".into(),
                text: format!(
                    "Your Vestnik verification code is {code}.\n\nIt expires in {} minutes. If you did not ask for it, ignore this mail.\n",
                    EMAIL_CODE_TTL_SECS / 60
                ),
            },
            None => Mail {
                to: email.to_string(),
                subject: "Vestnik: registration attempt".into(),
                text: "Someone tried to register a Vestnik account with this address, which already has one.\n\
                       If it was you, log in instead. If not, you can ignore this mail.\n"
                    .into(),
            },
        };
        if let Err(e) = self.mailer.send(mail).await {
            // Forget the code so the user can retry at once instead of waiting
            // out the resend throttle for a mail that never left.
            self.store.delete_email_code(email.as_str()).await?;
            return Err(e.into());
        }
        let user_id = self
            .store
            .user_by_email(email.as_str())
            .await?
            .map(|u| u.id);
        self.audit(meta, user_id.as_deref(), None, "register_requested", None)
            .await;
        Ok(())
    }

    /// Completes registration with the mailed code and a password: activates the account,
    /// enrols its first device and returns its tokens.
    pub async fn verify(
        &self,
        meta: &RequestMeta,
        req: &VerifyRequest,
    ) -> Result<SessionTokens, AuthError> {
        let email = Email::parse(&req.email)?;
        self.rate_limit(Action::AuthPerEmail, email.as_str())
            .await?;
        self.require_pow_if_suspicious(meta.ip.as_deref(), email.as_str(), req.pow.as_ref())
            .await?;
        password::check_password_policy(req.password.expose(), email.as_str())?;
        let now = self.clock.now_ms();
        let user = match self.store.user_by_email(email.as_str()).await? {
            Some(u) if u.status == "pending" => u,
            _ => {
                self.record_failure(meta.ip.as_deref(), email.as_str())
                    .await?;
                return Err(AuthError::InvalidCode);
            }
        };
        let device_id = ids::new_id();
        let new_device = device::validate(&req.device, device_id.clone(), user.id.clone(), now)?;

        let code_row = self.store.email_code(email.as_str()).await?;
        let Some((code_hash, row)) = code_row.and_then(|r| r.code_hash.clone().map(|h| (h, r)))
        else {
            self.record_failure(meta.ip.as_deref(), email.as_str())
                .await?;
            return Err(AuthError::InvalidCode);
        };
        if row.attempts >= EMAIL_CODE_MAX_ATTEMPTS {
            return Err(AuthError::CodeBurned);
        }
        if row.expires_at <= now {
            return Err(AuthError::InvalidCode);
        }
        let given = self
            .keys
            .hash_code("email", &format!("{email}:{}", req.code.expose().trim()));
        if !token::ct_eq(given.as_bytes(), code_hash.as_bytes()) {
            let attempts = self.store.bump_email_code_attempts(email.as_str()).await?;
            self.record_failure(meta.ip.as_deref(), email.as_str())
                .await?;
            self.audit(meta, Some(&user.id), None, "verify_failed", None)
                .await;
            return Err(if attempts >= EMAIL_CODE_MAX_ATTEMPTS {
                AuthError::CodeBurned
            } else {
                AuthError::InvalidCode
            });
        }

        let password_hash = password::hash_password(req.password.expose().to_owned()).await?;
        let (session, tokens) = self.new_session(&user.id, &device_id, now);
        let reg = CompleteRegistration {
            email: email.to_string(),
            code_hash,
            password_hash,
            device: new_device,
            session,
            audit: self.audit_event(meta, Some(&user.id), Some(&device_id), "registered", None),
            now,
        };
        match self.store.complete_registration(&reg).await {
            Ok(()) => {
                metrics::counter!("vestnik_auth_events_total", "event" => "registered")
                    .increment(1);
                Ok(tokens)
            }
            // A concurrent verify with the same code won: this one did nothing.
            Err(StoreError::CodeConsumed | StoreError::NotPending) => Err(AuthError::InvalidCode),
            Err(e) => Err(e.into()),
        }
    }
}
