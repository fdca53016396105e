//! Groups on the server: membership, roles, invites, system events, and the
//! Megolm send path that stores one ciphertext for every member device, on
//! SQLite and on PostgreSQL + Redis. Ciphertexts are opaque test strings
//! (the client library tests do real Megolm).
mod common;

use common::{Backend, TestApp};
use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const PW: &str = "correct horse battery staple";

both_backends!(
    a_group_message_is_sent_once_and_reaches_every_other_member_device,
    roles_decide_who_may_change_the_group,
    a_removed_member_is_told_and_can_no_longer_send_read_or_receive,
    invite_links_join_until_used_up_or_expired,
    key_shares_go_to_any_member_devices_and_bad_group_sends_are_refused,
    group_messages_and_system_events_arrive_live_over_the_websocket,
    a_channel_post_is_written_once_read_by_seq_and_pushed_live,
    a_private_channel_is_joined_by_invite_and_hidden_from_outsiders,
    channel_subscribers_see_and_address_only_the_owner_and_publishers,
);

struct User {
    id: String,
    devices: Vec<(String, String)>, // (device id, access token)
}

impl User {
    fn token(&self) -> &str {
        &self.devices[0].1
    }
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

async fn create_group(app: &TestApp, owner: &User, members: &[&User]) -> String {
    let ids: Vec<&str> = members.iter().map(|u| u.id.as_str()).collect();
    let r = app
        .post_auth(
            "/v1/conversations",
            owner.token(),
            Some(
                json!({"kind": "group", "title": "Team", "topic": "plans", "member_user_ids": ids}),
            ),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["id"].as_str().expect("id").to_owned()
}

async fn group_send(app: &TestApp, token: &str, conv: &str, id: &str) -> common::Res {
    app.post_auth(
        "/v1/messages",
        token,
        Some(json!({"client_msg_id": id, "conversation_id": conv, "kind": "group", "ciphertext": format!("TWVnb2xt{id}")})),
    )
    .await
}

async fn pending(app: &TestApp, token: &str) -> Vec<Value> {
    let r = app.get_auth("/v1/messages/pending?limit=500", token).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["items"].as_array().expect("items").clone()
}

fn of_type<'a>(items: &'a [Value], t: &str) -> Vec<&'a Value> {
    items.iter().filter(|i| i["type"] == t).collect()
}

async fn ack_all(app: &TestApp, token: &str) {
    let cursors: Vec<i64> = pending(app, token)
        .await
        .iter()
        .filter_map(|i| i["cursor"].as_i64())
        .collect();
    let r = app
        .post_auth(
            "/v1/messages/ack",
            token,
            Some(json!({ "cursors": cursors })),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
}

async fn a_group_message_is_sent_once_and_reaches_every_other_member_device(app: TestApp) {
    let alice = user(&app, "alice@example.org", 1).await;
    let bob = user(&app, "bob@example.org", 1).await;
    let carol = user(&app, "carol@example.org", 0).await;
    let outsider = user(&app, "dave@example.org", 0).await;
    let conv = create_group(&app, &alice, &[&bob, &carol]).await;

    let r = app
        .get_auth(&format!("/v1/conversations/{conv}"), bob.token())
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        (r.body["kind"].as_str(), r.body["title"].as_str()),
        (Some("group"), Some("Team"))
    );
    let roles: Vec<(String, String)> = r.body["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["user_id"].as_str().expect("u").to_owned(),
                m["role"].as_str().expect("r").to_owned(),
            )
        })
        .collect();
    assert!(roles.contains(&(alice.id.clone(), "owner".into())));
    assert!(roles.contains(&(bob.id.clone(), "member".into())));
    assert_eq!(roles.len(), 3);
    let devices = app
        .get_auth(&format!("/v1/conversations/{conv}/devices"), carol.token())
        .await;
    assert_eq!(devices.body["devices"].as_array().expect("d").len(), 5);

    let r = group_send(&app, alice.token(), &conv, "g1").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["seq"], 1);
    // A retry is answered from the stored message, not stored twice.
    let again = group_send(&app, alice.token(), &conv, "g1").await;
    assert_eq!(again.body["message_id"], r.body["message_id"]);

    let recipients = [
        &alice.devices[1].1,
        &bob.devices[0].1,
        &bob.devices[1].1,
        &carol.devices[0].1,
    ];
    for token in recipients {
        let items = pending(&app, token).await;
        let messages = of_type(&items, "message");
        assert_eq!(messages.len(), 1, "{items:?}");
        assert_eq!(messages[0]["msg_type"], 2);
        assert_eq!(messages[0]["ciphertext"], "TWVnb2xtg1");
        assert_eq!(messages[0]["sender_user_id"], alice.id.as_str());
        assert_eq!(of_type(&items, "system")[0]["event"], "created");
    }
    assert!(of_type(&pending(&app, alice.token()).await, "message").is_empty());
    assert!(pending(&app, outsider.token()).await.is_empty());

    // Acks turn into delivery receipts for the sender's devices.
    ack_all(&app, &bob.devices[0].1).await;
    let receipts = of_type(&pending(&app, alice.token()).await, "receipt")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert_eq!(receipts[0]["device_id"], bob.devices[0].0.as_str());

    // The group shows up in the member's list with its title.
    let list = app.get_auth("/v1/conversations", carol.token()).await;
    let listed = list.body["conversations"].as_array().expect("list");
    assert!(listed
        .iter()
        .any(|c| c["id"] == conv.as_str() && c["title"] == "Team"));
}

