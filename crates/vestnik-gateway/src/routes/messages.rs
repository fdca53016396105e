use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use std::sync::Arc;
use utoipa::IntoParams;
use vestnik_proto::{
    AckRequest, Conversation, ConversationId, ConversationList, CreateConversation, ErrorBody,
    PendingPage, ReadMarkers, ReadRequest, SendMessage, Sent,
};

use crate::extract::{in_range, Authed, Checked, Json, Path, Query};
use crate::{ApiError, Gateway};

/// Open (or find, 200) a direct conversation with another user, or create
/// a group or channel (201) owned by the caller.
#[utoipa::path(post, path = "/v1/conversations", tag = "messages", security(("bearer" = [])), request_body = CreateConversation,
    responses((status = 200, body = Conversation), (status = 201, body = Conversation), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_conversation(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Json(req): Json<CreateConversation>,
) -> Result<(StatusCode, axum::Json<Conversation>), ApiError> {
    match req {
        CreateConversation::Direct { peer_user_id } => {
            let c = gw.realtime.create_direct(&auth, &peer_user_id).await?;
            Ok((StatusCode::OK, axum::Json(c)))
        }
        group_or_channel => {
            let c = gw.realtime.create_group(&auth, group_or_channel).await?;
            Ok((StatusCode::CREATED, axum::Json(c)))
        }
    }
}

#[utoipa::path(get, path = "/v1/conversations", tag = "messages", security(("bearer" = [])),
    responses((status = 200, body = ConversationList), (status = 401, body = ErrorBody)))]
pub async fn list_conversations(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
) -> Result<axum::Json<ConversationList>, ApiError> {
    Ok(axum::Json(gw.realtime.conversations(&auth).await?))
}

/// Send a message: one envelope per device of every member except this one.
/// 409 `device_list_stale` carries the current devices; nothing is stored then.
/// A retry (same `client_msg_id` from the same device) gets the stored answer;
/// the same `client_msg_id` for another conversation is 409 `client_msg_id_reused`.
#[utoipa::path(post, path = "/v1/messages", tag = "messages", security(("bearer" = [])), request_body = SendMessage,
    responses((status = 200, body = Sent), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn send(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Json(req): Json<SendMessage>,
) -> Result<axum::Json<Sent>, ApiError> {
    Ok(axum::Json(gw.realtime.send(&auth, req).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PendingQuery {
    /// Cursor of the last item already received (default 0).
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Default 100.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

impl Checked for PendingQuery {
    fn check(&self) -> Result<(), String> {
        in_range("after", self.after, 0..=i64::MAX)?;
        in_range("limit", self.limit, 1..=vestnik_core::limits::PAGE_MAX)
    }
}

/// What waits for this device (messages and receipts), oldest first.
#[utoipa::path(get, path = "/v1/messages/pending", tag = "messages", security(("bearer" = [])), params(PendingQuery),
    responses((status = 200, body = PendingPage), (status = 400, body = ErrorBody)))]
pub async fn pending(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Query(q): Query<PendingQuery>,
) -> Result<axum::Json<PendingPage>, ApiError> {
    Ok(axum::Json(
        gw.realtime
            .pending(
                &auth,
                q.after.unwrap_or(0),
                q.limit.unwrap_or(vestnik_core::limits::PAGE_DEFAULT),
            )
            .await?,
    ))
}

/// Acknowledge stored items; they are deleted and the senders get receipts.
#[utoipa::path(post, path = "/v1/messages/ack", tag = "messages", security(("bearer" = [])), request_body = AckRequest,
    responses((status = 204), (status = 400, body = ErrorBody)))]
pub async fn ack(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Json(req): Json<AckRequest>,
) -> Result<StatusCode, ApiError> {
    gw.realtime.ack(&auth, &req.cursors).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stop (PUT) or resume (DELETE) accepting messages from a user.
#[utoipa::path(put, path = "/v1/blocks/{user_id}", tag = "messages", security(("bearer" = [])),
    params(("user_id" = vestnik_proto::UserId, Path, description = "user to block")), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn block(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path(user_id): Path<vestnik_proto::UserId>,
) -> Result<StatusCode, ApiError> {
    gw.realtime.set_block(&auth, &user_id, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/v1/blocks/{user_id}", tag = "messages", security(("bearer" = [])),
    params(("user_id" = vestnik_proto::UserId, Path, description = "user to unblock")), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn unblock(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path(user_id): Path<vestnik_proto::UserId>,
) -> Result<StatusCode, ApiError> {
    gw.realtime.set_block(&auth, &user_id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every member's read marker in a conversation.
#[utoipa::path(get, path = "/v1/conversations/{id}/read", tag = "messages", security(("bearer" = [])),
    params(("id" = ConversationId, Path, description = "conversation id")),
    responses((status = 200, body = ReadMarkers), (status = 404, body = ErrorBody)))]
pub async fn read_markers(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path(id): Path<vestnik_proto::ConversationId>,
) -> Result<axum::Json<ReadMarkers>, ApiError> {
    Ok(axum::Json(gw.realtime.read_markers(&auth, &id).await?))
}

/// Mark the conversation read up to `seq` (the same as the `read` frame).
#[utoipa::path(post, path = "/v1/conversations/{id}/read", tag = "messages", security(("bearer" = [])), request_body = ReadRequest,
    params(("id" = ConversationId, Path, description = "conversation id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn mark_read(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path(id): Path<vestnik_proto::ConversationId>,
    Json(req): Json<ReadRequest>,
) -> Result<StatusCode, ApiError> {
    gw.realtime.read(&auth, &id, req.seq).await?;
    Ok(StatusCode::NO_CONTENT)
}
