//! Key directory and message delivery over HTTP and WebSocket, on SQLite and
//! on PostgreSQL + Redis. Ciphertexts here are opaque test strings: the
//! server must treat them as such (the client library tests do real Olm).
mod common;

use common::TestApp;
use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const PW: &str = "correct horse battery staple";

both_backends!(
    a_message_reaches_every_other_device_and_nothing_else,
    a_stale_device_list_is_refused_whole_with_the_current_list,
    a_retried_send_gets_the_same_answer_and_is_stored_once,
    non_members_and_blocked_senders_are_refused,
    an_offline_backlog_arrives_in_order_in_pages_and_acks_send_receipts,
    the_websocket_sends_the_backlog_then_live_frames_and_takes_sends_and_acks,
    a_websocket_ticket_works_once_and_bad_auth_is_refused,
    concurrent_claims_get_distinct_one_time_keys_then_the_fallback_key,
    undelivered_envelopes_expire_after_the_retention_period,
    partners_hear_when_a_device_is_added_or_removed,
    bad_frames_and_bad_sends_get_clear_errors,
    typing_and_read_markers_reach_the_right_people_only,
    presence_goes_to_conversation_partners_and_respects_privacy,
);

struct User {
    id: String,
    devices: Vec<(String, String)>, // (device id, access token)
}

async fn user(app: &TestApp, email: &str, extra_devices: usize) -> User {
    let s = app.register(email, PW).await;
    let mut devices = vec![(
        s["device_id"].as_str().expect("id").to_owned(),
        s["access_token"].as_str().expect("t").to_owned(),
    )];
    for _ in 0..extra_devices {
        let r = app.login(email, PW, json!({})).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        devices.push((
            r.body["device_id"].as_str().expect("id").to_owned(),
            r.body["access_token"].as_str().expect("t").to_owned(),
        ));
    }
    User {
        id: s["user_id"].as_str().expect("user").to_owned(),
        devices,
    }
}

