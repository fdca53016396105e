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

#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// This pair, sealed for a retry of the rotation (see `RotateOutcome::Retry`).
    pub sealed: Vec<u8>,
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
    /// The token was rotated moments ago (after `retry_since`) and its
    /// successor is still the session's: the same client retrying, most
    /// likely, whose answer was lost. It gets the sealed successor back.
    Retry {
        sealed: Vec<u8>,
        user_id: String,
        device_id: String,
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

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConversationRow {
    pub id: String,
    pub kind: String,
    pub created_at: i64,
    /// The newest message's sequence number (0 when empty).
    pub last_seq: i64,
    pub title: Option<String>,
    pub topic: Option<String>,
    pub avatar_ref: Option<String>,
    /// Channels: `public` or `private`.
    pub visibility: Option<String>,
}

/// A member and their role (`owner`, `admin`, `member`; channels: `owner`,
/// `publisher`, `subscriber`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MemberRow {
    pub user_id: String,
    pub role: String,
    pub joined_at: i64,
}

/// A new group or channel: the creator becomes its owner.
#[derive(Debug, Clone)]
pub struct NewGroup {
    pub id: String,
    /// `group` or `channel`.
    pub kind: String,
    pub creator: String,
    /// Everyone else, with the role each starts with.
    pub members: Vec<(String, String)>,
    pub title: Option<String>,
    pub topic: Option<String>,
    /// Channels: `public` or `private`.
    pub visibility: Option<String>,
    pub created_at: i64,
}

/// One device's acknowledgement of outbox items.
#[derive(Debug, Clone)]
pub struct AckBatchItem {
    pub device_id: String,
    pub user_id: String,
    pub cursors: Vec<i64>,
}

/// A system event to queue for members' devices.
#[derive(Debug, Clone)]
pub struct SystemEventRow {
    pub event_id: String,
    pub conversation_id: String,
    pub actor: String,
    /// The event as JSON.
    pub body: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A stored group or channel message, read from the conversation's log.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LogRow {
    pub id: String,
    pub seq: i64,
    pub sender_user_id: String,
    pub sender_device_id: String,
    pub msg_type: i64,
    pub body: String,
    pub created_at: i64,
}

/// An invite link's stored half: the token itself is only ever shown once.
#[derive(Debug, Clone)]
pub struct InviteRow {
    pub token_hash: String,
    pub conversation_id: String,
    pub created_by: String,
    pub max_uses: i64,
    pub expires_at: i64,
    pub created_at: i64,
}

/// What adding a member (directly or by invite) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinOutcome {
    Joined,
    AlreadyMember,
    /// Unknown, expired or used up: indistinguishable to the caller.
    Invalid,
    Full,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PublicDeviceRow {
    pub user_id: String,
    pub device_id: String,
    pub identity_key: String,
    pub signing_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyBundleRow {
    pub device: PublicDeviceRow,
    /// (key id, public key)
    pub one_time_key: Option<(String, String)>,
    pub fallback_key: Option<FallbackKey>,
}

/// One envelope: (recipient device, Olm message type, base64 ciphertext).
pub type EnvelopeRow = (String, i64, String);

#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: String,
    pub conversation_id: String,
    pub sender_user_id: String,
    pub sender_device_id: String,
    pub client_msg_id: String,
    pub created_at: i64,
    /// Olm messages: one ciphertext per device. Group messages: the devices
    /// to deliver to, each with an empty body, and the ciphertext in `group_body`.
    pub envelopes: Vec<EnvelopeRow>,
    /// A Megolm message stored once for every member device: (msg_type, body).
    pub group_body: Option<(i64, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub message_id: String,
    pub seq: i64,
    pub created_at: i64,
    /// True when this was a retry of an already stored message.
    pub duplicate: bool,
    /// The outbox rows written: (cursor, recipient device).
    pub outbox: Vec<(i64, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub device_id: String,
    pub kind: String,
    pub message_id: String,
    pub conversation_id: String,
    pub seq: i64,
    pub sender_user_id: String,
    pub sender_device_id: String,
    pub msg_type: i64,
    pub body: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendContext {
    /// Empty when the conversation does not exist.
    pub members: Vec<String>,
    pub devices: Vec<PublicDeviceRow>,
    /// Some member has blocked the sender.
    pub blocked: bool,
    /// `direct` or `group`; empty when the conversation does not exist.
    pub kind: String,
}

/// One media object's metadata (the object itself is in the blob store).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MediaRow {
    pub id: String,
    pub owner_id: String,
    pub conversation_id: String,
    pub object_key: String,
    /// Bytes of the stored (encrypted) object.
    pub size: i64,
    /// Hex SHA-256 of the stored object.
    pub sha256: String,
    /// `image`, `video`, `audio` or `file`.
    pub class: String,
    /// `pending` until the upload is verified, then `ready`.
    pub state: String,
    pub created_at: i64,
    /// A pending upload not completed by then is abandoned.
    pub upload_expires_at: i64,
    pub expires_at: i64,
    /// The server-made preview's object (public-channel images).
    pub thumbnail_key: Option<String>,
}

/// Why a media row could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaCreate {
    Created,
    /// The owner's bytes plus this upload would pass the quota.
    OverQuota {
        used: i64,
    },
}
