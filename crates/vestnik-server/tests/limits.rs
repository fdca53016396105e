//! Every action is limited from one table: each test sets one action's rate
//! low and proves the limit holds where the table says (per device, per
//! user, per claimer and target, per address with IPv6 by /64), answered
//! 429 with `Retry-After` over HTTP and an error frame with `retry_after_ms`
//! on the WebSocket, with nothing stored. The README's table is the code's.
mod common;

use common::{Backend, TestApp};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const PW: &str = "correct horse battery staple";

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(super::Backend::Sqlite).await } )*
        }
        mod postgres_redis {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(super::Backend::PostgresRedis).await } )*
        }
    };
}

on_both_backends!(
    sends_are_limited_per_device_over_http_and_the_websocket_together,
    key_claims_are_limited_per_claimer_and_per_target_and_the_target_hears_it_runs_low,
    conversations_invites_and_members_are_limited_per_user,
    an_ipv6_client_is_limited_by_its_slash_64,
);

/// A server with `action` set to `rate` (every other limit out of the way).
async fn app_limiting(backend: Backend, action: &str, rate: &str) -> Option<TestApp> {
    let (action, rate) = (action.to_owned(), rate.to_owned());
    common::spawn_app_with(backend, move |c| {
        c.rate_limits.insert(action, rate);
    })
    .await
}

fn tok(s: &Value) -> String {
    s["access_token"].as_str().expect("token").to_owned()
}

fn dev(s: &Value) -> String {
    s["device_id"].as_str().expect("device").to_owned()
}

