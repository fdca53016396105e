//! Conversations: creating direct chats, groups and channels, their
//! settings, members, roles, invites, channel posts and system events.
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{AssignableRole, ChannelVisibility, InviteId, Secret, UserId};

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
    /// Display name, 1 to 128 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schema::title)]
    pub title: Option<String>,
    /// Description, up to 1,024 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schema::topic)]
    pub topic: Option<String>,
}

/// A new channel: its first members join as `subscriber`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChannelSettings {
    /// First subscribers besides the owner: at most 1,000 (more join later).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 1000)]
    pub member_user_ids: Vec<UserId>,
    /// Display name, 1 to 128 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schema::title)]
    pub title: Option<String>,
    /// Description, up to 1,024 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schema::topic)]
    pub topic: Option<String>,
    /// `public` (anyone may subscribe; posts are plaintext to subscribers) or
    /// `private` (by invite; posts encrypted with a channel key the owner
    /// shares over Olm). Default `private`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<ChannelVisibility>,
}

/// A member of a conversation and their role.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Member {
    /// The member.
    pub user_id: String,
    /// `owner`, `admin`, `member`; in a channel `owner`, `publisher`, `subscriber`.
    pub role: String,
    /// When they joined, Unix milliseconds.
    pub joined_at: i64,
}

/// A direct conversation, group or channel the caller belongs to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Conversation {
    /// The conversation's id.
    pub id: String,
    /// `direct`, `group` or `channel`.
    pub kind: String,
    /// Every member; empty for a channel in the conversation list (its
    /// subscribers are private to its owner).
    pub member_user_ids: Vec<String>,
    /// With roles; listed by `GET /v1/conversations/{id}` only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Member>,
    /// In the answer to a create or an add only: users whose settings did
    /// not let the caller add them, who were sent an invitation instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invited_user_ids: Vec<String>,
    /// Groups and channels: the display name; absent when none is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Groups and channels: the description; absent when none is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// A media reference chosen by the client (opaque to the server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_ref: Option<String>,
    /// Channels: `public` or `private`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
    /// When the conversation was created, Unix milliseconds.
    pub created_at: i64,
}

/// One post in a channel's log (or a group message read from its log).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ChannelPost {
    /// The post's id.
    pub message_id: String,
    /// The channel (or group).
    pub conversation_id: String,
    /// Position in the conversation's log, increasing in the order stored.
    pub seq: i64,
    /// The author.
    pub sender_user_id: String,
    /// The author's device that sent it.
    pub sender_device_id: String,
    /// 2 = encrypted with the channel key (private), 3 = plaintext
    /// (public), 4 = a deletion record: the post whose id is `ciphertext`
    /// was deleted for everyone (its sender is who deleted it).
    pub msg_type: u8,
    /// Base64 (of the plaintext, in a public channel); with `msg_type` 4,
    /// the deleted post's id.
    pub ciphertext: String,
    /// When the server stored it, Unix milliseconds.
    pub sent_at: i64,
}

/// A page of a channel's log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChannelPosts {
    /// In seq order, oldest first.
    pub posts: Vec<ChannelPost>,
    /// More are waiting: read again with `after` = the last post's seq.
    pub more: bool,
}

/// Changes to a group's or channel's settings; absent fields stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct UpdateConversation {
    /// Display name, 1 to 128 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schema::title)]
    pub title: Option<String>,
    /// Description, up to 1,024 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schema::topic)]
    pub topic: Option<String>,
    /// Avatar: a media reference chosen by the client (opaque to the
    /// server), up to 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schema::avatar_ref)]
    pub avatar_ref: Option<String>,
}

/// Add a user to a group or channel.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    /// The user to add; they join as `member` (groups) or `subscriber` (channels).
    pub user_id: UserId,
}

/// Mute a member: their sends here are refused (403 `muted`) for a while.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MuteMember {
    /// How long, in seconds: a minute to a year.
    #[schema(minimum = 60, maximum = 31_536_000)]
    pub duration_secs: i64,
}

/// Change a member's role.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    /// Groups: `admin` or `member`. Channels: `publisher` or `subscriber`
    /// (a role of the other kind: 422).
    pub role: AssignableRole,
}

/// Hand a group or channel to another member.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferOwnership {
    /// A member who becomes the owner; the old owner becomes an admin (publisher).
    pub user_id: UserId,
}

/// Create an invite link to a group or channel.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvite {
    /// How many users may join with it, 1 to 10,000; default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 10_000)]
    pub max_uses: Option<i64>,
    /// Seconds until it expires: 60 s to 30 days; default 7 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 60, maximum = 2_592_000)]
    pub ttl_secs: Option<i64>,
}

/// A new invite link.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Invite {
    /// Shown once: anyone holding it can join with `POST /v1/invites/{token}/join`.
    #[schema(value_type = String)]
    pub token: Secret,
    /// Names the link in the group's invite list, to revoke it.
    pub invite_id: InviteId,
    /// The group or channel it joins.
    pub conversation_id: String,
    /// How many users may join with it.
    pub max_uses: i64,
    /// When it stops working, Unix milliseconds.
    pub expires_at: i64,
}

/// An invite link as the group's managers see it (its token is shown only
/// when created).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct InviteSummary {
    /// Names the link, to revoke it.
    pub invite_id: InviteId,
    /// Who created it; it stops working when they are removed, banned or
    /// lose the right to invite.
    pub created_by: String,
    /// Users who joined with it.
    pub uses: i64,
    /// Users who may join with it.
    pub max_uses: i64,
    /// Unix milliseconds.
    pub expires_at: i64,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// A group's or channel's working invite links, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct InviteList {
    /// The links.
    pub invites: Vec<InviteSummary>,
}

/// Ban a user from a group or channel: removed if a member, and kept out
/// (no invite or add lets them back) until unbanned.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BanMember {
    /// Who to ban.
    pub user_id: UserId,
}

/// A user banned from a group or channel.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Ban {
    /// Who is kept out.
    pub user_id: String,
    /// The manager who banned them; absent once that account is deleted.
    pub banned_by: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// A group's or channel's ban list, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct BanList {
    /// The bans.
    pub bans: Vec<Ban>,
}

/// Something that happened to a conversation, queued to every member device
/// (and to the member it concerns, when they were removed or left).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct SystemEvent {
    /// The event's id.
    pub event_id: String,
    /// The conversation it happened to.
    pub conversation_id: String,
    /// `created`, `member_added`, `member_joined`, `member_left`,
    /// `member_removed`, `member_banned`, `member_unbanned`, `member_muted`,
    /// `member_unmuted`, `role_changed`, `owner_changed`, `updated`,
    /// `invited` (to the invitee only) or `message_deleted`.
    pub event: String,
    /// The user who made the change (the member themself for `member_joined`
    /// and `member_left`). Empty for a change the server made when an account
    /// was deleted: a `member_left` of that account (members tell who from
    /// their member list) and the `owner_changed` to its successor.
    pub actor_user_id: String,
    /// The member it concerns, with `member_added`, `member_removed`,
    /// `role_changed` and `owner_changed`; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_user_id: Option<String>,
    /// The target's new role, with `role_changed` and `owner_changed` (`owner`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// With `member_muted`: until when, Unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
    /// With `message_deleted`: the message deleted for everyone (clients
    /// remove it and show that it was deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// When it happened, Unix milliseconds.
    pub at: i64,
}

/// The conversations the caller belongs to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConversationList {
    /// Direct chats, groups and channels alike.
    pub conversations: Vec<Conversation>,
}