async fn direct(app: &TestApp, token: &str, peer: &str) -> String {
    let r = app
        .post_auth(
            "/v1/conversations",
            token,
            Some(json!({"kind": "direct", "peer_user_id": peer})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["id"].as_str().expect("id").to_owned()
}

fn envelopes(devices: &[&str], tag: &str) -> Value {
    json!(devices
        .iter()
        .map(|d| json!({"device_id": d, "msg_type": 0, "ciphertext": format!("Q1Q{tag}{d}")}))
        .collect::<Vec<_>>())
}

async fn send(app: &TestApp, token: &str, conv: &str, id: &str, devices: &[&str]) -> common::Res {
    app.post_auth("/v1/messages", token, Some(json!({"client_msg_id": id, "conversation_id": conv, "envelopes": envelopes(devices, id)})))
        .await
}

async fn pending(app: &TestApp, token: &str, after: i64, limit: i64) -> Value {
    let r = app
        .get_auth(
            &format!("/v1/messages/pending?after={after}&limit={limit}"),
            token,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

async fn two_users(app: &TestApp) -> (User, User, String) {
    let alice = user(app, "alice@example.org", 1).await;
    let bob = user(app, "bob@example.org", 1).await;
    let conv = direct(app, &alice.devices[0].1, &bob.id).await;
    (alice, bob, conv)
}

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

async fn non_members_and_blocked_senders_are_refused(app: TestApp) {
    let (alice, bob, conv) = two_users(&app).await;
    let eve = user(&app, "eve@example.org", 0).await;
    let targets = [
        bob.devices[0].0.as_str(),
        bob.devices[1].0.as_str(),
        alice.devices[1].0.as_str(),
    ];
    let r = send(&app, &eve.devices[0].1, &conv, "x", &targets).await;
    assert_eq!((r.status, r.code()), (404, "conversation_not_found"));
    // Bob blocks Alice: her sends are refused; unblocking restores them.
    let r = app
        .send(
            Method::PUT,
            &format!("/v1/blocks/{}", alice.id),
            Some(&bob.devices[0].1),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    let r = send(&app, &alice.devices[0].1, &conv, "x", &targets).await;
    assert_eq!((r.status, r.code()), (403, "blocked"));
    app.send(
        Method::DELETE,
        &format!("/v1/blocks/{}", alice.id),
        Some(&bob.devices[0].1),
        None,
    )
    .await;
    assert_eq!(
        send(&app, &alice.devices[0].1, &conv, "x", &targets)
            .await
            .status,
        200
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

use common::Ws;

async fn ws_bearer(app: &TestApp, token: &str) -> Ws {
    common::ws_connect(&app.base, token).await
}

/// The next frame, skipping presence updates (they interleave with everything;
/// the presence test reads them with `next_of`).
async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let f = next_raw(ws).await;
        if f["type"] != "presence" {
            return f;
        }
    }
}

async fn next_raw(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("open")
            .expect("frame");
        match m {
            Message::Text(t) => return serde_json::from_str(t.as_str()).expect("json"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

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

async fn concurrent_claims_get_distinct_one_time_keys_then_the_fallback_key(app: TestApp) {
    let bob = user(&app, "bob@example.org", 0).await;
    let alice = user(&app, "alice@example.org", 0).await;
    // Bob has 5 keys from registration; top up to 100.
    let more: Vec<Value> = (5..100)
        .map(|i| json!({"key_id": format!("otk{i}"), "public_key": base64_32(i as u8)}))
        .collect();
    let r = app
        .send(
            Method::PUT,
            "/v1/keys",
            Some(&bob.devices[0].1),
            Some(&json!({"one_time_keys": more})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["one_time_keys"].as_i64()),
        (200, Some(100)),
        "{:?}",
        r.body
    );
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (app, token, bob_id) = (app.clone(), alice.devices[0].1.clone(), bob.id.clone());
            tokio::spawn(async move {
                app.post_auth("/v1/keys/claim", &token, Some(json!({"user_id": bob_id})))
                    .await
                    .body
            })
        })
        .collect();
    let mut keys = HashSet::new();
    for t in tasks {
        let body = t.await.expect("task");
        let b = &body["bundles"][0];
        assert_eq!(b["device_id"], bob.devices[0].0.as_str());
        keys.insert(
            b["one_time_key"]["key_id"]
                .as_str()
                .expect("a one-time key")
                .to_owned(),
        );
    }
    assert_eq!(keys.len(), 100, "100 claims, 100 distinct keys");
    let r = app
        .post_auth(
            "/v1/keys/claim",
            &alice.devices[0].1,
            Some(json!({"user_id": bob.id})),
        )
        .await;
    assert!(r.body["bundles"][0]["one_time_key"].is_null());
    assert_eq!(r.body["bundles"][0]["fallback_key"]["key_id"], "fb1");
    let c = app.get_auth("/v1/keys/count", &bob.devices[0].1).await;
    assert_eq!(
        (
            c.body["one_time_keys"].as_i64(),
            c.body["low_watermark"].as_i64()
        ),
        (Some(0), Some(20))
    );
    let r = app
        .post_auth(
            "/v1/keys/claim",
            &alice.devices[0].1,
            Some(json!({"user_id": "0123456789abcdef0123456789abcdef"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "user_not_found"));
    let r = app
        .post_auth(
            "/v1/users/lookup",
            &alice.devices[0].1,
            Some(json!({"email": "BOB@example.org"})),
        )
        .await;
    assert_eq!(r.body["user_id"], bob.id.as_str());
    let r = app
        .get_auth(
            &format!("/v1/users/{}/devices", bob.id),
            &alice.devices[0].1,
        )
        .await;
    assert_eq!(r.body["devices"].as_array().map(Vec::len), Some(1));
}

fn base64_32(seed: u8) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_NO_PAD.encode([seed; 32])
}

async fn undelivered_envelopes_expire_after_the_retention_period(app: TestApp) {
    let (alice, bob, conv) = two_users(&app).await;
    let targets = [
        bob.devices[0].0.as_str(),
        bob.devices[1].0.as_str(),
        alice.devices[1].0.as_str(),
    ];
    send(&app, &alice.devices[0].1, &conv, "old", &targets).await;
    app.gw.realtime.expire_now().await.expect("reap");
    assert_eq!(
        pending(&app, &bob.devices[0].1, 0, 10).await["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    app.clock.advance_ms(31 * 86_400_000);
    // Tokens expired with the jump: log in again to look.
    let fresh = app.login("bob@example.org", PW, json!({})).await.body["access_token"]
        .as_str()
        .expect("t")
        .to_owned();
    let _ = fresh;
    assert!(app.gw.realtime.expire_now().await.expect("reap") >= 3);
    let count = app
        .gw
        .store
        .outbox(&bob.devices[0].0, 0, 10)
        .await
        .expect("outbox")
        .len();
    assert_eq!(count, 0);
}

async fn partners_hear_when_a_device_is_added_or_removed(app: TestApp) {
    let (alice, bob, _conv) = two_users(&app).await;
    let carol = user(&app, "carol@example.org", 0).await; // shares no conversation
    let mut alice_ws = ws_bearer(&app, &alice.devices[0].1).await;
    let mut carol_ws = ws_bearer(&app, &carol.devices[0].1).await;
    assert_eq!(next_json(&mut alice_ws).await["type"], "synced");
    assert_eq!(next_json(&mut carol_ws).await["type"], "synced");
    let l = app.login("bob@example.org", PW, json!({})).await;
    assert_eq!(
        next_json(&mut alice_ws).await,
        json!({"type": "devices_changed", "user_id": bob.id})
    );
    let d = l.body["device_id"].as_str().expect("id");
    app.send(
        Method::DELETE,
        &format!("/v1/devices/{d}"),
        Some(&bob.devices[0].1),
        None,
    )
    .await;
    assert_eq!(
        next_json(&mut alice_ws).await,
        json!({"type": "devices_changed", "user_id": bob.id})
    );
    // Carol heard nothing: ping shows the next frame is the pong.
    carol_ws
        .send(Message::Text(
            json!({"type": "ping", "nonce": null}).to_string().into(),
        ))
        .await
        .expect("ping");
    assert_eq!(next_json(&mut carol_ws).await["type"], "pong");
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

/// The next frame of a type, skipping others (message frames interleave).
async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let f = next_raw(ws).await;
        if f["type"] == kind {
            return f;
        }
    }
}

/// Proves silence: a ping's pong is the next frame of those kinds.
async fn nothing_but_pong(ws: &mut Ws, kinds: &[&str]) {
    ws.send(Message::Text(
        json!({"type": "ping", "nonce": "quiet"}).to_string().into(),
    ))
    .await
    .expect("ping");
    loop {
        let f = next_json(ws).await;
        assert!(
            !kinds.contains(&f["type"].as_str().unwrap_or("")),
            "unexpected {f}"
        );
        if f["type"] == "pong" {
            return;
        }
    }
}

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
