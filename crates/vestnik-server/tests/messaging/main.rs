//! Key directory and message delivery over HTTP and WebSocket, on SQLite and
//! on PostgreSQL + Redis. Ciphertexts here are opaque test strings: the
//! server must treat them as such (the client library tests do real Olm).
mod blocks;
#[path = "../common/mod.rs"]
mod common;
mod delivery;
mod ephemeral;
mod keys_and_retention;
mod websocket;

use common::TestApp;
use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const PW: &str = "correct horse battery staple";

use common::TestUser as User;

async fn user(app: &TestApp, email: &str, extra_devices: usize) -> User {
    common::user_with_devices(app, email, PW, extra_devices).await
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

fn base64_32(seed: u8) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_NO_PAD.encode([seed; 32])
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
