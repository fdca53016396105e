//! Media grants (bearer-authenticated JSON) and, for the local-directory
//! store only, the signed blob URLs themselves (the signature is the
//! authorisation; S3 deployments never route bytes through here).
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use tower::ServiceExt;
use vestnik_proto::{
    ErrorBody, MediaDownload, MediaInfo, MediaUploadGrant, MediaUploadRequest, MediaUsage,
};

use crate::extract::{Authed, Json, Path};
use crate::{ApiError, Gateway};

/// Ask to upload one encrypted object: checks membership, size and quota,
/// records a pending media item and returns a URL that accepts exactly that
/// object (length and SHA-256 are bound to the signature).
#[utoipa::path(post, path = "/v1/media", tag = "media", security(("bearer" = [])), request_body = MediaUploadRequest,
    responses((status = 201, body = MediaUploadGrant), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn grant_upload(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Json(req): Json<MediaUploadRequest>,
) -> Result<(StatusCode, axum::Json<MediaUploadGrant>), ApiError> {
    let grant = gw.media.grant_upload(&auth.user_id, &req).await?;
    Ok((StatusCode::CREATED, axum::Json(grant)))
}

/// Verify the uploaded object (exists, declared size and digest) and make it
/// downloadable; a mismatching object is deleted.
#[utoipa::path(post, path = "/v1/media/{id}/complete", tag = "media", security(("bearer" = [])),
    params(("id" = vestnik_proto::MediaId, Path, description = "media id")),
    responses((status = 200, body = MediaInfo), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 410, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn complete(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path(id): Path<vestnik_proto::MediaId>,
) -> Result<axum::Json<MediaInfo>, ApiError> {
    Ok(axum::Json(gw.media.complete(&auth.user_id, &id).await?))
}

/// A short-lived download URL (members of the media's conversation only).
#[utoipa::path(get, path = "/v1/media/{id}", tag = "media", security(("bearer" = [])),
    params(("id" = vestnik_proto::MediaId, Path, description = "media id")),
    responses((status = 200, body = MediaDownload), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn grant_download(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path(id): Path<vestnik_proto::MediaId>,
) -> Result<axum::Json<MediaDownload>, ApiError> {
    Ok(axum::Json(
        gw.media.grant_download(&auth.user_id, &id).await?,
    ))
}

/// Delete one's own media (object and metadata; the quota is released).
#[utoipa::path(delete, path = "/v1/media/{id}", tag = "media", security(("bearer" = [])),
    params(("id" = vestnik_proto::MediaId, Path, description = "media id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path(id): Path<vestnik_proto::MediaId>,
) -> Result<StatusCode, ApiError> {
    gw.media.delete(&auth.user_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's media storage use and limits.
#[utoipa::path(get, path = "/v1/media/usage", tag = "media", security(("bearer" = [])),
    responses((status = 200, body = MediaUsage)))]
pub async fn usage(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
) -> Result<axum::Json<MediaUsage>, ApiError> {
    Ok(axum::Json(gw.media.usage(&auth.user_id).await?))
}

fn local(gw: &Gateway) -> Result<&vestnik_media::LocalBlobStore, ApiError> {
    gw.local_blobs.as_deref().ok_or_else(ApiError::not_found)
}

/// Local store: receive an upload at its signed URL.
#[utoipa::path(put, path = "/v1/media/blob/{token}", tag = "media",
    params(("token" = String, Path, description = "signed token from an upload grant")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn put_blob(
    State(gw): State<Arc<Gateway>>,
    Path(token): Path<String>,
    req: Request,
) -> Result<StatusCode, ApiError> {
    let store = local(&gw)?;
    let claims = store.verify(&token, "PUT", gw.now_ms())?;
    // A signature outlives the upload it was made for (completed, deleted,
    // expired with its row reaped): only a pending upload takes bytes.
    gw.media.check_upload_open(&claims.k).await?;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = req.into_body().into_data_stream();
    store.accept_upload(&claims, declared, body).await?;
    Ok(StatusCode::OK)
}

/// Local store: serve an object at its signed URL (range requests work).
#[utoipa::path(get, path = "/v1/media/blob/{token}", tag = "media",
    params(("token" = String, Path, description = "signed token from a download grant")),
    responses((status = 200, content_type = "application/octet-stream"), (status = 206), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_blob(
    State(gw): State<Arc<Gateway>>,
    Path(token): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let store = local(&gw)?;
    let claims = store.verify(&token, "GET", gw.now_ms())?;
    let path = store
        .object_path(&claims.k)
        .map_err(|e| ApiError::from(vestnik_media::MediaError::Blob(e)))?;
    if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "media_not_found",
            "no such object",
        ));
    }
    let (parts, _) = req.into_parts();
    let req = Request::from_parts(parts, Body::empty());
    // Object paths have no extension, so the type is application/octet-stream.
    let served = tower_http::services::ServeFile::new(path)
        .oneshot(req)
        .await
        .map_err(|e| ApiError::internal("serving a blob", e))?;
    let mut res = served.into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("private, max-age=300"),
    );
    Ok(res)
}
