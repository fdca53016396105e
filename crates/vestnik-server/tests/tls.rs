//! A node reaches PostgreSQL (`sslmode=verify-full`, a server the test
//! starts with a certificate from a CA of its own, trusted through
//! `sslrootcert`) and Redis (`rediss://`, likewise, trusted through
//! `redis_ca_file`) over TLS, and everything that crosses Redis works: the token cache, rate
//! limits, presence and revocation signals.
mod common;

use futures::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use vestnik_testkit::pg_process::PgProcess;
use vestnik_testkit::redis_process::RedisProcess;

const PW: &str = "correct horse battery staple";

fn tok(s: &Value) -> String {
    s["access_token"].as_str().expect("token").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_talks_to_postgresql_and_redis_over_tls() {
    let Some(redis) = RedisProcess::start_tls() else {
        return;
    };
    let Some(pg) = PgProcess::start_tls() else {
        return;
    };
    let (url, ca) = (redis.url(), redis.ca_file());
    assert!(url.starts_with("rediss://"));
    let database = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        pg.url(),
        pg.ca_file().expect("a TLS server").display()
    );
    let Some(app) = common::spawn_app_with(common::Backend::PostgresRedis, move |c| {
        c.redis_url = Some(url);
        c.redis_ca_file = Some(ca);
        c.database_url = Some(database);
    })
    .await
    else {
        return;
    };
    let ready = app.send(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(
        (
            ready.status,
            ready.body["database"].as_str(),
            ready.body["redis"].as_str()
        ),
        (200, Some("ok"), Some("ok"))
    );
    let alice = app.register("alice@example.org", PW).await;
    for _ in 0..3 {
        assert_eq!(app.get_auth("/v1/devices", &tok(&alice)).await.status, 200);
    }
    // A logout's signal goes through Redis and closes the socket.
    let mut ws = common::ws_connect(&app.base, &tok(&alice)).await;
    assert_eq!(
        app.post_auth("/v1/auth/logout", &tok(&alice), None)
            .await
            .status,
        204
    );
    let closed = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Close(Some(f)) = m {
                return u16::from(f.code);
            }
        }
        0
    })
    .await
    .expect("closed in time");
    assert_eq!(closed, 4001);
    let r = app
        .post("/v1/auth/login", json!({"email": "alice@example.org", "password": PW, "device": common::device("phone")}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
}
