//! WebSockets live no longer than their access, and no client can wedge one:
//! revocations close sockets at once, expired tokens are renewed on the
//! socket or it closes, slow or flooding clients are cut off while the node
//! stays healthy. On SQLite and on PostgreSQL + Redis (three processes:
//! `cluster.rs`).
#[path = "../common/mod.rs"]
mod common;
mod expiry;
mod revocation;
mod wedging;

use common::{Backend, TestApp, Ws};
use futures::StreamExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const PW: &str = "correct horse battery staple";

/// Runs each named `async fn(Backend)` once per backend.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::common::Backend::Sqlite).await } )*
        }
        mod postgres_redis {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::common::Backend::PostgresRedis).await } )*
        }
    };
}
pub(crate) use on_both_backends;

async fn app(backend: Backend) -> Option<TestApp> {
    common::spawn_app(backend).await
}

async fn app_with(
    backend: Backend,
    tune: impl FnOnce(&mut vestnik_core::Config),
) -> Option<TestApp> {
    common::spawn_app_with(backend, tune).await
}

fn token(session: &Value) -> String {
    session["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

fn device_id(session: &Value) -> String {
    session["device_id"].as_str().expect("device id").to_owned()
}

/// A socket past its backlog (`synced` read).
async fn socket(base: &str, token: &str) -> Ws {
    let mut ws = common::ws_connect(base, token).await;
    loop {
        let f = next_frame(&mut ws, Duration::from_secs(10)).await;
        if f["type"] == "synced" {
            return ws;
        }
    }
}

/// The next text frame as JSON (but presence and device-list notices);
/// panics on a close or after `within`.
async fn next_frame(ws: &mut Ws, within: Duration) -> Value {
    loop {
        let m = tokio::time::timeout(within, ws.next())
            .await
            .expect("a frame in time")
            .expect("the socket is open")
            .expect("a frame");
        match m {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str()).expect("json");
                // Notices about other devices and users interleave with
                // everything; these tests follow their own socket.
                if v["type"] != "presence" && v["type"] != "devices_changed" {
                    return v;
                }
            }
            Message::Close(f) => panic!("closed: {f:?}"),
            _ => continue,
        }
    }
}

/// Reads until the server closes the socket; returns the close code and
/// how long it took. Panics if it stays open for `within`.
async fn closed_within(ws: &mut Ws, within: Duration) -> (u16, Duration) {
    let started = Instant::now();
    loop {
        let left = within.saturating_sub(started.elapsed());
        let m = tokio::time::timeout(left, ws.next())
            .await
            .unwrap_or_else(|_| panic!("the socket is still open after {within:?}"));
        match m {
            Some(Ok(Message::Close(Some(f)))) => return (u16::from(f.code), started.elapsed()),
            Some(Ok(Message::Close(None))) | None | Some(Err(_)) => {
                panic!("the socket ended without a close code")
            }
            Some(Ok(_)) => continue,
        }
    }
}

/// Sends a ping frame; after a close this fails or is never answered.
async fn ping(ws: &mut Ws) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    use futures::SinkExt;
    ws.send(Message::Text(json!({"type": "ping"}).to_string().into()))
        .await
}
