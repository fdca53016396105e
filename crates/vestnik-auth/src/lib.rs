//! The auth service: registration by e-mail code, passwords, TOTP 2FA,
//! device-bound sessions with refresh rotation, and the audit log. It knows
//! nothing of HTTP: the gateway calls [`AuthService`] and maps [`AuthError`].
// The server's lint wall (as vestnik-crypto's): bad input and failed
// backends are errors, never a panic of the process.
#![deny(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

pub mod device;
mod directory;
mod error;
mod keys;
mod login;
mod password;
mod pow;
mod registration;
mod seed;
mod sessions;
pub use sessions::NEAR_CACHED_PREFIXES;
mod totp;
mod twofactor;

use std::sync::Arc;
use vestnik_bus::{Kv, Rate, RateLimiter};
use vestnik_core::Clock;
use vestnik_mail::Mailer;
use vestnik_store::{AuditEvent, Store};

pub use directory::ONE_TIME_KEY_LOW_WATERMARK;
pub use error::AuthError;
pub use keys::{derive as derive_server_key, ServerKeys};
pub use password::{check_password_policy, hash_password};
pub use pow::solve as solve_pow;
pub use seed::SeededDevice;
pub use totp::totp_code_at;
pub use vestnik_store::SessionAuth;

/// Facts about the request that the audit log records.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

/// Tunables taken from the config.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub access_ttl_secs: i64,
    pub refresh_ttl_secs: i64,
    pub pow_difficulty: u32,
    pub auth_email_rate: Rate,
    /// Shown in authenticator apps.
    pub issuer: String,
}

pub struct AuthService {
    store: Arc<dyn Store>,
    kv: Arc<dyn Kv>,
    limiter: Arc<dyn RateLimiter>,
    mailer: Arc<dyn Mailer>,
    clock: Arc<dyn Clock>,
    keys: ServerKeys,
    settings: AuthSettings,
    /// Verified against when an e-mail has no account, so a failed login takes
    /// the same time either way.
    dummy_hash: String,
}

impl AuthService {
    pub fn new(
        store: Arc<dyn Store>,
        kv: Arc<dyn Kv>,
        limiter: Arc<dyn RateLimiter>,
        mailer: Arc<dyn Mailer>,
        clock: Arc<dyn Clock>,
        keys: ServerKeys,
        settings: AuthSettings,
    ) -> Result<Self, AuthError> {
        let dummy_hash = password::hash_password_blocking("vestnik-dummy-password-for-timing")?;
        Ok(Self {
            store,
            kv,
            limiter,
            mailer,
            clock,
            keys,
            settings,
            dummy_hash,
        })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    async fn audit(
        &self,
        meta: &RequestMeta,
        user_id: Option<&str>,
        device_id: Option<&str>,
        event: &str,
        detail: Option<String>,
    ) {
        let ev = self.audit_event(meta, user_id, device_id, event, detail);
        metrics::counter!("vestnik_auth_events_total", "event" => event.to_string()).increment(1);
        // A lost audit row must not fail the user's request, but it must be loud.
        if let Err(e) = self.store.append_audit(&ev).await {
            tracing::error!(error = %e, event, "audit write failed");
        }
    }

    fn audit_event(
        &self,
        meta: &RequestMeta,
        user_id: Option<&str>,
        device_id: Option<&str>,
        event: &str,
        detail: Option<String>,
    ) -> AuditEvent {
        AuditEvent {
            user_id: user_id.map(str::to_owned),
            device_id: device_id.map(str::to_owned),
            event: event.to_owned(),
            ip: meta.ip.clone(),
            user_agent: meta
                .user_agent
                .as_deref()
                .map(|s| s.chars().take(256).collect()),
            request_id: meta.request_id.clone(),
            detail,
            created_at: self.clock.now_ms(),
        }
    }

    async fn rate_limit(&self, key: &str, rate: Rate) -> Result<(), AuthError> {
        match self.limiter.check(key, rate).await? {
            vestnik_bus::Decision::Allowed => Ok(()),
            vestnik_bus::Decision::Limited { retry_after_ms } => {
                Err(AuthError::RateLimited { retry_after_ms })
            }
        }
    }
}
