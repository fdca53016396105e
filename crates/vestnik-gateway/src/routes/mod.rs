//! One module per area; each handler is small and calls one service method.
pub mod account;
pub mod auth;
pub mod consent;
pub mod credentials;
pub mod groups;
pub mod keys;
pub mod media;
pub mod messages;
pub mod ops;
pub mod profiles;
pub mod twofactor;
pub mod ws;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::Gateway;

/// Every API route with its OpenAPI operation, from the handlers'
/// `#[utoipa::path]` annotations: what is routed is what is documented.
pub fn api() -> OpenApiRouter<Arc<Gateway>> {
    OpenApiRouter::new()
        .routes(routes!(auth::register))
        .routes(routes!(auth::verify))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::logout_all))
        .routes(routes!(auth::pow_challenge))
        .routes(routes!(twofactor::setup))
        .routes(routes!(twofactor::enable))
        .routes(routes!(twofactor::disable))
        .routes(routes!(account::account))
        .routes(routes!(account::audit))
        .routes(routes!(account::export))
        .routes(routes!(account::blocks))
        .routes(routes!(profiles::set_profile))
        .routes(routes!(profiles::profiles))
        .routes(routes!(profiles::avatar))
        .merge(
            // The image itself is the body.
            OpenApiRouter::new()
                .routes(routes!(profiles::set_avatar, profiles::clear_avatar))
                .layer(DefaultBodyLimit::max(
                    vestnik_core::limits::AVATAR_UPLOAD_MAX_BYTES,
                )),
        )
        .routes(routes!(consent::set_group_adds))
        .routes(routes!(consent::contacts))
        .routes(routes!(consent::add_contact, consent::remove_contact))
        .routes(routes!(consent::invitations))
        .routes(routes!(consent::accept_invitation))
        .routes(routes!(consent::decline_invitation))
        .routes(routes!(account::set_presence))
        .routes(routes!(account::set_discovery))
        .routes(routes!(account::devices))
        .routes(routes!(account::revoke_device))
        .routes(routes!(credentials::change_password))
        .routes(routes!(credentials::request_password_reset))
        .routes(routes!(credentials::confirm_password_reset))
        .routes(routes!(credentials::request_email_change))
        .routes(routes!(credentials::confirm_email_change))
        .routes(routes!(credentials::delete_account))
        .routes(routes!(keys::upload))
        .routes(routes!(keys::count))
        .routes(routes!(keys::claim))
        .routes(routes!(keys::user_devices))
        .routes(routes!(keys::lookup))
        .routes(routes!(
            messages::create_conversation,
            messages::list_conversations
        ))
        .routes(routes!(
            groups::get_conversation,
            groups::update_conversation
        ))
        .routes(routes!(groups::conversation_devices))
        .routes(routes!(groups::add_member))
        .routes(routes!(groups::remove_member))
        .routes(routes!(groups::set_role))
        .routes(routes!(groups::transfer_ownership))
        .routes(routes!(groups::create_invite, groups::list_invites))
        .routes(routes!(groups::revoke_invite))
        .routes(routes!(groups::ban, groups::list_bans))
        .routes(routes!(groups::unban))
        .routes(routes!(groups::mute, groups::unmute))
        .routes(routes!(groups::delete_message))
        .routes(routes!(groups::join_invite))
        .routes(routes!(groups::posts))
        .routes(routes!(groups::subscribe))
        .merge(
            // A send carries one envelope per device: up to a WebSocket frame.
            OpenApiRouter::new()
                .routes(routes!(messages::send))
                .layer(DefaultBodyLimit::max(ws::MAX_FRAME_BYTES)),
        )
        .routes(routes!(messages::read_markers, messages::mark_read))
        .routes(routes!(messages::pending))
        .routes(routes!(messages::ack))
        .routes(routes!(messages::block, messages::unblock))
        .routes(routes!(media::grant_upload))
        .routes(routes!(media::usage))
        .routes(routes!(media::grant_download, media::delete))
        .routes(routes!(media::complete))
        .routes(routes!(media::put_blob, media::get_blob))
        .routes(routes!(ws::ticket))
        .routes(routes!(ws::ws))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
}

/// The routes and the document they make.
pub fn split() -> (Router<Arc<Gateway>>, utoipa::openapi::OpenApi) {
    let (router, doc) = api().split_for_parts();
    // The document itself is not an operation of the API it describes.
    (router.route("/openapi.json", get(ops::openapi)), doc)
}
