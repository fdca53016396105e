//! A socket does not outlive its access token by more than the grace: the
//! server asks for a fresh token on the socket (`reauth_required`), takes
//! it (`reauth` → `reauthed`), and closes with 4002 when none comes. A
//! client that refreshed over HTTP meanwhile is not asked at all.
use super::*;
use futures::SinkExt;

on_both_backends!(
    an_expired_socket_is_asked_to_reauth_and_lives_on_with_a_fresh_token,
    a_socket_that_does_not_reauth_closes_with_4002,
    a_client_that_refreshed_over_http_keeps_its_socket_without_being_asked,
);

/// Tokens last 5 s (the manual clock decides what has expired; the
/// socket's timer runs on real time), and a socket waits 2 s for `reauth`.
async fn short_lived(backend: Backend) -> Option<TestApp> {
    app_with(backend, |c| {
        c.access_token_ttl_secs = 5;
        c.ws_reauth_grace_secs = 2;
    })
    .await
}

async fn refreshed(app: &TestApp, session: &Value) -> Value {
    let r = app
        .post(
            "/v1/auth/refresh",
            json!({"refresh_token": session["refresh_token"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

async fn an_expired_socket_is_asked_to_reauth_and_lives_on_with_a_fresh_token(backend: Backend) {
    let Some(app) = short_lived(backend).await else {
        return;
    };
    let s = app.register("alice@example.org", PW).await;
    let mut ws = socket(&app.base, &token(&s)).await;
    // By the database's clock the token is now expired; the socket's timer
    // fires when its 5 s are up.
    app.clock.advance_ms(6_000);
    let other_device = app.login("alice@example.org", PW, json!({})).await.body;
    let ask = next_frame(&mut ws, Duration::from_secs(8)).await;
    assert_eq!(ask, json!({"type": "reauth_required", "within_ms": 2000}));
    // Another device's token is not this socket's.
    let foreign = json!({"type": "reauth", "access_token": token(&other_device)});
    ws.send(Message::Text(foreign.to_string().into()))
        .await
        .expect("send");
    assert_eq!(
        next_frame(&mut ws, Duration::from_secs(2)).await["code"],
        "wrong_device"
    );
    let fresh = refreshed(&app, &s).await;
    let reauth = json!({"type": "reauth", "access_token": token(&fresh)});
    ws.send(Message::Text(reauth.to_string().into()))
        .await
        .expect("send");
    let ok = next_frame(&mut ws, Duration::from_secs(2)).await;
    assert_eq!(
        (ok["type"].as_str(), ok["expires_in"].as_i64()),
        (Some("reauthed"), Some(5))
    );
    // Past the grace, the socket still serves.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    ping(&mut ws).await.expect("open");
    assert_eq!(
        next_frame(&mut ws, Duration::from_secs(2)).await["type"],
        "pong"
    );
}

async fn a_socket_that_does_not_reauth_closes_with_4002(backend: Backend) {
    let Some(app) = short_lived(backend).await else {
        return;
    };
    let s = app.register("alice@example.org", PW).await;
    let mut ws = socket(&app.base, &token(&s)).await;
    app.clock.advance_ms(6_000);
    assert_eq!(
        next_frame(&mut ws, Duration::from_secs(8)).await["type"],
        "reauth_required"
    );
    let (code, took) = closed_within(&mut ws, Duration::from_secs(4)).await;
    assert_eq!(code, 4002, "reauthenticate");
    assert!(
        took >= Duration::from_millis(1_500),
        "waited the grace: {took:?}"
    );
}

async fn a_client_that_refreshed_over_http_keeps_its_socket_without_being_asked(backend: Backend) {
    // Tokens of 10 s: the refresh below must land before the socket's first
    // token runs out, with room for a loaded machine.
    let Some(app) = app_with(backend, |c| {
        c.access_token_ttl_secs = 10;
        c.ws_reauth_grace_secs = 2;
    })
    .await
    else {
        return;
    };
    let s = app.register("alice@example.org", PW).await;
    let mut ws = socket(&app.base, &token(&s)).await;
    let connected = std::time::Instant::now();
    app.clock.advance_ms(11_000);
    let _fresh = refreshed(&app, &s).await;
    assert!(
        connected.elapsed() < Duration::from_secs(9),
        "the refresh came too late for this test to mean anything"
    );
    // The socket's first token runs out (10 s) and then some: the session's
    // newer token carries it, and nothing is asked.
    tokio::time::sleep(Duration::from_secs(11).saturating_sub(connected.elapsed())).await;
    ping(&mut ws).await.expect("open");
    // Generous: with the whole suite running, a frame can take seconds.
    let f = next_frame(&mut ws, Duration::from_secs(5)).await;
    assert_eq!(f["type"], "pong", "{f}");
}
