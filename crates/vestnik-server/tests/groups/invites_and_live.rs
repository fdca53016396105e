//! Invite links, key shares to some member devices, and what arrives live
//! over the WebSocket.
use super::*;

both_backends!(
    invite_links_join_until_used_up_or_expired,
    key_shares_go_to_any_member_devices_and_bad_group_sends_are_refused,
    group_messages_and_system_events_arrive_live_over_the_websocket,
);

async fn invite_links_join_until_used_up_or_expired(app: TestApp) {
    let alice = user(&app, "alice@example.org", 0).await;
    let bob = user(&app, "bob@example.org", 0).await;
    let carol = user(&app, "carol@example.org", 0).await;
    let dave = user(&app, "dave@example.org", 0).await;
    let conv = create_group(&app, &alice, &[]).await;
    let invites = format!("/v1/conversations/{conv}/invites");
    for (bad, status) in [
        (json!({"max_uses": 0}), 422),
        (json!({"ttl_secs": 5}), 422),
        (json!({"max_uses": 1, "extra": 1}), 400),
    ] {
        let r = app
            .post_auth(&invites, alice.token(), Some(bad.clone()))
            .await;
        assert_eq!(r.status, status, "{bad}: {:?}", r.body);
    }
    let r = app
        .post_auth(&invites, alice.token(), Some(json!({"max_uses": 1})))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let token = r.body["token"].as_str().expect("token").to_owned();
    let join = |t: &str| format!("/v1/invites/{t}/join");
    let r = app.post_auth(&join(&token), bob.token(), None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["id"], conv.as_str());
    // Joining again is harmless and does not use the invite up twice.
    let r = app.post_auth(&join(&token), bob.token(), None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = app.post_auth(&join(&token), carol.token(), None).await;
    assert_eq!((r.status, r.code()), (404, "invite_not_found"));
    let items = pending(&app, alice.token()).await;
    let joined: Vec<_> = of_type(&items, "system")
        .into_iter()
        .filter(|e| e["event"] == "member_joined")
        .collect();
    assert_eq!(joined.len(), 1, "{items:?}");
    assert_eq!(joined[0]["actor_user_id"], bob.id.as_str());

    // Expiry.
    let r = app
        .post_auth(&invites, alice.token(), Some(json!({"ttl_secs": 60})))
        .await;
    let token = r.body["token"].as_str().expect("token").to_owned();
    app.clock.advance_ms(61_000);
    let r = app.post_auth(&join(&token), dave.token(), None).await;
    assert_eq!((r.status, r.code()), (404, "invite_not_found"));
    let r = app
        .post_auth(&join(&"x".repeat(500)), dave.token(), None)
        .await;
    assert_eq!((r.status, r.code()), (404, "invite_not_found"));
}

async fn key_shares_go_to_any_member_devices_and_bad_group_sends_are_refused(app: TestApp) {
    let alice = user(&app, "alice@example.org", 0).await;
    let bob = user(&app, "bob@example.org", 1).await;
    let outsider = user(&app, "eve@example.org", 0).await;
    let conv = create_group(&app, &alice, &[&bob]).await;
    let keys = |devices: &[&str], id: &str| {
        json!({"client_msg_id": id, "conversation_id": conv, "kind": "keys",
            "envelopes": devices.iter().map(|d| json!({"device_id": d, "msg_type": 0, "ciphertext": format!("S2V5{id}")})).collect::<Vec<_>>()})
    };
    let r = app
        .post_auth(
            "/v1/messages",
            alice.token(),
            Some(keys(&[&bob.devices[1].0], "k1")),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let items = pending(&app, &bob.devices[1].1).await;
    let m = of_type(&items, "message");
    assert_eq!((m.len(), &m[0]["ciphertext"]), (1, &json!("S2V5k1")));
    assert!(of_type(&pending(&app, bob.token()).await, "message").is_empty());
    // A device outside the group: refused whole, with the current list.
    let r = app
        .post_auth(
            "/v1/messages",
            alice.token(),
            Some(keys(&[&bob.devices[1].0, &outsider.devices[0].0], "k2")),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "device_list_stale"));
    assert_eq!(r.body["error"]["devices"].as_array().expect("d").len(), 3);

    let direct = app
        .post_auth(
            "/v1/conversations",
            alice.token(),
            Some(json!({"kind": "direct", "peer_user_id": bob.id})),
        )
        .await;
    let direct = direct.body["id"].as_str().expect("id");
    let bad = [
        json!({"client_msg_id": "b1", "conversation_id": direct, "kind": "group", "ciphertext": "QUJD"}),
        json!({"client_msg_id": "b2", "conversation_id": conv, "kind": "group"}),
        json!({"client_msg_id": "b3", "conversation_id": conv, "kind": "group", "ciphertext": "not base64!"}),
        json!({"client_msg_id": "b4", "conversation_id": conv, "kind": "group", "ciphertext": "QUJD",
            "envelopes": [{"device_id": bob.devices[0].0, "msg_type": 0, "ciphertext": "QUJD"}]}),
        json!({"client_msg_id": "b5", "conversation_id": conv, "kind": "group", "ciphertext": "A".repeat(70_000)}),
        json!({"client_msg_id": "b6", "conversation_id": conv, "kind": "keys", "envelopes": []}),
        json!({"client_msg_id": "b7", "conversation_id": conv, "kind": "shout", "ciphertext": "QUJD"}),
    ];
    for b in bad {
        let r = app
            .post_auth("/v1/messages", alice.token(), Some(b.clone()))
            .await;
        assert!(
            r.status == 400 || r.status == 422,
            "{b}: {} {:?}",
            r.status,
            r.body
        );
        assert!(!r.code().is_empty(), "{:?}", r.body);
    }
    let r = group_send(&app, outsider.token(), &conv, "x").await;
    assert_eq!((r.status, r.code()), (404, "conversation_not_found"));
}

async fn group_messages_and_system_events_arrive_live_over_the_websocket(app: TestApp) {
    let alice = user(&app, "alice@example.org", 0).await;
    let bob = user(&app, "bob@example.org", 0).await;
    let carol = user(&app, "carol@example.org", 0).await;
    let conv = create_group(&app, &alice, &[&bob]).await;
    let mut bob_ws = ws(&app, bob.token()).await;
    let created = next(&mut bob_ws).await;
    assert_eq!(
        (created["type"].as_str(), created["event"].as_str()),
        (Some("system"), Some("created"))
    );
    assert_eq!(next(&mut bob_ws).await["type"], "synced");
    let r = group_send(&app, alice.token(), &conv, "live").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let m = next(&mut bob_ws).await;
    assert_eq!(
        (
            m["type"].as_str(),
            m["msg_type"].as_i64(),
            m["ciphertext"].as_str()
        ),
        (Some("message"), Some(2), Some("TWVnb2xtlive"))
    );
    let r = app
        .post_auth(
            &format!("/v1/conversations/{conv}/members"),
            alice.token(),
            Some(json!({"user_id": carol.id})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let e = next(&mut bob_ws).await;
    assert_eq!(
        (e["event"].as_str(), e["target_user_id"].as_str()),
        (Some("member_added"), Some(carol.id.as_str()))
    );
    assert!(e["cursor"].as_i64().is_some());
}
