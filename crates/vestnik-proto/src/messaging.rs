//! Key directory, conversations and message delivery: the REST bodies and the
//! WebSocket frames (JSON, tagged by `type`).
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    AssignableRole, ChannelVisibility, ConversationId, DeviceId, OneTimeKey, PresenceVisibility,
    Secret, SignedKey, UserId,
};

// ---------- key directory ----------

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeysUpload {
    /// Unique key ids, not already held (a repeated id: 422); at most 500 held per device.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub one_time_keys: Vec<OneTimeKey>,
    /// Replaces the device's fallback key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_key: Option<SignedKey>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyCount {
    pub one_time_keys: i64,
    /// Clients should upload more when the count falls below this.
    pub low_watermark: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    pub user_id: UserId,
}

/// What a sender needs to open an Olm session with one device.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct KeyBundle {
    pub user_id: String,
    pub device_id: String,
    pub identity_key: String,
    pub signing_key: String,
    /// A one-time key, popped for this claim; absent when the pool is empty.
    pub one_time_key: Option<OneTimeKey>,
    pub fallback_key: Option<SignedKey>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClaimResponse {
    pub bundles: Vec<KeyBundle>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct PublicDevice {
    pub user_id: String,
    pub device_id: String,
    pub identity_key: String,
    pub signing_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublicDeviceList {
    pub devices: Vec<PublicDevice>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupRequest {
    #[schema(schema_with = crate::schema::email)]
    pub email: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct LookupResponse {
    pub user_id: String,
}

// ---------- conversations ----------

/// A conversation to open, by `kind` (its schema is written out in
/// [`create_conversation_schema`]: utoipa's own for an internally tagged enum
/// leaves the direct variant open and closes the others against their tag).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CreateConversation {
    /// The pair's one direct conversation (found when it exists: 200).
    Direct {
        /// The other user.
        peer_user_id: UserId,
    },
    /// A group owned by the caller (201).
    Group(NewGroupSettings),
    /// A channel owned by the caller (201).
    Channel(NewChannelSettings),
}

impl utoipa::PartialSchema for CreateConversation {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        create_conversation_schema()
    }
}

impl ToSchema for CreateConversation {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::PartialSchema;
        schemas.push((UserId::name().into(), UserId::schema()));
        schemas.push((
            ChannelVisibility::name().into(),
            ChannelVisibility::schema(),
        ));
    }
}

/// One closed object per kind: `kind` and that kind's fields, nothing else.
fn create_conversation_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{
        AdditionalProperties, Object, ObjectBuilder, OneOfBuilder, Schema, Type,
    };
    use utoipa::openapi::RefOr;
    use utoipa::PartialSchema;
    fn closed(kind: &str, description: &str, fields: RefOr<Schema>) -> Object {
        let mut o = match fields {
            RefOr::T(Schema::Object(o)) => o,
            _ => Object::new(),
        };
        o.properties.insert(
            "kind".into(),
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([kind]))
                .into(),
        );
        o.required.insert(0, "kind".into());
        o.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
        o.description = Some(description.into());
        o
    }
    let direct = ObjectBuilder::new()
        .property(
            "peer_user_id",
            RefOr::Ref(utoipa::openapi::Ref::from_schema_name("UserId")),
        )
        .required("peer_user_id")
        .into();
    OneOfBuilder::new()
        .item(closed(
            "direct",
            "The pair's one direct conversation (200 when it already exists).",
            direct,
        ))
        .item(closed(
            "group",
            "A group owned by the caller (201).",
            NewGroupSettings::schema(),
        ))
        .item(closed(
            "channel",
            "A channel owned by the caller (201).",
            NewChannelSettings::schema(),
        ))
        .description(Some("A conversation to open, by `kind`."))
        .into()
}

/// A new group: its first members besides the creator (who becomes the
/// owner) join as `member`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroupSettings {
    /// At most 1,000 (add more later) and within `group_max_members` (else 409 `group_full`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 1000)]
    pub member_user_ids: Vec<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schema::title)]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schema::topic)]
    pub topic: Option<String>,
}

/// A new channel: its first members join as `subscriber`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChannelSettings {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 1000)]
    pub member_user_ids: Vec<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schema::title)]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schema::topic)]
    pub topic: Option<String>,
    /// `public` (anyone may subscribe; posts are plaintext to subscribers) or
    /// `private` (by invite; posts encrypted with a channel key the owner
    /// shares over Olm). Default `private`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<ChannelVisibility>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Member {
    pub user_id: String,
    /// `owner`, `admin`, `member`; in a channel `owner`, `publisher`, `subscriber`.
    pub role: String,
    pub joined_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Conversation {
    pub id: String,
    /// `direct`, `group` or `channel`.
    pub kind: String,
    pub member_user_ids: Vec<String>,
    /// With roles; listed by `GET /v1/conversations/{id}` only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Member>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// A media reference chosen by the client (opaque to the server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_ref: Option<String>,
    /// Channels: `public` or `private`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
    pub created_at: i64,
}

/// One post in a channel's log (or a group message read from its log).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ChannelPost {
    pub message_id: String,
    pub conversation_id: String,
    pub seq: i64,
    pub sender_user_id: String,
    pub sender_device_id: String,
    /// 2 = encrypted with the channel key (private), 3 = plaintext (public).
    pub msg_type: u8,
    /// Base64 (of the plaintext, in a public channel).
    pub ciphertext: String,
    pub sent_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChannelPosts {
    pub posts: Vec<ChannelPost>,
    /// More are waiting: read again with `after` = the last post's seq.
    pub more: bool,
}

/// Changes to a group's or channel's settings; absent fields stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct UpdateConversation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schema::title)]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schema::topic)]
    pub topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schema::avatar_ref)]
    pub avatar_ref: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    pub user_id: UserId,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    /// Groups: `admin` or `member`. Channels: `publisher` or `subscriber`
    /// (a role of the other kind: 422).
    pub role: AssignableRole,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferOwnership {
    /// A member who becomes the owner; the old owner becomes an admin (publisher).
    pub user_id: UserId,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvite {
    /// Default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 10_000)]
    pub max_uses: Option<i64>,
    /// 60 s to 30 days; default 7 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 60, maximum = 2_592_000)]
    pub ttl_secs: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Invite {
    /// Shown once: anyone holding it can join with `POST /v1/invites/{token}/join`.
    #[schema(value_type = String)]
    pub token: Secret,
    pub conversation_id: String,
    pub max_uses: i64,
    pub expires_at: i64,
}

/// Something that happened to a conversation, queued to every member device
/// (and to the member it concerns, when they were removed or left).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct SystemEvent {
    pub event_id: String,
    pub conversation_id: String,
    /// `created`, `member_added`, `member_joined`, `member_left`,
    /// `member_removed`, `role_changed`, `owner_changed` or `updated`.
    pub event: String,
    pub actor_user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConversationList {
    pub conversations: Vec<Conversation>,
}

// ---------- messages ----------

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

// ---------- WebSocket frames ----------

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
