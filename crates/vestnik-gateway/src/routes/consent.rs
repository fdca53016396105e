//! Who may add the account to groups, its contacts, and the invitations
//! adds become when its setting does not allow them.
use axum::extract::State;
use axum::http::StatusCode;
use std::sync::Arc;
use vestnik_proto::{
    ContactList, Conversation, ConversationId, ErrorBody, GroupAddSettings, InvitationList, UserId,
};

use crate::extract::{Authed, Json, Path};
use crate::{ApiError, Gateway};

/// Who may add this account to groups and channels: `everyone`, `contacts`
/// or `nobody`. Anyone else's add becomes an invitation (`GET
/// /v1/invitations`), and the adder is answered `invited_user_ids`.
#[utoipa::path(put, path = "/v1/account/group-adds", tag = "account", security(("bearer" = [])), request_body = GroupAddSettings,
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn set_group_adds(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Json(req): Json<GroupAddSettings>,
) -> Result<StatusCode, ApiError> {
    gw.realtime.set_group_adds(&auth, &req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This account's contacts: whom it opened a direct conversation with, and
/// whom it added. They decide `contacts` for presence and group adds.
#[utoipa::path(get, path = "/v1/contacts", tag = "account", security(("bearer" = [])),
    responses((status = 200, body = ContactList), (status = 401, body = ErrorBody)))]
pub async fn contacts(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
) -> Result<axum::Json<ContactList>, ApiError> {
    Ok(axum::Json(ContactList {
        user_ids: gw.realtime.contacts(&auth).await?,
    }))
}

/// Add a contact (idempotent); 404 `user_not_found` for an unknown user or oneself.
#[utoipa::path(put, path = "/v1/contacts/{user_id}", tag = "account", security(("bearer" = [])),
    params(("user_id" = UserId, Path, description = "the user")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn add_contact(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path(user_id): Path<UserId>,
) -> Result<StatusCode, ApiError> {
    gw.realtime.set_contact(&auth, &user_id, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a contact; 404 `user_not_found` when it was none.
#[utoipa::path(delete, path = "/v1/contacts/{user_id}", tag = "account", security(("bearer" = [])),
    params(("user_id" = UserId, Path, description = "the contact")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_contact(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path(user_id): Path<UserId>,
) -> Result<StatusCode, ApiError> {
    gw.realtime.set_contact(&auth, &user_id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Invitations to groups and channels waiting for this account's answer
/// (7 days each), newest first.
#[utoipa::path(get, path = "/v1/invitations", tag = "groups", security(("bearer" = [])),
    responses((status = 200, body = InvitationList), (status = 401, body = ErrorBody)))]
pub async fn invitations(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
) -> Result<axum::Json<InvitationList>, ApiError> {
    Ok(axum::Json(gw.realtime.invitations(&auth).await?))
}

/// Accept an invitation: join the group or channel. 404
/// `invite_not_found` when there is none (or it lapsed), 403 `banned`, 409
/// `group_full`.
#[utoipa::path(post, path = "/v1/invitations/{id}/accept", tag = "groups", security(("bearer" = [])),
    params(("id" = ConversationId, Path, description = "the group or channel")),
    responses((status = 200, body = Conversation), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn accept_invitation(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path(id): Path<ConversationId>,
) -> Result<axum::Json<Conversation>, ApiError> {
    Ok(axum::Json(gw.realtime.accept_invitation(&auth, &id).await?))
}

/// Decline an invitation; nobody is told.
#[utoipa::path(delete, path = "/v1/invitations/{id}", tag = "groups", security(("bearer" = [])),
    params(("id" = ConversationId, Path, description = "the group or channel")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn decline_invitation(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path(id): Path<ConversationId>,
) -> Result<StatusCode, ApiError> {
    gw.realtime.decline_invitation(&auth, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
