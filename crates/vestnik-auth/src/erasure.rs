//! Deleting an account, as Signal and WhatsApp do: confirmed with the
//! password (and the second factor), then everything of it goes at once.
use vestnik_core::Action;
use vestnik_proto::AccountDeletion;
use vestnik_store::{ErasedAccount, SessionAuth};

use crate::{AuthError, AuthService, RequestMeta};

impl AuthService {
    /// Checks the password (and 2FA), signs every device out on every node,
    /// then erases the account in one transaction. The caller announces the
    /// group changes and deletes the media objects listed.
    pub async fn delete_account(
        &self,
        meta: &RequestMeta,
        auth: &SessionAuth,
        req: &AccountDeletion,
    ) -> Result<ErasedAccount, AuthError> {
        self.rate_limit(Action::AccountChange, &auth.user_id)
            .await?;
        let user = self.signed_in_user(auth).await?;
        self.confirm_password(meta, auth, &user, req.password.expose())
            .await?;
        if user.totp_enabled() {
            self.second_factor(meta, &user, req.totp.as_ref(), req.recovery_code.as_ref())
                .await?;
        }
        // Revoked first, through the usual path: sockets close on every
        // node and token caches forget, before the rows disappear.
        let now = self.clock.now_ms();
        let revoked = self.store.revoke_devices(&user.id, None, now).await?;
        self.forget_devices(&user.id, revoked).await?;
        let erased = self.store.erase_account(&user.id, &user.email).await?;
        // The trail's last entry says what happened, and nothing of who or
        // where from.
        let bare = RequestMeta {
            request_id: meta.request_id.clone(),
            ..RequestMeta::default()
        };
        self.audit(&bare, Some(&user.id), None, "account_deleted", None)
            .await;
        self.notify(
            &user.email,
            "Vestnik: your account was deleted",
            "Your Vestnik account was deleted, with its devices, keys, groups and files.\n\
             This address can be used to register again.\n",
        )
        .await;
        Ok(erased)
    }
}
