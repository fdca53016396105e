//! One module per area; each handler is small and calls one service method.
pub mod account;
pub mod auth;
pub mod ops;
pub mod twofactor;

use axum::routing::{delete, get, post};
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
        .route("/v1/devices", get(account::devices))
        .route("/v1/devices/{id}", delete(account::revoke_device))
}

pub fn ops_routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
}