async fn direct(app: &TestApp, from: &Value, to: &Value) -> String {
    let r = app
        .post_auth(
            "/v1/conversations",
            &tok(from),
            Some(json!({"kind": "direct", "peer_user_id": to["user_id"]})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["id"].as_str().expect("id").to_owned()
}

fn message(conv: &str, id: &str, to: &Value) -> Value {
    json!({"client_msg_id": id, "conversation_id": conv,
        "envelopes": [{"device_id": dev(to), "msg_type": 0, "ciphertext": format!("QQQ{id}")}]})
}

async fn sends_are_limited_per_device_over_http_and_the_websocket_together(backend: Backend) {
    let Some(app) = app_limiting(backend, "send_message", "3/60").await else {
        return;
    };
    let alice = app.register("alice@example.org", PW).await;
    let bob = app.register("bob@example.org", PW).await;
    let conv = direct(&app, &alice, &bob).await;
    for i in 0..2 {
        let r = app
            .post_auth(
                "/v1/messages",
                &tok(&alice),
                Some(message(&conv, &format!("h{i}"), &bob)),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    let mut ws = common::ws_connect(&app.base, &tok(&alice)).await;
    let mut frames = Vec::new();
    for id in ["w0", "w1"] {
        let mut f = message(&conv, id, &bob);
        f["type"] = json!("send");
        ws.send(Message::Text(f.to_string().into()))
            .await
            .expect("send");
    }
    while frames.len() < 2 {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(t.as_str()).expect("json");
            if matches!(v["type"].as_str(), Some("sent" | "error")) {
                frames.push(v);
            }
        }
    }
    frames.sort_by_key(|f| f["type"].as_str().map(str::to_owned));
    assert_eq!(frames[0]["code"], "rate_limited", "{frames:?}");
    let retry = frames[0]["retry_after_ms"]
        .as_u64()
        .expect("retry_after_ms");
    assert!((1..=20_000).contains(&retry), "{retry}");
    assert_eq!(frames[1]["type"], "sent");
    // The HTTP send past the limit: 429 with Retry-After.
    let r = app
        .post_auth(
            "/v1/messages",
            &tok(&alice),
            Some(message(&conv, "h9", &bob)),
        )
        .await;
    assert_eq!((r.status, r.code()), (429, "rate_limited"));
    assert!(r.headers.get("retry-after").is_some());
    // Only the three accepted are stored; Bob's other device is unaffected.
    let pending = app
        .get_auth("/v1/messages/pending?after=0&limit=100", &tok(&bob))
        .await;
    assert_eq!(pending.body["items"].as_array().map(Vec::len), Some(3));
    let r = app
        .post_auth(
            "/v1/messages",
            &tok(&bob),
            Some(message(&conv, "b0", &alice)),
        )
        .await;
    assert_eq!(r.status, 200, "per device: Bob still sends");
}

async fn key_claims_are_limited_per_claimer_and_per_target_and_the_target_hears_it_runs_low(
    backend: Backend,
) {
    let Some(app) = app_limiting(backend, "claim_keys_of_target", "2/3600").await else {
        return;
    };
    let alice = app.register("alice@example.org", PW).await;
    let bob = app.register("bob@example.org", PW).await;
    let carol = app.register("carol@example.org", PW).await;
    let mut bobs_socket = common::ws_connect(&app.base, &tok(&bob)).await;
    let claim = |who: Value, of: Value| {
        let app = &app;
        async move {
            app.post_auth(
                "/v1/keys/claim",
                &tok(&who),
                Some(json!({"user_id": of["user_id"]})),
            )
            .await
        }
    };
    for _ in 0..2 {
        assert_eq!(claim(alice.clone(), bob.clone()).await.status, 200);
    }
    let r = claim(alice.clone(), bob.clone()).await;
    assert_eq!(
        (r.status, r.code()),
        (429, "rate_limited"),
        "Alice drained enough of Bob"
    );
    assert_eq!(
        claim(alice.clone(), carol.clone()).await.status,
        200,
        "another target"
    );
    assert_eq!(
        claim(carol.clone(), bob.clone()).await.status,
        200,
        "another claimer"
    );
    // Bob registered with 5 one-time keys (below the watermark of 20): each
    // claim tells his device to top up.
    let low = loop {
        let m = tokio::time::timeout(Duration::from_secs(10), bobs_socket.next())
            .await
            .expect("a frame")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(t.as_str()).expect("json");
            if v["type"] == "keys_low" {
                break v;
            }
        }
    };
    assert!(low["one_time_keys"].as_i64().expect("count") < 20, "{low}");
}

async fn conversations_invites_and_members_are_limited_per_user(backend: Backend) {
    let Some(app) = common::spawn_app_with(backend, |c| {
        for (a, r) in [
            ("create_conversation", "2/600"),
            ("create_invite", "1/3600"),
            ("add_members", "1/3600"),
        ] {
            c.rate_limits.insert(a.into(), r.into());
        }
    })
    .await
    else {
        return;
    };
    let alice = app.register("alice@example.org", PW).await;
    let bob = app.register("bob@example.org", PW).await;
    let carol = app.register("carol@example.org", PW).await;
    let group = |title: &str| json!({"kind": "group", "title": title, "member_user_ids": []});
    let g = app
        .post_auth("/v1/conversations", &tok(&alice), Some(group("one")))
        .await;
    assert_eq!(g.status, 201, "{:?}", g.body);
    let gid = g.body["id"].as_str().expect("id").to_owned();
    assert_eq!(direct(&app, &alice, &bob).await.len(), 32);
    let r = app
        .post_auth("/v1/conversations", &tok(&alice), Some(group("three")))
        .await;
    assert_eq!((r.status, r.code()), (429, "rate_limited"));
    let add = |who: &Value| {
        let (app, gid, who) = (&app, gid.clone(), who["user_id"].clone());
        let t = tok(&alice);
        async move {
            app.post_auth(
                &format!("/v1/conversations/{gid}/members"),
                &t,
                Some(json!({"user_id": who})),
            )
            .await
        }
    };
    assert_eq!(add(&bob).await.status, 200);
    assert_eq!(add(&carol).await.code(), "rate_limited");
    let invite = |t: String| {
        let (app, gid) = (&app, gid.clone());
        async move {
            app.post_auth(
                &format!("/v1/conversations/{gid}/invites"),
                &t,
                Some(json!({})),
            )
            .await
        }
    };
    assert_eq!(invite(tok(&alice)).await.status, 201);
    assert_eq!(invite(tok(&alice)).await.code(), "rate_limited");
}

async fn an_ipv6_client_is_limited_by_its_slash_64(backend: Backend) {
    let Some(app) = common::spawn_app_with(backend, |c| {
        c.trust_forwarded_for = true;
        c.rate_limits.insert("requests".into(), "3/60".into());
    })
    .await
    else {
        return;
    };
    let from = |ip: &'static str| {
        let app = &app;
        async move {
            app.http
                .get(format!("{}/v1/account", app.base))
                .header("x-forwarded-for", ip)
                .send()
                .await
                .expect("answer")
                .status()
                .as_u16()
        }
    };
    for ip in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"] {
        assert_eq!(from(ip).await, 401, "{ip}: under the limit");
    }
    assert_eq!(from("2001:db8:1:2:abcd::9").await, 429, "the same /64");
    assert_eq!(
        from("2001:db8:1:3::1").await,
        401,
        "the next /64 is another client"
    );
    assert_eq!(from("192.0.2.7").await, 401);
}

/// The README's "Limits" table lists every action with its scope, default
/// and config key, as the code has them.
#[test]
fn the_readme_limits_table_is_the_rate_table() {
    use vestnik_core::rate_limits::Action;
    let readme = include_str!("../../../README.md");
    for a in Action::ALL {
        let s = a.spec();
        let key = match s.legacy_key {
            Some(k) => format!("`{k}`"),
            None => format!("`rate_limits.{}`", s.name),
        };
        let row = format!("| `{}` | {} | {} | {} |", s.name, s.scope, s.default, key);
        assert!(readme.contains(&row), "README lacks the row\n{row}");
    }
}
