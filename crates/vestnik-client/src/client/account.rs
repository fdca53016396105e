//! The account and this device's place in it: registering (the mailed
//! code), logging in a new device, reopening a stored one, two-factor
//! authentication and logging out.
use std::future::Future;

use reqwest::Method;
use vestnik_crypto::Device;
use vestnik_proto::{
    CodeRequest, LoginRequest, NewDeviceRequest, RecoveryCodes, RegisterRequest, SessionTokens,
    TotpSetup, VerifyRequest,
};

use super::Client;
use crate::api;
use crate::config::ClientConfig;
use crate::error::{ClientError, Result};
use crate::store::{Account, Store, Tokens};

/// The second factor for logging in to an account with 2FA on.
#[derive(Debug, Clone)]
pub enum SecondFactor {
    /// The current code of the authenticator app.
    Totp(String),
    /// One of the one-time recovery codes.
    RecoveryCode(String),
}

/// The `totp` and `recovery_code` fields of a request, from an optional factor.
pub(crate) type FactorFields = (Option<vestnik_proto::Secret>, Option<vestnik_proto::Secret>);

pub(crate) fn factor_fields(second: Option<SecondFactor>) -> FactorFields {
    match second {
        Some(SecondFactor::Totp(t)) => (Some(t.into()), None),
        Some(SecondFactor::RecoveryCode(r)) => (None, Some(r.into())),
        None => (None, None),
    }
}

impl Client {
    /// Starts registration: the server mails a 6-digit code to `email`
    /// (the answer is the same whether or not the address has an account).
    pub async fn request_registration_code(server_url: &str, email: &str) -> Result<()> {
        let base = server_url.trim_end_matches('/');
        let http = api::http_client(std::time::Duration::from_secs(30))?;
        let req = RegisterRequest {
            email: email.to_owned(),
            pow: None,
        };
        let _: vestnik_proto::Accepted =
            api::with_pow(
                req,
                |r, p| r.pow = Some(p),
                |r| {
                    let http = http.clone();
                    async move {
                        api::call_public(&http, base, Method::POST, "/v1/auth/register", &r).await
                    }
                },
            )
            .await?;
        Ok(())
    }

    /// Finishes registration with the mailed code: creates this device (new
    /// Olm account, keys published) and its store at `config.store_path`.
    pub async fn register(
        config: ClientConfig,
        email: &str,
        code: &str,
        password: &str,
    ) -> Result<Client> {
        let email_owned = email.to_owned();
        let (code, password) = (code.to_owned(), password.to_owned());
        Self::enroll(config, email, move |http, base, device| {
            let req = VerifyRequest {
                email: email_owned,
                code: code.into(),
                password: password.into(),
                device,
                pow: None,
            };
            async move {
                api::with_pow(
                    req,
                    |r, p| r.pow = Some(p),
                    |r| {
                        let http = http.clone();
                        let base = base.clone();
                        async move {
                            api::call_public(
                                &http,
                                &base,
                                Method::POST,
                                "/v1/auth/register/verify",
                                &r,
                            )
                            .await
                        }
                    },
                )
                .await
            }
        })
        .await
    }

    /// Logs in a new device of an existing account (with the second factor
    /// when 2FA is on; without it the server answers `totp_required`).
    pub async fn login(
        config: ClientConfig,
        email: &str,
        password: &str,
        second_factor: Option<SecondFactor>,
    ) -> Result<Client> {
        let email_owned = email.to_owned();
        let password = password.to_owned();
        Self::enroll(config, email, move |http, base, device| {
            let (totp, recovery_code) = factor_fields(second_factor);
            let req = LoginRequest {
                email: email_owned,
                password: password.into(),
                totp,
                recovery_code,
                device,
                pow: None,
            };
            async move {
                api::with_pow(
                    req,
                    |r, p| r.pow = Some(p),
                    |r| {
                        let http = http.clone();
                        let base = base.clone();
                        async move {
                            api::call_public(&http, &base, Method::POST, "/v1/auth/login", &r).await
                        }
                    },
                )
                .await
            }
        })
        .await
    }

