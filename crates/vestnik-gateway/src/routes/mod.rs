//! One module per area; each handler is small and calls one service method.
pub mod account;
pub mod auth;
pub mod groups;
pub mod keys;
pub mod media;
pub mod messages;
pub mod ops;
pub mod twofactor;
pub mod ws;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use axum::Router;
use std::sync::Arc;

use crate::Gateway;

pub fn api_routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/v1/auth/register", post(auth::register))
        .route("/v1/auth/register/verify", post(auth::verify))
        .route("/v1/auth/login", post(auth::login))
        .route("/v1/auth/refresh", post(auth::refresh))
        .route("/v1/auth/logout", post(auth::logout))
        .route("/v1/auth/logout-all", post(auth::logout_all))
        .route("/v1/auth/pow", get(auth::pow_challenge))
        .route("/v1/auth/2fa/setup", post(twofactor::setup))
        .route("/v1/auth/2fa/enable", post(twofactor::enable))
        .route("/v1/auth/2fa/disable", post(twofactor::disable))
        .route("/v1/account", get(account::account))
        .route("/v1/account/audit", get(account::audit))
        .route("/v1/account/presence", put(account::set_presence))
        .route("/v1/devices", get(account::devices))
        .route("/v1/devices/{id}", delete(account::revoke_device))
        .route("/v1/keys", put(keys::upload))
        .route("/v1/keys/count", get(keys::count))
        .route("/v1/keys/claim", post(keys::claim))
        .route("/v1/users/{id}/devices", get(keys::user_devices))
        .route("/v1/users/lookup", post(keys::lookup))
        .route(
            "/v1/conversations",
            post(messages::create_conversation).get(messages::list_conversations),
        )
        .route(
            "/v1/conversations/{id}",
            get(groups::get_conversation).patch(groups::update_conversation),
        )
        .route(
            "/v1/conversations/{id}/devices",
            get(groups::conversation_devices),
        )
        .route("/v1/conversations/{id}/members", post(groups::add_member))
        .route(
            "/v1/conversations/{id}/members/{user_id}",
            delete(groups::remove_member),
        )
        .route(
            "/v1/conversations/{id}/members/{user_id}/role",
            put(groups::set_role),
        )
        .route(
            "/v1/conversations/{id}/owner",
            post(groups::transfer_ownership),
        )
        .route(
            "/v1/conversations/{id}/invites",
            post(groups::create_invite),
        )
        .route("/v1/invites/{token}/join", post(groups::join_invite))
        .route("/v1/conversations/{id}/posts", get(groups::posts))
        .route("/v1/conversations/{id}/subscribe", post(groups::subscribe))
        .route(
            "/v1/messages",
            post(messages::send).layer(DefaultBodyLimit::max(ws::MAX_FRAME_BYTES)),
        )
        .route(
            "/v1/conversations/{id}/read",
            get(messages::read_markers).post(messages::mark_read),
        )
        .route("/v1/messages/pending", get(messages::pending))
        .route("/v1/messages/ack", post(messages::ack))
        .route(
            "/v1/blocks/{user_id}",
            put(messages::block).delete(messages::unblock),
        )
        .route("/v1/media", post(media::grant_upload))
        .route("/v1/media/usage", get(media::usage))
        .route(
            "/v1/media/{id}",
            get(media::grant_download).delete(media::delete),
        )
        .route("/v1/media/{id}/complete", post(media::complete))
        .route(
            "/v1/media/blob/{token}",
            put(media::put_blob).get(media::get_blob),
        )
        .route("/v1/ws/ticket", post(ws::ticket))
        .route("/v1/ws", get(ws::ws))
}

pub fn ops_routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
}
