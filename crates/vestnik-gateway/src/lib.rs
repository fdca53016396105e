//! The HTTP edge: routing, authentication of bearer tokens, rate limits,
//! request ids, metrics, body limits and timeouts, and the one place where
//! service errors become HTTP statuses. It knows no SQL.
// The server's lint wall (as vestnik-crypto's): bad input and failed
// backends are errors, never a panic of the process.
#![deny(clippy::expect_used, clippy::panic, clippy::unwrap_used)]
#![warn(missing_docs)]

mod error;
mod extract;
mod middleware;
mod openapi;
mod routes;
pub mod sockets;

use axum::extract::State;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use vestnik_auth::AuthService;
use vestnik_bus::Kv;
use vestnik_store::Store;

pub use error::ApiError;
pub use openapi::{openapi_document, ApiDoc, DocumentLimits};

/// What the handlers share. Built once by the server binary.
pub struct Gateway {
    /// Registration, login, sessions, devices and the key directory.
    pub auth: Arc<AuthService>,
    /// Conversations, the send path and live delivery over WebSockets.
    pub realtime: Arc<vestnik_realtime::Realtime>,
    /// The database; handlers use it directly only for health checks.
    pub store: Arc<dyn Store>,
    /// The shared cache; pinged by `/readyz`.
    pub kv: Arc<dyn Kv>,
    /// Every rate limit, by the rate table.
    pub limits: Arc<vestnik_bus::Limits>,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// The HTTP-level tunables from the config.
    pub settings: GatewaySettings,
    /// Upload and download URLs, quotas and media rules.
    pub media: Arc<vestnik_media::MediaService>,
    /// Set when media live in a local directory: this node serves the blob URLs.
    pub local_blobs: Option<Arc<vestnik_media::LocalBlobStore>>,
    /// The time source for handlers (a manual clock in tests).
    pub clock: Arc<dyn vestnik_core::Clock>,
    /// The node's background tasks; `vestnik_server::serve` stops them.
    pub background: vestnik_core::Background,
    /// WebSockets held per client address on this node.
    pub sockets_by_ip: sockets::SocketsByIp,
}

impl Gateway {
    /// The current time in milliseconds since the Unix epoch, from [`Gateway::clock`].
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}

/// The gateway's part of the config: rate limits, proxy trust, CORS and readiness checks.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// Take the client IP from the last `X-Forwarded-For` hop; only safe behind a proxy that sets it.
    pub trust_forwarded_for: bool,
    /// Origins CORS allows, matched exactly; empty allows none.
    pub cors_origins: Vec<String>,
    /// Whether a Redis is configured (then /readyz checks it).
    pub uses_redis: bool,
    /// WebSockets one client address (IPv6: its /64) may hold on this node.
    pub sockets_per_ip: usize,
    /// How long a socket whose access token expired waits for `reauth`.
    pub ws_reauth_grace: std::time::Duration,
    /// A socket silent this long is closed (pings go every third of it).
    pub ws_idle: std::time::Duration,
    /// The bearer token `/metrics` on the public listener asks for; None: not served there.
    pub metrics_token: Option<String>,
    /// The public URL is https: responses carry `Strict-Transport-Security`.
    pub hsts: bool,
}

/// Only `/metrics`, unauthenticated: for the `metrics_listen` listener,
/// which a deployment keeps on a private network.
pub fn metrics_router(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route(
            "/metrics",
            axum::routing::get(|State(gw): State<Arc<Gateway>>| async move {
                routes::ops::render_metrics(&gw)
            }),
        )
        .fallback(|| async { ApiError::not_found() })
        .with_state(gw)
}

/// The whole application as one router.
pub fn router(gw: Arc<Gateway>) -> Router {
    let (routes, _) = routes::split();
    middleware::wrap(routes, gw.clone()).with_state(gw)
}

/// Installs the process-wide Prometheus recorder once (the `metrics` macros
/// write to a global recorder; several servers in one test process share it).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = metrics_exporter_prometheus::PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0,
                ])
                .unwrap_or_else(|_| metrics_exporter_prometheus::PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; then our
            // handle renders nothing, which /metrics shows plainly.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}
