//! The OpenAPI document, generated from the handlers' annotations.
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{account, auth, groups, keys, media, messages, ops, twofactor, ws};

#[derive(OpenApi)]
#[openapi(
    info(title = "Vestnik API", description = "End-to-end-encrypted messenger server. Errors always have the shape {\"error\": {\"code\", \"message\"}}."),
    paths(
        auth::register, auth::verify, auth::login, auth::refresh, auth::logout, auth::logout_all, auth::pow_challenge,
        twofactor::setup, twofactor::enable, twofactor::disable,
        account::account, account::audit, account::devices, account::revoke_device, account::set_presence,
        keys::upload, keys::count, keys::claim, keys::user_devices, keys::lookup,
        messages::create_conversation, messages::list_conversations, messages::send, messages::pending, messages::ack,
        messages::read_markers, messages::mark_read, messages::block, messages::unblock, ws::ticket, ws::ws,
        groups::get_conversation, groups::update_conversation, groups::conversation_devices, groups::add_member,
        groups::remove_member, groups::set_role, groups::transfer_ownership, groups::create_invite, groups::join_invite, groups::posts, groups::subscribe,
        media::grant_upload, media::complete, media::grant_download, media::delete, media::usage, media::put_blob, media::get_blob,
        ops::healthz, ops::readyz, ops::metrics,
    ),
    components(schemas(vestnik_proto::ClientFrame, vestnik_proto::ServerFrame)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// The document `/openapi.json` serves and `vestnik openapi` prints.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("access token"))
                    .build(),
            ),
        );
    }
}
