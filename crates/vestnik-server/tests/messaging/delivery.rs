//! Sending and delivery over HTTP: devices, stale lists, retries, refusals,
//! the offline backlog with its pages, acks and receipts.
use super::*;

both_backends!(
    a_message_reaches_every_other_device_and_nothing_else,
    a_stale_device_list_is_refused_whole_with_the_current_list,
    a_retried_send_gets_the_same_answer_and_is_stored_once,
    a_client_msg_id_reused_for_another_conversation_is_refused,
    non_members_are_refused_and_blocked_senders_reach_nobody_unknowingly,
    an_offline_backlog_arrives_in_order_in_pages_and_acks_send_receipts,
);

async fn a_message_reaches_every_other_device_and_nothing_else(app: TestApp) {
    let (alice, bob, conv) = two_users(&app).await;
    let targets = [
        bob.devices[0].0.as_str(),
        bob.devices[1].0.as_str(),
        alice.devices[1].0.as_str(),
    ];
    let r = send(&app, &alice.devices[0].1, &conv, "m1", &targets).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        (r.body["seq"].as_i64(), r.body["client_msg_id"].as_str()),
        (Some(1), Some("m1"))
    );
    for (device, token) in [&bob.devices[0], &bob.devices[1], &alice.devices[1]] {
        let p = pending(&app, token, 0, 100).await;
        let items = p["items"].as_array().expect("items");
        assert_eq!(items.len(), 1, "{device}: {p}");
        let m = &items[0];
        assert_eq!(m["type"], "message");
        assert_eq!(
            m["ciphertext"],
            format!("Q1Qm1{device}"),
            "each device gets its own envelope"
        );
        assert_eq!(
            (m["sender_user_id"].as_str(), m["sender_device_id"].as_str()),
            (Some(alice.id.as_str()), Some(alice.devices[0].0.as_str()))
        );
        assert_eq!(m["message_id"], r.body["message_id"]);
    }
    assert_eq!(
        pending(&app, &alice.devices[0].1, 0, 100).await["items"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    // Both users see the conversation.
    let list = app.get_auth("/v1/conversations", &bob.devices[0].1).await;
    assert_eq!(list.body["conversations"][0]["id"], conv.as_str());
}

async fn a_stale_device_list_is_refused_whole_with_the_current_list(app: TestApp) {
    let (alice, bob, conv) = two_users(&app).await;
    let missing = [bob.devices[0].0.as_str(), alice.devices[1].0.as_str()];
    let r = send(&app, &alice.devices[0].1, &conv, "m1", &missing).await;
    assert_eq!((r.status, r.code()), (409, "device_list_stale"));
    let listed: HashSet<String> = r.body["error"]["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| d["device_id"].as_str().expect("id").to_owned())
        .collect();
    let all: HashSet<String> = alice
        .devices
        .iter()
        .chain(&bob.devices)
        .map(|d| d.0.clone())
        .collect();
    assert_eq!(listed, all);
    let extra = [
        bob.devices[0].0.as_str(),
        bob.devices[1].0.as_str(),
        alice.devices[1].0.as_str(),
        "ffffffffffffffffffffffffffffffff",
    ];
    assert_eq!(
        send(&app, &alice.devices[0].1, &conv, "m1", &extra)
            .await
            .code(),
        "device_list_stale"
    );
    // Nothing was half-stored.
    for (_, token) in bob.devices.iter().chain(&alice.devices) {
        assert_eq!(
            pending(&app, token, 0, 100).await["items"]
                .as_array()
                .map(Vec::len),
            Some(0)
        );
    }
    // A new device of Bob makes the old list stale.
    let l = app.login("bob@example.org", PW, json!({})).await;
    let b3 = l.body["device_id"].as_str().expect("id").to_owned();
    let old = [
        bob.devices[0].0.as_str(),
        bob.devices[1].0.as_str(),
        alice.devices[1].0.as_str(),
    ];
    assert_eq!(
        send(&app, &alice.devices[0].1, &conv, "m2", &old)
            .await
            .code(),
        "device_list_stale"
    );
    let new = [
        bob.devices[0].0.as_str(),
        bob.devices[1].0.as_str(),
        alice.devices[1].0.as_str(),
        b3.as_str(),
    ];
    assert_eq!(
        send(&app, &alice.devices[0].1, &conv, "m2", &new)
            .await
            .status,
        200
    );
}

async fn a_retried_send_gets_the_same_answer_and_is_stored_once(app: TestApp) {
    let (alice, bob, conv) = two_users(&app).await;
    let targets = [
        bob.devices[0].0.as_str(),
        bob.devices[1].0.as_str(),
        alice.devices[1].0.as_str(),
    ];
    let a = send(&app, &alice.devices[0].1, &conv, "same", &targets).await;
    let b = send(&app, &alice.devices[0].1, &conv, "same", &targets).await;
    assert_eq!(a.body, b.body);
    let c = send(&app, &alice.devices[0].1, &conv, "other", &targets).await;
    assert_eq!(c.body["seq"].as_i64(), Some(2));
    // Bob adds a device: a retry of an already stored message still gets its
    // original answer (nothing to re-encrypt), while a new message must include it.
    app.login("bob@example.org", PW, json!({})).await;
    let retry = send(&app, &alice.devices[0].1, &conv, "same", &targets).await;
    assert_eq!(retry.body, a.body);
    assert_eq!(
        send(&app, &alice.devices[0].1, &conv, "new", &targets)
            .await
            .code(),
        "device_list_stale"
    );
    assert_eq!(
        pending(&app, &bob.devices[0].1, 0, 100).await["items"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}

async fn a_client_msg_id_reused_for_another_conversation_is_refused(app: TestApp) {
    let (alice, bob, conv) = two_users(&app).await;
    let carol = user(&app, "carol@example.org", 0).await;
    let other = direct(&app, &alice.devices[0].1, &carol.id).await;
    let to_bob = [
        bob.devices[0].0.as_str(),
        bob.devices[1].0.as_str(),
        alice.devices[1].0.as_str(),
    ];
    let to_carol = [carol.devices[0].0.as_str(), alice.devices[1].0.as_str()];
    let first = send(&app, &alice.devices[0].1, &conv, "k1", &to_bob).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    // Addressed right for the other conversation (the batch writer finds
    // the key taken) and addressed wrong (the stale-list path finds it).
    for targets in [&to_carol[..], &to_bob[..]] {
        let r = send(&app, &alice.devices[0].1, &other, "k1", targets).await;
        assert_eq!(
            (r.status, r.code()),
            (409, "client_msg_id_reused"),
            "{:?}",
            r.body
        );
    }
    assert_eq!(
        pending(&app, &carol.devices[0].1, 0, 100).await["items"],
        json!([]),
        "Carol got nothing"
    );
    // The same key in its own conversation is still a retry.
    let again = send(&app, &alice.devices[0].1, &conv, "k1", &to_bob).await;
    assert_eq!(again.body, first.body);
}

async fn non_members_are_refused_and_blocked_senders_reach_nobody_unknowingly(app: TestApp) {
    let (alice, bob, conv) = two_users(&app).await;
    let eve = user(&app, "eve@example.org", 0).await;
    let targets = [
        bob.devices[0].0.as_str(),
        bob.devices[1].0.as_str(),
        alice.devices[1].0.as_str(),
    ];
    let r = send(&app, &eve.devices[0].1, &conv, "x", &targets).await;
    assert_eq!((r.status, r.code()), (404, "conversation_not_found"));
    // Bob blocks Alice: her send is answered as any other (the block is
    // not revealed) and reaches her own other device, not Bob; unblocking
    // restores delivery.
    let r = app
        .send(
            Method::PUT,
            &format!("/v1/blocks/{}", alice.id),
            Some(&bob.devices[0].1),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    for d in [&bob.devices[0].1, &bob.devices[1].1, &alice.devices[1].1] {
        let items = pending(&app, d, 0, 100).await["items"].clone();
        let cursors: Vec<i64> = items
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|i| i["cursor"].as_i64())
            .collect();
        let r = app
            .post_auth("/v1/messages/ack", d, Some(json!({ "cursors": cursors })))
            .await;
        assert_eq!(r.status, 204, "{:?}", r.body);
    }
    let r = send(&app, &alice.devices[0].1, &conv, "x", &targets).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.body["seq"].as_i64().is_some(), "{:?}", r.body);
    for d in [&bob.devices[0].1, &bob.devices[1].1] {
        assert_eq!(
            pending(&app, d, 0, 100).await["items"],
            json!([]),
            "Bob gets nothing"
        );
    }
    let own = pending(&app, &alice.devices[1].1, 0, 100).await;
    assert_eq!(own["items"].as_array().map(Vec::len), Some(1), "{own:?}");
    app.send(
        Method::DELETE,
        &format!("/v1/blocks/{}", alice.id),
        Some(&bob.devices[0].1),
        None,
    )
    .await;
    assert_eq!(
        send(&app, &alice.devices[0].1, &conv, "x2", &targets)
            .await
            .status,
        200
    );
    assert_eq!(
        pending(&app, &bob.devices[0].1, 0, 100).await["items"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "delivered again once unblocked"
    );
    // A disabled (banned) user's sessions are gone, so they cannot send at all.
    app.gw
        .auth
        .disable_user("alice@example.org")
        .await
        .expect("disable");
    assert_eq!(
        send(&app, &alice.devices[0].1, &conv, "y", &targets)
            .await
            .status,
        401
    );
    // Unknown conversation, malformed ids, unknown peers.
    let r = send(
        &app,
        &bob.devices[0].1,
        "0123456789abcdef0123456789abcdef",
        "z",
        &targets,
    )
    .await;
    assert_eq!(r.code(), "conversation_not_found");
    let r = app
        .post_auth(
            "/v1/conversations",
            &bob.devices[0].1,
            Some(json!({"kind": "direct", "peer_user_id": "../../x"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_body"));
    let r = app
        .post_auth(
            "/v1/conversations",
            &bob.devices[0].1,
            Some(json!({"kind": "group", "peer_user_id": alice.id})),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_body"));
}

async fn an_offline_backlog_arrives_in_order_in_pages_and_acks_send_receipts(app: TestApp) {
    let (alice, bob, conv) = two_users(&app).await;
    let targets = [
        bob.devices[0].0.as_str(),
        bob.devices[1].0.as_str(),
        alice.devices[1].0.as_str(),
    ];
    for i in 0..120 {
        assert_eq!(
            send(&app, &alice.devices[0].1, &conv, &format!("m{i}"), &targets)
                .await
                .status,
            200
        );
    }
    let token = &bob.devices[1].1;
    let mut after = 0;
    let mut seqs = Vec::new();
    let mut cursors = Vec::new();
    loop {
        let p = pending(&app, token, after, 50).await;
        for item in p["items"].as_array().expect("items") {
            seqs.push(item["seq"].as_i64().expect("seq"));
            let c = item["cursor"].as_i64().expect("cursor");
            assert!(c > after, "cursors increase");
            after = c;
            cursors.push(c);
        }
        if p["more"] == false {
            break;
        }
    }
    assert_eq!(seqs, (1..=120).collect::<Vec<i64>>());
    let r = app
        .post_auth("/v1/messages/ack", token, Some(json!({"cursors": cursors})))
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        pending(&app, token, 0, 500).await["items"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    // Every one of Alice's devices has a delivery receipt covering all 120
    // messages: one ack, one receipt per sender device (not one per message).
    let mut sent_ids: Option<Vec<Value>> = None;
    for (_, t) in &alice.devices {
        let p = pending(&app, t, 0, 500).await;
        let receipts: Vec<&Value> = p["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|i| i["type"] == "receipt")
            .collect();
        assert_eq!(receipts.len(), 1, "{receipts:?}");
        assert_eq!(receipts[0]["device_id"], bob.devices[1].0.as_str());
        assert_eq!(receipts[0]["kind"], "delivered");
        let ids = receipts[0]["message_ids"].as_array().expect("ids").clone();
        assert_eq!(ids.len(), 120);
        assert_eq!(receipts[0]["message_id"], ids[0]);
        assert_eq!(
            ids.iter()
                .filter_map(Value::as_str)
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            120,
            "distinct"
        );
        if let Some(prev) = &sent_ids {
            assert_eq!(prev, &ids, "both devices hear of the same messages");
        }
        sent_ids = Some(ids);
    }
    // Alice's second device acks its copies of her own messages: that tells
    // nobody anything, so it queues no receipt.
    let own = &alice.devices[1].1;
    let copies: Vec<i64> = pending(&app, own, 0, 500).await["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["type"] == "message")
        .filter_map(|i| i["cursor"].as_i64())
        .collect();
    assert_eq!(copies.len(), 120);
    let r = app
        .post_auth("/v1/messages/ack", own, Some(json!({"cursors": copies})))
        .await;
    assert_eq!(r.status, 204);
    for (_, t) in &alice.devices {
        let p = pending(&app, t, 0, 500).await;
        let receipts = p["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|i| i["type"] == "receipt")
            .count();
        assert_eq!(receipts, 1, "only Bob's receipt: {p}");
    }
    // Acking someone else's cursors does nothing.
    let other = pending(&app, &bob.devices[0].1, 0, 1).await["items"][0]["cursor"]
        .as_i64()
        .expect("cursor");
    app.post_auth(
        "/v1/messages/ack",
        &alice.devices[1].1,
        Some(json!({"cursors": [other]})),
    )
    .await;
    assert_eq!(
        pending(&app, &bob.devices[0].1, 0, 500).await["items"]
            .as_array()
            .map(Vec::len),
        Some(120)
    );
}
