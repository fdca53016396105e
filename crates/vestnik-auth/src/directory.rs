//! The key directory: devices publish one-time and fallback keys; senders
//! claim one bundle per device of a recipient.
use vestnik_core::limits::MAX_ONE_TIME_KEYS_PER_DEVICE;
use vestnik_core::{ids, Action};
use vestnik_proto::{
    ClaimResponse, KeyBundle, KeyCount, KeysUpload, OneTimeKey, PublicDevice, PublicDeviceList,
    SignedKey,
};
use vestnik_store::{FallbackKey, SessionAuth, StoreError};

use crate::{device, AuthError, AuthService};
pub use vestnik_core::limits::ONE_TIME_KEY_LOW_WATERMARK;

impl AuthService {
    /// Stores the caller device's new one-time keys and, if given, its signed fallback key
    /// (checked against the device's signing key); returns how many one-time keys it now holds.
    pub async fn upload_keys(
        &self,
        auth: &SessionAuth,
        req: &KeysUpload,
    ) -> Result<KeyCount, AuthError> {
        let otks = device::one_time_keys(&req.one_time_keys, "one_time_keys")?;
        let fallback = match &req.fallback_key {
            Some(fb) => {
                let devices = self.store.list_devices(&auth.user_id).await?;
                let me = devices
                    .iter()
                    .find(|d| d.id == auth.device_id)
                    .ok_or(AuthError::Unauthenticated)?;
                let vk = device::verifying_key("signing_key", &me.signing_key)?;
                device::verify_fallback(&vk, fb, "fallback_key")?;
                Some(FallbackKey {
                    key_id: fb.key_id.clone(),
                    public_key: fb.public_key.clone(),
                    signature: fb.signature.clone(),
                })
            }
            None => None,
        };
        let n = match self
            .store
            .upload_keys(
                &auth.device_id,
                &otks,
                fallback.as_ref(),
                self.clock.now_ms(),
                MAX_ONE_TIME_KEYS_PER_DEVICE,
            )
            .await
        {
            Ok(n) => n,
            Err(StoreError::TooManyKeys { max }) => {
                return Err(AuthError::InvalidDevice(format!(
                    "one_time_keys: the server holds at most {max} per device"
                )))
            }
            Err(e) => return Err(e.into()),
        };
        Ok(KeyCount {
            one_time_keys: n,
            low_watermark: ONE_TIME_KEY_LOW_WATERMARK,
        })
    }

    /// How many unclaimed one-time keys the caller's device has, and the level below which it should upload more.
    pub async fn key_count(&self, auth: &SessionAuth) -> Result<KeyCount, AuthError> {
        Ok(KeyCount {
            one_time_keys: self.store.one_time_key_count(&auth.device_id).await?,
            low_watermark: ONE_TIME_KEY_LOW_WATERMARK,
        })
    }

    /// One key bundle per active device of `user_id`, each with a one-time key popped atomically
    /// (or the fallback key when none is left), for starting Olm sessions. Rate-limited per caller.
    pub async fn claim_keys(
        &self,
        auth: &SessionAuth,
        user_id: &vestnik_proto::UserId,
    ) -> Result<ClaimResponse, AuthError> {
        // Claims pop keys other people uploaded: limited per claimer, and
        // per (claimer, target) so one account cannot drain another's keys.
        self.rate_limit(Action::ClaimKeys, &auth.user_id).await?;
        self.rate_limit(
            Action::ClaimKeysOfTarget,
            &format!("{}:{}", auth.user_id, user_id),
        )
        .await?;
        self.require_active_user(user_id).await?;
        let bundles = self.store.claim_keys(user_id).await?;
        Ok(ClaimResponse {
            bundles: bundles
                .into_iter()
                .map(|b| KeyBundle {
                    user_id: b.device.user_id,
                    device_id: b.device.device_id,
                    identity_key: b.device.identity_key,
                    signing_key: b.device.signing_key,
                    one_time_key: b
                        .one_time_key
                        .map(|(key_id, public_key)| OneTimeKey { key_id, public_key }),
                    fallback_key: b.fallback_key.map(|f| SignedKey {
                        key_id: f.key_id,
                        public_key: f.public_key,
                        signature: f.signature,
                    }),
                })
                .collect(),
        })
    }

    /// The identity and signing keys of every active device of `user_id`.
    pub async fn public_devices(
        &self,
        user_id: &vestnik_proto::UserId,
    ) -> Result<PublicDeviceList, AuthError> {
        self.require_active_user(user_id).await?;
        let devices = self.store.active_devices(&[user_id.to_string()]).await?;
        Ok(PublicDeviceList {
            devices: devices
                .into_iter()
                .map(|d| PublicDevice {
                    user_id: d.user_id,
                    device_id: d.device_id,
                    identity_key: d.identity_key,
                    signing_key: d.signing_key,
                })
                .collect(),
        })
    }

    /// Finds an active account by e-mail (contact discovery), rate-limited so
    /// the address space cannot be enumerated quickly.
    pub async fn lookup(
        &self,
        auth: &SessionAuth,
        email: &str,
    ) -> Result<vestnik_proto::LookupResponse, AuthError> {
        self.rate_limit(Action::LookupUser, &auth.user_id).await?;
        let email = vestnik_core::Email::parse(email)?;
        match self.store.user_by_email(email.as_str()).await? {
            // Hidden accounts answer as absent ones: nothing tells them apart.
            Some(u) if u.is_active() && u.find_by_email != "nobody" => {
                Ok(vestnik_proto::LookupResponse { user_id: u.id })
            }
            _ => Err(AuthError::UserNotFound),
        }
    }

    async fn require_active_user(&self, user_id: &str) -> Result<(), AuthError> {
        if !ids::is_valid_id(user_id) {
            return Err(AuthError::UserNotFound);
        }
        match self.store.user_by_id(user_id).await? {
            Some(u) if u.is_active() => Ok(()),
            _ => Err(AuthError::UserNotFound),
        }
    }
}
