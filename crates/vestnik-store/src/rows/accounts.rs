//! Accounts: users, e-mail codes, devices and their keys, sessions and
//! the audit log (and the outcomes of the operations on them).

/// Where an account stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    /// Registered, e-mail not verified yet.
    Pending,
    /// Verified; may sign in.
    Active,
    /// Turned off by an administrator; may not sign in.
    Disabled,
}

impl UserStatus {
    /// The name stored in `users.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }
}

/// An account.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    /// The user's id.
    pub id: String,
    /// The address the account signs in with (unique).
    pub email: String,
    /// Argon2 PHC string; None until registration completes.
    pub password_hash: Option<String>,
    /// A [`UserStatus`] name.
    pub status: String,
    /// A server administrator.
    pub is_admin: bool,
    /// The TOTP secret, sealed with the server's key; None without 2FA.
    pub totp_secret_enc: Option<String>,
    /// The last TOTP time step used (a code of it or an earlier one is refused).
    pub totp_last_step: Option<i64>,
    /// A TOTP secret set up but not yet confirmed, sealed.
    pub totp_pending_enc: Option<String>,
    /// When the pending secret lapses unconfirmed.
    pub totp_pending_expires_at: Option<i64>,
    /// When the account was created.
    pub created_at: i64,
    /// Who may find it by address: `everyone` or `nobody`.
    pub find_by_email: String,
    /// Who may add it to groups: `everyone`, `contacts` or `nobody`.
    pub group_adds: String,
}

impl UserRow {
    /// The account is active.
    pub fn is_active(&self) -> bool {
        self.status == UserStatus::Active.as_str()
    }
    /// 2FA is on.
    pub fn totp_enabled(&self) -> bool {
        self.totp_secret_enc.is_some()
    }
}

/// What an [`AccountCodeRow`] confirms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePurpose {
    /// Setting a new password without the old one.
    PasswordReset,
    /// Moving the account to `new_email`.
    EmailChange,
}

impl CodePurpose {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            CodePurpose::PasswordReset => "password_reset",
            CodePurpose::EmailChange => "email_change",
        }
    }
}

/// A code mailed to confirm a change to an existing account.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountCodeRow {
    /// The account.
    pub user_id: String,
    /// [`CodePurpose::as_str`].
    pub purpose: String,
    /// Keyed hash of the code (never the code).
    pub code_hash: String,
    /// For an e-mail change: the address the code went to.
    pub new_email: Option<String>,
    /// When the code stops working.
    pub expires_at: i64,
    /// Wrong guesses so far.
    pub attempts: i64,
    /// When it was sent (resends are throttled from this).
    pub sent_at: i64,
}

/// The verification code last mailed to an address.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EmailCodeRow {
    /// The address.
    pub email: String,
    /// None for a notice sent to an address that already has an account: the
    /// row still throttles resends so both cases look alike from outside.
    pub code_hash: Option<String>,
    /// When the code stops working.
    pub expires_at: i64,
    /// Wrong guesses so far.
    pub attempts: i64,
    /// When it was sent (resends are throttled from this).
    pub sent_at: i64,
}

/// A device's signed fallback key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackKey {
    /// Client-chosen key id.
    pub key_id: String,
    /// Curve25519 public key, base64.
    pub public_key: String,
    /// Ed25519 signature by the device's signing key, base64.
    pub signature: String,
}

/// A device to add, with its first keys.
#[derive(Debug, Clone)]
pub struct NewDevice {
    /// The device's id.
    pub id: String,
    /// Its owner.
    pub user_id: String,
    /// The name the user gave it.
    pub name: String,
    /// The platform it reported (`linux`, `android`, `web`…).
    pub platform: String,
    /// Curve25519 identity key, base64.
    pub identity_key: String,
    /// Ed25519 signing key, base64.
    pub signing_key: String,
    /// Its signed fallback key.
    pub fallback_key: FallbackKey,
    /// (key id, public key)
    pub one_time_keys: Vec<(String, String)>,
    /// When it was added.
    pub created_at: i64,
}

/// The message a (sending device, `client_msg_id`) key already names.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredRetry {
    /// The stored message.
    pub id: String,
    /// Its conversation: a key reused for another one is refused.
    pub conversation_id: String,
    /// Its seq in that conversation.
    pub seq: i64,
    /// When it was stored (Unix ms).
    pub created_at: i64,
}

/// What an ownership transfer came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferOutcome {
    /// `to` owns the conversation now.
    Transferred,
    /// `from` no longer owned it when the transaction ran (another transfer won).
    NotOwner,
    /// `to` is not a member.
    NotMember,
}

/// What one revocation ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevokedDevices {
    /// Devices revoked by this call (those already revoked are not repeated).
    pub device_ids: Vec<String>,
    /// The access-token hashes of their sessions, for caches to forget.
    pub access_hashes: Vec<String>,
}

/// A user's public profile.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ProfileRow {
    /// The user.
    pub id: String,
    /// None when not set.
    pub display_name: Option<String>,
    /// The media id of the profile picture; None when not set.
    pub avatar_media_id: Option<String>,
}

