//! The WebSocket: backlog then live frames, tickets, bad frames and sends.
use super::*;

both_backends!(
    the_websocket_sends_the_backlog_then_live_frames_and_takes_sends_and_acks,
    a_websocket_ticket_works_once_and_bad_auth_is_refused,
    bad_frames_and_bad_sends_get_clear_errors,
);

async fn the_websocket_sends_the_backlog_then_live_frames_and_takes_sends_and_acks(app: TestApp) {
    let (alice, bob, conv) = two_users(&app).await;
    let targets = [
        bob.devices[0].0.as_str(),
        bob.devices[1].0.as_str(),
        alice.devices[1].0.as_str(),
    ];
    for i in 0..3 {
        send(
            &app,
            &alice.devices[0].1,
            &conv,
            &format!("old{i}"),
            &targets,
        )
        .await;
    }
    let t = app
        .post_auth("/v1/ws/ticket", &bob.devices[0].1, None)
        .await;
    let url = format!(
        "{}/v1/ws?ticket={}",
        app.base.replace("http", "ws"),
        t.body["ticket"].as_str().expect("ticket")
    );
    let (mut bob_ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let mut cursors = Vec::new();
    for i in 0..3 {
        let f = next_json(&mut bob_ws).await;
        assert_eq!(
            (f["type"].as_str(), f["seq"].as_i64()),
            (Some("message"), Some(i + 1))
        );
        cursors.push(f["cursor"].as_i64().expect("cursor"));
    }
    assert_eq!(next_json(&mut bob_ws).await["type"], "synced");
    // Live: Alice sends over her own socket; Bob gets it pushed, Alice gets `sent`.
    let mut alice_ws = ws_bearer(&app, &alice.devices[0].1).await;
    assert_eq!(next_json(&mut alice_ws).await["type"], "synced");
    let frame = json!({"type": "send", "client_msg_id": "live1", "conversation_id": conv, "envelopes": envelopes(&targets, "live")});
    alice_ws
        .send(Message::Text(frame.to_string().into()))
        .await
        .expect("send");
    let sent = next_json(&mut alice_ws).await;
    assert_eq!(
        (
            sent["type"].as_str(),
            sent["seq"].as_i64(),
            sent["client_msg_id"].as_str()
        ),
        (Some("sent"), Some(4), Some("live1"))
    );
    let live = next_json(&mut bob_ws).await;
    assert_eq!(
        (live["type"].as_str(), live["seq"].as_i64()),
        (Some("message"), Some(4))
    );
    cursors.push(live["cursor"].as_i64().expect("cursor"));
    // Bob acks over the socket; Alice's socket gets the receipts.
    bob_ws
        .send(Message::Text(
            json!({"type": "ack", "cursors": cursors})
                .to_string()
                .into(),
        ))
        .await
        .expect("ack");
    // One ack of 4 messages: one receipt covering all 4.
    let f = next_json(&mut alice_ws).await;
    assert_eq!(f["type"], "receipt", "{f}");
    assert_eq!(f["message_ids"].as_array().map(Vec::len), Some(4), "{f}");
    assert_eq!(
        pending(&app, &bob.devices[0].1, 0, 100).await["items"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    // Ping → pong.
    bob_ws
        .send(Message::Text(
            json!({"type": "ping", "nonce": "n1"}).to_string().into(),
        ))
        .await
        .expect("ping");
    assert_eq!(
        next_json(&mut bob_ws).await,
        json!({"type": "pong", "nonce": "n1"})
    );
    // Logging out closes the device's socket.
    assert_eq!(
        app.post_auth("/v1/auth/logout", &bob.devices[0].1, None)
            .await
            .status,
        204
    );
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(m)) = bob_ws.next().await {
            if matches!(m, Message::Close(_)) {
                return;
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the socket must close after logout");
}

async fn a_websocket_ticket_works_once_and_bad_auth_is_refused(app: TestApp) {
    let alice = user(&app, "alice@example.org", 0).await;
    let t = app
        .post_auth("/v1/ws/ticket", &alice.devices[0].1, None)
        .await;
    assert_eq!(t.body["expires_in"], 30);
    let url = format!(
        "{}/v1/ws?ticket={}",
        app.base.replace("http", "ws"),
        t.body["ticket"].as_str().expect("ticket")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("first use");
    assert_eq!(next_json(&mut ws).await["type"], "synced");
    assert!(
        tokio_tungstenite::connect_async(&url).await.is_err(),
        "a ticket works once"
    );
    let bad = format!("{}/v1/ws?ticket=vwt_forged", app.base.replace("http", "ws"));
    assert!(tokio_tungstenite::connect_async(&bad).await.is_err());
    let none = format!("{}/v1/ws", app.base.replace("http", "ws"));
    assert!(tokio_tungstenite::connect_async(&none).await.is_err());
    // A plain HTTP GET is told to upgrade, in the JSON error shape.
    let r = app.get_auth("/v1/ws", &alice.devices[0].1).await;
    assert_eq!((r.status, r.code()), (400, "websocket_required"));
}

async fn bad_frames_and_bad_sends_get_clear_errors(app: TestApp) {
    let (alice, bob, conv) = two_users(&app).await;
    let mut ws = ws_bearer(&app, &alice.devices[0].1).await;
    assert_eq!(next_json(&mut ws).await["type"], "synced");
    for bad in ["{not json", r#"{"type":"teleport"}"#, r#"{"type":"send"}"#] {
        ws.send(Message::Text(bad.into())).await.expect("send");
        let f = next_json(&mut ws).await;
        assert_eq!(
            (f["type"].as_str(), f["code"].as_str()),
            (Some("error"), Some("invalid_frame")),
            "{bad}"
        );
    }
    ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .expect("send");
    assert_eq!(next_json(&mut ws).await["code"], "invalid_frame");
    // A stale device list over the socket: an error frame with the devices.
    let frame = json!({"type": "send", "client_msg_id": "s1", "conversation_id": conv, "envelopes": envelopes(&[bob.devices[0].0.as_str()], "x")});
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .expect("send");
    let f = next_json(&mut ws).await;
    assert_eq!(
        (f["code"].as_str(), f["client_msg_id"].as_str()),
        (Some("device_list_stale"), Some("s1"))
    );
    assert_eq!(f["devices"].as_array().map(Vec::len), Some(4));
    let targets = [
        bob.devices[0].0.as_str(),
        bob.devices[1].0.as_str(),
        alice.devices[1].0.as_str(),
    ];
    let cases = [
        (
            json!({"client_msg_id": "", "conversation_id": conv, "envelopes": envelopes(&targets, "a")}),
            "invalid_input",
        ),
        (
            json!({"client_msg_id": "x".repeat(65), "conversation_id": conv, "envelopes": envelopes(&targets, "a")}),
            "invalid_input",
        ),
        (
            json!({"client_msg_id": "a", "conversation_id": conv, "envelopes": []}),
            "invalid_input",
        ),
        (
            json!({"client_msg_id": "a", "conversation_id": conv, "envelopes": [{"device_id": targets[0], "msg_type": 7, "ciphertext": "QQ"}]}),
            "invalid_input",
        ),
        (
            json!({"client_msg_id": "a", "conversation_id": conv, "envelopes": [{"device_id": targets[0], "msg_type": 0, "ciphertext": "not base64!"}]}),
            "invalid_input",
        ),
        (
            json!({"client_msg_id": "a", "conversation_id": conv, "envelopes": [{"device_id": targets[0], "msg_type": 0, "ciphertext": "QQ"}, {"device_id": targets[0], "msg_type": 0, "ciphertext": "QQ"}]}),
            "invalid_input",
        ),
        (
            json!({"client_msg_id": "a", "conversation_id": "nope", "envelopes": envelopes(&targets, "a")}),
            "invalid_body",
        ),
    ];
    for (i, (body, code)) in cases.into_iter().enumerate() {
        let r = app
            .post_auth("/v1/messages", &alice.devices[0].1, Some(body))
            .await;
        assert_eq!(r.code(), code, "case {i}: {:?}", r.body);
    }
    let huge = "A".repeat(70_000);
    let r = app.post_auth("/v1/messages", &alice.devices[0].1, Some(json!({"client_msg_id": "h", "conversation_id": conv, "envelopes": [{"device_id": targets[0], "msg_type": 0, "ciphertext": huge}]}))).await;
    assert_eq!(r.code(), "invalid_input");
    let r = app
        .post_auth(
            "/v1/messages/ack",
            &alice.devices[0].1,
            Some(json!({"cursors": (0..1001).collect::<Vec<i64>>()})),
        )
        .await;
    assert_eq!(r.code(), "invalid_input");
    let r = app
        .get_auth("/v1/messages/pending?after=abc", &alice.devices[0].1)
        .await;
    assert_eq!(r.code(), "invalid_query");
}
