//! Profiles (display name and picture): one's own set, others' read.
use axum::extract::State;
use std::sync::Arc;
use vestnik_proto::{AvatarDownload, ErrorBody, Profile, ProfileList, ProfileUpdate, UserId};

use crate::extract::{Authed, Checked, ImageBody, Json, Path, Query};
use crate::{ApiError, Gateway};

/// Set (or, with an empty string, clear) this account's display name. It is
/// pushed (`profile_changed`) to everyone who shares a conversation with it.
/// Counts against `account_change`.
#[utoipa::path(put, path = "/v1/account/profile", tag = "account", security(("bearer" = [])), request_body = ProfileUpdate,
    responses((status = 200, body = Profile), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn set_profile(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Json(req): Json<ProfileUpdate>,
) -> Result<axum::Json<Profile>, ApiError> {
    Ok(axum::Json(gw.realtime.set_display_name(&auth, &req).await?))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ProfilesQuery {
    /// 1-100 user ids, comma-separated.
    #[param(pattern = "^[0-9a-f]{32}(,[0-9a-f]{32}){0,99}$")]
    pub ids: String,
}

impl ProfilesQuery {
    fn ids(&self) -> Result<Vec<UserId>, String> {
        self.ids
            .split(',')
            .map(|s| UserId::parse(s).map_err(|e| format!("ids: {e}")))
            .collect()
    }
}

impl Checked for ProfilesQuery {
    fn check(&self) -> Result<(), String> {
        let n = self.ids()?.len();
        if n > vestnik_core::limits::PROFILES_PER_REQUEST_MAX {
            return Err(format!(
                "ids: expected at most {}, got {n}",
                vestnik_core::limits::PROFILES_PER_REQUEST_MAX
            ));
        }
        Ok(())
    }
}

/// The profiles of the users asked for that this account may see: its own,
/// and those of users it shares a conversation with (in a channel,
/// subscribers see the owner's and publishers' only). Others are left out,
/// as are unknown ids.
#[utoipa::path(get, path = "/v1/profiles", tag = "account", security(("bearer" = [])), params(ProfilesQuery),
    responses((status = 200, body = ProfileList), (status = 401, body = ErrorBody)))]
pub async fn profiles(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Query(q): Query<ProfilesQuery>,
) -> Result<axum::Json<ProfileList>, ApiError> {
    let ids = q
        .ids()
        .map_err(|m| ApiError::new(axum::http::StatusCode::BAD_REQUEST, "invalid_query", m))?;
    Ok(axum::Json(gw.realtime.profiles(&auth, &ids).await?))
}

/// Set this account's profile picture: the body is the image itself (JPEG,
/// PNG, GIF or WebP, at most 4 MiB). The server scans it (when clamd is
/// configured) and keeps only the centre square re-encoded as a JPEG of at
/// most 512×512 pixels: no metadata survives. Profile pictures are not
/// end-to-end encrypted; like the display name, they are seen by those who
/// share a conversation with the account. The new profile is pushed
/// (`profile_changed`). Counts against `account_change` and the media quota.
#[utoipa::path(put, path = "/v1/account/avatar", tag = "account", security(("bearer" = [])),
    request_body(content = Vec<u8>, description = "the image", content_type = "image/jpeg"),
    responses((status = 200, body = Profile), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn set_avatar(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    ImageBody(image): ImageBody,
) -> Result<axum::Json<Profile>, ApiError> {
    gw.media.set_avatar(&auth.user_id, image).await?;
    Ok(axum::Json(
        gw.realtime.profile_changed(&auth.user_id).await?,
    ))
}

/// Remove this account's profile picture (none set is not an error). The
/// new profile is pushed (`profile_changed`).
#[utoipa::path(delete, path = "/v1/account/avatar", tag = "account", security(("bearer" = [])),
    responses((status = 200, body = Profile), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn clear_avatar(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
) -> Result<axum::Json<Profile>, ApiError> {
    gw.media.clear_avatar(&auth.user_id).await?;
    Ok(axum::Json(
        gw.realtime.profile_changed(&auth.user_id).await?,
    ))
}

/// Where to download a user's profile picture (a square JPEG), for those
/// who may see their profile. 404 `media_not_found` when the user has none
/// or the caller may not see it: the two read the same.
#[utoipa::path(get, path = "/v1/profiles/{user_id}/avatar", tag = "account", security(("bearer" = [])),
    params(("user_id" = UserId, Path, description = "whose")),
    responses((status = 200, body = AvatarDownload), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn avatar(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Path(user_id): Path<UserId>,
) -> Result<axum::Json<AvatarDownload>, ApiError> {
    Ok(axum::Json(
        gw.media.avatar_download(&auth.user_id, &user_id).await?,
    ))
}
