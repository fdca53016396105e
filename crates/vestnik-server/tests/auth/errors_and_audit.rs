//! Malformed requests get the JSON error shape; the audit log shows an
//! account its own events.
use super::*;

both_backends!(
    malformed_requests_get_json_4xx_errors,
    the_audit_log_shows_an_account_its_own_events_only,
);

async fn malformed_requests_get_json_4xx_errors(app: TestApp) {
    let url = |p: &str| format!("{}{}", app.base, p);
    let raw = |body: &'static str| {
        app.http
            .post(url("/v1/auth/login"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let cases: Vec<(reqwest::Response, u16, &str)> = vec![
        (raw("{not json").await.expect("send"), 400, "invalid_json"),
        (
            raw(r#"{"email": 5, "password": "x"}"#).await.expect("send"),
            400,
            "invalid_body",
        ),
        (
            raw(r#"{"email": "a@b.org", "password": "x", "device": {}, "extra": 1}"#)
                .await
                .expect("send"),
            400,
            "invalid_body",
        ),
        (raw("[]").await.expect("send"), 400, "invalid_body"),
        (
            app.http
                .post(url("/v1/auth/login"))
                .body("{}")
                .send()
                .await
                .expect("send"),
            415,
            "unsupported_media_type",
        ),
        (
            app.http
                .post(url("/v1/auth/register"))
                .header("content-type", "application/json")
                .body(format!("{{\"email\": \"{}\"}}", "a".repeat(70_000)))
                .send()
                .await
                .expect("send"),
            413,
            "payload_too_large",
        ),
        (
            app.http
                .get(url("/v1/auth/login"))
                .send()
                .await
                .expect("send"),
            405,
            "method_not_allowed",
        ),
        (
            app.http.get(url("/v1/nope")).send().await.expect("send"),
            404,
            "not_found",
        ),
        (
            raw(r#"{"email": "not an email", "password": "x", "device": {}}"#)
                .await
                .expect("send"),
            400,
            "invalid_body",
        ),
    ];
    for (i, (res, status, code)) in cases.into_iter().enumerate() {
        assert_eq!(res.status().as_u16(), status, "case {i}");
        assert!(res.headers().contains_key("x-request-id"), "case {i}");
        let body: serde_json::Value = res.json().await.expect("json error body");
        assert_eq!(body["error"]["code"], code, "case {i}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "case {i}"
        );
    }
    let r = app
        .post("/v1/auth/register", json!({"email": "not-an-address"}))
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_email"));
    let r = app
        .post("/v1/auth/refresh", json!({"refresh_token": "vsr_nope"}))
        .await;
    assert_eq!((r.status, r.code()), (401, "unauthorized"));
    let s = app.register("mallory@example.org", PW).await;
    let t = s["access_token"].as_str().expect("token");
    let r = app
        .send(Method::DELETE, "/v1/devices/..%2F..%2Fetc", Some(t), None)
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_path"));
    let r = app.get_auth("/v1/account/audit?limit=abc", t).await;
    assert_eq!((r.status, r.code()), (400, "invalid_query"));
    // The request id the client sent comes back.
    let res = app
        .http
        .get(url("/healthz"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .expect("send");
    assert_eq!(res.headers()["x-request-id"], "trace-me-123");
}

async fn the_audit_log_shows_an_account_its_own_events_only(app: TestApp) {
    let a = app.register("nina@example.org", PW).await;
    let b = app.register("oscar@example.org", PW).await;
    assert_eq!(
        app.login("nina@example.org", "bad password 1", json!({}))
            .await
            .status,
        401
    );
    let ta = a["access_token"].as_str().expect("token");
    let tb = b["access_token"].as_str().expect("token");
    let page = app
        .send(Method::GET, "/v1/account/audit", Some(ta), None)
        .await;
    let events = page.body["events"].as_array().expect("events").clone();
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert!(
        names.contains(&"registered")
            && names.contains(&"login_failed")
            && names.contains(&"register_requested"),
        "{names:?}"
    );
    let reg = events
        .iter()
        .find(|e| e["event"] == "registered")
        .expect("registered");
    assert_eq!(reg["ip"], "127.0.0.1");
    assert!(reg["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(reg["user_agent"], "vestnik-tests/1");
    let other = app.get_auth("/v1/account/audit", tb).await;
    let names_b: Vec<&str> = other.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert!(!names_b.contains(&"login_failed"), "{names_b:?}");
    // Paging.
    let p1 = app.get_auth("/v1/account/audit?limit=1", ta).await;
    let before = p1.body["next_before"].as_i64().expect("next page");
    let p2 = app
        .get_auth(&format!("/v1/account/audit?limit=1&before={before}"), ta)
        .await;
    assert!(p2.body["events"][0]["id"].as_i64().expect("id") < before);
}
