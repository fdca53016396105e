//! Outages answer cleanly and heal: a Redis the test starts is killed and
//! restarted under a node, and the node's PostgreSQL is cut off (through a
//! proxy the test controls) and comes back. No answer is a 500, every send
//! answered `sent` is stored exactly once (clients retry the others with the
//! same `client_msg_id`), and the node recovers without a restart.
mod common;

use common::TestApp;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use vestnik_testkit::proxy::Proxy;
use vestnik_testkit::redis_process::RedisProcess;

const PW: &str = "correct horse battery staple";

fn tok(s: &Value) -> String {
    s["access_token"].as_str().expect("token").to_owned()
}

/// Statuses seen, by what was asked; a 500 anywhere fails the test.
#[derive(Default)]
struct Seen(BTreeMap<String, Vec<u16>>);

impl Seen {
    fn note(&mut self, what: &str, status: u16) -> u16 {
        assert_ne!(status, 500, "{what} answered 500");
        self.0.entry(what.to_owned()).or_default().push(status);
        status
    }
}

async fn pair(app: &TestApp) -> (Value, Value, String) {
    let alice = app.register("alice@example.org", PW).await;
    let bob = app.register("bob@example.org", PW).await;
    let r = app
        .post_auth(
            "/v1/conversations",
            &tok(&alice),
            Some(json!({"kind": "direct", "peer_user_id": bob["user_id"]})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    (alice, bob, r.body["id"].as_str().expect("id").to_owned())
}

fn message(conv: &str, id: &str, to: &Value) -> Value {
    json!({"client_msg_id": id, "conversation_id": conv,
        "envelopes": [{"device_id": to["device_id"], "msg_type": 0, "ciphertext": format!("QQQ{id}")}]})
}

/// Sends `id` until it is answered `sent` (as a client retries), noting
/// every answer; gives up after `within`.
async fn send_until_sent(
    app: &TestApp,
    seen: &mut Seen,
    from: &Value,
    body: &Value,
    within: Duration,
) -> Value {
    let started = Instant::now();
    loop {
        let r = app
            .post_auth("/v1/messages", &tok(from), Some(body.clone()))
            .await;
        if seen.note("send", r.status) == 200 {
            return r.body;
        }
        assert_eq!(r.status, 503, "{:?}", r.body);
        assert!(r.headers.get("retry-after").is_some());
        assert!(
            started.elapsed() < within,
            "still refused after {within:?}: {:?}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `/readyz`'s status (503 is its answer while a dependency is away).
async fn readyz(app: &TestApp) -> u16 {
    app.http
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .expect("answer")
        .status()
        .as_u16()
}

/// Every message Bob's device has waiting, by `client`-side tag.
async fn bobs_messages(app: &TestApp, bob: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let r = app
            .get_auth(
                &format!("/v1/messages/pending?after={after}&limit=100"),
                &tok(bob),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let items = r.body["items"].as_array().expect("items").clone();
        if items.is_empty() {
            return out;
        }
        for i in &items {
            out.push(i["ciphertext"].as_str().expect("body").to_owned());
        }
        after = items.last().expect("last")["cursor"]
            .as_i64()
            .expect("cursor");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_keeps_requests_and_messages_working_and_the_node_heals() {
    let Some(mut redis) = RedisProcess::start() else {
        return;
    };
    let url = redis.url();
    let Some(app) = common::spawn_app_with(common::Backend::PostgresRedis, move |c| {
        c.redis_url = Some(url);
        // The auth limits are what must fail closed: keep them in force.
        c.rate_limits.remove("auth_per_email");
        c.rate_auth_email_per_hour = 1000;
    })
    .await
    else {
        return;
    };
    let mut seen = Seen::default();
    let (alice, bob, conv) = pair(&app).await;
    send_until_sent(
        &app,
        &mut seen,
        &alice,
        &message(&conv, "before", &bob),
        Duration::ZERO,
    )
    .await;

    // Carol logs in below (a login adds a device; hers are in no conversation).
    app.register("carol@example.org", PW).await;
    redis.kill();
    // Authenticated requests answer from the database.
    let r = app.get_auth("/v1/account", &tok(&alice)).await;
    assert_eq!(seen.note("account", r.status), 200, "{:?}", r.body);
    let r = app.get_auth("/v1/devices", &tok(&bob)).await;
    assert_eq!(seen.note("devices", r.status), 200, "{:?}", r.body);
    // Messaging goes on (its limits fail open; delivery falls back to the outbox).
    for i in 0..5 {
        let body = message(&conv, &format!("during{i}"), &bob);
        send_until_sent(&app, &mut seen, &alice, &body, Duration::from_secs(20)).await;
    }
    // Login guards a password: its limit fails closed.
    let r = app.login("carol@example.org", PW, json!({})).await;
    assert_eq!(seen.note("login", r.status), 503, "{:?}", r.body);
    assert_eq!(r.code(), "busy");
    assert!(r.headers.get("retry-after").is_some());

    redis.restart().expect("redis back");
    // The node reconnects by itself.
    let started = Instant::now();
    loop {
        let r = app.login("carol@example.org", PW, json!({})).await;
        if seen.note("login", r.status) == 201 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "login still {}: {:?} (logins so far: {:?})",
            r.status,
            r.body,
            seen.0.get("login")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(seen.note("readyz", readyz(&app).await), 200);
    send_until_sent(
        &app,
        &mut seen,
        &alice,
        &message(&conv, "after", &bob),
        Duration::from_secs(20),
    )
    .await;
    let mut got = bobs_messages(&app, &bob).await;
    got.sort();
    let mut want: Vec<String> = ["before", "after"]
        .iter()
        .map(|s| (*s).to_owned())
        .chain((0..5).map(|i| format!("during{i}")))
        .map(|id| format!("QQQ{id}"))
        .collect();
    want.sort();
    assert_eq!(got, want, "each message once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_going_away_answers_503_in_bounded_time_and_the_node_heals() {
    // The test PostgreSQL's host:port, reached through a proxy the test cuts.
    let admin = vestnik_testkit::pg_url();
    let host_port = admin
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("postgres://user@host:port/db")
        .to_owned();
    let Ok(Some(pg)) = tokio::net::lookup_host(&host_port)
        .await
        .map(|mut a| a.next())
    else {
        panic!("cannot resolve {host_port}");
    };
    let proxy = Proxy::start(pg).await;
    let proxied = proxy.addr.to_string();
    let Some(app) = common::spawn_app_with(common::Backend::PostgresRedis, move |c| {
        c.database_url = c
            .database_url
            .as_ref()
            .map(|u| u.replace(&host_port, &proxied));
    })
    .await
    else {
        return;
    };
    let mut seen = Seen::default();
    let (alice, bob, conv) = pair(&app).await;
    send_until_sent(
        &app,
        &mut seen,
        &alice,
        &message(&conv, "m0", &bob),
        Duration::ZERO,
    )
    .await;

    proxy.set_down(true);
    // Bounded: refused within the connect timeout, never hanging, never 500.
    let started = Instant::now();
    let r = app
        .post_auth(
            "/v1/messages",
            &tok(&alice),
            Some(message(&conv, "m1", &bob)),
        )
        .await;
    let took = started.elapsed();
    assert_eq!(seen.note("send", r.status), 503, "{:?}", r.body);
    assert_eq!(r.code(), "database_unavailable", "{:?}", r.body);
    assert!(took < Duration::from_secs(12), "took {took:?}");
    let r = app.get_auth("/v1/conversations", &tok(&alice)).await;
    assert_eq!(seen.note("conversations", r.status), 503, "{:?}", r.body);
    assert_eq!(seen.note("readyz", readyz(&app).await), 503);

    proxy.set_down(false);
    // The client retries m1 (same id) and goes on; the node heals itself.
    for id in ["m1", "m2", "m3"] {
        send_until_sent(
            &app,
            &mut seen,
            &alice,
            &message(&conv, id, &bob),
            Duration::from_secs(30),
        )
        .await;
    }
    assert_eq!(seen.note("readyz", readyz(&app).await), 200);
    let got = bobs_messages(&app, &bob).await;
    assert_eq!(
        got,
        ["QQQm0", "QQQm1", "QQQm2", "QQQm3"],
        "each once, in order"
    );
}
