//! Outages answer cleanly and heal. A Redis and a PostgreSQL the test
//! starts itself are killed and restarted under a node while several
//! clients keep sending; the node's database is also cut off behind a proxy
//! (a partition rather than a crash). No answer is a 500, every send
//! answered `sent` is stored exactly once and in order (clients retry the
//! others with the same `client_msg_id`), and the node recovers without a
//! restart.
mod common;

use common::{Http, TestApp};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vestnik_testkit::pg_process::PgProcess;
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

    fn merge(&mut self, other: Seen) {
        for (k, v) in other.0 {
            self.0.entry(k).or_default().extend(v);
        }
    }

    fn count(&self, what: &str, status: u16) -> usize {
        self.0
            .get(what)
            .map_or(0, |v| v.iter().filter(|s| **s == status).count())
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

/// Sends `body` until it is answered `sent` (as a client retries), noting
/// every answer; gives up after `within`.
async fn send_until_sent(
    api: &Http,
    seen: &mut Seen,
    from: &Value,
    body: &Value,
    within: Duration,
) -> Value {
    let started = Instant::now();
    loop {
        let r = api
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
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Clients sending all the while: each its own numbered messages, one after
/// the other, each until it is answered `sent`.
struct Load {
    stop: Arc<AtomicBool>,
    senders: Vec<tokio::task::JoinHandle<(Vec<String>, Seen)>>,
}

impl Load {
    fn start(api: &Http, from: &Value, to: &Value, conv: &str, senders: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let senders = (0..senders)
            .map(|n| {
                let (api, from, to, conv, stop) = (
                    api.clone(),
                    from.clone(),
                    to.clone(),
                    conv.to_owned(),
                    stop.clone(),
                );
                tokio::spawn(async move {
                    let (mut sent, mut seen) = (Vec::new(), Seen::default());
                    while !stop.load(Ordering::Relaxed) {
                        // Letters and digits only: the id is also the (base64) ciphertext.
                        let id = format!("s{n}x{:04}", sent.len());
                        let body = message(&conv, &id, &to);
                        send_until_sent(&api, &mut seen, &from, &body, Duration::from_secs(60))
                            .await;
                        sent.push(id);
                    }
                    (sent, seen)
                })
            })
            .collect();
        Self { stop, senders }
    }

    /// Stops the senders once each has had its current message answered.
    async fn finish(self) -> (Vec<String>, Seen) {
        self.stop.store(true, Ordering::Relaxed);
        let (mut all, mut seen) = (Vec::new(), Seen::default());
        for s in self.senders {
            let (sent, s) = s.await.expect("a sender panicked");
            all.extend(sent);
            seen.merge(s);
        }
        (all, seen)
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

/// `/readyz` once it answers 200, or its last answer after `within`: a
/// pooled connection that was cut during the outage fails one ping before
/// the pool replaces it, so the first probe after healing may still say 503.
async fn ready_within(app: &TestApp, within: Duration) -> u16 {
    let deadline = Instant::now() + within;
    loop {
        let status = readyz(app).await;
        if status == 200 || Instant::now() > deadline {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every message Bob's device has waiting, by client message id, in the
/// order they were stored.
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
            let body = i["ciphertext"].as_str().expect("body");
            out.push(body.trim_start_matches("QQQ").to_owned());
        }
        after = items.last().expect("last")["cursor"]
            .as_i64()
            .expect("cursor");
    }
}

/// Each message answered `sent` is stored once, and each sender's in the
/// order it sent them; nothing else is stored.
fn assert_each_once_in_order(stored: &[String], sent: &[String]) {
    let mut a = stored.to_vec();
    let mut b = sent.to_vec();
    a.sort();
    b.sort();
    assert_eq!(a, b, "stored versus answered `sent`");
    let mut by_sender: BTreeMap<&str, Vec<&String>> = BTreeMap::new();
    for id in stored {
        let sender = id.split('x').next().expect("prefix");
        by_sender.entry(sender).or_default().push(id);
    }
    for (sender, ids) in by_sender {
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "{sender}'s messages out of order: {ids:?}"
        );
    }
}

/// Lets the load run until every sender has `n` more messages answered.
async fn until_progress(app: &TestApp, bob: &Value, more: usize) {
    let before = bobs_messages(app, bob).await.len();
    let deadline = Instant::now() + Duration::from_secs(30);
    while bobs_messages(app, bob).await.len() < before + more {
        assert!(Instant::now() < deadline, "the load made no progress");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_dying_under_load_keeps_requests_and_messages_working_and_the_node_heals() {
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
    // Carol logs in below (a login adds a device; hers are in no conversation).
    app.register("carol@example.org", PW).await;

    let load = Load::start(&app.api, &alice, &bob, &conv, 4);
    until_progress(&app, &bob, 20).await;
    redis.kill();
    // Authenticated requests answer from the database.
    let r = app.get_auth("/v1/account", &tok(&alice)).await;
    assert_eq!(seen.note("account", r.status), 200, "{:?}", r.body);
    let r = app.get_auth("/v1/devices", &tok(&bob)).await;
    assert_eq!(seen.note("devices", r.status), 200, "{:?}", r.body);
    // And without waiting on Redis each time: once it proved unreachable,
    // commands fail at once for a moment (they took seconds each before).
    let started = Instant::now();
    for _ in 0..10 {
        let r = app.get_auth("/v1/devices", &tok(&bob)).await;
        assert_eq!(seen.note("devices", r.status), 200, "{:?}", r.body);
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "10 requests took {took:?}");
    // Messaging goes on (its limits fail open; delivery falls back to the outbox).
    until_progress(&app, &bob, 20).await;
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
    assert_eq!(
        seen.note("readyz", ready_within(&app, Duration::from_secs(10)).await),
        200
    );
    until_progress(&app, &bob, 20).await;
    let (sent, load_seen) = load.finish().await;
    seen.merge(load_seen);
    assert_each_once_in_order(&bobs_messages(&app, &bob).await, &sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_crashing_under_load_answers_503_quickly_loses_nothing_and_the_node_heals() {
    let Some(mut pg) = PgProcess::start() else {
        return;
    };
    let url = pg.url();
    let Some(app) = common::spawn_app_with(common::Backend::PostgresRedis, move |c| {
        c.database_url = Some(url);
    })
    .await
    else {
        return;
    };
    let mut seen = Seen::default();
    let (alice, bob, conv) = pair(&app).await;
    let load = Load::start(&app.api, &alice, &bob, &conv, 4);
    until_progress(&app, &bob, 20).await;

    pg.kill();
    // Bounded: every request is refused within the connect timeout, never
    // hanging, never a 500; the senders keep retrying meanwhile.
    for _ in 0..3 {
        let started = Instant::now();
        let r = app.get_auth("/v1/conversations", &tok(&alice)).await;
        let took = started.elapsed();
        assert_eq!(seen.note("conversations", r.status), 503, "{:?}", r.body);
        assert_eq!(r.code(), "database_unavailable", "{:?}", r.body);
        assert!(took < Duration::from_secs(6), "took {took:?}");
    }
    assert_eq!(seen.note("readyz", readyz(&app).await), 503);
    tokio::time::sleep(Duration::from_secs(1)).await;

    pg.restart().expect("PostgreSQL back");
    // The node heals by itself; the senders' retries go through.
    let started = Instant::now();
    while readyz(&app).await != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "readyz stays 503"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = app.get_auth("/v1/conversations", &tok(&alice)).await;
    assert_eq!(seen.note("conversations", r.status), 200, "{:?}", r.body);
    let (sent, load_seen) = load.finish().await;
    seen.merge(load_seen);
    assert!(
        seen.count("send", 503) > 0,
        "the crash never reached a sender: {:?}",
        seen.0.get("send").map(Vec::len)
    );
    assert_each_once_in_order(&bobs_messages(&app, &bob).await, &sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_from_the_database_answers_503_in_bounded_time_and_the_node_heals() {
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
        &app.api,
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
            &app.api,
            &mut seen,
            &alice,
            &message(&conv, id, &bob),
            Duration::from_secs(30),
        )
        .await;
    }
    assert_eq!(
        seen.note("readyz", ready_within(&app, Duration::from_secs(10)).await),
        200
    );
    let got = bobs_messages(&app, &bob).await;
    assert_eq!(got, ["m0", "m1", "m2", "m3"], "each once, in order");
}
