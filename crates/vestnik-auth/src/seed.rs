//! Operator/benchmark bootstrap: accounts with devices and long-lived sessions
//! created straight in the store, skipping e-mail and argon2 (the load tool's
//! scenarios are about delivery, not login cost). Seeded accounts cannot log
//! in with a password: their hash is a marker no password matches.
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use rand::RngCore;
use vestnik_core::ids;
use vestnik_store::{FallbackKey, NewDevice, UserStatus};

use crate::{AuthError, AuthService};

/// A seeded device and its access token.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SeededDevice {
    /// The seeded account's user id.
    pub user_id: String,
    /// The seeded device's id.
    pub device_id: String,
    /// A bearer token for the device, valid for the `token_ttl_secs` given.
    pub access_token: String,
}

fn random_key() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    STANDARD_NO_PAD.encode(b)
}

impl AuthService {
    /// Creates `email` (if new) with `devices` devices whose access tokens live
    /// `token_ttl_secs`. The device keys are random placeholders: seeded
    /// devices cannot run real Olm, which benchmarks of the server do not need.
    pub async fn seed_account(
        &self,
        email: &str,
        devices: usize,
        token_ttl_secs: i64,
    ) -> Result<Vec<SeededDevice>, AuthError> {
        let email = vestnik_core::Email::parse(email)?;
        let now = self.clock.now_ms();
        let user_id = match self.store.user_by_email(email.as_str()).await? {
            Some(u) => u.id,
            None => {
                let id = ids::new_id();
                self.store
                    .upsert_admin(&id, email.as_str(), "!seeded", now)
                    .await?;
                let u = self
                    .store
                    .user_by_email(email.as_str())
                    .await?
                    .ok_or(AuthError::UserNotFound)?;
                self.store
                    .set_user_status(&u.id, UserStatus::Active, now)
                    .await?;
                self.store.set_admin(&u.id, false).await?;
                u.id
            }
        };
        let mut out = Vec::with_capacity(devices);
        for _ in 0..devices {
            let device_id = ids::new_id();
            let device = NewDevice {
                id: device_id.clone(),
                user_id: user_id.clone(),
                name: "seeded".into(),
                platform: "bench".into(),
                identity_key: random_key(),
                signing_key: random_key(),
                fallback_key: FallbackKey {
                    key_id: "fb".into(),
                    public_key: random_key(),
                    signature: random_key(),
                },
                one_time_keys: Vec::new(),
                created_at: now,
            };
            let (mut session, tokens) = self.new_session(&user_id, &device_id, now);
            session.access_expires_at = now + token_ttl_secs * 1000;
            self.store
                .create_device_session(&device, &session, i64::MAX)
                .await?;
            out.push(SeededDevice {
                user_id: user_id.clone(),
                device_id,
                access_token: tokens.access_token.into_exposed(),
            });
        }
        self.forget_devices(&user_id, Default::default()).await?;
        Ok(out)
    }
}
