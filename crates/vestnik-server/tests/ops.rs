//! Health, readiness, metrics, OpenAPI and rate limits, on both backends.
mod common;

use common::{spawn_app_with, Backend, TestApp};
use serde_json::json;

both_backends!(
    health_and_readiness_report_the_backends,
    the_openapi_document_lists_every_endpoint,
    every_response_carries_the_security_headers
);

const METRICS_TOKEN: &str = "metrics-token-for-the-tests";

async fn health_and_readiness_report_the_backends(app: TestApp) {
    let r = app.send(reqwest::Method::GET, "/healthz", None, None).await;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("ok")));
    let r = app.send(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["database"], "ok");
    if app.gw.settings.uses_redis {
        assert_eq!(r.body["redis"], "ok");
    } else {
        assert!(r.body.get("redis").is_none());
    }
}

async fn metrics_count_requests_by_route_and_status(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| {
        c.metrics_token = Some(METRICS_TOKEN.into());
    })
    .await
    else {
        return;
    };
    app.post("/v1/auth/register", json!({"email": "metrics@example.org"}))
        .await;
    app.post("/v1/auth/login", json!({})).await;
    let r = app
        .send(
            reqwest::Method::GET,
            "/metrics",
            Some("a-wrong-token"),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (401, "unauthorized"));
    let res = app
        .http
        .get(format!("{}/metrics", app.base))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .expect("metrics");
    assert!(res.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/plain"));
    let text = res.text().await.expect("text");
    assert!(text.contains("vestnik_http_requests_total{"), "{text}");
    assert!(
        text.contains(r#"route="/v1/auth/register""#) && text.contains(r#"status="202""#),
        "{text}"
    );
    assert!(
        text.contains("vestnik_http_request_duration_seconds_bucket{"),
        "{text}"
    );
    assert!(
        text.contains(r#"vestnik_auth_events_total{event="register_requested"}"#),
        "{text}"
    );
}

/// With no token configured, /metrics on the public port serves nobody; the
/// `metrics_listen` listener serves it without one.
async fn metrics_stay_off_the_public_port_unless_configured(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |_| {}).await else {
        return;
    };
    let r = app.send(reqwest::Method::GET, "/metrics", None, None).await;
    assert_eq!((r.status, r.code()), (401, "unauthorized"));
    let r = app
        .send(reqwest::Method::GET, "/metrics", Some(""), None)
        .await;
    assert_eq!(r.status, 401, "an empty token is no token");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(vestnik_server::serve_metrics(
        listener,
        app.gw.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    let res = app
        .http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(res.status(), 200);
    assert!(res.text().await.expect("text").contains("vestnik_"));
    let other = app
        .http
        .get(format!("http://{addr}/v1/account"))
        .send()
        .await
        .expect("answer");
    assert_eq!(other.status(), 404, "only /metrics lives there");
    let _ = stop.send(());
    served.await.expect("join").expect("served");
}

async fn every_response_carries_the_security_headers(app: TestApp) {
    for (method, path) in [
        (reqwest::Method::GET, "/healthz"),
        (reqwest::Method::GET, "/v1/account"),
        (reqwest::Method::GET, "/no/such/path"),
        (reqwest::Method::POST, "/v1/auth/login"),
    ] {
        let r = app.send(method, path, None, None).await;
        let h = &r.headers;
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        let csp = h["content-security-policy"].to_str().expect("ascii");
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert!(
            h.get("strict-transport-security").is_none(),
            "no HSTS over plain http"
        );
    }
}

async fn hsts_is_sent_when_the_public_url_is_https(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| {
        c.public_url = Some("https://chat.example.org".into());
    })
    .await
    else {
        return;
    };
    let r = app.send(reqwest::Method::GET, "/healthz", None, None).await;
    assert_eq!(
        r.headers["strict-transport-security"],
        "max-age=63072000; includeSubDomains"
    );
}

async fn the_openapi_document_lists_every_endpoint(app: TestApp) {
    let r = app
        .send(reqwest::Method::GET, "/openapi.json", None, None)
        .await;
    assert_eq!(r.status, 200);
    let paths = r.body["paths"].as_object().expect("paths");
    for p in [
        "/v1/auth/register",
        "/v1/auth/register/verify",
        "/v1/auth/login",
        "/v1/auth/refresh",
        "/v1/auth/logout",
        "/v1/auth/logout-all",
        "/v1/auth/2fa/setup",
        "/v1/auth/2fa/enable",
        "/v1/auth/2fa/disable",
        "/v1/devices",
        "/v1/devices/{id}",
        "/v1/account",
        "/v1/account/audit",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(paths.contains_key(p), "{p} missing from /openapi.json");
    }
    assert!(r.body["components"]["schemas"]["ErrorBody"].is_object());
}

async fn auth_endpoints_answer_429_with_retry_after_when_an_ip_floods(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.rate_auth_ip_per_minute = 3).await else {
        return;
    };
    let mut statuses = Vec::new();
    for i in 0..5 {
        let r = app.post("/v1/auth/login", json!({"email": format!("x{i}@example.org"), "password": "whatever1", "device": common::device("d")})).await;
        statuses.push(r.status);
        if r.status == 429 {
            assert_eq!(r.code(), "rate_limited");
            let secs: u64 = r.headers["retry-after"]
                .to_str()
                .expect("ascii")
                .parse()
                .expect("number");
            assert!((1..=60).contains(&secs), "{secs}");
            assert_eq!(r.body["error"]["retry_after_secs"], secs);
        }
    }
    assert_eq!(statuses, vec![401, 401, 401, 429, 429]);
    // Other endpoint classes are not affected.
    assert_eq!(
        app.send(reqwest::Method::GET, "/v1/auth/pow", None, None)
            .await
            .status,
        200
    );
}

async fn per_address_limit_stops_guessing_one_account_from_many_ips(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |c| c.rate_auth_email_per_hour = 2).await else {
        return;
    };
    let body = || json!({"email": "target@example.org", "password": "whatever1", "device": common::device("d")});
    assert_eq!(app.post("/v1/auth/login", body()).await.status, 401);
    assert_eq!(app.post("/v1/auth/login", body()).await.status, 401);
    let r = app.post("/v1/auth/login", body()).await;
    assert_eq!((r.status, r.code()), (429, "rate_limited"));
}

