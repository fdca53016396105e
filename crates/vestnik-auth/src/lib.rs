//! The auth service: registration by e-mail code, passwords, TOTP 2FA,
//! device-bound sessions with refresh rotation, and the audit log. It knows
//! nothing of HTTP: the gateway calls [`AuthService`] and maps [`AuthError`].
// The server's lint wall (as vestnik-crypto's): bad input and failed
// backends are errors, never a panic of the process.
#![deny(clippy::expect_used, clippy::panic, clippy::unwrap_used)]
#![warn(missing_docs)]

mod account;
pub mod device;
mod directory;
mod erasure;
mod error;
mod keys;
mod login;
mod password;
mod pow;
mod registration;
mod seed;
mod sessions;
mod tickets;
pub use sessions::NEAR_CACHED_PREFIXES;
mod totp;
mod twofactor;

use std::sync::Arc;
use vestnik_bus::{Kv, Limits, Signals};
use vestnik_core::Action;
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
    /// The client IP as the gateway determined it.
    pub ip: Option<String>,
    /// The `User-Agent` header, as sent.
    pub user_agent: Option<String>,
    /// The request id, to match an audit entry with the logs.
    pub request_id: Option<String>,
}

/// Tunables taken from the config.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Access token lifetime in seconds.
    pub access_ttl_secs: i64,
    /// Refresh token lifetime in seconds.
    pub refresh_ttl_secs: i64,
    /// Leading zero bits a proof of work must have.
    pub pow_difficulty: u32,
    /// Shown in authenticator apps.
    pub issuer: String,
}

/// Accounts, sessions, devices, 2FA, the key directory and the audit log; knows nothing of HTTP.
pub struct AuthService {
    store: Arc<dyn Store>,
    kv: Arc<dyn Kv>,
    limits: Arc<Limits>,
    mailer: Arc<dyn Mailer>,
    signals: Arc<dyn Signals>,
    clock: Arc<dyn Clock>,
    keys: ServerKeys,
    settings: AuthSettings,
    /// Verified against when an e-mail has no account, so a failed login takes
    /// the same time either way.
    dummy_hash: String,
}

impl AuthService {
    /// Builds the service. Hashes a dummy password once (argon2, slow), so a login with an
    /// unknown address takes as long as one with a wrong password.
    pub fn new(
        store: Arc<dyn Store>,
        cluster: &vestnik_bus::Cluster,
        limits: Arc<Limits>,
        mailer: Arc<dyn Mailer>,
        clock: Arc<dyn Clock>,
        keys: ServerKeys,
        settings: AuthSettings,
    ) -> Result<Self, AuthError> {
        let (kv, signals) = (cluster.kv.clone(), cluster.signals.clone());
        let dummy_hash = password::hash_password_blocking("vestnik-dummy-password-for-timing")?;
        Ok(Self {
            store,
            kv,
            limits,
            mailer,
            signals,
            clock,
            keys,
            settings,
            dummy_hash,
        })
    }

    /// The store this service reads and writes.
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

    /// Spends a token of `action` for `subject` (see the rate table).
    pub(crate) async fn rate_limit(&self, action: Action, subject: &str) -> Result<(), AuthError> {
        Ok(self.limits.check(action, subject).await?)
    }
}
