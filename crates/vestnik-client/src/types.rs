//! What the client hands to the application: events and history rows.
use serde::{Deserialize, Serialize};
use vestnik_proto::SystemEvent;

/// Who wrote a message, seen from this account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From another user.
    Incoming,
    /// From this account (this device or another of its devices).
    Outgoing,
}

/// Where a history row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    /// Written on this device, waiting in the local outbox for the server's `sent`.
    Pending,
    /// Accepted by the server (it has a message id and a sequence number).
    Sent,
    /// Received and decrypted.
    Received,
    /// Refused by the server for good (e.g. not a member, muted).
    Failed,
    /// Deleted for everyone by its sender or a group's manager; the body is
    /// gone from this device too.
    Deleted,
}

impl MessageState {
    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "pending" => MessageState::Pending,
            "sent" => MessageState::Sent,
            "received" => MessageState::Received,
            "deleted" => MessageState::Deleted,
            _ => MessageState::Failed,
        }
    }
}

/// A decrypted message that arrived for this device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// Server id (unique; duplicates are never emitted twice).
    pub message_id: String,
    pub conversation_id: String,
    /// Server-assigned order within the conversation.
    pub seq: i64,
    pub sender_user_id: String,
    pub sender_device_id: String,
    /// Server time, Unix milliseconds.
    pub sent_at: i64,
    /// The text.
    pub body: String,
    /// The sender's id for it.
    pub client_msg_id: String,
    /// Incoming, or Outgoing when another device of this account sent it.
    pub direction: Direction,
    /// It was an Olm pre-key message (it opened a new session).
    pub prekey: bool,
    /// For a group message: the Megolm session it was encrypted in (the
    /// sender starts a new one when members or their devices change).
    pub megolm_session_id: Option<String>,
    /// A file message's attachment (fetch it with `Client::download_attachment`).
    pub attachment: Option<Box<Attachment>>,
}

/// The server accepted a message from this device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    pub client_msg_id: String,
    pub message_id: String,
    pub conversation_id: String,
    pub seq: i64,
    pub sent_at: i64,
}

/// A device took delivery of a message this account sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReceipt {
    pub message_id: String,
    pub conversation_id: String,
    /// The recipient user.
    pub user_id: String,
    /// The recipient device.
    pub device_id: String,
    /// Server time, Unix milliseconds.
    pub at: i64,
}

/// Everything the client reports, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The WebSocket is open (the backlog follows).
    Connected,
    /// The backlog present at connect time has been stored and acknowledged.
    Synced,
    /// The WebSocket closed; the client reconnects by itself.
    Disconnected {
        /// Why, for logs.
        reason: String,
    },
    /// A new message, stored before this event and acknowledged after it.
    Message(ReceivedMessage),
    /// A delivery receipt for a message this account sent (each device once).
    Receipt(DeliveryReceipt),
    /// A message from the local outbox was accepted by the server.
    Sent(SentMessage),
    /// A message from the local outbox was refused for good.
    SendFailed {
        client_msg_id: String,
        /// The server's error code, or a description.
        reason: String,
    },
    /// A user sharing a conversation with this account added or removed a device.
    DevicesChanged { user_id: String },
    /// The sender edited an earlier message; its text is replaced in history.
    Edited {
        conversation_id: String,
        message_id: String,
        body: String,
        /// Server time of the edit, Unix milliseconds.
        edited_at: i64,
    },
    /// A user sharing a conversation with this account (or this account,
    /// from another device) changed their display name or picture; already
    /// cached (`Client::avatar` fetches a new picture when asked).
    ProfileChanged {
        user_id: String,
        display_name: Option<String>,
        /// The picture's id now; absent when none is set.
        avatar: Option<String>,
    },
    /// A group's membership or settings changed (stored and acknowledged
    /// before this event; each event once).
    System(SystemEvent),
    /// A member of a conversation started or stopped typing (not stored).
    Typing {
        conversation_id: String,
        user_id: String,
        typing: bool,
    },
    /// A member has read a conversation up to `seq`.
    Read {
        conversation_id: String,
        user_id: String,
        seq: i64,
    },
    /// A user's presence (after [`crate::Client::subscribe_presence`]); both
    /// fields are None when the user hides it.
    Presence {
        user_id: String,
        online: Option<bool>,
        /// Unix milliseconds of the last disconnect.
        last_seen: Option<i64>,
    },
    /// A message that could not be decrypted or parsed; it is acknowledged
    /// (and so dropped by the server) and never retried.
    Undecryptable {
        message_id: String,
        conversation_id: String,
        sender_user_id: String,
        sender_device_id: String,
        reason: String,
    },
    /// The server refused this device's tokens: it was logged out or
    /// revoked. The socket stops; log in again with a new store.
    SessionEnded { reason: String },
    /// The reader fell this many events behind and they were dropped
    /// (everything is still in [`crate::Client::history`]).
    Lagged { missed: u64 },
}

