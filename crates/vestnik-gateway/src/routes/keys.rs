use axum::extract::State;
use std::sync::Arc;
use vestnik_proto::{
    ClaimRequest, ClaimResponse, ErrorBody, KeyCount, KeysUpload, LookupRequest, LookupResponse,
    PublicDeviceList,
};

use crate::extract::{Authed, Json, Path};
use crate::{ApiError, Gateway};

/// Publish more one-time keys and/or a new signed fallback key for this device.
#[utoipa::path(put, path = "/v1/keys", tag = "keys", security(("bearer" = [])), request_body = KeysUpload,
    responses((status = 200, body = KeyCount), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn upload(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Json(req): Json<KeysUpload>,
) -> Result<axum::Json<KeyCount>, ApiError> {
    Ok(axum::Json(gw.auth.upload_keys(&auth, &req).await?))
}

/// How many one-time keys this device still has on the server.
#[utoipa::path(get, path = "/v1/keys/count", tag = "keys", security(("bearer" = [])),
    responses((status = 200, body = KeyCount), (status = 401, body = ErrorBody)))]
pub async fn count(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
) -> Result<axum::Json<KeyCount>, ApiError> {
    Ok(axum::Json(gw.auth.key_count(&auth).await?))
}

/// One key bundle per device of a user; one-time keys are popped atomically,
/// the fallback key is given when a device's pool is empty.
#[utoipa::path(post, path = "/v1/keys/claim", tag = "keys", security(("bearer" = [])), request_body = ClaimRequest,
    responses((status = 200, body = ClaimResponse), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn claim(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Json(req): Json<ClaimRequest>,
) -> Result<axum::Json<ClaimResponse>, ApiError> {
    let claimed = gw.auth.claim_keys(&auth, &req.user_id).await?;
    // The target's devices hear when their pool runs low, off the answer's path.
    let devices: Vec<String> = claimed
        .bundles
        .iter()
        .map(|b| b.device_id.clone())
        .collect();
    let gw2 = gw.clone();
    tokio::spawn(async move {
        for d in devices {
            match gw2.store.one_time_key_count(&d).await {
                Ok(n) if n < vestnik_core::limits::ONE_TIME_KEY_LOW_WATERMARK => {
                    gw2.realtime.notify_keys_low(&d, n).await
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "counting one-time keys after a claim"),
            }
        }
    });
    Ok(axum::Json(claimed))
}

/// A user's active devices and their identity keys.
#[utoipa::path(get, path = "/v1/users/{id}/devices", tag = "keys", security(("bearer" = [])),
    params(("id" = vestnik_proto::UserId, Path, description = "user id")),
    responses((status = 200, body = PublicDeviceList), (status = 404, body = ErrorBody)))]
pub async fn user_devices(
    State(gw): State<Arc<Gateway>>,
    Authed(_auth): Authed,
    Path(id): Path<vestnik_proto::UserId>,
) -> Result<axum::Json<PublicDeviceList>, ApiError> {
    Ok(axum::Json(gw.auth.public_devices(&id).await?))
}

/// Find a user by e-mail address.
#[utoipa::path(post, path = "/v1/users/lookup", tag = "keys", security(("bearer" = [])), request_body = LookupRequest,
    responses((status = 200, body = LookupResponse), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn lookup(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Json(req): Json<LookupRequest>,
) -> Result<axum::Json<LookupResponse>, ApiError> {
    Ok(axum::Json(gw.auth.lookup(&auth, &req.email).await?))
}
