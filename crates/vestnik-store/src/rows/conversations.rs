//! Conversations: groups and channels, members, invites, messages and the
//! outbox, the key directory's bundles, and media.
use super::FallbackKey;

/// A conversation.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConversationRow {
    /// The conversation's id.
    pub id: String,
    /// `direct`, `group` or `channel`.
    pub kind: String,
    /// When it was created.
    pub created_at: i64,
    /// The newest message's sequence number (0 when empty).
    pub last_seq: i64,
    /// Groups and channels: display name.
    pub title: Option<String>,
    /// Groups and channels: description.
    pub topic: Option<String>,
    /// A client-chosen media reference (opaque to the server).
    pub avatar_ref: Option<String>,
    /// Channels: `public` or `private`.
    pub visibility: Option<String>,
}

/// A member and their role (`owner`, `admin`, `member`; channels: `owner`,
/// `publisher`, `subscriber`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MemberRow {
    /// The member.
    pub user_id: String,
    /// Their role.
    pub role: String,
    /// When they joined.
    pub joined_at: i64,
}

/// A new group or channel: the creator becomes its owner.
#[derive(Debug, Clone)]
pub struct NewGroup {
    /// The conversation's id.
    pub id: String,
    /// `group` or `channel`.
    pub kind: String,
    /// The owner.
    pub creator: String,
    /// Everyone else, with the role each starts with.
    pub members: Vec<(String, String)>,
    /// Display name.
    pub title: Option<String>,
    /// Description.
    pub topic: Option<String>,
    /// Channels: `public` or `private`.
    pub visibility: Option<String>,
    /// When it was created.
    pub created_at: i64,
}

/// One device's acknowledgement of outbox items.
#[derive(Debug, Clone)]
pub struct AckBatchItem {
    /// The acknowledging device.
    pub device_id: String,
    /// Its owner (named in the receipts).
    pub user_id: String,
    /// The outbox ids acknowledged.
    pub cursors: Vec<i64>,
}

/// A system event to queue for members' devices.
#[derive(Debug, Clone)]
pub struct SystemEventRow {
    /// The event's id.
    pub event_id: String,
    /// The conversation it happened to.
    pub conversation_id: String,
    /// The user who made the change.
    pub actor: String,
    /// The event as JSON.
    pub body: String,
    /// When it happened.
    pub created_at: i64,
    /// When undelivered copies are dropped.
    pub expires_at: i64,
}

/// A stored group or channel message, read from the conversation's log.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LogRow {
    /// The message's id.
    pub id: String,
    /// Its position in the conversation.
    pub seq: i64,
    /// The sender.
    pub sender_user_id: String,
    /// The sender's device.
    pub sender_device_id: String,
    /// 2 = Megolm or channel key, 3 = plaintext (public channel).
    pub msg_type: i64,
    /// The ciphertext (or plaintext), base64.
    pub body: String,
    /// When it was stored.
    pub created_at: i64,
}

/// An invite link's stored half: the token itself is only ever shown once.
#[derive(Debug, Clone)]
pub struct InviteRow {
    /// Hash of the token.
    pub token_hash: String,
    /// The group or channel it joins.
    pub conversation_id: String,
    /// Who made it.
    pub created_by: String,
    /// How many users may join with it.
    pub max_uses: i64,
    /// When it stops working.
    pub expires_at: i64,
    /// When it was made.
    pub created_at: i64,
}

/// What adding a member (directly or by invite) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinOutcome {
    /// The user is now a member.
    Joined,
    /// The user already was one; nothing changed.
    AlreadyMember,
    /// Unknown, expired or used up: indistinguishable to the caller.
    Invalid,
    /// The conversation has reached its member limit.
    Full,
    /// The user is banned from the conversation.
    Banned,
}

/// A working invite link as its group's managers list it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InviteListRow {
    /// Hash of the token.
    pub token_hash: String,
    /// Who made it.
    pub created_by: String,
    /// Joins so far.
    pub uses: i64,
    /// Joins allowed.
    pub max_uses: i64,
    /// When it stops working.
    pub expires_at: i64,
    /// When it was made.
    pub created_at: i64,
}

/// An invitation to a group or channel, waiting for its user's answer.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InvitationRow {
    /// The group or channel.
    pub conversation_id: String,
    /// Who is invited.
    pub user_id: String,
    /// The manager who tried to add them (None once that account is deleted).
    pub invited_by: Option<String>,
    /// When.
    pub created_at: i64,
    /// When it lapses.
    pub expires_at: i64,
}

/// Who sent a stored message, where and when.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MessageMeta {
    /// The conversation.
    pub conversation_id: String,
    /// The sender.
    pub sender_user_id: String,
    /// When it was stored.
    pub created_at: i64,
}

/// A user banned from a group or channel.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BanRow {
    /// Who is kept out.
    pub user_id: String,
    /// The manager who banned them (None once that account is deleted).
    pub banned_by: Option<String>,
    /// When.
    pub created_at: i64,
}

