//! The account's password and e-mail address: change, reset, move.
use axum::extract::State;
use axum::http::StatusCode;
use std::sync::Arc;
use vestnik_proto::{
    Accepted, Account, AccountDeletion, EmailChangeConfirm, EmailChangeRequest, ErrorBody,
    PasswordChangeRequest, PasswordResetConfirm, PasswordResetRequest,
};

use crate::extract::{Authed, Json, Meta};
use crate::{ApiError, Gateway};

fn accepted() -> (StatusCode, axum::Json<Accepted>) {
    (
        StatusCode::ACCEPTED,
        axum::Json(Accepted {
            status: "accepted".into(),
        }),
    )
}

/// Set a new password, confirmed by the current one (a wrong one: 403
/// `wrong_password`); optionally sign out every other device. The
/// account's address is told.
#[utoipa::path(post, path = "/v1/account/password", tag = "account", security(("bearer" = [])), request_body = PasswordChangeRequest,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn change_password(
    State(gw): State<Arc<Gateway>>,
    Meta(meta): Meta,
    Authed(auth): Authed,
    Json(req): Json<PasswordChangeRequest>,
) -> Result<StatusCode, ApiError> {
    gw.auth.change_password(&meta, &auth, &req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Forgotten password: a 6-digit code is mailed if the address has an
/// account. The answer never tells whether it has.
#[utoipa::path(post, path = "/v1/auth/password-reset", tag = "auth", request_body = PasswordResetRequest,
    responses((status = 202, body = Accepted), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn request_password_reset(
    State(gw): State<Arc<Gateway>>,
    Meta(meta): Meta,
    Json(req): Json<PasswordResetRequest>,
) -> Result<(StatusCode, axum::Json<Accepted>), ApiError> {
    gw.auth.request_password_reset(&meta, &req).await?;
    Ok(accepted())
}

/// Set a new password with the mailed code (and a TOTP or recovery code
/// when 2FA is on). Every device of the account is signed out; log in again.
#[utoipa::path(post, path = "/v1/auth/password-reset/confirm", tag = "auth", request_body = PasswordResetConfirm,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn confirm_password_reset(
    State(gw): State<Arc<Gateway>>,
    Meta(meta): Meta,
    Json(req): Json<PasswordResetConfirm>,
) -> Result<StatusCode, ApiError> {
    gw.auth.confirm_password_reset(&meta, &req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Move the account to a new address, confirmed by the password: a code is
/// mailed there (if another account has the address, its owner gets a
/// notice instead; the answer does not tell).
#[utoipa::path(post, path = "/v1/account/email", tag = "account", security(("bearer" = [])), request_body = EmailChangeRequest,
    responses((status = 202, body = Accepted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn request_email_change(
    State(gw): State<Arc<Gateway>>,
    Meta(meta): Meta,
    Authed(auth): Authed,
    Json(req): Json<EmailChangeRequest>,
) -> Result<(StatusCode, axum::Json<Accepted>), ApiError> {
    gw.auth.request_email_change(&meta, &auth, &req).await?;
    Ok(accepted())
}

/// Confirm the new address with the code mailed there; the old address is told.
#[utoipa::path(post, path = "/v1/account/email/confirm", tag = "account", security(("bearer" = [])), request_body = EmailChangeConfirm,
    responses((status = 200, body = Account), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn confirm_email_change(
    State(gw): State<Arc<Gateway>>,
    Meta(meta): Meta,
    Authed(auth): Authed,
    Json(req): Json<EmailChangeConfirm>,
) -> Result<axum::Json<Account>, ApiError> {
    Ok(axum::Json(
        gw.auth.confirm_email_change(&meta, &auth, &req).await?,
    ))
}

/// Delete the account for good, confirmed with the password (403
/// `wrong_password`) and, with 2FA on, a TOTP or recovery code. Every
/// device is signed out on every node; devices, keys, sessions, direct
/// conversations, memberships, queued envelopes to and from it, its
/// messages, channel posts, media and invites are deleted at once. Groups it
/// owned pass to the longest-standing admin (a channel's publisher) or
/// member, or are dissolved when it was alone. Its audit trail stays,
/// without addresses, agents or details. The address can register again.
#[utoipa::path(post, path = "/v1/account/delete", tag = "account", security(("bearer" = [])), request_body = AccountDeletion,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn delete_account(
    State(gw): State<Arc<Gateway>>,
    Meta(meta): Meta,
    Authed(auth): Authed,
    Json(req): Json<AccountDeletion>,
) -> Result<StatusCode, ApiError> {
    let erased = gw.auth.delete_account(&meta, &auth, &req).await?;
    gw.realtime.account_erased(&erased).await;
    gw.media.discard_objects(&erased.object_keys).await;
    Ok(StatusCode::NO_CONTENT)
}
