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
    pub conversation_id: ConversationId,
    #[serde(default, skip_serializing_if = "is_default_kind")]
    pub kind: SendKind,
    #[serde(default)]
    #[schema(max_items = 1000)]
    pub envelopes: Vec<Envelope>,
    /// For `kind = group`: the Megolm message, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schema::optional_ciphertext)]
    pub ciphertext: Option<String>,
}

fn is_default_kind(k: &SendKind) -> bool {
    *k == SendKind::Message
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Sent {
    pub client_msg_id: String,
    pub message_id: String,
    pub conversation_id: String,
    pub seq: i64,
    pub sent_at: i64,
}

/// An encrypted message for this device.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct IncomingMessage {
    pub message_id: String,
    pub conversation_id: String,
    pub seq: i64,
    pub sender_user_id: String,
    pub sender_device_id: String,
    /// 0 = Olm pre-key, 1 = Olm, 2 = Megolm (a group message).
    pub msg_type: u8,
    pub ciphertext: String,
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
    pub conversation_id: String,
    pub user_id: String,
    pub device_id: String,
    /// `delivered`.
    pub kind: String,
    pub at: i64,
}

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

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    /// Cursors of items this device has safely stored.
    #[schema(max_items = 1000)]
    pub cursors: Vec<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ReadMarker {
    pub user_id: String,
    pub seq: i64,
    pub at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReadMarkers {
    pub markers: Vec<ReadMarker>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadRequest {
    /// Up to the conversation's last seq (a seq beyond it: 422).
    #[schema(minimum = 1)]
    pub seq: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WsTicket {
    /// Pass as `?ticket=` to `/v1/ws` within `expires_in` seconds; works once.
    #[schema(value_type = String)]
    pub ticket: Secret,
    pub expires_in: i64,
}

/// The current devices of the conversation's members, sent with 409
/// `device_list_stale` so the client re-encrypts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct StaleDevices {
    pub devices: Vec<PublicDevice>,
}

// WebSocket frames

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    Send(SendMessage),
    Ack(AckRequest),
    Ping {
        nonce: Option<String>,
    },
    /// "typing…" in a conversation: relayed to the other members, never stored.
    Typing {
        conversation_id: ConversationId,
        typing: bool,
    },
    /// Ask for the presence of users one shares a conversation with (at most
    /// 100); answered with one `presence` frame each, and changes follow.
    SubscribePresence {
        user_ids: Vec<UserId>,
    },
    /// This account has read the conversation up to `seq` (only moves forward).
    Read {
        conversation_id: ConversationId,
        seq: i64,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// A message or receipt; acknowledge with its cursor.
    Message {
        cursor: i64,
        #[serde(flatten)]
        message: IncomingMessage,
    },
    Receipt {
        cursor: i64,
        #[serde(flatten)]
        receipt: Receipt,
    },
    /// A membership or settings change; acknowledge with its cursor.
    System {
        cursor: i64,
        #[serde(flatten)]
        event: SystemEvent,
    },
    /// A new post in a channel this account subscribes to (live only: read
    /// the log by seq to catch up; nothing to acknowledge).
    ChannelPost(ChannelPost),
    Sent(Sent),
    /// The backlog present at connect time has been sent.
    Synced,
    /// A member of the conversation started or stopped typing (never stored).
    Typing {
        conversation_id: String,
        user_id: String,
        typing: bool,
    },
    /// `user_id` has read `conversation_id` up to `seq`.
    Read {
        conversation_id: String,
        user_id: String,
        seq: i64,
    },
    /// `last_seen` is Unix ms of the last disconnect; both are absent when the
    /// user hides their presence.
    Presence {
        user_id: String,
        online: Option<bool>,
        last_seen: Option<i64>,
    },
    /// A user who shares a conversation with this account added or removed a device.
    DevicesChanged {
        user_id: String,
    },
    Pong {
        nonce: Option<String>,
    },
    Error {
        code: String,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        devices: Option<Vec<PublicDevice>>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresenceSettings {
    pub visibility: PresenceVisibility,
}