/// A device's owner and public identity keys.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PublicDeviceRow {
    /// The owner.
    pub user_id: String,
    /// The device.
    pub device_id: String,
    /// Curve25519 identity key, base64.
    pub identity_key: String,
    /// Ed25519 signing key, base64.
    pub signing_key: String,
}

/// What a claim hands out for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyBundleRow {
    /// The device and its identity keys.
    pub device: PublicDeviceRow,
    /// (key id, public key)
    pub one_time_key: Option<(String, String)>,
    /// Its fallback key, when it has one.
    pub fallback_key: Option<FallbackKey>,
}

/// One envelope: (recipient device, Olm message type, base64 ciphertext).
pub type EnvelopeRow = (String, i64, String);

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The id it gets, unless it is a retry.
    pub id: String,
    /// The conversation.
    pub conversation_id: String,
    /// The sender.
    pub sender_user_id: String,
    /// The sending device.
    pub sender_device_id: String,
    /// The client's id, unique per sending device (a retry repeats it).
    pub client_msg_id: String,
    /// When it is stored.
    pub created_at: i64,
    /// Olm messages: one ciphertext per device. Group messages: the devices
    /// to deliver to, each with an empty body, and the ciphertext in `group_body`.
    pub envelopes: Vec<EnvelopeRow>,
    /// A Megolm message stored once for every member device: (msg_type, body).
    pub group_body: Option<(i64, String)>,
}

/// What storing one message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The message's id (the stored one's, for a retry).
    pub message_id: String,
    /// Its position in the conversation.
    pub seq: i64,
    /// When it was stored.
    pub created_at: i64,
    /// True when this was a retry of an already stored message.
    pub duplicate: bool,
    /// The outbox rows written: (cursor, recipient device).
    pub outbox: Vec<(i64, String)>,
}

/// One item queued for one device: a message, a receipt or a system event.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxRow {
    /// The delivery cursor.
    pub id: i64,
    /// The recipient device.
    pub device_id: String,
    /// `message`, `receipt` or `system`.
    pub kind: String,
    /// The message (for a receipt: the first one covered; for an event: its id).
    pub message_id: String,
    /// The conversation.
    pub conversation_id: String,
    /// Messages: the position in the conversation.
    pub seq: i64,
    /// The sender; for a receipt, the recipient who took delivery; for an event, its actor.
    pub sender_user_id: String,
    /// The sending device; for a receipt, the device that took delivery.
    pub sender_device_id: String,
    /// Messages: the Olm or Megolm message type.
    pub msg_type: i64,
    /// Base64 ciphertext; for a receipt, the JSON list of message ids
    /// covered; for an event, its JSON.
    pub body: String,
    /// When it was queued.
    pub created_at: i64,
}

/// What the send path checks about a conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendContext {
    /// Empty when the conversation does not exist.
    pub members: Vec<String>,
    /// The members' active devices.
    pub devices: Vec<PublicDeviceRow>,
    /// Some member has blocked the sender.
    pub blocked: bool,
    /// Until when the sender is muted here (Unix ms), if a manager muted them.
    pub sender_muted_until: Option<i64>,
    /// `direct` or `group`; empty when the conversation does not exist.
    pub kind: String,
}

/// One media object's metadata (the object itself is in the blob store).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MediaRow {
    /// The media's id.
    pub id: String,
    /// The uploader.
    pub owner_id: String,
    /// The conversation whose members may download it.
    pub conversation_id: String,
    /// The object's key in the blob store.
    pub object_key: String,
    /// Bytes of the stored (encrypted) object.
    pub size: i64,
    /// Hex SHA-256 of the stored object.
    pub sha256: String,
    /// `image`, `video`, `audio` or `file`.
    pub class: String,
    /// `pending` until the upload is verified, then `ready`.
    pub state: String,
    /// When the upload was granted.
    pub created_at: i64,
    /// A pending upload not completed by then is abandoned.
    pub upload_expires_at: i64,
    /// When the media is deleted.
    pub expires_at: i64,
    /// The server-made preview's object (public-channel images).
    pub thumbnail_key: Option<String>,
}

/// Why a media row could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaCreate {
    /// The row was created.
    Created,
    /// The owner's bytes plus this upload would pass the quota.
    OverQuota {
        /// Bytes the owner holds now.
        used: i64,
    },
}

/// What replacing a profile picture did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AvatarSwap {
    /// Done; the previous picture's row (now deleted), if there was one.
    Replaced {
        /// Its objects are still to be deleted.
        previous: Option<Box<MediaRow>>,
    },
    /// The new picture would pass the owner's quota; nothing changed.
    OverQuota {
        /// Bytes the owner holds without the previous picture.
        used: i64,
    },
    /// No such user (deleted meanwhile); nothing changed.
    NoSuchUser,
}

/// A user's blocks, both ways.
#[derive(Debug, Clone, Default)]
pub struct BlockRelations {
    /// Users this user blocked.
    pub blocked: Vec<String>,
    /// Users who blocked this user.
    pub blocked_by: Vec<String>,
}

impl BlockRelations {
    /// Either blocked the other.
    pub fn between(&self, other: &str) -> bool {
        self.blocked
            .iter()
            .chain(&self.blocked_by)
            .any(|u| u == other)
    }
}