async fn roles_decide_who_may_change_the_group(app: TestApp) {
    let owner = user(&app, "owner@example.org", 0).await;
    let admin = user(&app, "admin@example.org", 0).await;
    let m1 = user(&app, "m1@example.org", 0).await;
    let m2 = user(&app, "m2@example.org", 0).await;
    let newcomer = user(&app, "new@example.org", 0).await;
    let conv = create_group(&app, &owner, &[&admin, &m1, &m2]).await;
    let base = format!("/v1/conversations/{conv}");

    // Only the owner hands out roles.
    let role = |who: &str| format!("{base}/members/{who}/role");
    let r = app
        .send(
            Method::PUT,
            &role(&admin.id),
            Some(m1.token()),
            Some(&json!({"role": "admin"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = app
        .send(
            Method::PUT,
            &role(&admin.id),
            Some(owner.token()),
            Some(&json!({"role": "owner"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_body"));
    let r = app
        .send(
            Method::PUT,
            &role(&admin.id),
            Some(owner.token()),
            Some(&json!({"role": "admin"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);

    // Members may not add, rename or invite; admins may.
    let add = json!({"user_id": newcomer.id});
    let r = app
        .post_auth(&format!("{base}/members"), m1.token(), Some(add.clone()))
        .await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = app
        .send(
            Method::PATCH,
            &base,
            Some(m1.token()),
            Some(&json!({"title": "mine"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = app
        .post_auth(&format!("{base}/invites"), m1.token(), Some(json!({})))
        .await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = app
        .post_auth(&format!("{base}/members"), admin.token(), Some(add))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["member_user_ids"].as_array().expect("m").len(), 5);
    let r = app
        .send(
            Method::PATCH,
            &base,
            Some(admin.token()),
            Some(&json!({"title": "Renamed", "avatar_ref": "media:abc"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        (r.body["title"].as_str(), r.body["topic"].as_str()),
        (Some("Renamed"), Some("plans"))
    );
    let r = app
        .send(
            Method::PATCH,
            &base,
            Some(admin.token()),
            Some(&json!({"title": "x\u{7}"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "invalid_input"));

    // Admins remove plain members only; members remove no one but themselves.
    let member = |who: &str| format!("{base}/members/{who}");
    let r = app
        .send(
            Method::DELETE,
            &member(&owner.id),
            Some(admin.token()),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = app
        .send(Method::DELETE, &member(&m2.id), Some(m1.token()), None)
        .await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = app
        .send(Method::DELETE, &member(&m2.id), Some(admin.token()), None)
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = app
        .send(Method::DELETE, &member(&m1.id), Some(m1.token()), None)
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);

    // The owner cannot just leave; after a transfer the old owner is an admin.
    let r = app
        .send(
            Method::DELETE,
            &member(&owner.id),
            Some(owner.token()),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "owner_must_transfer"));
    let r = app
        .post_auth(
            &format!("{base}/owner"),
            admin.token(),
            Some(json!({"user_id": admin.id})),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = app
        .post_auth(
            &format!("{base}/owner"),
            owner.token(),
            Some(json!({"user_id": m2.id})),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (404, "user_not_found"),
        "not a member"
    );
    let r = app
        .post_auth(
            &format!("{base}/owner"),
            owner.token(),
            Some(json!({"user_id": admin.id})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let detail = app.get_auth(&base, newcomer.token()).await;
    let role_of = |id: &str| {
        detail.body["members"]
            .as_array()
            .expect("m")
            .iter()
            .find(|m| m["user_id"] == id)
            .map(|m| m["role"].as_str().unwrap_or("").to_owned())
    };
    assert_eq!(role_of(&admin.id).as_deref(), Some("owner"));
    assert_eq!(role_of(&owner.id).as_deref(), Some("admin"));
    let r = app
        .send(
            Method::DELETE,
            &member(&owner.id),
            Some(owner.token()),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);

    // Direct conversations have no roles to change.
    let d = app
        .post_auth(
            "/v1/conversations",
            m1.token(),
            Some(json!({"kind": "direct", "peer_user_id": m2.id})),
        )
        .await;
    let direct = d.body["id"].as_str().expect("id");
    let r = app
        .post_auth(
            &format!("/v1/conversations/{direct}/members"),
            m1.token(),
            Some(json!({"user_id": newcomer.id})),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    // Bad input: unknown fields, bad ids, an unknown kind.
    let r = app
        .post_auth(
            &format!("{base}/members"),
            admin.token(),
            Some(json!({"user_id": "../x"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_body"));
    let r = app
        .post_auth(
            "/v1/conversations",
            m1.token(),
            Some(json!({"kind": "salon", "title": "x"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_body"));
    let r = app
        .get_auth("/v1/conversations/not-an-id", m1.token())
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_path"));
}

async fn a_removed_member_is_told_and_can_no_longer_send_read_or_receive(app: TestApp) {
    let alice = user(&app, "alice@example.org", 0).await;
    let bob = user(&app, "bob@example.org", 1).await;
    let carol = user(&app, "carol@example.org", 0).await;
    let conv = create_group(&app, &alice, &[&bob, &carol]).await;
    for d in &bob.devices {
        ack_all(&app, &d.1).await;
    }
    let r = app
        .send(
            Method::DELETE,
            &format!("/v1/conversations/{conv}/members/{}", bob.id),
            Some(alice.token()),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    // Both of Bob's devices learn it.
    for d in &bob.devices {
        let items = pending(&app, &d.1).await;
        let events = of_type(&items, "system");
        assert_eq!(events.len(), 1, "{items:?}");
        assert_eq!(events[0]["event"], "member_removed");
        assert_eq!(events[0]["target_user_id"], bob.id.as_str());
        assert_eq!(events[0]["actor_user_id"], alice.id.as_str());
        ack_all(&app, &d.1).await;
    }
    let r = group_send(&app, bob.token(), &conv, "late").await;
    assert_eq!((r.status, r.code()), (404, "conversation_not_found"));
    let r = app
        .post_auth(
            "/v1/messages",
            bob.token(),
            Some(json!({"client_msg_id": "k", "conversation_id": conv, "kind": "keys",
                "envelopes": [{"device_id": carol.devices[0].0, "msg_type": 0, "ciphertext": "QUJD"}]})),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "conversation_not_found"));
    for path in [
        format!("/v1/conversations/{conv}"),
        format!("/v1/conversations/{conv}/devices"),
        format!("/v1/conversations/{conv}/read"),
    ] {
        let r = app.get_auth(&path, bob.token()).await;
        assert_eq!(
            (r.status, r.code()),
            (404, "conversation_not_found"),
            "{path}"
        );
    }
    // New messages reach the remaining members only.
    assert_eq!(
        group_send(&app, carol.token(), &conv, "after").await.status,
        200
    );
    for d in &bob.devices {
        assert!(pending(&app, &d.1).await.is_empty());
    }
    let items = pending(&app, alice.token()).await;
    assert_eq!(of_type(&items, "message").len(), 1, "{items:?}");
}

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

use common::Ws;

async fn ws(app: &TestApp, token: &str) -> Ws {
    common::ws_connect(&app.base, token).await
}

/// The next text frame that `wanted` accepts, skipping the rest.
async fn next_where(ws: &mut Ws, wanted: impl Fn(&Value) -> bool) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(t.as_str()).expect("json");
            if wanted(&v) {
                return v;
            }
        }
    }
}

/// The next frame that is neither presence nor devices_changed.
async fn next(ws: &mut Ws) -> Value {
    next_where(ws, |v| {
        v["type"] != "presence" && v["type"] != "devices_changed"
    })
    .await
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

async fn next_presence(ws: &mut Ws) -> Value {
    next_where(ws, |v| v["type"] == "presence").await
}

/// Members of a group above `presence_push_max_group` are not pushed each
/// other's presence (a large group coming online would be members² frames),
/// but can still ask for it; a small group's members are pushed it.
async fn presence_is_pushed_within_small_groups_and_asked_for_in_large_ones(backend: Backend) {
    let Some(app) = common::spawn_app_with(backend, |c| c.presence_push_max_group = 3).await else {
        return;
    };
    let alice = user(&app, "alice@example.org", 0).await;
    let bob = user(&app, "bob@example.org", 0).await;
    let carol = user(&app, "carol@example.org", 0).await;
    let dave = user(&app, "dave@example.org", 0).await;
    let erin = user(&app, "erin@example.org", 0).await;
    create_group(&app, &alice, &[&bob, &dave]).await;
    create_group(&app, &alice, &[&carol, &dave, &erin]).await;
    let mut a = ws(&app, alice.token()).await;
    while next(&mut a).await["type"] != "synced" {}

    // Carol shares only the group of 4 with alice: her connect is not pushed.
    let mut c = ws(&app, carol.token()).await;
    while next(&mut c).await["type"] != "synced" {}
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut b = ws(&app, bob.token()).await;
    while next(&mut b).await["type"] != "synced" {}
    let p = next_presence(&mut a).await;
    assert_eq!(
        (p["user_id"].as_str(), p["online"].as_bool()),
        (Some(bob.id.as_str()), Some(true)),
        "the first presence alice hears of is bob's (group of 3), not carol's"
    );

    a.send(Message::Text(
        json!({"type": "subscribe_presence", "user_ids": [carol.id]})
            .to_string()
            .into(),
    ))
    .await
    .expect("subscribe");
    let p = next_presence(&mut a).await;
    assert_eq!(
        (p["user_id"].as_str(), p["online"].as_bool()),
        (Some(carol.id.as_str()), Some(true)),
        "asked for, carol's presence is known"
    );
    drop(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_is_pushed_within_small_groups_and_asked_for_in_large_ones_sqlite() {
    presence_is_pushed_within_small_groups_and_asked_for_in_large_ones(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_is_pushed_within_small_groups_and_asked_for_in_large_ones_postgres_redis() {
    presence_is_pushed_within_small_groups_and_asked_for_in_large_ones(Backend::PostgresRedis)
        .await;
}

/// The size limit holds when many join through one invite at once.
async fn the_size_limit_holds_under_concurrent_joins(backend: Backend) {
    let Some(app) = common::spawn_app_with(backend, |c| c.group_max_members = 5).await else {
        return;
    };
    let owner = user(&app, "owner@example.org", 0).await;
    let mut others = Vec::new();
    for i in 0..8 {
        others.push(user(&app, &format!("u{i}@example.org"), 0).await);
    }
    let too_many: Vec<&User> = others.iter().take(5).collect();
    let ids: Vec<&str> = too_many.iter().map(|u| u.id.as_str()).collect();
    let r = app
        .post_auth(
            "/v1/conversations",
            owner.token(),
            Some(json!({"kind": "group", "title": "t", "member_user_ids": ids})),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "group_full"));
    let conv = create_group(&app, &owner, &[&others[0], &others[1]]).await;
    let r = app
        .post_auth(
            &format!("/v1/conversations/{conv}/invites"),
            owner.token(),
            Some(json!({})),
        )
        .await;
    let token = r.body["token"].as_str().expect("token").to_owned();
    let joins = others[2..].iter().map(|u| {
        let (app, token, t) = (&app, token.clone(), u.token().to_owned());
        async move {
            app.post_auth(&format!("/v1/invites/{token}/join"), &t, None)
                .await
        }
    });
    let results = futures::future::join_all(joins).await;
    let ok = results.iter().filter(|r| r.status == 200).count();
    let full = results
        .iter()
        .filter(|r| (r.status, r.code()) == (409, "group_full"))
        .count();
    assert_eq!(
        (ok, full),
        (2, 4),
        "{:?}",
        results.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    let detail = app
        .get_auth(&format!("/v1/conversations/{conv}"), owner.token())
        .await;
    assert_eq!(detail.body["members"].as_array().expect("m").len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_size_limit_holds_under_concurrent_joins_sqlite() {
    the_size_limit_holds_under_concurrent_joins(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_size_limit_holds_under_concurrent_joins_postgres_redis() {
    the_size_limit_holds_under_concurrent_joins(Backend::PostgresRedis).await;
}

async fn channel(app: &TestApp, owner: &User, visibility: &str) -> String {
    let r = app
        .post_auth(
            "/v1/conversations",
            owner.token(),
            Some(json!({"kind": "channel", "title": "News", "visibility": visibility})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["visibility"], visibility);
    r.body["id"].as_str().expect("id").to_owned()
}

async fn post(app: &TestApp, token: &str, conv: &str, id: &str) -> common::Res {
    app.post_auth(
        "/v1/messages",
        token,
        Some(json!({"client_msg_id": id, "conversation_id": conv, "kind": "channel", "ciphertext": format!("UE9TVA{id}")})),
    )
    .await
}

async fn a_channel_post_is_written_once_read_by_seq_and_pushed_live(app: TestApp) {
    let owner = user(&app, "owner@example.org", 0).await;
    let subs = [
        user(&app, "s1@example.org", 1).await,
        user(&app, "s2@example.org", 0).await,
        user(&app, "s3@example.org", 0).await,
    ];
    let conv = channel(&app, &owner, "public").await;
    for s in &subs {
        let r = app
            .post_auth(
                &format!("/v1/conversations/{conv}/subscribe"),
                s.token(),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    for d in &subs[0].devices {
        ack_all(&app, &d.1).await;
    }
    let mut live = ws(&app, &subs[0].devices[1].1).await;
    assert_eq!(next(&mut live).await["type"], "synced");
    for i in 1..=3 {
        let r = post(&app, owner.token(), &conv, &format!("p{i}")).await;
        assert_eq!(
            (r.status, r.body["seq"].as_i64()),
            (200, Some(i)),
            "{:?}",
            r.body
        );
        let f = next(&mut live).await;
        assert_eq!(
            (
                f["type"].as_str(),
                f["seq"].as_i64(),
                f["msg_type"].as_i64()
            ),
            (Some("channel_post"), Some(i), Some(3))
        );
    }
    // Fan-out on read: no per-subscriber rows were written.
    for s in &subs {
        assert!(of_type(&pending(&app, s.token()).await, "message").is_empty());
    }
    let page = app
        .get_auth(
            &format!("/v1/conversations/{conv}/posts?after=0&limit=2"),
            subs[1].token(),
        )
        .await;
    assert_eq!(page.status, 200, "{:?}", page.body);
    let posts = page.body["posts"].as_array().expect("posts");
    assert_eq!((posts.len(), page.body["more"].as_bool()), (2, Some(true)));
    assert_eq!(posts[0]["ciphertext"], "UE9TVAp1");
    let page = app
        .get_auth(
            &format!("/v1/conversations/{conv}/posts?after=2"),
            subs[1].token(),
        )
        .await;
    assert_eq!(page.body["posts"][0]["seq"], 3);
    assert_eq!(page.body["more"], false);
    let r = app
        .get_auth(
            &format!("/v1/conversations/{conv}/posts?after=-1"),
            subs[1].token(),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_query"));

    // Subscribers read but do not post, type or see each other.
    let r = post(&app, subs[1].token(), &conv, "nope").await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = app
        .post_auth(
            &format!("/v1/conversations/{conv}/read"),
            subs[1].token(),
            Some(json!({"seq": 1})),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "invalid_input"));
    let detail = app
        .get_auth(&format!("/v1/conversations/{conv}"), subs[1].token())
        .await;
    let seen: Vec<&str> = detail.body["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["user_id"].as_str())
        .collect();
    assert_eq!(seen.len(), 2, "owner and self only: {seen:?}");
    // A publisher may post; a direct-style send into a channel is refused.
    let r = app
        .send(
            Method::PUT,
            &format!("/v1/conversations/{conv}/members/{}/role", subs[1].id),
            Some(owner.token()),
            Some(&json!({"role": "publisher"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(post(&app, subs[1].token(), &conv, "pub").await.status, 200);
    let r = group_send(&app, owner.token(), &conv, "g").await;
    assert_eq!((r.status, r.code()), (422, "invalid_input"));

    // A subscriber who leaves can no longer read the log.
    let r = app
        .send(
            Method::DELETE,
            &format!("/v1/conversations/{conv}/members/{}", subs[2].id),
            Some(subs[2].token()),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = app
        .get_auth(&format!("/v1/conversations/{conv}/posts"), subs[2].token())
        .await;
    assert_eq!((r.status, r.code()), (404, "conversation_not_found"));
}

async fn a_private_channel_is_joined_by_invite_and_hidden_from_outsiders(app: TestApp) {
    let owner = user(&app, "owner@example.org", 0).await;
    let sub = user(&app, "sub@example.org", 0).await;
    let conv = channel(&app, &owner, "private").await;
    let r = app
        .post_auth(
            &format!("/v1/conversations/{conv}/subscribe"),
            sub.token(),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "conversation_not_found"));
    let r = app
        .get_auth(&format!("/v1/conversations/{conv}/posts"), sub.token())
        .await;
    assert_eq!((r.status, r.code()), (404, "conversation_not_found"));
    let r = app
        .post_auth(
            &format!("/v1/conversations/{conv}/invites"),
            owner.token(),
            Some(json!({"max_uses": 5})),
        )
        .await;
    let token = r.body["token"].as_str().expect("token").to_owned();
    let r = app
        .post_auth(&format!("/v1/invites/{token}/join"), sub.token(), None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let me = r.body["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["user_id"] == sub.id.as_str())
        .cloned()
        .expect("self listed");
    assert_eq!(me["role"], "subscriber");
    assert_eq!(post(&app, owner.token(), &conv, "secret").await.status, 200);
    let page = app
        .get_auth(&format!("/v1/conversations/{conv}/posts"), sub.token())
        .await;
    assert_eq!(page.body["posts"][0]["msg_type"], 2, "{:?}", page.body);
    let r = app
        .post_auth(
            "/v1/conversations",
            owner.token(),
            Some(json!({"kind": "channel", "title": "x", "visibility": "secret"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_body"));
    let r = app
        .post_auth(
            "/v1/conversations",
            owner.token(),
            Some(json!({"kind": "group", "title": "x", "visibility": "public"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_body"));
}

async fn channel_subscribers_see_and_address_only_the_owner_and_publishers(app: TestApp) {
    let owner = user(&app, "owner@example.org", 1).await;
    let s1 = user(&app, "s1@example.org", 0).await;
    let s2 = user(&app, "s2@example.org", 0).await;
    let conv = channel(&app, &owner, "public").await;
    for s in [&s1, &s2] {
        let r = app
            .post_auth(
                &format!("/v1/conversations/{conv}/subscribe"),
                s.token(),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    let device_ids = |v: &Value| {
        let mut ids: Vec<String> = v["devices"]
            .as_array()
            .expect("devices")
            .iter()
            .map(|d| d["device_id"].as_str().expect("id").to_owned())
            .collect();
        ids.sort();
        ids
    };
    let mut staff_and_s1 = vec![
        owner.devices[0].0.clone(),
        owner.devices[1].0.clone(),
        s1.devices[0].0.clone(),
    ];
    staff_and_s1.sort();
    let seen = app
        .get_auth(&format!("/v1/conversations/{conv}/devices"), s1.token())
        .await;
    assert_eq!(device_ids(&seen.body), staff_and_s1, "no other subscriber");
    let all = app
        .get_auth(&format!("/v1/conversations/{conv}/devices"), owner.token())
        .await;
    assert_eq!(
        device_ids(&all.body).len(),
        4,
        "the owner sees every device"
    );

    let keys = |device: &str, id: &str| {
        json!({"client_msg_id": id, "conversation_id": conv, "kind": "keys",
            "envelopes": [{"device_id": device, "msg_type": 0, "ciphertext": "S2V5"}]})
    };
    let r = app
        .post_auth(
            "/v1/messages",
            s1.token(),
            Some(keys(&owner.devices[1].0, "k1")),
        )
        .await;
    assert_eq!(
        r.status, 200,
        "a key request to a publisher device: {:?}",
        r.body
    );
    let r = app
        .post_auth(
            "/v1/messages",
            s1.token(),
            Some(keys(&s2.devices[0].0, "k2")),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "device_list_stale"));
    let mut listed: Vec<String> = r.body["error"]["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| d["device_id"].as_str().expect("id").to_owned())
        .collect();
    listed.sort();
    assert_eq!(
        listed, staff_and_s1,
        "the error does not reveal subscribers"
    );
    assert!(of_type(&pending(&app, s2.token()).await, "message").is_empty());
}
