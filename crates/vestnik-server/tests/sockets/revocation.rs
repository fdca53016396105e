//! Every way a session ends closes its sockets at once (4001), and nothing
//! the socket sends afterwards is taken.
use super::*;
use futures::SinkExt;

on_both_backends!(
    logout_closes_the_socket_at_once_and_nothing_sent_after_it_is_stored,
    logout_all_closes_every_device_socket,
    revoking_a_device_closes_its_sockets_and_no_other,
    refresh_token_reuse_closes_the_family_sockets,
    disabling_the_account_closes_its_sockets,
    a_revocation_no_signal_announced_is_found_by_the_poll,
    a_ticket_of_an_ended_session_is_refused_at_upgrade,
);

const AT_ONCE: Duration = Duration::from_secs(1);

async fn logout_closes_the_socket_at_once_and_nothing_sent_after_it_is_stored(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    let alice = app.register("alice@example.org", PW).await;
    let bob = app.register("bob@example.org", PW).await;
    let conv = app
        .post_auth(
            "/v1/conversations",
            &token(&alice),
            Some(json!({"kind": "direct", "peer_user_id": bob["user_id"]})),
        )
        .await
        .body["id"]
        .clone();
    let mut ws = socket(&app.base, &token(&alice)).await;
    let r = app.post_auth("/v1/auth/logout", &token(&alice), None).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    // Sent after the logout was answered: refused, whatever the timing.
    let late = json!({"type": "send", "client_msg_id": "late", "conversation_id": conv,
        "envelopes": [{"device_id": device_id(&bob), "msg_type": 0, "ciphertext": "QQQlate"}]});
    let _ = ws.send(Message::Text(late.to_string().into())).await;
    let (code, took) = closed_within(&mut ws, AT_ONCE).await;
    assert_eq!(code, 4001, "session_ended");
    assert!(took < AT_ONCE, "{took:?}");
    let pending = app
        .get_auth("/v1/messages/pending?after=0&limit=10", &token(&bob))
        .await;
    assert_eq!(pending.body["items"], json!([]), "nothing was stored");
    // And the token opens no new socket.
    let url = format!("{}/v1/ws", app.base.replace("http", "ws"));
    let mut req =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
            .expect("request");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", token(&alice)).parse().expect("header"),
    );
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 401),
        other => panic!("expected 401, got {:?}", other.map(|_| ())),
    }
}

async fn logout_all_closes_every_device_socket(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    let laptop = app.register("alice@example.org", PW).await;
    let phone = app.login("alice@example.org", PW, json!({})).await.body;
    let mut on_laptop = socket(&app.base, &token(&laptop)).await;
    let mut on_phone = socket(&app.base, &token(&phone)).await;
    let mut second_on_phone = socket(&app.base, &token(&phone)).await;
    let r = app
        .post_auth("/v1/auth/logout-all", &token(&phone), None)
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    for ws in [&mut on_laptop, &mut on_phone, &mut second_on_phone] {
        let (code, took) = closed_within(ws, AT_ONCE).await;
        assert_eq!((code, took < AT_ONCE), (4001, true), "{took:?}");
    }
}

async fn revoking_a_device_closes_its_sockets_and_no_other(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    let laptop = app.register("alice@example.org", PW).await;
    let phone = app.login("alice@example.org", PW, json!({})).await.body;
    let mut on_laptop = socket(&app.base, &token(&laptop)).await;
    let mut on_phone = socket(&app.base, &token(&phone)).await;
    let r = app
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/devices/{}", device_id(&phone)),
            Some(&token(&laptop)),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let (code, took) = closed_within(&mut on_phone, AT_ONCE).await;
    assert_eq!((code, took < AT_ONCE), (4001, true), "{took:?}");
    ping(&mut on_laptop)
        .await
        .expect("the laptop's socket is open");
    assert_eq!(next_frame(&mut on_laptop, AT_ONCE).await["type"], "pong");
}

async fn refresh_token_reuse_closes_the_family_sockets(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    let s = app.register("bob@example.org", PW).await;
    let r0 = s["refresh_token"].as_str().expect("refresh").to_owned();
    let r = app
        .post("/v1/auth/refresh", json!({"refresh_token": r0}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let mut ws = socket(&app.base, &token(&r.body)).await;
    // The stolen, used token comes back later than a lost answer's retry.
    app.clock.advance_ms(31_000);
    let reuse = app
        .post("/v1/auth/refresh", json!({"refresh_token": r0}))
        .await;
    assert_eq!(reuse.code(), "refresh_token_reused");
    let (code, took) = closed_within(&mut ws, AT_ONCE).await;
    assert_eq!((code, took < AT_ONCE), (4001, true), "{took:?}");
}

async fn disabling_the_account_closes_its_sockets(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    let s = app.register("mallory@example.org", PW).await;
    let mut ws = socket(&app.base, &token(&s)).await;
    assert!(app
        .gw
        .auth
        .disable_user("mallory@example.org")
        .await
        .expect("disable"));
    let (code, took) = closed_within(&mut ws, AT_ONCE).await;
    assert_eq!((code, took < AT_ONCE), (4001, true), "{took:?}");
}

/// Another process (the CLI on the same database) or a lost Redis message:
/// no signal reaches this node, and the database poll closes the socket.
async fn a_revocation_no_signal_announced_is_found_by_the_poll(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    let s = app.register("alice@example.org", PW).await;
    let mut ws = socket(&app.base, &token(&s)).await;
    let user = s["user_id"].as_str().expect("user").to_owned();
    let now = vestnik_core::Clock::now_ms(&app.clock);
    app.gw
        .store
        .revoke_devices(&user, Some(&[device_id(&s)]), now)
        .await
        .expect("revoked behind the service's back");
    let (code, took) = closed_within(&mut ws, AT_ONCE).await;
    assert_eq!((code, took < AT_ONCE), (4001, true), "{took:?}");
}

async fn a_ticket_of_an_ended_session_is_refused_at_upgrade(backend: Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    let s = app.register("alice@example.org", PW).await;
    let t = app.post_auth("/v1/ws/ticket", &token(&s), None).await;
    assert_eq!(t.status, 200, "{:?}", t.body);
    let r = app.post_auth("/v1/auth/logout", &token(&s), None).await;
    assert_eq!(r.status, 204);
    let url = format!(
        "{}/v1/ws?ticket={}",
        app.base.replace("http", "ws"),
        t.body["ticket"].as_str().expect("ticket")
    );
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 401),
        other => panic!("expected 401, got {:?}", other.map(|_| ())),
    }
}
