//! Typing, read markers and presence: who gets them, who does not.
use super::*;

both_backends!(
    typing_and_read_markers_reach_the_right_people_only,
    presence_goes_to_conversation_partners_and_respects_privacy,
);

async fn typing_and_read_markers_reach_the_right_people_only(app: TestApp) {
    let (alice, bob, conv) = two_users(&app).await;
    let carol = user(&app, "carol@example.org", 0).await;
    let mut a0 = ws_bearer(&app, &alice.devices[0].1).await;
    let mut a1 = ws_bearer(&app, &alice.devices[1].1).await;
    let mut b0 = ws_bearer(&app, &bob.devices[0].1).await;
    let mut b1 = ws_bearer(&app, &bob.devices[1].1).await;
    let mut c0 = ws_bearer(&app, &carol.devices[0].1).await;
    for ws in [&mut a0, &mut a1, &mut b0, &mut b1, &mut c0] {
        assert_eq!(next_json(ws).await["type"], "synced");
    }
    let typing = json!({"type": "typing", "conversation_id": conv, "typing": true});
    a0.send(Message::Text(typing.to_string().into()))
        .await
        .expect("typing");
    for ws in [&mut b0, &mut b1] {
        assert_eq!(
            next_of(ws, "typing").await,
            json!({"type": "typing", "conversation_id": conv, "user_id": alice.id, "typing": true})
        );
    }
    nothing_but_pong(&mut a1, &["typing"]).await;
    nothing_but_pong(&mut c0, &["typing", "read"]).await;

    let targets = [
        bob.devices[0].0.as_str(),
        bob.devices[1].0.as_str(),
        alice.devices[1].0.as_str(),
    ];
    send(&app, &alice.devices[0].1, &conv, "r1", &targets).await;
    send(&app, &alice.devices[0].1, &conv, "r2", &targets).await;
    b0.send(Message::Text(
        json!({"type": "read", "conversation_id": conv, "seq": 2})
            .to_string()
            .into(),
    ))
    .await
    .expect("read");
    for ws in [&mut a0, &mut a1, &mut b1] {
        assert_eq!(
            next_of(ws, "read").await,
            json!({"type": "read", "conversation_id": conv, "user_id": bob.id, "seq": 2})
        );
    }
    let markers = app
        .get_auth(
            &format!("/v1/conversations/{conv}/read"),
            &alice.devices[0].1,
        )
        .await;
    assert_eq!(markers.body["markers"][0]["user_id"], bob.id.as_str());
    assert_eq!(markers.body["markers"][0]["seq"], 2);
    // Beyond the last message, or by a non-member: clear errors; backwards: no-op.
    let r = app
        .post_auth(
            &format!("/v1/conversations/{conv}/read"),
            &bob.devices[0].1,
            Some(json!({"seq": 99})),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "invalid_input"));
    let r = app
        .post_auth(
            &format!("/v1/conversations/{conv}/read"),
            &carol.devices[0].1,
            Some(json!({"seq": 1})),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "conversation_not_found"));
    let r = app
        .post_auth(
            &format!("/v1/conversations/{conv}/read"),
            &bob.devices[0].1,
            Some(json!({"seq": 1})),
        )
        .await;
    assert_eq!(r.status, 204);
    nothing_but_pong(&mut a0, &["read"]).await;
    c0.send(Message::Text(typing.to_string().into()))
        .await
        .expect("typing");
    assert_eq!(
        next_of(&mut c0, "error").await["code"],
        "conversation_not_found"
    );
    // A typing flood is cut off.
    for _ in 0..40 {
        a0.send(Message::Text(typing.to_string().into()))
            .await
            .expect("typing");
    }
    assert_eq!(next_of(&mut a0, "error").await["code"], "rate_limited");
}

async fn presence_goes_to_conversation_partners_and_respects_privacy(app: TestApp) {
    let alice = user(&app, "alice@example.org", 0).await;
    let bob = user(&app, "bob@example.org", 0).await;
    let carol = user(&app, "carol@example.org", 0).await;
    direct(&app, &alice.devices[0].1, &bob.id).await;
    // Bob replies in it: alice becomes his contact, who sees his presence.
    direct(&app, &bob.devices[0].1, &alice.id).await;
    let mut a = ws_bearer(&app, &alice.devices[0].1).await;
    let mut c = ws_bearer(&app, &carol.devices[0].1).await;
    assert_eq!(next_json(&mut a).await["type"], "synced");
    assert_eq!(next_json(&mut c).await["type"], "synced");
    let sub = json!({"type": "subscribe_presence", "user_ids": [bob.id, carol.id]});
    a.send(Message::Text(sub.to_string().into()))
        .await
        .expect("subscribe");
    let p1 = next_of(&mut a, "presence").await;
    assert_eq!(
        p1,
        json!({"type": "presence", "user_id": bob.id, "online": false, "last_seen": null})
    );
    let p2 = next_of(&mut a, "presence").await;
    assert_eq!(
        p2,
        json!({"type": "presence", "user_id": carol.id, "online": null, "last_seen": null}),
        "not a partner: unknown"
    );

    let mut b = ws_bearer(&app, &bob.devices[0].1).await;
    assert_eq!(next_json(&mut b).await["type"], "synced");
    let on = next_of(&mut a, "presence").await;
    assert_eq!(
        (on["user_id"].as_str(), on["online"].as_bool()),
        (Some(bob.id.as_str()), Some(true))
    );
    b.close(None).await.expect("close");
    let off = next_of(&mut a, "presence").await;
    assert_eq!(off["online"], false);
    assert!(off["last_seen"].as_i64().is_some_and(|t| t > 0));
    nothing_but_pong(&mut c, &["presence"]).await;

    // Hidden: no pushes, and a subscription reads unknown.
    let r = app
        .send(
            Method::PUT,
            "/v1/account/presence",
            Some(&bob.devices[0].1),
            Some(&json!({"visibility": "nobody"})),
        )
        .await;
    assert_eq!(r.status, 204);
    let mut b = ws_bearer(&app, &bob.devices[0].1).await;
    assert_eq!(next_json(&mut b).await["type"], "synced");
    a.send(Message::Text(
        json!({"type": "subscribe_presence", "user_ids": [bob.id]})
            .to_string()
            .into(),
    ))
    .await
    .expect("subscribe");
    assert_eq!(next_of(&mut a, "presence").await["online"], Value::Null);
    nothing_but_pong(&mut a, &["presence"]).await;
    let r = app
        .send(
            Method::PUT,
            "/v1/account/presence",
            Some(&bob.devices[0].1),
            Some(&json!({"visibility": "sometimes"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_body"));
    let many: Vec<String> = (0..101).map(|i| format!("{i:032x}")).collect();
    a.send(Message::Text(
        json!({"type": "subscribe_presence", "user_ids": many})
            .to_string()
            .into(),
    ))
    .await
    .expect("subscribe");
    assert_eq!(next_of(&mut a, "error").await["code"], "invalid_input");
}