/// What deleting an account changed, for the services to announce and clean.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErasedAccount {
    /// Every device the account had (revoked ones too).
    pub device_ids: Vec<String>,
    /// Groups and channels it was a plain member of: (id, kind).
    pub left: Vec<(String, String)>,
    /// Groups and channels it owned that passed to someone.
    pub succession: Vec<Succession>,
    /// Groups and channels it owned alone: deleted.
    pub dissolved: Vec<String>,
    /// Its direct conversations: deleted.
    pub direct: Vec<String>,
    /// Blob objects of its media (rows already deleted).
    pub object_keys: Vec<String>,
}

/// A group or channel whose owner's account was deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Succession {
    /// The conversation.
    pub conversation_id: String,
    /// `group` or `channel`.
    pub kind: String,
    /// Who owns it now.
    pub new_owner: String,
}

/// A stored device.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeviceRow {
    /// The device's id.
    pub id: String,
    /// Its owner.
    pub user_id: String,
    /// The name the user gave it.
    pub name: String,
    /// The platform it reported (`linux`, `android`, `web`…).
    pub platform: String,
    /// Curve25519 identity key, base64.
    pub identity_key: String,
    /// Ed25519 signing key, base64.
    pub signing_key: String,
    /// When it was added.
    pub created_at: i64,
}

/// A session to open for a device.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The session's id.
    pub id: String,
    /// The signed-in user.
    pub user_id: String,
    /// The device it belongs to.
    pub device_id: String,
    /// Hash of the access token (the token itself is never stored).
    pub access_hash: String,
    /// When the access token expires.
    pub access_expires_at: i64,
    /// Hash of the refresh token.
    pub refresh_hash: String,
    /// When the refresh token expires.
    pub refresh_expires_at: i64,
    /// When the session was opened.
    pub created_at: i64,
}

/// The tokens a refresh-token rotation gives the session next.
#[derive(Debug, Clone)]
pub struct NextTokens {
    /// Hash of the new access token.
    pub access_hash: String,
    /// When it expires.
    pub access_expires_at: i64,
    /// Hash of the new refresh token.
    pub refresh_hash: String,
    /// When it expires.
    pub refresh_expires_at: i64,
    /// This pair, sealed for a retry of the rotation (see `RotateOutcome::Retry`).
    pub sealed: Vec<u8>,
}

/// What an access token grants, as cached on the hot path.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionAuth {
    /// The session.
    pub session_id: String,
    /// The signed-in user.
    pub user_id: String,
    /// The session's device.
    pub device_id: String,
    /// When the access token expires.
    pub access_expires_at: i64,
    /// The user is a server administrator.
    pub is_admin: bool,
}

/// What presenting a refresh token came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The session now holds the next tokens.
    Rotated {
        /// The session, as the new access token grants it.
        session: SessionAuth,
        /// The replaced access token's hash, for caches to forget.
        old_access_hash: String,
    },
    /// The token was rotated moments ago (after `retry_since`) and its
    /// successor is still the session's: the same client retrying, most
    /// likely, whose answer was lost. It gets the sealed successor back.
    Retry {
        /// The successor pair, as sealed in [`NextTokens::sealed`].
        sealed: Vec<u8>,
        /// The session's user.
        user_id: String,
        /// The session's device.
        device_id: String,
    },
    /// An already rotated refresh token came back: someone holds a copy.
    Reused {
        /// The session's user.
        user_id: String,
        /// The session's device.
        device_id: String,
    },
    /// The refresh token has expired.
    Expired,
    /// No session has this refresh token.
    Unknown,
}

/// Everything `complete_registration` writes in its one transaction.
#[derive(Debug, Clone)]
pub struct CompleteRegistration {
    /// The pending account's address.
    pub email: String,
    /// Hash of the code checked; the stored one must still be it.
    pub code_hash: String,
    /// Argon2 PHC string of the chosen password.
    pub password_hash: String,
    /// The first device.
    pub device: NewDevice,
    /// Its first session.
    pub session: NewSession,
    /// The audit event to record.
    pub audit: AuditEvent,
    /// The time of the registration.
    pub now: i64,
}

/// An audit event to record.
#[derive(Debug, Clone, Default)]
pub struct AuditEvent {
    /// The account concerned, when known.
    pub user_id: Option<String>,
    /// The device concerned or acting, when any.
    pub device_id: Option<String>,
    /// What happened, snake_case (`login_ok`, `verify_failed`…).
    pub event: String,
    /// The client's IP address.
    pub ip: Option<String>,
    /// The request's `User-Agent`.
    pub user_agent: Option<String>,
    /// The request's id.
    pub request_id: Option<String>,
    /// Short JSON with event-specific facts (never secrets).
    pub detail: Option<String>,
    /// When it happened.
    pub created_at: i64,
}

/// A recorded audit event (see [`AuditEvent`] for the fields).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    /// Increasing with time; pages are cut by it.
    pub id: i64,
    /// The account concerned.
    pub user_id: Option<String>,
    /// The device concerned or acting.
    pub device_id: Option<String>,
    /// What happened.
    pub event: String,
    /// The client's IP address.
    pub ip: Option<String>,
    /// The request's `User-Agent`.
    pub user_agent: Option<String>,
    /// The request's id.
    pub request_id: Option<String>,
    /// Event-specific JSON.
    pub detail: Option<String>,
    /// When it happened.
    pub created_at: i64,
}
