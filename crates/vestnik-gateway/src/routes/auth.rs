use axum::extract::State;
use axum::http::StatusCode;
use std::sync::Arc;
use vestnik_proto::{
    Accepted, ErrorBody, LoginRequest, PowChallenge, RefreshRequest, RegisterRequest,
    SessionTokens, VerifyRequest,
};

use crate::extract::{Authed, Json, Meta};
use crate::{ApiError, Gateway};

/// Start registration: a 6-digit code is mailed (or, if the address already
/// has an account, a notice). The answer never tells which. After failures
/// from the client's address it asks for a proof of work first (403
/// `proof_of_work_required`).
#[utoipa::path(post, path = "/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 202, body = Accepted), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn register(
    State(gw): State<Arc<Gateway>>,
    Meta(meta): Meta,
    Json(req): Json<RegisterRequest>,
) -> Result<(StatusCode, axum::Json<Accepted>), ApiError> {
    gw.auth.register(&meta, &req).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(Accepted {
            status: "accepted".into(),
        }),
    ))
}

/// Finish registration with the mailed code, the password and the first device.
#[utoipa::path(post, path = "/v1/auth/register/verify", tag = "auth", request_body = VerifyRequest,
    responses((status = 201, body = SessionTokens), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn verify(
    State(gw): State<Arc<Gateway>>,
    Meta(meta): Meta,
    Json(req): Json<VerifyRequest>,
) -> Result<(StatusCode, axum::Json<SessionTokens>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(gw.auth.verify(&meta, &req).await?),
    ))
}

/// Log in a new device.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 201, body = SessionTokens), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(gw): State<Arc<Gateway>>,
    Meta(meta): Meta,
    Json(req): Json<LoginRequest>,
) -> Result<(StatusCode, axum::Json<SessionTokens>), ApiError> {
    let tokens = gw.auth.login(&meta, &req).await?;
    gw.realtime.devices_changed(&tokens.user_id).await;
    Ok((StatusCode::CREATED, axum::Json(tokens)))
}

/// Trade a refresh token for a new pair. A refresh token works once: sent
/// again within 30 s, while the pair it was traded for is unused, it gets that
/// same pair (a retry of a lost answer); any other use again revokes the
/// device's whole session.
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = SessionTokens), (status = 401, body = ErrorBody)))]
pub async fn refresh(
    State(gw): State<Arc<Gateway>>,
    Meta(meta): Meta,
    Json(req): Json<RefreshRequest>,
) -> Result<axum::Json<SessionTokens>, ApiError> {
    Ok(axum::Json(gw.auth.refresh(&meta, &req).await?))
}

/// End this device's session; its keys leave the directory.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(
    State(gw): State<Arc<Gateway>>,
    Meta(meta): Meta,
    Authed(auth): Authed,
) -> Result<StatusCode, ApiError> {
    gw.auth.logout(&meta, &auth).await?;
    gw.realtime
        .hub()
        .close_device(&auth.device_id, vestnik_proto::CloseReason::SessionEnded);
    gw.realtime.devices_changed(&auth.user_id).await;
    Ok(StatusCode::NO_CONTENT)
}

/// End every session of the account and revoke every device's keys.
#[utoipa::path(post, path = "/v1/auth/logout-all", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout_all(
    State(gw): State<Arc<Gateway>>,
    Meta(meta): Meta,
    Authed(auth): Authed,
) -> Result<StatusCode, ApiError> {
    let devices = gw.auth.list_devices(&auth).await?;
    gw.auth.logout_all(&meta, &auth).await?;
    for d in devices.devices {
        gw.realtime
            .hub()
            .close_device(&d.id, vestnik_proto::CloseReason::SessionEnded);
    }
    gw.realtime.devices_changed(&auth.user_id).await;
    Ok(StatusCode::NO_CONTENT)
}

/// A fresh proof-of-work challenge (also sent with `proof_of_work_required`).
#[utoipa::path(get, path = "/v1/auth/pow", tag = "auth", responses((status = 200, body = PowChallenge)))]
pub async fn pow_challenge(State(gw): State<Arc<Gateway>>) -> axum::Json<PowChallenge> {
    axum::Json(gw.auth.pow_challenge())
}
