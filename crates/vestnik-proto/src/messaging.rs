//! Message delivery: the send body, envelopes, what arrives, receipts,
//! acks, read markers, and the WebSocket frames (JSON, tagged by `type`).
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    ChannelPost, ConversationId, DeviceId, PresenceVisibility, PublicDevice, Secret, SystemEvent,
    UserId,
};

/// One ciphertext for one recipient device.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// The recipient device.
    pub device_id: DeviceId,
    /// Olm message type: 0 = pre-key, 1 = normal.
    #[schema(minimum = 0, maximum = 1)]
    pub msg_type: u8,
    /// Base64 ciphertext.
    #[schema(schema_with = crate::schema::ciphertext)]
    pub ciphertext: String,
}

/// How a message is encrypted, which decides what the server checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SendKind {
    /// Olm: one envelope for every device of every member except the sending
    /// device, exactly the current list (else 409 `device_list_stale`).
    #[default]
    Message,
    /// Olm to some member devices only (group key shares and key requests).
    Keys,
    /// Megolm: one `ciphertext` for every member device, stored once.
    /// Groups only.
    Group,
    /// A channel post by its owner or a publisher: `ciphertext` stored once,
    /// read by subscribers from the log and pushed live to those online.
    Channel,
}

/// A message. Direct chats: `envelopes`. Groups: `kind = group` and `ciphertext`.
/// With `message` and `keys`: 1 to 40 (`keys`: 1,000) envelopes, each device
/// once, and no `ciphertext`; with `group` and `channel`: `ciphertext` and no
/// envelopes. A body that breaks these rules is refused with 422.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    /// Chosen by the client; a retry with the same id gets the same answer.
    #[schema(schema_with = crate::schema::client_msg_id)]
    pub client_msg_id: String,
    /// A conversation the caller may send to.
    pub conversation_id: ConversationId,
    /// How the message is encrypted; default `message`.
    #[serde(default, skip_serializing_if = "is_default_kind")]
    pub kind: SendKind,
    /// With `message` and `keys`: one ciphertext per recipient device.
    #[serde(default)]
    #[schema(max_items = 1000)]
    pub envelopes: Vec<Envelope>,
    /// For `kind = group`: the Megolm message, base64; for `kind = channel`:
    /// the post (base64 of the plaintext in a public channel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schema::optional_ciphertext)]
    pub ciphertext: Option<String>,
}

fn is_default_kind(k: &SendKind) -> bool {
    *k == SendKind::Message
}

/// The server stored a message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Sent {
    /// As the client sent it.
    pub client_msg_id: String,
    /// The id the server gave the message.
    pub message_id: String,
    /// The conversation it was sent to.
    pub conversation_id: String,
    /// Position in the conversation, increasing in the order stored.
    pub seq: i64,
    /// When the server stored it, Unix milliseconds.
    pub sent_at: i64,
}

/// An encrypted message for this device.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct IncomingMessage {
    /// The message's id.
    pub message_id: String,
    /// The conversation it was sent to.
    pub conversation_id: String,
    /// Position in the conversation, increasing in the order stored.
    pub seq: i64,
    /// The sender.
    pub sender_user_id: String,
    /// The sender's device that sent it.
    pub sender_device_id: String,
    /// 0 = Olm pre-key, 1 = Olm, 2 = Megolm (a group message).
    pub msg_type: u8,
    /// Base64: the envelope for this device, or the group's one Megolm ciphertext.
    pub ciphertext: String,
    /// When the server stored it, Unix milliseconds.
    pub sent_at: i64,
}

/// A device of `user_id` took delivery of messages this account sent: one
/// receipt covers everything that device acknowledged of one conversation
/// in one go (so a backlog of 500 costs one receipt per sender device, not 500).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Receipt {
    /// The first of `message_ids`.
    pub message_id: String,
    /// Every message this receipt covers (`message_id` included).
    #[serde(default)]
    pub message_ids: Vec<String>,
    /// The conversation of those messages.
    pub conversation_id: String,
    /// The recipient who took delivery.
    pub user_id: String,
    /// The recipient's device that took delivery.
    pub device_id: String,
    /// `delivered`.
    pub kind: String,
    /// When the device acknowledged them, Unix milliseconds.
    pub at: i64,
}

