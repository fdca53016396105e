//! Groups on the server: membership, roles, invites, system events, and the
//! Megolm send path that stores one ciphertext for every member device, on
//! SQLite and on PostgreSQL + Redis. Ciphertexts are opaque test strings
//! (the client library tests do real Megolm).
mod account_deletion;
mod channels;
#[path = "../common/mod.rs"]
mod common;
mod consent;
mod invites_and_live;
mod membership;
mod moderation;
mod mutes_and_deletions;
mod presence_and_limits;
mod profiles;
mod retention;

use common::{Backend, TestApp};
use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const PW: &str = "correct horse battery staple";

use common::TestUser as User;

async fn user(app: &TestApp, email: &str, extra_devices: usize) -> User {
    common::user_with_devices(app, email, PW, extra_devices).await
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

async fn next_presence(ws: &mut Ws) -> Value {
    next_where(ws, |v| v["type"] == "presence").await
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
