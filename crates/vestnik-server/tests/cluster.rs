//! Three `vestnik serve` processes sharing one PostgreSQL and one Redis:
//! frames for a device connected to another node are routed there through
//! Redis (node death: `failover.rs`).
mod common;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

use common::Ws;

async fn ws(node: &common::Http, token: &str) -> Ws {
    let mut s = common::ws_connect(&node.base, token).await;
    assert_eq!(next(&mut s).await["type"], "synced");
    s
}

async fn next(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(t.as_str()).expect("json");
            // Presence updates interleave with everything; they are not what this test follows.
            if v["type"] != "presence" {
                return v;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_receipts_and_device_changes_cross_nodes() {
    let Some(nodes) = common::spawn_process_cluster(3).await else {
        return;
    };
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    const PW: &str = "correct horse battery staple";
    let alice = a.register("alice@example.org", PW).await;
    let bob = b.register("bob@example.org", PW).await;
    let alice2 = c.login("alice@example.org", PW, json!({})).await.body;
    let tok = |v: &Value| v["access_token"].as_str().expect("token").to_owned();
    let dev = |v: &Value| v["device_id"].as_str().expect("device").to_owned();
    let conv = a
        .post_auth(
            "/v1/conversations",
            &tok(&alice),
            Some(json!({"kind": "direct", "peer_user_id": bob["user_id"]})),
        )
        .await
        .body["id"]
        .as_str()
        .expect("conversation")
        .to_owned();
    // Bob writes back in it (his client opens it too): Alice becomes his
    // contact, who may see his presence.
    let back = b
        .post_auth(
            "/v1/conversations",
            &tok(&bob),
            Some(json!({"kind": "direct", "peer_user_id": alice["user_id"]})),
        )
        .await;
    assert_eq!(back.body["id"].as_str(), Some(conv.as_str()));

    let mut alice_ws = ws(a, &tok(&alice)).await;
    let mut bob_ws = ws(b, &tok(&bob)).await;
    let mut alice2_ws = ws(c, &tok(&alice2)).await;

    let envelopes: Vec<Value> = [dev(&bob), dev(&alice2)]
        .iter()
        .map(|d| json!({"device_id": d, "msg_type": 0, "ciphertext": "QUJD"}))
        .collect();
    let send = json!({"type": "send", "client_msg_id": "x1", "conversation_id": conv, "envelopes": envelopes});
    alice_ws
        .send(Message::Text(send.to_string().into()))
        .await
        .expect("send");
    assert_eq!(next(&mut alice_ws).await["type"], "sent");
    let on_b = next(&mut bob_ws).await;
    assert_eq!(
        (on_b["type"].as_str(), on_b["seq"].as_i64()),
        (Some("message"), Some(1)),
        "node B got it live"
    );
    let on_c = next(&mut alice2_ws).await;
    assert_eq!(on_c["type"], "message", "node C got it live");

    // Bob acks on B; Alice's devices on A and C get the receipt live.
    let ack = json!({"type": "ack", "cursors": [on_b["cursor"]]});
    bob_ws
        .send(Message::Text(ack.to_string().into()))
        .await
        .expect("ack");
    assert_eq!(next(&mut alice_ws).await["type"], "receipt");
    assert_eq!(next(&mut alice2_ws).await["type"], "receipt");

    // Bob adds a device through C: Alice on A hears of it.
    let l = c.login("bob@example.org", PW, json!({})).await;
    assert_eq!(l.status, 201, "{:?}", l.body);
    assert_eq!(
        next(&mut alice_ws).await,
        json!({"type": "devices_changed", "user_id": bob["user_id"]})
    );

    // A device that moves to another node is found there.
    drop(bob_ws);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut bob_on_c = ws(c, &tok(&bob)).await;
    let devices = a
        .get_auth(
            &format!("/v1/users/{}/devices", bob["user_id"].as_str().expect("id")),
            &tok(&alice),
        )
        .await;
    let mut envelopes: Vec<Value> = devices.body["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| json!({"device_id": d["device_id"], "msg_type": 1, "ciphertext": "REVG"}))
        .collect();
    envelopes.push(json!({"device_id": dev(&alice2), "msg_type": 1, "ciphertext": "REVG"}));
    let send = json!({"type": "send", "client_msg_id": "x2", "conversation_id": conv, "envelopes": envelopes});
    alice_ws
        .send(Message::Text(send.to_string().into()))
        .await
        .expect("send");
    assert_eq!(next(&mut alice_ws).await["type"], "sent");
    let f = next(&mut bob_on_c).await;
    assert_eq!(
        (f["type"].as_str(), f["seq"].as_i64()),
        (Some("message"), Some(2))
    );

    // A group made on B: the system event, a Megolm message and typing all
    // reach Alice's devices on A and C.
    let group = b
        .post_auth(
            "/v1/conversations",
            &tok(&bob),
            Some(json!({"kind": "group", "title": "g", "member_user_ids": [alice["user_id"]]})),
        )
        .await;
    assert_eq!(group.status, 201, "{:?}", group.body);
    let gid = group.body["id"].as_str().expect("id").to_owned();
    for w in [&mut alice_ws, &mut alice2_ws] {
        let e = next_of(w, "system").await;
        assert_eq!(e["event"], "created");
    }
    let gsend = json!({"type": "send", "client_msg_id": "g1", "conversation_id": gid, "kind": "group", "ciphertext": "TUVHT0xN"});
    bob_on_c
        .send(Message::Text(gsend.to_string().into()))
        .await
        .expect("group send");
    for w in [&mut alice_ws, &mut alice2_ws] {
        let m = next_of(w, "message").await;
        assert_eq!(
            (m["msg_type"].as_i64(), m["ciphertext"].as_str()),
            (Some(2), Some("TUVHT0xN"))
        );
    }
    let typing = json!({"type": "typing", "conversation_id": gid, "typing": true});
    bob_on_c
        .send(Message::Text(typing.to_string().into()))
        .await
        .expect("typing");
    for w in [&mut alice_ws, &mut alice2_ws] {
        let t = next_of(w, "typing").await;
        assert_eq!(t["user_id"], bob["user_id"]);
    }

    // Presence: Alice on A follows Bob, whose only connected device is on
    // C; it goes offline there and comes back on B.
    let sub = json!({"type": "subscribe_presence", "user_ids": [bob["user_id"]]});
    alice_ws
        .send(Message::Text(sub.to_string().into()))
        .await
        .expect("subscribe presence");
    presence_of(&mut alice_ws, &bob["user_id"], true).await;
    bob_on_c.close(None).await.expect("close");
    drop(bob_on_c);
    let off = presence_of(&mut alice_ws, &bob["user_id"], false).await;
    assert!(off["last_seen"].as_i64().is_some_and(|t| t > 0), "{off}");
    // Unacked messages come first, then `synced`.
    let mut bob_on_b = common::ws_connect(&b.base, &tok(&bob)).await;
    next_of(&mut bob_on_b, "synced").await;
    presence_of(&mut alice_ws, &bob["user_id"], true).await;

    // A public channel made on A, subscribed to through C: a post from A
    // reaches Bob on B and Alice's other device on C live, and its log
    // reads the same on every node.
    let channel = a
        .post_auth(
            "/v1/conversations",
            &tok(&alice),
            Some(json!({"kind": "channel", "title": "news", "visibility": "public"})),
        )
        .await;
    assert_eq!(channel.status, 201, "{:?}", channel.body);
    let cid = channel.body["id"].as_str().expect("id").to_owned();
    let r = c
        .post_auth(
            &format!("/v1/conversations/{cid}/subscribe"),
            &tok(&bob),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let post = json!({"type": "send", "client_msg_id": "p1", "conversation_id": cid, "kind": "channel", "ciphertext": "UE9TVA"});
    alice_ws
        .send(Message::Text(post.to_string().into()))
        .await
        .expect("post");
    assert_eq!(
        next_of(&mut alice_ws, "sent").await["conversation_id"],
        cid.as_str()
    );
    for w in [&mut bob_on_b, &mut alice2_ws] {
        let p = next_of(w, "channel_post").await;
        assert_eq!(
            (p["conversation_id"].as_str(), p["ciphertext"].as_str()),
            (Some(cid.as_str()), Some("UE9TVA"))
        );
    }
    for node in [a, b, c] {
        let log = node
            .get_auth(&format!("/v1/conversations/{cid}/posts"), &tok(&bob))
            .await;
        assert_eq!(log.status, 200, "{:?}", log.body);
        assert_eq!(log.body["posts"][0]["ciphertext"], "UE9TVA");
    }
}

/// The next presence update about `user` with `online` (others skipped).
async fn presence_of(ws: &mut Ws, user: &Value, online: bool) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("presence within 10 s")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(t.as_str()).expect("json");
            if v["type"] == "presence" && v["user_id"] == *user && v["online"] == online {
                return v;
            }
        }
    }
}

/// The next frame of `kind`, skipping others (receipts, device changes).
async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let v = next(ws).await;
        if v["type"] == kind {
            return v;
        }
    }
}

