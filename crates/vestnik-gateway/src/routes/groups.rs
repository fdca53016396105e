//! Group settings, membership, roles and invite links.
use axum::extract::State;
use axum::http::StatusCode;
use std::sync::Arc;
use vestnik_proto::{
    AddMember, BanList, BanMember, ChannelPosts, Conversation, ConversationId, CreateInvite,
    ErrorBody, Invite, InviteId, InviteList, MessageId, MuteMember, PublicDeviceList, SetRole,
    TransferOwnership, UpdateConversation, UserId,
};

use crate::extract::{in_range, Authed, Checked, Json, Path, Query};
use crate::{ApiError, Gateway};

/// A conversation with its members and their roles (members only).
#[utoipa::path(get, path = "/v1/conversations/{id}", tag = "groups", security(("bearer" = [])),
    params(("id" = ConversationId, Path, description = "conversation id")),
    responses((status = 200, body = Conversation), (status = 404, body = ErrorBody)))]
pub async fn get_conversation(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path(id): Path<vestnik_proto::ConversationId>,
) -> Result<axum::Json<Conversation>, ApiError> {
    Ok(axum::Json(
        gw.realtime.conversation_detail(&auth, &id).await?,
    ))
}

/// Change a group's title, topic or avatar (owner or admin).
#[utoipa::path(patch, path = "/v1/conversations/{id}", tag = "groups", security(("bearer" = [])), request_body = UpdateConversation,
    params(("id" = ConversationId, Path, description = "conversation id")),
    responses((status = 200, body = Conversation), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_conversation(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path(id): Path<vestnik_proto::ConversationId>,
    Json(req): Json<UpdateConversation>,
) -> Result<axum::Json<Conversation>, ApiError> {
    Ok(axum::Json(gw.realtime.update_group(&auth, &id, req).await?))
}

/// Every active device of every member: whom to share group keys with.
#[utoipa::path(get, path = "/v1/conversations/{id}/devices", tag = "groups", security(("bearer" = [])),
    params(("id" = ConversationId, Path, description = "conversation id")),
    responses((status = 200, body = PublicDeviceList), (status = 404, body = ErrorBody)))]
pub async fn conversation_devices(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path(id): Path<vestnik_proto::ConversationId>,
) -> Result<axum::Json<PublicDeviceList>, ApiError> {
    Ok(axum::Json(
        gw.realtime.conversation_devices(&auth, &id).await?,
    ))
}

