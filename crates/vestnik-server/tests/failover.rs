//! Three `vestnik serve` processes sharing PostgreSQL and Redis; the node
//! holding a recipient's socket is killed with SIGKILL mid-conversation. The
//! recipient reconnects to another node and gets every message exactly once
//! (after dedup by message id), in order, with nothing lost.
mod common;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const TOTAL: usize = 60;
const BEFORE_KILL: usize = 20;

use common::{cluster_env, start_node, ProcessNode, Ws, BIN};

async fn ws(base: &str, token: &str) -> Ws {
    common::ws_connect(base, token).await
}

/// The next `message` frame, or None when the socket ends.
async fn next_message(ws: &mut Ws) -> Option<Value> {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("a frame or the end within 15 s");
        match m {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(t.as_str()).expect("json");
                if v["type"] == "message" {
                    return Some(v);
                }
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return None,
        }
    }
}

async fn send(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    conv: &str,
    alice_device: &str,
    i: usize,
) {
    let r = http
        .post(format!("{base}/v1/messages"))
        .bearer_auth(token)
        .json(&json!({"client_msg_id": format!("m{i}"), "conversation_id": conv,
            "envelopes": [{"device_id": alice_device, "msg_type": 1, "ciphertext": format!("Q0lQSEVS{i}")}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_conversation_loses_nothing_and_duplicates_nothing() {
    if !common::redis_reachable().await {
        return;
    }
    let Some(db) = common::fresh_pg_database().await else {
        return;
    };
    let prefix = format!("vt-{}", uuid::Uuid::new_v4().simple());
    let dir = std::env::temp_dir().join(format!(
        "vestnik-failover-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("dir");

    // Two accounts with one device each, made by the admin CLI (no e-mail).
    let mut seed = Command::new(BIN);
    seed.args([
        "admin",
        "seed",
        "--data-dir",
        dir.join("seed").to_str().expect("utf8"),
        "--prefix",
        "fo",
        "--users",
        "2",
        "--devices",
        "1",
    ]);
    cluster_env(&mut seed, &db, &prefix);
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
    assert_eq!(seeded.len(), 2, "{seeded:?}");
    let (alice, bob) = (&seeded[0], &seeded[1]);
    let s = |v: &Value, k: &str| v[k].as_str().expect(k).to_owned();
    let (alice_token, alice_device) = (s(alice, "access_token"), s(alice, "device_id"));
    let bob_token = s(bob, "access_token");

    let nodes = [
        start_node(&db, &prefix, 0).await,
        start_node(&db, &prefix, 1).await,
        start_node(&db, &prefix, 2).await,
    ];
    let mut nodes: Vec<Option<ProcessNode>> = nodes.into_iter().map(Some).collect();
    let base = |n: &Option<ProcessNode>| n.as_ref().expect("alive").base.clone();
    let (b0, b1, b2) = (base(&nodes[0]), base(&nodes[1]), base(&nodes[2]));
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{b1}/v1/conversations"))
        .bearer_auth(&bob_token)
        .json(&json!({"kind": "direct", "peer_user_id": s(alice, "user_id")}))
        .send()
        .await
        .expect("conversation");
    let conv = r.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();

    // Alice on node 0, Bob sending through node 1: frames cross nodes live.
    let mut alice_ws = ws(&b0, &alice_token).await;
    let mut got: BTreeMap<i64, (String, String)> = BTreeMap::new(); // seq -> (message id, ciphertext)
    let mut frames = 0;
    for i in 1..=BEFORE_KILL {
        send(&http, &b1, &bob_token, &conv, &alice_device, i).await;
        // A message committed while the socket was joining may come twice
        // (backlog and live); read until this one is in.
        while !got.contains_key(&(i as i64)) {
            let m = next_message(&mut alice_ws)
                .await
                .expect("live message before the kill");
            frames += 1;
            got.insert(
                m["seq"].as_i64().expect("seq"),
                (s(&m, "message_id"), s(&m, "ciphertext")),
            );
        }
    }
    assert_eq!(got.len(), BEFORE_KILL);

    // SIGKILL: no graceful shutdown, no presence cleanup, no acks were sent.
    if let Some(mut n) = nodes[0].take() {
        n.child.kill().expect("SIGKILL node 0");
        let _ = n.child.wait();
    }
    assert!(
        next_message(&mut alice_ws).await.is_none(),
        "node 0 is dead"
    );
    // Bob keeps talking while Alice is away (node 1 may still route to the dead node).
    for i in BEFORE_KILL + 1..=TOTAL {
        send(&http, &b1, &bob_token, &conv, &alice_device, i).await;
    }

    // Alice reconnects to node 2: the backlog holds everything unacknowledged.
    let mut alice_ws = ws(&b2, &alice_token).await;
    let mut cursors = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < TOTAL && Instant::now() < deadline {
        let m = next_message(&mut alice_ws)
            .await
            .expect("message after reconnect");
        frames += 1;
        cursors.push(m["cursor"].as_i64().expect("cursor"));
        let seq = m["seq"].as_i64().expect("seq");
        let entry = (s(&m, "message_id"), s(&m, "ciphertext"));
        if let Some(prev) = got.get(&seq) {
            assert_eq!(prev, &entry, "a redelivery is the same message");
        }
        got.insert(seq, entry);
    }
    assert_eq!(got.len(), TOTAL, "every message arrived");
    for (i, (seq, (_, ciphertext))) in got.iter().enumerate() {
        assert_eq!(*seq, i as i64 + 1);
        assert_eq!(ciphertext, &format!("Q0lQSEVS{}", i + 1));
    }
    // Redeliveries (unacked before the kill) are allowed and deduped by id.
    assert!(frames >= TOTAL, "{frames} frames");

    // Once acknowledged, nothing is pending anywhere in the cluster.
    alice_ws
        .send(Message::Text(
            json!({"type": "ack", "cursors": cursors})
                .to_string()
                .into(),
        ))
        .await
        .expect("ack");
    // Acks are fire-and-forget on the socket (they never hold up deliveries),
    // so the outbox empties shortly after, not before the next frame.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let p: Value = http
            .get(format!("{b1}/v1/messages/pending?limit=500"))
            .bearer_auth(&alice_token)
            .send()
            .await
            .expect("pending")
            .json()
            .await
            .expect("json");
        let left: Vec<Value> = p["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|i| i["type"] == "message")
            .cloned()
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still pending after the ack: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}
