use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use std::sync::Arc;
use vestnik_proto::Health;

use crate::Gateway;

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

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, description = "Prometheus text format")))]
pub async fn metrics(State(gw): State<Arc<Gateway>>) -> impl IntoResponse {
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