/// Add a member (owner or admin); 409 `group_full` at the size limit, 403
/// `banned` while the user is banned.
#[utoipa::path(post, path = "/v1/conversations/{id}/members", tag = "groups", security(("bearer" = [])), request_body = AddMember,
    params(("id" = ConversationId, Path, description = "conversation id")),
    responses((status = 200, body = Conversation), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn add_member(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path(id): Path<vestnik_proto::ConversationId>,
    Json(req): Json<AddMember>,
) -> Result<axum::Json<Conversation>, ApiError> {
    Ok(axum::Json(
        gw.realtime.add_member(&auth, &id, &req.user_id).await?,
    ))
}

/// Remove a member, or leave (your own user id). The owner transfers
/// ownership before leaving (409 `owner_must_transfer`).
#[utoipa::path(delete, path = "/v1/conversations/{id}/members/{user_id}", tag = "groups", security(("bearer" = [])),
    params(("id" = ConversationId, Path, description = "conversation id"), ("user_id" = UserId, Path, description = "member")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove_member(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path((id, user_id)): Path<(ConversationId, UserId)>,
) -> Result<StatusCode, ApiError> {
    gw.realtime.remove_member(&auth, &id, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Make a member an admin or a plain member (owner only).
#[utoipa::path(put, path = "/v1/conversations/{id}/members/{user_id}/role", tag = "groups", security(("bearer" = [])), request_body = SetRole,
    params(("id" = ConversationId, Path, description = "conversation id"), ("user_id" = UserId, Path, description = "member")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_role(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path((id, user_id)): Path<(ConversationId, UserId)>,
    Json(req): Json<SetRole>,
) -> Result<StatusCode, ApiError> {
    gw.realtime.set_role(&auth, &id, &user_id, req.role).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Hand the group to another member; the old owner becomes an admin.
#[utoipa::path(post, path = "/v1/conversations/{id}/owner", tag = "groups", security(("bearer" = [])), request_body = TransferOwnership,
    params(("id" = ConversationId, Path, description = "conversation id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn transfer_ownership(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path(id): Path<vestnik_proto::ConversationId>,
    Json(req): Json<TransferOwnership>,
) -> Result<StatusCode, ApiError> {
    gw.realtime
        .transfer_ownership(&auth, &id, &req.user_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create an invite link (owner or admin); the token is shown only here.
#[utoipa::path(post, path = "/v1/conversations/{id}/invites", tag = "groups", security(("bearer" = [])), request_body = CreateInvite,
    params(("id" = ConversationId, Path, description = "conversation id")),
    responses((status = 201, body = Invite), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn create_invite(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path(id): Path<vestnik_proto::ConversationId>,
    Json(req): Json<CreateInvite>,
) -> Result<(StatusCode, axum::Json<Invite>), ApiError> {
    let invite = gw.realtime.create_invite(&auth, &id, req).await?;
    Ok((StatusCode::CREATED, axum::Json(invite)))
}

/// Join the group an invite link points to; 403 `banned` for a banned user.
#[utoipa::path(post, path = "/v1/invites/{token}/join", tag = "groups", security(("bearer" = [])),
    params(("token" = String, Path, max_length = 128, description = "invite token")),
    responses((status = 200, body = Conversation), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn join_invite(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path(token): Path<String>,
) -> Result<axum::Json<Conversation>, ApiError> {
    Ok(axum::Json(gw.realtime.join_invite(&auth, &token).await?))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PostsQuery {
    /// Seq of the last post already read (default 0).
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Default 100.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

impl Checked for PostsQuery {
    fn check(&self) -> Result<(), String> {
        in_range("after", self.after, 0..=i64::MAX)?;
        in_range("limit", self.limit, 1..=vestnik_core::limits::PAGE_MAX)
    }
}

/// A channel's posts after a seq, oldest first (members only).
#[utoipa::path(get, path = "/v1/conversations/{id}/posts", tag = "groups", security(("bearer" = [])),
    params(("id" = ConversationId, Path, description = "channel id"), PostsQuery),
    responses((status = 200, body = ChannelPosts), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn posts(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path(id): Path<vestnik_proto::ConversationId>,
    Query(q): Query<PostsQuery>,
) -> Result<axum::Json<ChannelPosts>, ApiError> {
    Ok(axum::Json(
        gw.realtime
            .posts(
                &auth,
                &id,
                q.after.unwrap_or(0),
                q.limit.unwrap_or(vestnik_core::limits::PAGE_DEFAULT),
            )
            .await?,
    ))
}

/// Subscribe to a public channel (private channels take an invite link);
/// 403 `banned` for a banned user.
#[utoipa::path(post, path = "/v1/conversations/{id}/subscribe", tag = "groups", security(("bearer" = [])),
    params(("id" = ConversationId, Path, description = "channel id")),
    responses((status = 200, body = Conversation), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn subscribe(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path(id): Path<vestnik_proto::ConversationId>,
) -> Result<axum::Json<Conversation>, ApiError> {
    Ok(axum::Json(gw.realtime.subscribe(&auth, &id).await?))
}

/// The group's working invite links, newest first (owner or admin; a
/// channel's owner).
#[utoipa::path(get, path = "/v1/conversations/{id}/invites", tag = "groups", security(("bearer" = [])),
    params(("id" = ConversationId, Path, description = "conversation id")),
    responses((status = 200, body = InviteList), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_invites(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path(id): Path<ConversationId>,
) -> Result<axum::Json<InviteList>, ApiError> {
    Ok(axum::Json(gw.realtime.invites(&auth, &id).await?))
}

/// Revoke an invite link at once (owner or admin). Links also stop working
/// when their creator leaves, is removed or banned, or loses the right to
/// invite.
#[utoipa::path(delete, path = "/v1/conversations/{id}/invites/{invite_id}", tag = "groups", security(("bearer" = [])),
    params(("id" = ConversationId, Path, description = "conversation id"), ("invite_id" = InviteId, Path, description = "from the invite list")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_invite(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path((id, invite_id)): Path<(ConversationId, InviteId)>,
) -> Result<StatusCode, ApiError> {
    gw.realtime.revoke_invite(&auth, &id, &invite_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The ban list, newest first (owner or admin).
#[utoipa::path(get, path = "/v1/conversations/{id}/bans", tag = "groups", security(("bearer" = [])),
    params(("id" = ConversationId, Path, description = "conversation id")),
    responses((status = 200, body = BanList), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_bans(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path(id): Path<ConversationId>,
) -> Result<axum::Json<BanList>, ApiError> {
    Ok(axum::Json(gw.realtime.bans(&auth, &id).await?))
}

/// Ban a user: removed if a member, their invites revoked, and kept out
/// (adds and invites answer 403 `banned`) until unbanned. The owner may ban
/// anyone; a group admin plain members and outsiders.
#[utoipa::path(post, path = "/v1/conversations/{id}/bans", tag = "groups", security(("bearer" = [])), request_body = BanMember,
    params(("id" = ConversationId, Path, description = "conversation id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn ban(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path(id): Path<ConversationId>,
    Json(req): Json<BanMember>,
) -> Result<StatusCode, ApiError> {
    gw.realtime.ban(&auth, &id, &req.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lift a ban (owner or admin); 404 `user_not_found` when there was none.
#[utoipa::path(delete, path = "/v1/conversations/{id}/bans/{user_id}", tag = "groups", security(("bearer" = [])),
    params(("id" = ConversationId, Path, description = "conversation id"), ("user_id" = UserId, Path, description = "the banned user")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn unban(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path((id, user_id)): Path<(ConversationId, UserId)>,
) -> Result<StatusCode, ApiError> {
    gw.realtime.unban(&auth, &id, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Mute a member for a while: their messages and posts here answer 403
/// `muted` until then (owner; a group admin for plain members).
#[utoipa::path(put, path = "/v1/conversations/{id}/members/{user_id}/mute", tag = "groups", security(("bearer" = [])), request_body = MuteMember,
    params(("id" = ConversationId, Path, description = "conversation id"), ("user_id" = UserId, Path, description = "member")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn mute(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path((id, user_id)): Path<(ConversationId, UserId)>,
    Json(req): Json<MuteMember>,
) -> Result<StatusCode, ApiError> {
    gw.realtime.mute(&auth, &id, &user_id, &req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lift a mute.
#[utoipa::path(delete, path = "/v1/conversations/{id}/members/{user_id}/mute", tag = "groups", security(("bearer" = [])),
    params(("id" = ConversationId, Path, description = "conversation id"), ("user_id" = UserId, Path, description = "member")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn unmute(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path((id, user_id)): Path<(ConversationId, UserId)>,
) -> Result<StatusCode, ApiError> {
    gw.realtime.unmute(&auth, &id, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a message for everyone: its stored copy and undelivered envelopes
/// go, and every member gets a `message_deleted` event. The sender may
/// within `message_edit_window_secs`; a group's owner and admins (a
/// channel's owner) at any time. 404 `message_not_found`.
#[utoipa::path(delete, path = "/v1/conversations/{id}/messages/{message_id}", tag = "messages", security(("bearer" = [])),
    params(("id" = ConversationId, Path, description = "conversation id"), ("message_id" = MessageId, Path, description = "the message")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_message(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path((id, message_id)): Path<(ConversationId, MessageId)>,
) -> Result<StatusCode, ApiError> {
    gw.realtime
        .delete_for_everyone(&auth, &id, &message_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
