use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use std::sync::Arc;
use utoipa::IntoParams;
use vestnik_proto::{Account, AccountExport, AuditPage, BlockList, DeviceList, ErrorBody};

use crate::extract::{in_range, Authed, Checked, Meta, Path, Query};
use crate::{ApiError, Gateway};

#[utoipa::path(get, path = "/v1/account", tag = "account", security(("bearer" = [])),
    responses((status = 200, body = Account), (status = 401, body = ErrorBody)))]
pub async fn account(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
) -> Result<axum::Json<Account>, ApiError> {
    Ok(axum::Json(gw.auth.account(&auth).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Return events older than this id.
    pub before: Option<i64>,
    /// Default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

impl Checked for AuditQuery {
    fn check(&self) -> Result<(), String> {
        in_range(
            "limit",
            self.limit,
            1..=vestnik_core::limits::AUDIT_PAGE_MAX,
        )
    }
}

/// The account's own security events, newest first.
#[utoipa::path(get, path = "/v1/account/audit", tag = "account", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn audit(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    Query(q): Query<AuditQuery>,
) -> Result<axum::Json<AuditPage>, ApiError> {
    Ok(axum::Json(
        gw.auth.audit_page(&auth, q.before, q.limit).await?,
    ))
}

/// The account's active devices.
#[utoipa::path(get, path = "/v1/devices", tag = "account", security(("bearer" = [])),
    responses((status = 200, body = DeviceList), (status = 401, body = ErrorBody)))]
pub async fn devices(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
) -> Result<axum::Json<DeviceList>, ApiError> {
    Ok(axum::Json(gw.auth.list_devices(&auth).await?))
}

/// Revoke a device: its sessions end and its keys leave the directory.
#[utoipa::path(delete, path = "/v1/devices/{id}", tag = "account", security(("bearer" = [])),
    params(("id" = vestnik_proto::DeviceId, Path, description = "device id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_device(
    State(gw): State<Arc<Gateway>>,
    Meta(meta): Meta,
    Authed(auth): Authed,
    Path(id): Path<vestnik_proto::DeviceId>,
) -> Result<StatusCode, ApiError> {
    gw.auth.revoke_device(&meta, &auth, &id).await?;
    gw.realtime
        .hub()
        .close_device(&id, vestnik_proto::CloseReason::SessionEnded);
    gw.realtime.devices_changed(&auth.user_id).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Who may find this account by its e-mail address.
#[utoipa::path(put, path = "/v1/account/discovery", tag = "account", security(("bearer" = [])), request_body = vestnik_proto::DiscoverySettings,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn set_discovery(
    State(gw): State<Arc<Gateway>>,
    crate::extract::Meta(meta): crate::extract::Meta,
    Authed(auth): Authed,
    crate::extract::Json(req): crate::extract::Json<vestnik_proto::DiscoverySettings>,
) -> Result<StatusCode, ApiError> {
    gw.auth.set_discovery(&meta, &auth, &req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who may see this account's online status and last seen.
#[utoipa::path(put, path = "/v1/account/presence", tag = "account", security(("bearer" = [])), request_body = vestnik_proto::PresenceSettings,
    responses((status = 204), (status = 400, body = ErrorBody)))]
pub async fn set_presence(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
    crate::extract::Json(req): crate::extract::Json<vestnik_proto::PresenceSettings>,
) -> Result<StatusCode, ApiError> {
    gw.realtime
        .set_presence_visibility(&auth, req.visibility)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The users this account blocked.
#[utoipa::path(get, path = "/v1/blocks", tag = "messages", security(("bearer" = [])),
    responses((status = 200, body = BlockList), (status = 401, body = ErrorBody)))]
pub async fn blocks(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
) -> Result<axum::Json<BlockList>, ApiError> {
    Ok(axum::Json(BlockList {
        blocked_user_ids: gw.realtime.blocked_users(&auth).await?,
    }))
}

/// Everything the server holds about this account, as one JSON document
/// (the account, devices, conversations and roles, blocks, the most recent
/// 10,000 audit events). Message contents are not on the server. Counts
/// against `account_change`.
#[utoipa::path(get, path = "/v1/account/export", tag = "account", security(("bearer" = [])),
    responses((status = 200, body = AccountExport), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn export(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
) -> Result<axum::Json<AccountExport>, ApiError> {
    gw.auth.limit_account_change(&auth).await?;
    let mut audit = Vec::new();
    let mut before = None;
    loop {
        let page = gw
            .auth
            .audit_page(&auth, before, Some(vestnik_core::limits::AUDIT_PAGE_MAX))
            .await?;
        audit.extend(page.events);
        match page.next_before {
            Some(b) if audit.len() < vestnik_core::limits::AUDIT_EXPORT_MAX => before = Some(b),
            _ => break,
        }
    }
    audit.truncate(vestnik_core::limits::AUDIT_EXPORT_MAX);
    // With the roles: each conversation as its detail shows it.
    let mut conversations = Vec::new();
    for c in gw.realtime.conversations(&auth).await?.conversations {
        let id = vestnik_proto::ConversationId::from_trusted(c.id);
        match gw.realtime.conversation_detail(&auth, &id).await {
            Ok(detail) => conversations.push(detail),
            // Left or removed meanwhile: no longer the account's.
            Err(vestnik_realtime::RealtimeError::NotMember) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(axum::Json(AccountExport {
        exported_at: gw.clock.now_ms(),
        account: gw.auth.account(&auth).await?,
        profile: gw.realtime.own_profile(&auth.user_id).await?,
        devices: gw.auth.list_devices(&auth).await?.devices,
        conversations,
        blocked_user_ids: gw.realtime.blocked_users(&auth).await?,
        audit,
    }))
}