/// One row of a conversation's local history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Local id of the row.
    pub local_id: String,
    /// Server id; None while pending.
    pub message_id: Option<String>,
    pub client_msg_id: Option<String>,
    pub conversation_id: Option<String>,
    /// Server order; None while pending.
    pub seq: Option<i64>,
    pub sender_user_id: String,
    pub sender_device_id: String,
    pub direction: Direction,
    pub state: MessageState,
    pub body: String,
    /// Server time; None while pending.
    pub sent_at: Option<i64>,
    /// Devices that took delivery (outgoing messages), sorted.
    pub delivered_to: Vec<String>,
    /// A file message's attachment.
    pub attachment: Option<Attachment>,
    /// When it was last edited (server time), if it was.
    pub edited_at: Option<i64>,
}

/// A file sent in a message: where the (encrypted) object is, the key that
/// opens it and the digest that proves it is the one sent. It travels inside
/// the end-to-end-encrypted message, so the server never has the key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub media_id: String,
    /// The file key (`AttachmentKey`, base64); None for public-channel
    /// media, which is stored in the clear like the post itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Hex SHA-256 of the stored object.
    pub sha256: String,
    /// Bytes of the stored object.
    pub stored_size: u64,
    /// Bytes of the file.
    pub size: u64,
    /// The sender's file name (a display name only: never used as a path).
    pub name: String,
    pub mime: String,
    /// `image`, `video`, `audio` or `file`.
    pub class: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<Thumbnail>,
    /// When the server deletes the object (Unix ms).
    pub expires_at: i64,
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachment")
            .field("media_id", &self.media_id)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("size", &self.size)
            .field("name", &self.name)
            .field("mime", &self.mime)
            .field("class", &self.class)
            .finish_non_exhaustive()
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        if let Some(k) = self.key.as_mut() {
            zeroize::Zeroize::zeroize(k);
        }
    }
}

/// A small JPEG preview of an image, shown before the file is fetched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thumbnail {
    /// JPEG bytes, base64.
    pub jpeg: String,
    pub width: u32,
    pub height: u32,
}

/// Counters, mostly for tests and diagnostics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// WebSocket connections opened.
    pub connections: u64,
    /// Sockets re-authenticated in place after their access token expired.
    pub reauths: u64,
    /// Sends refused with `device_list_stale` and re-encrypted.
    pub stale_resends: u64,
    /// Sends repeated with the same `client_msg_id` (lost answer, reconnect).
    pub resends: u64,
    /// Incoming messages and receipts dropped as duplicates.
    pub duplicates: u64,
    /// Access tokens refreshed.
    pub refreshes: u64,
    /// One-time keys uploaded after registration.
    pub one_time_keys_uploaded: u64,
    /// Outbound Megolm sessions started (the first one per group, then rotations).
    pub group_sessions_started: u64,
    /// Megolm session keys sent to member devices (one per device).
    pub group_keys_shared: u64,
    /// Key requests sent for group messages whose session was unknown.
    pub key_requests_sent: u64,
}
