//! One middleware for what every request needs — request id, client IP, per-IP
//! rate limits, a timeout, metrics and a log line — plus the stock layers for
//! body limits, CORS and panics.
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument;
use vestnik_core::limits::{
    MAX_JSON_BODY_BYTES, MEDIA_TRANSFER_TIMEOUT_SECS, REQUEST_TIMEOUT_SECS,
};

use crate::{ApiError, Gateway};
use vestnik_core::Action;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(Debug, Clone)]
pub struct RequestId(pub String);

#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

pub fn wrap(router: Router<Arc<Gateway>>, gw: Arc<Gateway>) -> Router<Arc<Gateway>> {
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(
            gw.settings
                .cors_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        ))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_TYPE,
            axum::http::header::RANGE,
            REQUEST_ID,
        ])
        .expose_headers([
            REQUEST_ID,
            axum::http::header::RETRY_AFTER,
            axum::http::header::CONTENT_RANGE,
            axum::http::header::CONTENT_LENGTH,
        ])
        .max_age(Duration::from_secs(600));
    router
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method",
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_JSON_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(gw, edge))
        .layer(cors)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error; it has been logged",
            )
            .into_response()
        }))
}

fn request_id(req: &Request) -> String {
    // Accept the caller's id only if it is short and tame, so logs stay clean.
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(vestnik_core::ids::new_id)
}

fn client_ip(req: &Request, trust_forwarded_for: bool) -> Option<IpAddr> {
    if trust_forwarded_for {
        // The last hop is the one our own proxy appended; earlier ones are the client's word.
        let fwd = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok());
        if fwd.is_some() {
            return fwd;
        }
    }
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Auth endpoints that cost argon2 or send mail get their own, tighter class.
fn is_auth_class(path: &str) -> bool {
    matches!(
        path,
        "/v1/auth/register"
            | "/v1/auth/register/verify"
            | "/v1/auth/login"
            | "/v1/auth/refresh"
            | "/v1/auth/2fa/disable"
            | "/v1/auth/password-reset"
            | "/v1/auth/password-reset/confirm"
            | "/v1/account/password"
            | "/v1/account/email"
            | "/v1/account/email/confirm"
    )
}

async fn edge(State(gw): State<Arc<Gateway>>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(&req);
    let ip = client_ip(&req, gw.settings.trust_forwarded_for);
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().clone();
    req.extensions_mut().insert(RequestId(id.clone()));
    if let Some(ip) = ip {
        req.extensions_mut().insert(ClientIp(ip));
    }
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = %route);

    let res = async {
        if let Some(ip) = ip {
            if let Err(e) = limit(&gw, ip, &route).await {
                return e.into_response();
            }
        }
        // Blob transfers (local store) move up to media_max_bytes; the
        // others are small and must not hang.
        let timeout = if route.starts_with("/v1/media/blob/") {
            MEDIA_TRANSFER_TIMEOUT_SECS
        } else {
            REQUEST_TIMEOUT_SECS
        };
        match tokio::time::timeout(Duration::from_secs(timeout), next.run(req)).await {
            Ok(res) => res,
            Err(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "the request took too long",
            )
            .into_response(),
        }
    }
    .instrument(span.clone())
    .await;

    let mut res = res;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    security_headers(res.headers_mut(), gw.settings.hsts);
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    let labels = [
        ("route", route.clone()),
        ("method", method.to_string()),
        ("status", status.to_string()),
    ];
    metrics::counter!("vestnik_http_requests_total", &labels).increment(1);
    metrics::histogram!("vestnik_http_request_duration_seconds", &labels)
        .record(elapsed.as_secs_f64());
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(
                status,
                elapsed_ms = elapsed.as_millis() as u64,
                "request failed"
            );
        } else {
            tracing::debug!(status, elapsed_ms = elapsed.as_millis() as u64, "request");
        }
    });
    res
}

/// Headers every response carries. The API answers JSON and blobs, never a
/// page: nothing may run, frame or sniff it. A handler that sets its own
/// policy (a page of the web client) keeps it.
fn security_headers(h: &mut axum::http::HeaderMap, hsts: bool) {
    use axum::http::header;
    let set = |h: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    );
    set(
        h,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    if hsts {
        set(
            h,
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=63072000; includeSubDomains",
        );
    }
}

async fn limit(gw: &Gateway, ip: IpAddr, route: &str) -> Result<(), ApiError> {
    if route.starts_with("/healthz")
        || route.starts_with("/readyz")
        || route.starts_with("/metrics")
    {
        return Ok(());
    }
    let key = vestnik_core::rate_limits::address_key(ip).to_string();
    let check = |action| {
        let key = key.clone();
        async move {
            gw.limits.check(action, &key).await.map_err(|e| match e {
                vestnik_bus::LimitError::Limited { retry_after_ms } => {
                    ApiError::rate_limited(retry_after_ms)
                }
                vestnik_bus::LimitError::Unavailable => ApiError::busy(1000),
            })
        }
    };
    check(Action::Requests).await?;
    if is_auth_class(route) {
        check(Action::AuthAttempts).await?;
    }
    Ok(())
}
