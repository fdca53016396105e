use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use vestnik_proto::{ErrorBody, Health};

use crate::{ApiError, Gateway};

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok".into(),
        database: None,
        redis: None,
    })
}

/// The node can serve: its database (and Redis, when configured) answer.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn readyz(State(gw): State<Arc<Gateway>>) -> impl IntoResponse {
    let db = match gw.store.ping().await {
        Ok(()) => "ok".to_string(),
        Err(e) => {
            tracing::warn!(error = %e, "readyz: database");
            "unavailable".to_string()
        }
    };
    let redis = if gw.settings.uses_redis {
        Some(match gw.kv.ping().await {
            Ok(()) => "ok".to_string(),
            Err(e) => {
                tracing::warn!(error = %e, "readyz: redis");
                "unavailable".to_string()
            }
        })
    } else {
        None
    };
    let ok = db == "ok" && redis.as_deref().is_none_or(|r| r == "ok");
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(Health {
            status: if ok { "ok" } else { "unavailable" }.into(),
            database: Some(db),
            redis,
        }),
    )
}

/// Prometheus text exposition. On the public listener only with
/// `Authorization: Bearer <metrics_token>` (always 401 when no token is
/// configured: then the metrics live on `metrics_listen`, or nowhere).
#[utoipa::path(get, path = "/metrics", tag = "ops", security(("bearer" = [])),
    responses((status = 200, description = "Prometheus text format"), (status = 401, body = ErrorBody)))]
pub async fn metrics(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // No token configured: no token is right (the same answer, so the
    // public port does not tell whether metrics are served there).
    let allowed = gw
        .settings
        .metrics_token
        .as_deref()
        .is_some_and(|expected| vestnik_core::token::ct_eq(given.as_bytes(), expected.as_bytes()));
    if !allowed {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "metrics need the bearer token configured as metrics_token",
        )
        .into_response();
    }
    render_metrics(&gw).into_response()
}

/// The metrics themselves, also served unauthenticated on `metrics_listen`.
pub fn render_metrics(gw: &Gateway) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        gw.metrics.render(),
    )
}

/// This document, with this deployment's limits.
pub async fn openapi(State(gw): State<Arc<Gateway>>) -> impl IntoResponse {
    let media = gw.media.settings();
    axum::Json(crate::openapi_document(crate::DocumentLimits {
        media_max_bytes: media.max_object_bytes,
        media_max_ttl_secs: media.max_ttl_secs,
    }))
}
