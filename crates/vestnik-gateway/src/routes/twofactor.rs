use axum::extract::State;
use axum::http::StatusCode;
use std::sync::Arc;
use vestnik_proto::{CodeRequest, ErrorBody, RecoveryCodes, TotpDisableRequest, TotpSetup};

use crate::extract::{Authed, Json, Meta};
use crate::{ApiError, Gateway};

/// Begin TOTP setup: returns the secret and an `otpauth://` URI.
#[utoipa::path(post, path = "/v1/auth/2fa/setup", tag = "2fa", security(("bearer" = [])),
    responses((status = 200, body = TotpSetup), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn setup(
    State(gw): State<Arc<Gateway>>,
    Meta(meta): Meta,
    Authed(auth): Authed,
) -> Result<axum::Json<TotpSetup>, ApiError> {
    Ok(axum::Json(gw.auth.totp_setup(&meta, &auth).await?))
}

/// Confirm setup with a current code; returns 10 one-time recovery codes.
#[utoipa::path(post, path = "/v1/auth/2fa/enable", tag = "2fa", security(("bearer" = [])), request_body = CodeRequest,
    responses((status = 200, body = RecoveryCodes), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn enable(
    State(gw): State<Arc<Gateway>>,
    Meta(meta): Meta,
    Authed(auth): Authed,
    Json(req): Json<CodeRequest>,
) -> Result<axum::Json<RecoveryCodes>, ApiError> {
    Ok(axum::Json(
        gw.auth.totp_enable(&meta, &auth, req.code.expose()).await?,
    ))
}

/// Turn 2FA off, confirmed by the password and a TOTP code or a recovery
/// code. Wrong ones are counted per account: past the limit, 429 for a while.
#[utoipa::path(post, path = "/v1/auth/2fa/disable", tag = "2fa", security(("bearer" = [])), request_body = TotpDisableRequest,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn disable(
    State(gw): State<Arc<Gateway>>,
    Meta(meta): Meta,
    Authed(auth): Authed,
    Json(req): Json<TotpDisableRequest>,
) -> Result<StatusCode, ApiError> {
    gw.auth
        .totp_disable(&meta, &auth, req.password.expose(), req.code.expose())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