/// Every node keeps a local copy of hot tokens; a logout on one node must
/// still stop the token on the others at once (well inside that copy's TTL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_on_one_node_is_refused_on_the_others_at_once() {
    let Some(nodes) = common::spawn_process_cluster(2).await else {
        return;
    };
    let (a, b) = (&nodes[0], &nodes[1]);
    const PW: &str = "correct horse battery staple";
    let alice = a.register("alice@example.org", PW).await;
    let token = alice["access_token"].as_str().expect("token").to_owned();
    // Warm both nodes' caches, the device list included.
    for n in [a, b] {
        for _ in 0..3 {
            let r = n.get_auth("/v1/devices", &token).await;
            assert_eq!(r.status, 200, "{:?}", r.body);
        }
    }
    // A new device added through B shows in A's list at once.
    let second = b.login("alice@example.org", PW, json!({})).await;
    assert_eq!(second.status, 201, "{:?}", second.body);
    let listed = a.get_auth("/v1/devices", &token).await;
    assert_eq!(listed.body["devices"].as_array().expect("devices").len(), 2);
    let r = b.post_auth("/v1/auth/logout", &token, None).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let t0 = std::time::Instant::now();
    loop {
        let r = a.get_auth("/v1/devices", &token).await;
        if r.status == 401 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_millis(500),
            "node A still accepts a token revoked on node B"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Reads until the socket closes; the close code and how long it took.
async fn closed(ws: &mut Ws) -> (u16, Duration) {
    let t0 = std::time::Instant::now();
    loop {
        match tokio::time::timeout(Duration::from_secs(3), ws.next()).await {
            Err(_) => panic!("the socket is still open 3 s later"),
            Ok(Some(Ok(Message::Close(Some(f))))) => return (u16::from(f.code), t0.elapsed()),
            Ok(Some(Ok(Message::Close(None)))) | Ok(None) | Ok(Some(Err(_))) => {
                panic!("the socket ended without a close code")
            }
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// A device holds a socket on node A while its session ends through node B
/// (or through the CLI, another process): the socket closes with 4001
/// within a second, in every case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_a_session_ends_closes_its_socket_on_another_node_within_a_second() {
    if !common::redis_reachable().await {
        return;
    }
    let Some(db) = common::fresh_pg_database().await else {
        return;
    };
    let prefix = format!("vt-{}", uuid::Uuid::new_v4().simple());
    let mut nodes = Vec::new();
    for i in 0..3 {
        nodes.push(common::start_node(&db, &prefix, i).await);
    }
    let (a, b) = (&nodes[0], &nodes[1]);
    const PW: &str = "correct horse battery staple";
    let tok = |v: &Value| v["access_token"].as_str().expect("token").to_owned();
    let first = a.register("alice@example.org", PW).await;
    let within = Duration::from_secs(1);
    let login = || async { b.login("alice@example.org", PW, json!({})).await.body };

    // Logout through B.
    let s = login().await;
    let mut on_a = ws(a, &tok(&s)).await;
    assert_eq!(
        b.post_auth("/v1/auth/logout", &tok(&s), None).await.status,
        204
    );
    let (code, took) = closed(&mut on_a).await;
    assert!(
        code == 4001 && took < within,
        "logout: {code} after {took:?}"
    );

    // DELETE /v1/devices/{id} through B, by the first device.
    let s = login().await;
    let mut on_a = ws(a, &tok(&s)).await;
    let path = format!("/v1/devices/{}", s["device_id"].as_str().expect("id"));
    let r = b
        .send(reqwest::Method::DELETE, &path, Some(&tok(&first)), None)
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let (code, took) = closed(&mut on_a).await;
    assert!(
        code == 4001 && took < within,
        "device revoked: {code} after {took:?}"
    );

    // Refresh-token reuse through B: rotated twice, the first comes back.
    let s = login().await;
    let r0 = s["refresh_token"].clone();
    let s1 = b
        .post("/v1/auth/refresh", json!({"refresh_token": r0}))
        .await
        .body;
    let s2 = b
        .post(
            "/v1/auth/refresh",
            json!({"refresh_token": s1["refresh_token"]}),
        )
        .await
        .body;
    let mut on_a = ws(a, &tok(&s2)).await;
    let reuse = b
        .post("/v1/auth/refresh", json!({"refresh_token": r0}))
        .await;
    assert_eq!(reuse.code(), "refresh_token_reused", "{:?}", reuse.body);
    let (code, took) = closed(&mut on_a).await;
    assert!(
        code == 4001 && took < within,
        "refresh reuse: {code} after {took:?}"
    );

    // Logout-all through B closes the first device's socket on A too.
    let s = login().await;
    let mut first_on_a = ws(a, &tok(&first)).await;
    let mut on_c = ws(&nodes[2], &tok(&s)).await;
    assert_eq!(
        b.post_auth("/v1/auth/logout-all", &tok(&s), None)
            .await
            .status,
        204
    );
    for (name, ws) in [("first", &mut first_on_a), ("on c", &mut on_c)] {
        let (code, took) = closed(ws).await;
        assert!(
            code == 4001 && took < within,
            "logout-all, {name}: {code} after {took:?}"
        );
    }

    // The account disabled by `vestnik admin disable`, a process of its own.
    let s = login().await;
    let mut on_a = ws(a, &tok(&s)).await;
    let data_dir =
        std::env::temp_dir().join(format!("vestnik-cli-{}", uuid::Uuid::new_v4().simple()));
    let mut cmd = std::process::Command::new(common::BIN);
    cmd.args(["admin", "disable", "--email", "alice@example.org"])
        .env("VESTNIK_DATA_DIR", &data_dir);
    common::cluster_env(&mut cmd, &db, &prefix);
    let out = cmd.output().expect("run vestnik admin disable");
    let _ = std::fs::remove_dir_all(&data_dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, took) = closed(&mut on_a).await;
    assert!(
        code == 4001 && took < within,
        "disabled: {code} after {took:?}"
    );
}
