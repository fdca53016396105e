//! The OpenAPI document, generated from the handlers' annotations.
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{account, auth, ops, twofactor};

#[derive(OpenApi)]
#[openapi(
    info(title = "Vestnik API", description = "End-to-end-encrypted messenger server. Errors always have the shape {\"error\": {\"code\", \"message\"}}."),
    paths(
        auth::register, auth::verify, auth::login, auth::refresh, auth::logout, auth::logout_all, auth::pow_challenge,
        twofactor::setup, twofactor::enable, twofactor::disable,
        account::account, account::audit, account::devices, account::revoke_device,
        ops::healthz, ops::readyz, ops::metrics,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

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
