//! SIGTERM under load: a `vestnik serve` process is stopped while clients
//! send over HTTP and WebSocket as fast as it answers. It exits cleanly and
//! in bounded time, and after a restart on the same data every message it
//! answered `sent` is there, exactly once (what was not answered, a client
//! sends again with the same `client_msg_id`).
mod common;

use common::{cluster_env, fresh_pg_database, redis_reachable, ws_connect};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_vestnik");

/// Where a node keeps its data: a SQLite directory, or a PostgreSQL
/// database and Redis prefix shared by its restarts.
enum Data {
    Sqlite,
    Postgres { db: String, prefix: String },
}

struct Node {
    child: Child,
    base: String,
}

fn command(data: &Data, dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--config").arg(dir.join("vestnik.toml"));
    match data {
        Data::Sqlite => {
            cmd.env_remove("VESTNIK_DATABASE_URL")
                .env_remove("VESTNIK_REDIS_URL")
                .env("VESTNIK_RATE_IP_PER_MINUTE", "1000000")
                .env("VESTNIK_LOG_LEVEL", "warn");
        }
        Data::Postgres { db, prefix } => cluster_env(&mut cmd, db, prefix),
    }
    cmd
}

async fn start(data: &Data, dir: &Path) -> Node {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut cmd = command(data, dir);
    cmd.args(["serve", "--data-dir"])
        .arg(dir.join("data"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let node = Node {
        child: cmd.spawn().expect("spawn vestnik"),
        base: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = http.get(format!("{}/readyz", node.base)).send().await {
            if r.status() == 200 {
                return node;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the node never became ready");
}

fn message(conv: &str, id: &str, to_device: &str) -> Value {
    json!({"client_msg_id": id, "conversation_id": conv,
        "envelopes": [{"device_id": to_device, "msg_type": 0, "ciphertext": format!("QQQ{id}")}]})
}

/// Sends over HTTP until the node stops answering; returns what was answered `sent`.
async fn http_sender(
    base: String,
    token: String,
    conv: String,
    to: String,
    n: usize,
) -> Vec<String> {
    let http = reqwest::Client::new();
    let mut sent = Vec::new();
    loop {
        let id = format!("h{n}x{:05}", sent.len());
        let r = http
            .post(format!("{base}/v1/messages"))
            .bearer_auth(&token)
            .json(&message(&conv, &id, &to))
            .send()
            .await;
        let Ok(r) = r else { return sent };
        match r.status().as_u16() {
            200 => sent.push(id),
            503 => tokio::time::sleep(Duration::from_millis(20)).await,
            other => panic!("send answered {other}: {:?}", r.text().await),
        }
    }
}

/// Sends over a WebSocket until the node closes it; returns what was answered `sent`.
async fn ws_sender(base: String, token: String, conv: String, to: String, n: usize) -> Vec<String> {
    let mut ws = ws_connect(&base, &token).await;
    let mut sent = Vec::new();
    loop {
        let id = format!("w{n}x{:05}", sent.len());
        let mut frame = message(&conv, &id, &to);
        frame["type"] = json!("send");
        if ws
            .send(Message::Text(frame.to_string().into()))
            .await
            .is_err()
        {
            return sent;
        }
        let answer = loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("json");
                    if v["client_msg_id"] == json!(id) {
                        break Some(v);
                    }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => break None,
                Some(Ok(_)) => {}
            }
        };
        match answer {
            None => return sent,
            Some(v) if v["type"] == "sent" => sent.push(id),
            Some(v) => {
                let code = v["error"]["code"].as_str().unwrap_or_default().to_owned();
                assert!(
                    matches!(
                        code.as_str(),
                        "unavailable" | "database_unavailable" | "cache_unavailable"
                    ),
                    "{v}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Everything waiting for Bob's device, by client message id.
async fn pending(base: &str, token: &str) -> Vec<String> {
    let http = reqwest::Client::new();
    let (mut out, mut after) = (Vec::new(), 0);
    loop {
        let r: Value = http
            .get(format!(
                "{base}/v1/messages/pending?after={after}&limit=500"
            ))
            .bearer_auth(token)
            .send()
            .await
            .expect("pending")
            .json()
            .await
            .expect("json");
        let items = r["items"].as_array().expect("items").clone();
        let Some(last) = items.last() else { return out };
        after = last["cursor"].as_i64().expect("cursor");
        out.extend(items.iter().map(|i| {
            i["ciphertext"]
                .as_str()
                .expect("body")
                .trim_start_matches("QQQ")
                .to_owned()
        }));
    }
}

async fn sigterm_under_load(data: Data) {
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "vestnik-shutdown-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("vestnik.toml"),
        "[rate_limits]\nsend_message = \"1000000/1\"\n",
    )
    .expect("config");
    // Two accounts with one device each, made by the admin CLI (no e-mail).
    let mut seed = command(&data, &dir);
    seed.args(["admin", "seed", "--data-dir"])
        .arg(dir.join("data"))
        .args(["--prefix", "sd", "--users", "2", "--devices", "1"]);
    let out = seed.output().expect("seed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seeded: Vec<Value> = String::from_utf8(out.stdout)
        .expect("utf8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let s = |v: &Value, k: &str| v[k].as_str().expect(k).to_owned();
    let (alice, bob) = (&seeded[0], &seeded[1]);

    let mut node = start(&data, &dir).await;
    let conv: Value = reqwest::Client::new()
        .post(format!("{}/v1/conversations", node.base))
        .bearer_auth(s(alice, "access_token"))
        .json(&json!({"kind": "direct", "peer_user_id": s(bob, "user_id")}))
        .send()
        .await
        .expect("conversation")
        .json()
        .await
        .expect("json");
    let conv = s(&conv, "id");
    let args = || {
        (
            node.base.clone(),
            s(alice, "access_token"),
            conv.clone(),
            s(bob, "device_id"),
        )
    };
    let mut senders = Vec::new();
    for n in 0..2 {
        let (b, t, c, to) = args();
        senders.push(tokio::spawn(http_sender(b, t, c, to, n)));
        let (b, t, c, to) = args();
        senders.push(tokio::spawn(ws_sender(b, t, c, to, n)));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let pid = node.child.id().to_string();
    let term = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(term.expect("kill").success());
    let stopping = Instant::now();
    let status = loop {
        if let Some(status) = node.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(20),
            "still running 20 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "exit status {status}");
    let mut answered = Vec::new();
    for s in senders {
        let sent = tokio::time::timeout(Duration::from_secs(20), s)
            .await
            .expect("a sender never noticed the node stopped")
            .expect("a sender panicked");
        assert!(!sent.is_empty(), "a sender got nothing answered");
        answered.extend(sent);
    }

    let node = start(&data, &dir).await;
    let stored = pending(&node.base, &s(bob, "access_token")).await;
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for id in &stored {
        *count.entry(id.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored twice: {twice:?}");
    let lost: Vec<_> = answered
        .iter()
        .filter(|id| !count.contains_key(id.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} answered `sent` are gone: {lost:?}",
        lost.len(),
        answered.len()
    );
    eprintln!(
        "{} answered sent before SIGTERM, {} stored",
        answered.len(),
        stored.len()
    );
    let mut node = node;
    let _ = node.child.kill();
    let _ = node.child.wait();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_on_sqlite_loses_nothing_that_was_answered_sent() {
    sigterm_under_load(Data::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_on_postgresql_loses_nothing_that_was_answered_sent() {
    if !redis_reachable().await {
        return;
    }
    let Some(db) = fresh_pg_database().await else {
        return;
    };
    let prefix = format!("vt-{}", uuid::Uuid::new_v4().simple());
    sigterm_under_load(Data::Postgres { db, prefix }).await;
}