async fn a_disabled_account_loses_every_session_at_once(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |_| {}).await else {
        return;
    };
    let s = app
        .register("sybil@example.org", "correct horse battery staple")
        .await;
    let t = s["access_token"].as_str().expect("token");
    assert_eq!(app.get_auth("/v1/account", t).await.status, 200);
    assert!(app
        .gw
        .auth
        .disable_user("sybil@example.org")
        .await
        .expect("disable"));
    assert_eq!(app.get_auth("/v1/account", t).await.status, 401);
    let r = app
        .login(
            "sybil@example.org",
            "correct horse battery staple",
            json!({}),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "account_disabled"));
    let r = app
        .post(
            "/v1/auth/refresh",
            json!({"refresh_token": s["refresh_token"]}),
        )
        .await;
    assert_eq!(r.status, 401);
}

macro_rules! per_backend {
    ($($name:ident),*) => {
        mod tuned_sqlite { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::Backend::Sqlite).await } )* }
        mod tuned_postgres_redis { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::Backend::PostgresRedis).await } )* }
    };
}
per_backend!(
    metrics_count_requests_by_route_and_status,
    metrics_stay_off_the_public_port_unless_configured,
    hsts_is_sent_when_the_public_url_is_https,
    auth_endpoints_answer_429_with_retry_after_when_an_ip_floods,
    per_address_limit_stops_guessing_one_account_from_many_ips,
    a_disabled_account_loses_every_session_at_once
);
