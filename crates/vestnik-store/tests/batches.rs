//! The send batch writer's contract, on SQLite and on PostgreSQL: seqs per
//! conversation in batch order, retries (earlier or within the same batch)
//! answered with the first copy, and one delivery row per envelope; a send
//! batch and an ack batch sharing one transaction.
use std::sync::Arc;

mod common;

use common::{postgres_store, postgres_store_and_url, sqlite_store};
use vestnik_store::{NewMessage, Store};

fn message(id: &str, conversation: &str, client_msg_id: &str, devices: &[&str]) -> NewMessage {
    NewMessage {
        id: id.into(),
        conversation_id: conversation.into(),
        sender_user_id: "ua".into(),
        sender_device_id: "da".into(),
        client_msg_id: client_msg_id.into(),
        created_at: 1_000,
        envelopes: devices
            .iter()
            .map(|d| ((*d).to_owned(), 1, format!("Q0lQSEVS{id}")))
            .collect(),
        group_body: None,
    }
}

/// Users ua, ub, uc and the direct conversation of ua and ub.
async fn users_and_conversation(store: &Arc<dyn Store>) -> String {
    for (id, email) in [("ua", "a@x.org"), ("ub", "b@x.org"), ("uc", "c@x.org")] {
        store.create_pending_user(id, email, 0).await.expect("user");
    }
    store
        .direct_conversation("cab", "ua", "ub", 0)
        .await
        .expect("ab")
        .id
}

async fn batches_number_in_order_and_answer_repeats_with_the_first_copy(store: Arc<dyn Store>) {
    let ab = users_and_conversation(&store).await;
    let ac = store
        .direct_conversation("cac", "ua", "uc", 0)
        .await
        .expect("ac")
        .id;

    let first = store
        .store_messages(
            &[
                message("m1", &ab, "x1", &["db1", "db2"]),
                message("m2", &ac, "y1", &["dc1"]),
                message("m3", &ab, "x2", &["db1", "db2"]),
                message("m4", &ab, "x1", &["db1", "db2"]), // a repeat of m1 in the same batch
            ],
            9_999,
        )
        .await
        .expect("first batch");
    let view: Vec<(&str, i64, bool, usize)> = first
        .iter()
        .map(|s| (s.message_id.as_str(), s.seq, s.duplicate, s.outbox.len()))
        .collect();
    assert_eq!(
        view,
        vec![
            ("m1", 1, false, 2),
            ("m2", 1, false, 1),
            ("m3", 2, false, 2),
            ("m1", 1, true, 0)
        ]
    );
    let devices: Vec<&str> = first[0].outbox.iter().map(|(_, d)| d.as_str()).collect();
    assert_eq!(devices.len(), 2);
    assert!(devices.contains(&"db1") && devices.contains(&"db2"));

    let second = store
        .store_messages(
            &[
                message("m5", &ab, "x2", &["db1", "db2"]), // a retry of m3
                message("m6", &ab, "x3", &["db1", "db2"]),
            ],
            9_999,
        )
        .await
        .expect("second batch");
    let view: Vec<(&str, i64, bool)> = second
        .iter()
        .map(|s| (s.message_id.as_str(), s.seq, s.duplicate))
        .collect();
    assert_eq!(view, vec![("m3", 2, true), ("m6", 3, false)]);
    // Stored once each: db1 holds m1, m3 and m6.
    let pending = store.outbox("db1", 0, 100).await.expect("outbox");
    let ids: Vec<&str> = pending.iter().map(|r| r.message_id.as_str()).collect();
    assert_eq!(ids, vec!["m1", "m3", "m6"]);
}

