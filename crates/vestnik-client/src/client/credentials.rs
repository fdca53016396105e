//! The account's password and e-mail address: change (signed in), reset
//! (forgotten, by a mailed code), move to another address.
use reqwest::Method;
use vestnik_proto::{
    AccountDeletion, EmailChangeConfirm, EmailChangeRequest, PasswordChangeRequest,
    PasswordResetConfirm, PasswordResetRequest,
};

use super::{Client, SecondFactor};
use crate::api;
use crate::error::Result;

impl Client {
    /// Sets a new password, confirmed by the current one; with
    /// `sign_out_other_devices` every other device of the account is signed
    /// out (this one stays).
    pub async fn change_password(
        &self,
        current: &str,
        new: &str,
        sign_out_other_devices: bool,
    ) -> Result<()> {
        self.inner
            .api
            .call_unit(
                Method::POST,
                "/v1/account/password",
                Some(&PasswordChangeRequest {
                    current_password: current.into(),
                    new_password: new.into(),
                    sign_out_other_devices,
                }),
            )
            .await
    }

    /// Asks the server to mail a password-reset code to `email` (the answer
    /// is the same whether or not the address has an account).
    pub async fn request_password_reset(server_url: &str, email: &str) -> Result<()> {
        let base = server_url.trim_end_matches('/');
        let http = api::http_client(std::time::Duration::from_secs(30))?;
        let req = PasswordResetRequest {
            email: email.to_owned(),
            pow: None,
        };
        let _: vestnik_proto::Accepted = api::with_pow(
            req,
            |r, p| r.pow = Some(p),
            |r| {
                let http = http.clone();
                async move {
                    api::call_public(&http, base, Method::POST, "/v1/auth/password-reset", &r).await
                }
            },
        )
        .await?;
        Ok(())
    }

    /// Sets a new password with the mailed code (and the second factor when
    /// 2FA is on). Every device of the account is signed out, this machine's
    /// too: log in again afterwards.
    pub async fn reset_password(
        server_url: &str,
        email: &str,
        code: &str,
        new_password: &str,
        second: Option<SecondFactor>,
    ) -> Result<()> {
        let base = server_url.trim_end_matches('/');
        let http = api::http_client(std::time::Duration::from_secs(30))?;
        let (totp, recovery_code) = super::account::factor_fields(second);
        let req = PasswordResetConfirm {
            email: email.to_owned(),
            code: code.trim().into(),
            new_password: new_password.into(),
            totp,
            recovery_code,
        };
        api::call_public_unit(
            &http,
            base,
            Method::POST,
            "/v1/auth/password-reset/confirm",
            &req,
        )
        .await
    }

    /// Starts moving the account to `new_email`: the server mails a code
    /// there, which [`confirm_email_change`](Self::confirm_email_change) takes.
    pub async fn request_email_change(&self, password: &str, new_email: &str) -> Result<()> {
        let _: vestnik_proto::Accepted = self
            .inner
            .api
            .post(
                "/v1/account/email",
                &EmailChangeRequest {
                    password: password.into(),
                    new_email: new_email.to_owned(),
                },
            )
            .await?;
        Ok(())
    }

    /// Confirms the new address with the code mailed there; returns the
    /// account as it now stands.
    pub async fn confirm_email_change(&self, code: &str) -> Result<vestnik_proto::Account> {
        self.inner
            .api
            .post(
                "/v1/account/email/confirm",
                &EmailChangeConfirm {
                    code: code.trim().into(),
                },
            )
            .await
    }
}

/// Consent: blocks and who may find or see the account.
impl Client {
    /// Blocks `user_id`: their direct messages are refused, they cannot add
    /// this account to groups or channels, and neither sees the other's
    /// presence, typing or read markers.
    pub async fn block(&self, user_id: &str) -> Result<()> {
        self.set_block(user_id, Method::PUT).await
    }

    /// Lifts a block.
    pub async fn unblock(&self, user_id: &str) -> Result<()> {
        self.set_block(user_id, Method::DELETE).await
    }

    async fn set_block(&self, user_id: &str, method: Method) -> Result<()> {
        let user_id = vestnik_proto::UserId::parse(user_id)
            .map_err(|e| crate::error::ClientError::Protocol(format!("not a user id: {e}")))?;
        self.inner
            .api
            .call_unit::<()>(method, &format!("/v1/blocks/{user_id}"), None)
            .await
    }

    /// Who may find this account by its e-mail address.
    pub async fn set_find_by_email(&self, who: vestnik_proto::Discoverability) -> Result<()> {
        self.inner
            .api
            .call_unit(
                Method::PUT,
                "/v1/account/discovery",
                Some(&vestnik_proto::DiscoverySettings { find_by_email: who }),
            )
            .await
    }

    /// Who may see this account's online status and last seen.
    pub async fn set_presence_visibility(
        &self,
        visibility: vestnik_proto::PresenceVisibility,
    ) -> Result<()> {
        self.inner
            .api
            .call_unit(
                Method::PUT,
                "/v1/account/presence",
                Some(&vestnik_proto::PresenceSettings { visibility }),
            )
            .await
    }

    /// Deletes the account for good, confirmed with the password (and the
    /// second factor when 2FA is on): every device is signed out, and the
    /// server keeps nothing of it but an anonymous audit trail. This
    /// machine's profile is then useless; the caller deletes it.
    pub async fn delete_account(&self, password: &str, second: Option<SecondFactor>) -> Result<()> {
        let (totp, recovery_code) = super::account::factor_fields(second);
        self.inner
            .api
            .call_unit(
                Method::POST,
                "/v1/account/delete",
                Some(&AccountDeletion {
                    password: password.into(),
                    totp,
                    recovery_code,
                }),
            )
            .await
    }
}