    async fn enroll<F, Fut>(config: ClientConfig, email: &str, call: F) -> Result<Client>
    where
        F: FnOnce(reqwest::Client, String, NewDeviceRequest) -> Fut,
        Fut: Future<Output = Result<SessionTokens>>,
    {
        if config.one_time_keys > vestnik_crypto::MAX_ONE_TIME_KEYS_PER_UPLOAD {
            return Err(ClientError::InvalidInput(format!(
                "one_time_keys: expected at most {}, got {}",
                vestnik_crypto::MAX_ONE_TIME_KEYS_PER_UPLOAD,
                config.one_time_keys
            )));
        }
        let store = Store::open(&config.store_path, &config.store_key).await?;
        if store.account().await?.is_some() {
            store.close().await;
            return Err(ClientError::AlreadyRegistered(
                config.store_path.display().to_string(),
            ));
        }
        let mut device = Device::new();
        let keys = device.registration_keys(config.one_time_keys)?;
        let fallback_id = keys.fallback_key.key_id.clone();
        let request = NewDeviceRequest {
            name: config.device_name.clone(),
            platform: config.platform.clone(),
            identity_key: keys.identity_key,
            signing_key: keys.signing_key,
            fallback_key: vestnik_proto::SignedKey {
                key_id: keys.fallback_key.key_id,
                public_key: keys.fallback_key.public_key,
                signature: keys.fallback_key.signature,
            },
            one_time_keys: keys
                .one_time_keys
                .into_iter()
                .map(|k| vestnik_proto::OneTimeKey {
                    key_id: k.key_id,
                    public_key: k.public_key,
                })
                .collect(),
        };
        let http = api::http_client(config.request_timeout)?;
        let tokens = match call(http, config.server_url.clone(), request).await {
            Ok(t) => t,
            Err(e) => {
                store.close().await;
                return Err(e);
            }
        };
        device.mark_published();
        let account = Account {
            server_url: config.server_url.clone(),
            email: email.to_owned(),
            user_id: tokens.user_id,
            device_id: tokens.device_id,
        };
        let tokens = Tokens {
            access_token: tokens.access_token.into_exposed(),
            refresh_token: tokens.refresh_token.into_exposed(),
        };
        store
            .save_registration(&account, &tokens, &store.seal_device(&device)?)
            .await?;
        store
            .set_fallback_uploaded(&fallback_id, crate::store::now_ms())
            .await?;
        Self::start(config, store, account, tokens, device)
    }

    /// Opens the device stored at `config.store_path` (after a restart).
    pub async fn open(config: ClientConfig) -> Result<Client> {
        let store = Store::open(&config.store_path, &config.store_key).await?;
        let loaded = async {
            let account = store.account().await?;
            let tokens = store.tokens().await?;
            let device = store.device().await?;
            Ok::<_, ClientError>((account, tokens, device))
        }
        .await;
        match loaded {
            Ok((Some(account), Some(tokens), Some(device))) => {
                Self::start(config, store, account, tokens, device)
            }
            Ok((Some(_), None, Some(_))) => {
                store.close().await;
                Err(ClientError::SessionEnded(
                    "the stored device has no session (logged out or revoked)".into(),
                ))
            }
            Ok(_) => {
                store.close().await;
                Err(ClientError::NotRegistered(
                    config.store_path.display().to_string(),
                ))
            }
            Err(e) => {
                store.close().await;
                Err(e)
            }
        }
    }

    /// Starts TOTP setup: a secret for the authenticator app.
    pub async fn setup_totp(&self) -> Result<TotpSetup> {
        self.inner
            .api
            .call::<(), _>(Method::POST, "/v1/auth/2fa/setup", None)
            .await
    }

    /// Confirms TOTP setup with a current code; returns the recovery codes.
    pub async fn enable_totp(&self, code: &str) -> Result<RecoveryCodes> {
        self.inner
            .api
            .post("/v1/auth/2fa/enable", &CodeRequest { code: code.into() })
            .await
    }

    /// Turns TOTP off: the account's password and a current code or a
    /// recovery code.
    pub async fn disable_totp(&self, password: &str, code: &str) -> Result<()> {
        self.inner
            .api
            .call_unit(
                Method::POST,
                "/v1/auth/2fa/disable",
                Some(&vestnik_proto::TotpDisableRequest {
                    password: password.into(),
                    code: code.into(),
                }),
            )
            .await
    }

    /// Ends this device's session on the server and closes the client. The
    /// store keeps the history but can no longer be opened as a device.
    pub async fn logout(self) -> Result<()> {
        self.disconnect().await;
        let r = self
            .inner
            .api
            .call_unit::<()>(Method::POST, "/v1/auth/logout", None)
            .await;
        if r.is_ok() {
            self.inner.api.clear_tokens().await?;
        }
        self.close().await;
        r
    }
}