#[tokio::test]
async fn batches_number_in_order_and_answer_repeats_with_the_first_copy_sqlite() {
    let (store, dir) = sqlite_store().await;
    batches_number_in_order_and_answer_repeats_with_the_first_copy(store).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn batches_number_in_order_and_answer_repeats_with_the_first_copy_postgres() {
    if let Some(store) = postgres_store().await {
        batches_number_in_order_and_answer_repeats_with_the_first_copy(store).await;
    }
}

/// Deleted delivery rows are reclaimed by `housekeep` without autovacuum
/// (off on the machines these tests run on): PostgreSQL vacuums the outbox
/// once enough is dead; SQLite checkpoints its WAL off the writer.
async fn acked_outbox_rows_are_reclaimed_by_housekeeping(store: Arc<dyn Store>, expect: &str) {
    let ab = users_and_conversation(&store).await;
    let devices = ["db1", "db2", "db3", "db4"];
    let mut acks = Vec::new();
    for chunk in 0..12 {
        let batch: Vec<NewMessage> = (0..256)
            .map(|i| {
                let n = chunk * 256 + i;
                message(&format!("m{n}"), &ab, &format!("c{n}"), &devices)
            })
            .collect();
        for stored in store.store_messages(&batch, 9_999).await.expect("store") {
            for (cursor, device) in stored.outbox {
                acks.push(vestnik_store::AckBatchItem {
                    device_id: device,
                    user_id: "ub".into(),
                    cursors: vec![cursor],
                });
            }
        }
    }
    assert_eq!(acks.len(), 12 * 256 * 4);
    store.ack(&acks, 2_000, 9_999).await.expect("ack");
    for d in devices {
        assert!(store.outbox(d, 0, 10).await.expect("outbox").is_empty());
    }
    // PostgreSQL publishes the deletes to its statistics within a second while
    // the connection that made them stays busy, or ten seconds once it idles
    // (the writer turn connection does, here).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let done = store.housekeep().await.expect("housekeep");
        if done.iter().any(|d| d.starts_with(expect)) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {expect} in 30 s: {done:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // Nothing left to do right after.
    let again = store.housekeep().await.expect("housekeep");
    assert!(!again.iter().any(|d| d.starts_with(expect)), "{again:?}");
}

#[tokio::test]
async fn acked_outbox_rows_are_reclaimed_by_housekeeping_sqlite() {
    let (store, dir) = sqlite_store().await;
    acked_outbox_rows_are_reclaimed_by_housekeeping(store, "checkpoint").await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn acked_outbox_rows_are_reclaimed_by_housekeeping_postgres() {
    if let Some(store) = postgres_store().await {
        acked_outbox_rows_are_reclaimed_by_housekeeping(store, "vacuum outbox").await;
    }
}

/// A device of `user` (receipts go to the sender's active devices).
async fn device(store: &Arc<dyn Store>, user: &str, id: &str) {
    let device = vestnik_store::NewDevice {
        id: id.into(),
        user_id: user.into(),
        name: id.into(),
        platform: "test".into(),
        identity_key: format!("ik-{id}"),
        signing_key: format!("sk-{id}"),
        fallback_key: vestnik_store::FallbackKey {
            key_id: format!("fk-{id}"),
            public_key: format!("fpk-{id}"),
            signature: format!("sig-{id}"),
        },
        one_time_keys: Vec::new(),
        created_at: 0,
    };
    let session = vestnik_store::NewSession {
        id: format!("s-{id}"),
        user_id: user.into(),
        device_id: id.into(),
        access_hash: format!("a-{id}"),
        access_expires_at: 1 << 40,
        refresh_hash: format!("r-{id}"),
        refresh_expires_at: 1 << 40,
        created_at: 0,
    };
    store
        .create_device_session(&device, &session, 10)
        .await
        .expect("device");
}

fn ack_of(device: &str, user: &str, cursor: i64) -> vestnik_store::AckBatchItem {
    vestnik_store::AckBatchItem {
        device_id: device.into(),
        user_id: user.into(),
        cursors: vec![cursor],
    }
}

/// The shared writer's turn: a send batch and an ack batch in one
/// transaction. Both take effect together (the new message numbered and
/// queued, the acked envelope gone, its receipt queued for every device of
/// the sender), and a turn that fails takes effect not at all.
async fn a_send_batch_and_an_ack_batch_commit_together_or_not_at_all(store: Arc<dyn Store>) {
    let ab = users_and_conversation(&store).await;
    device(&store, "ua", "da").await;
    device(&store, "ua", "da2").await;
    let first = store
        .store_messages(&[message("m1", &ab, "x1", &["db1"])], 9_999)
        .await
        .expect("m1");
    let m1_cursor = first[0].outbox[0].0;

    let (stored, receipts) = store
        .store_and_ack(
            &[message("m2", &ab, "x2", &["db1"])],
            &[ack_of("db1", "ub", m1_cursor)],
            2_000,
            9_999,
        )
        .await
        .expect("send and ack");
    assert_eq!(stored.len(), 1);
    assert_eq!((stored[0].seq, stored[0].duplicate), (2, false));
    assert_eq!(receipts.len(), 1);
    let mut to: Vec<&str> = receipts[0].iter().map(|r| r.device_id.as_str()).collect();
    to.sort_unstable();
    assert_eq!(to, ["da", "da2"]);
    assert!(receipts[0]
        .iter()
        .all(|r| r.kind == "receipt" && r.message_id == "m1" && r.sender_device_id == "db1"));
    let pending = store.outbox("db1", 0, 10).await.expect("outbox");
    let ids: Vec<&str> = pending.iter().map(|r| r.message_id.as_str()).collect();
    assert_eq!(ids, ["m2"]);
    let m2_cursor = pending[0].id;

    // A message to a conversation that does not exist fails the turn after
    // the seq of `ab` was bumped for m3: that bump, m3 and the ack riding
    // with them must all be undone.
    let failed = store
        .store_and_ack(
            &[
                message("m3", &ab, "x3", &["db1"]),
                message("m4", "no-such-conversation", "x4", &["db1"]),
            ],
            &[ack_of("db1", "ub", m2_cursor)],
            3_000,
            9_999,
        )
        .await;
    assert!(failed.is_err(), "{failed:?}");
    let pending = store.outbox("db1", 0, 10).await.expect("outbox");
    let ids: Vec<&str> = pending.iter().map(|r| r.message_id.as_str()).collect();
    assert_eq!(ids, ["m2"]);
    let receipts = store.outbox("da", 0, 10).await.expect("outbox");
    assert_eq!(receipts.len(), 1, "only m1's receipt: {receipts:?}");
    // The connection is left usable, and `ab` numbers on from 2.
    let (stored, _) = store
        .store_and_ack(
            &[message("m5", &ab, "x5", &["db1"])],
            &[ack_of("db1", "ub", m2_cursor)],
            4_000,
            9_999,
        )
        .await
        .expect("a turn after a failed one");
    assert_eq!((stored[0].message_id.as_str(), stored[0].seq), ("m5", 3));
    let pending = store.outbox("db1", 0, 10).await.expect("outbox");
    let ids: Vec<&str> = pending.iter().map(|r| r.message_id.as_str()).collect();
    assert_eq!(ids, ["m5"]);
}

#[tokio::test]
async fn a_send_batch_and_an_ack_batch_commit_together_or_not_at_all_sqlite() {
    let (store, dir) = sqlite_store().await;
    a_send_batch_and_an_ack_batch_commit_together_or_not_at_all(store).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_send_batch_and_an_ack_batch_commit_together_or_not_at_all_postgres() {
    if let Some(store) = postgres_store().await {
        a_send_batch_and_an_ack_batch_commit_together_or_not_at_all(store).await;
    }
}

/// Two nodes store the same retry at once: the turn that loses the race
/// (its snapshot predates the other's commit, so it did not see the row when
/// it checked for retries) skips its copy, and answers with the stored one.
#[tokio::test]
async fn a_retry_stored_by_another_node_mid_turn_answers_with_that_copy_postgres() {
    use sqlx::Connection;
    let Some((store, url)) = postgres_store_and_url().await else {
        return;
    };
    let ab = users_and_conversation(&store).await;
    // The other node's transaction: its copy inserted, not yet committed.
    let mut other = sqlx::PgConnection::connect(&url).await.expect("connect");
    sqlx::query("BEGIN")
        .execute(&mut other)
        .await
        .expect("begin");
    sqlx::query(
        "INSERT INTO messages (id, conversation_id, seq, sender_user_id, sender_device_id, client_msg_id, created_at)
         VALUES ('theirs', $1, 7, 'ua', 'da', 'x1', 500)",
    )
    .bind(&ab)
    .execute(&mut other)
    .await
    .expect("their copy");
    // Ours waits on their key; it is numbered, but not inserted, once they commit.
    let turn = tokio::spawn({
        let store = store.clone();
        let ab = ab.clone();
        async move {
            store
                .store_messages(
                    &[
                        message("ours", &ab, "x1", &["db1"]),
                        message("next", &ab, "x2", &["db1"]),
                    ],
                    9_999,
                )
                .await
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !turn.is_finished(),
        "the turn should wait on the uncommitted key"
    );
    sqlx::query("COMMIT")
        .execute(&mut other)
        .await
        .expect("commit");
    let stored = turn.await.expect("join").expect("turn");
    assert_eq!(
        (
            stored[0].message_id.as_str(),
            stored[0].seq,
            stored[0].created_at,
            stored[0].duplicate
        ),
        ("theirs", 7, 500, true)
    );
    assert!(stored[0].outbox.is_empty());
    assert_eq!(
        (stored[1].message_id.as_str(), stored[1].duplicate),
        ("next", false)
    );
    let pending = store.outbox("db1", 0, 10).await.expect("outbox");
    let ids: Vec<&str> = pending.iter().map(|r| r.message_id.as_str()).collect();
    assert_eq!(ids, ["next"], "no envelope for the copy that was skipped");
}
