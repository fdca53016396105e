//! Rows and parameter bundles, backend-neutral: ids and keys are text, times
//! are Unix milliseconds.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Pending,
    Active,
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub password_hash: Option<String>,
    pub status: String,
    pub is_admin: bool,
    pub totp_secret_enc: Option<String>,
    pub totp_last_step: Option<i64>,
    pub totp_pending_enc: Option<String>,
    pub totp_pending_expires_at: Option<i64>,
    pub created_at: i64,
}

impl UserRow {
    pub fn is_active(&self) -> bool {
        self.status == UserStatus::Active.as_str()
    }
    pub fn totp_enabled(&self) -> bool {
        self.totp_secret_enc.is_some()
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EmailCodeRow {
    pub email: String,
    /// None for a notice sent to an address that already has an account: the
    /// row still throttles resends so both cases look alike from outside.
    pub code_hash: Option<String>,
    pub expires_at: i64,
    pub attempts: i64,
    pub sent_at: i64,
}

#[derive(Debug, Clone)]
pub struct FallbackKey {
    pub key_id: String,
    pub public_key: String,
    pub signature: String,
}

#[derive(Debug, Clone)]
pub struct NewDevice {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub platform: String,
    pub identity_key: String,
    pub signing_key: String,
    pub fallback_key: FallbackKey,
    /// (key id, public key)
    pub one_time_keys: Vec<(String, String)>,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeviceRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub platform: String,
    pub identity_key: String,
    pub signing_key: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub user_id: String,
    pub device_id: String,
    pub access_hash: String,
    pub access_expires_at: i64,
    pub refresh_hash: String,
    pub refresh_expires_at: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct NextTokens {
    pub access_hash: String,
    pub access_expires_at: i64,
    pub refresh_hash: String,
    pub refresh_expires_at: i64,
}

/// What an access token grants, as cached on the hot path.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionAuth {
    pub session_id: String,
    pub user_id: String,
    pub device_id: String,
    pub access_expires_at: i64,
    pub is_admin: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    Rotated {
        session: SessionAuth,
        old_access_hash: String,
    },
    /// An already rotated refresh token came back: someone holds a copy.
    Reused {
        user_id: String,
        device_id: String,
    },
    Expired,
    Unknown,
}

#[derive(Debug, Clone)]
pub struct CompleteRegistration {
    pub email: String,
    pub code_hash: String,
    pub password_hash: String,
    pub device: NewDevice,
    pub session: NewSession,
    pub audit: AuditEvent,
    pub now: i64,
}

#[derive(Debug, Clone, Default)]
pub struct AuditEvent {
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    pub event: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// Short JSON with event-specific facts (never secrets).
    pub detail: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    pub event: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub detail: Option<String>,
    pub created_at: i64,
}
