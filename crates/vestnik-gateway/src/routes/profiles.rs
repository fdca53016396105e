//! Display names: one's own set, others' read.
use axum::extract::State;
use std::sync::Arc;
use vestnik_proto::{ErrorBody, Profile, ProfileList, ProfileUpdate, UserId};

use crate::extract::{Authed, Checked, Json, Query};
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