/// What is waiting for the calling device, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PendingPage {
    /// `message`, `receipt` and `system` frames, in delivery order.
    pub items: Vec<ServerFrame>,
    /// More are waiting: fetch again with `after` = the last item's cursor.
    pub more: bool,
}

impl ServerFrame {
    /// The delivery cursor of a `message`, `receipt` or `system` frame.
    pub fn cursor(&self) -> Option<i64> {
        match self {
            ServerFrame::Message { cursor, .. }
            | ServerFrame::Receipt { cursor, .. }
            | ServerFrame::System { cursor, .. } => Some(*cursor),
            _ => None,
        }
    }
}

/// Acknowledge delivered items: the server deletes them (and queues receipts to the senders).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    /// Cursors of items this device has safely stored.
    #[schema(max_items = 1000)]
    pub cursors: Vec<i64>,
}

/// How far one member has read a conversation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ReadMarker {
    /// The member.
    pub user_id: String,
    /// The last seq they have read.
    pub seq: i64,
    /// When they marked it, Unix milliseconds.
    pub at: i64,
}

/// The members' read markers of a conversation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReadMarkers {
    /// One per member who has marked anything read.
    pub markers: Vec<ReadMarker>,
}

/// Mark a conversation read up to a seq (a marker only moves forward).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadRequest {
    /// Up to the conversation's last seq (a seq beyond it: 422).
    #[schema(minimum = 1)]
    pub seq: i64,
}

/// A one-use ticket to open the WebSocket (browsers cannot send an `Authorization` header there).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WsTicket {
    /// Pass as `?ticket=` to `/v1/ws` within `expires_in` seconds; works once.
    #[schema(value_type = String)]
    pub ticket: Secret,
    /// Seconds the ticket stays valid, from now.
    pub expires_in: i64,
}

/// The current devices of the conversation's members, sent with 409
/// `device_list_stale` so the client re-encrypts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct StaleDevices {
    /// Every current device of every member.
    pub devices: Vec<PublicDevice>,
}

// WebSocket frames

/// A frame a client sends on the WebSocket.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Send a message, as `POST /v1/messages`; answered with `sent` or `error`.
    Send(SendMessage),
    /// Acknowledge delivered items, as `POST /v1/messages/ack`.
    Ack(AckRequest),
    /// Answered with `pong`.
    Ping {
        /// Any text; echoed in the `pong`.
        nonce: Option<String>,
    },
    /// "typing…" in a conversation: relayed to the other members, never stored.
    Typing {
        /// A conversation the caller belongs to.
        conversation_id: ConversationId,
        /// True when typing started, false when it stopped.
        typing: bool,
    },
    /// Ask for the presence of users one shares a conversation with (at most
    /// 100); answered with one `presence` frame each, and changes follow.
    SubscribePresence {
        /// The users to watch.
        user_ids: Vec<UserId>,
    },
    /// This account has read the conversation up to `seq` (only moves forward).
    Read {
        /// The conversation read.
        conversation_id: ConversationId,
        /// The last seq read.
        seq: i64,
    },
    /// A fresh access token of this socket's device: the answer to
    /// `reauth_required`, or sent whenever the client refreshed. Answered
    /// with `reauthed`, or an `error`.
    Reauth {
        /// The new access token.
        #[schema(value_type = String, max_length = 128)]
        access_token: Secret,
    },
}

/// A frame the server sends on the WebSocket (`message`, `receipt` and
/// `system` also in `GET /v1/messages/pending`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// A message for this device; acknowledge with its cursor.
    Message {
        /// Delivery cursor: acknowledge with it, or pass as `after` to page on.
        cursor: i64,
        /// The message.
        #[serde(flatten)]
        message: IncomingMessage,
    },
    /// Messages this account sent were delivered to a device; acknowledge with its cursor.
    Receipt {
        /// Delivery cursor: acknowledge with it, or pass as `after` to page on.
        cursor: i64,
        /// The receipt.
        #[serde(flatten)]
        receipt: Receipt,
    },
    /// A membership or settings change; acknowledge with its cursor.
    System {
        /// Delivery cursor: acknowledge with it, or pass as `after` to page on.
        cursor: i64,
        /// The change.
        #[serde(flatten)]
        event: SystemEvent,
    },
    /// A new post in a channel this account subscribes to (live only: read
    /// the log by seq to catch up; nothing to acknowledge).
    ChannelPost(ChannelPost),
    /// The answer to a `send` frame: the message is stored.
    Sent(Sent),
    /// The backlog present at connect time has been sent.
    Synced,
    /// A member of the conversation started or stopped typing (never stored).
    Typing {
        /// The conversation.
        conversation_id: String,
        /// The member typing.
        user_id: String,
        /// True when typing started, false when it stopped.
        typing: bool,
    },
    /// `user_id` has read `conversation_id` up to `seq`.
    Read {
        /// The conversation read.
        conversation_id: String,
        /// The member who read it.
        user_id: String,
        /// The last seq they have read.
        seq: i64,
    },
    /// `last_seen` is Unix ms of the last disconnect; both are absent when the
    /// user hides their presence.
    Presence {
        /// The user watched.
        user_id: String,
        /// Whether any of their devices is connected; absent when hidden.
        online: Option<bool>,
        /// Unix milliseconds of their last disconnect; absent when hidden or never seen.
        last_seen: Option<i64>,
    },
    /// A user who shares a conversation with this account added or removed a device.
    DevicesChanged {
        /// The user whose devices changed: fetch them again before encrypting for them.
        user_id: String,
    },
    /// A user who shares a conversation with this account (or the account
    /// itself, from another device) changed their profile.
    ProfileChanged {
        /// Whose.
        user_id: String,
        /// The display name now; absent when none is set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        display_name: Option<String>,
        /// The profile picture's id now; absent when none is set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        avatar: Option<String>,
    },
    /// The answer to a `ping`.
    Pong {
        /// The `ping`'s nonce, as sent.
        nonce: Option<String>,
    },
    /// A client frame was refused; the connection stays open.
    Error {
        /// Stable snake_case code, as in HTTP error bodies.
        code: String,
        /// Human-readable explanation.
        message: String,
        /// The refused `send`'s `client_msg_id`; absent for other frames.
        #[serde(skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
        /// With `device_list_stale`: the devices to encrypt for.
        #[serde(skip_serializing_if = "Option::is_none")]
        devices: Option<Vec<PublicDevice>>,
        /// With `rate_limited` and `too_many_in_flight`: try again after this
        /// many milliseconds (the refused message was not stored).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// The access token this socket was opened with has expired: send
    /// `reauth` with a fresh one within `within_ms`, or the socket closes
    /// with code 4002 (`reauthenticate`).
    ReauthRequired {
        /// Milliseconds left to send `reauth`.
        within_ms: u64,
    },
    /// This device's one-time keys on the server fell below the low
    /// watermark (others claimed them): upload more (`PUT /v1/keys`).
    KeysLow {
        /// One-time keys the server still holds for this device.
        one_time_keys: i64,
    },
    /// The `reauth` was accepted: the socket lasts until the new token expires.
    Reauthed {
        /// Seconds until the new access token expires.
        expires_in: i64,
    },
}

/// Who may find the caller by e-mail address.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscoverySettings {
    /// `everyone` (the default) or `nobody`: then a lookup of the address
    /// answers 404 `user_not_found`, exactly as for an address without an account.
    pub find_by_email: crate::Discoverability,
}

/// Who may see the caller's presence.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresenceSettings {
    /// `everyone`, `contacts` (people one shares a conversation with) or `nobody`.
    pub visibility: PresenceVisibility,
}
