//! Coalesces concurrent writes into one transaction: a writer takes whatever
//! has queued up (up to `MAX_BATCH`) and stores it together, so the cost of a
//! commit (an fsync on PostgreSQL; the single writer connection on SQLite) is
//! shared by every item in the batch. Each writer serves sends and
//! acknowledgements alike: two writers on PostgreSQL, one on SQLite.
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use vestnik_store::{AckBatchItem, NewMessage, OutboxRow, Store, StoredMessage};

use crate::RealtimeError;
pub use vestnik_core::limits::WRITER_MAX_BATCH as MAX_BATCH;
pub use vestnik_core::limits::WRITER_QUEUE as QUEUE;

pub type Reply<R> = oneshot::Sender<Result<R, RealtimeError>>;

/// SQLite's writer runs on a thread of its own, where it runs each batch's
/// statements synchronously; on the main runtime it would hold a worker from
/// the sockets, and wait behind them for its turn (measured, `throughput` on
/// SQLite, 3 runs each: 3,348 → 4,607 msg/s when batches were still round
/// trips to sqlx's thread). PostgreSQL's writers stay on the main runtime,
/// whose reactor drives their sockets: moved, they measured no better
/// (6,373 → 5,677, within the noise).
fn writer_runtime() -> &'static tokio::runtime::Handle {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Handle> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("vestnik-writer".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => {
                        let _ = tx.send(Some(rt.handle().clone()));
                        rt.block_on(std::future::pending::<()>());
                    }
                    Err(_) => {
                        let _ = tx.send(None);
                    }
                }
            })
            .ok()
            .and_then(|_| rx.recv().ok().flatten())
            .unwrap_or_else(tokio::runtime::Handle::current)
    })
}
pub type Queue<J, R> = mpsc::Sender<(J, Reply<R>)>;

/// The send path's writers, one queue each; a conversation always goes to
/// the same one. A send batch locks the rows of the conversations it numbers
/// until it commits, so writers sharing conversations would queue behind
/// each other's commits (measured: with 4 writers on one queue, PostgreSQL
/// sessions spent most of their time waiting on those locks). Sharding by
/// conversation lets the writers commit in parallel, and keeps each
/// conversation's messages in submission order.
#[derive(Clone)]
pub struct SendQueues {
    shards: Vec<Queue<NewMessage, StoredMessage>>,
}

impl SendQueues {
    pub fn for_conversation(&self, conversation_id: &str) -> &Queue<NewMessage, StoredMessage> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        conversation_id.hash(&mut h);
        // Non-empty by construction; the modulo keeps the index in range.
        &self.shards[(h.finish() % self.shards.len() as u64) as usize]
    }

    /// Queues a message for its conversation's writer.
    pub fn submit(
        &self,
        msg: NewMessage,
        reply: Reply<StoredMessage>,
    ) -> Result<(), RealtimeError> {
        self.for_conversation(&msg.conversation_id)
            .try_send((msg, reply))
            .map_err(|_| RealtimeError::Unavailable)
    }
}

/// The writers of the send and ack paths. Each writer has its own send
/// queue (see `SendQueues`) and takes from one ack queue shared by all; each
/// turn it commits whatever both hold in one transaction (`store_and_ack`),
/// so a message and the acks that arrived meanwhile share a commit. Measured,
/// `throughput` on PostgreSQL (one run each): separate send and ack writers
/// 6,831 msg/s, shared 9,023, with PostgreSQL's CPU at 2,000 msg/s 0.98 →
/// 0.77 cores. SQLite has one writer connection: one writer, on its own
/// thread.
pub fn spawn(
    store: Arc<dyn Store>,
    retention_ms: i64,
    clock: Arc<dyn vestnik_core::Clock>,
    writers: usize,
) -> (SendQueues, Queue<AckBatchItem, Vec<OutboxRow>>) {
    if store.blocking_single_writer() {
        spawn_shared(store, retention_ms, clock, 1, writer_runtime())
    } else {
        let runtime = tokio::runtime::Handle::current();
        spawn_shared(store, retention_ms, clock, writers, &runtime)
    }
}

fn spawn_shared(
    store: Arc<dyn Store>,
    retention_ms: i64,
    clock: Arc<dyn vestnik_core::Clock>,
    writers: usize,
    runtime: &tokio::runtime::Handle,
) -> (SendQueues, Queue<AckBatchItem, Vec<OutboxRow>>) {
    let (ack_tx, ack_rx) = mpsc::channel::<(AckBatchItem, Reply<Vec<OutboxRow>>)>(QUEUE);
    let ack_rx = Arc::new(tokio::sync::Mutex::new(ack_rx));
    let mut shards = Vec::with_capacity(writers.max(1));
    for _ in 0..writers.max(1) {
        let (send_tx, mut send_rx) = mpsc::channel::<(NewMessage, Reply<StoredMessage>)>(QUEUE);
        shards.push(send_tx);
        let (store, clock, ack_rx) = (store.clone(), clock.clone(), ack_rx.clone());
        runtime.spawn(async move {
            let (mut sends, mut acks) = (Vec::with_capacity(MAX_BATCH), Vec::with_capacity(MAX_BATCH));
            loop {
                // Wait for either queue, then take what the other holds too.
                let open = tokio::select! {
                    n = send_rx.recv_many(&mut sends, MAX_BATCH) => n > 0,
                    n = async { ack_rx.lock().await.recv_many(&mut acks, MAX_BATCH).await } => n > 0,
                };
                if !open {
                    return;
                }
                while sends.len() < MAX_BATCH {
                    let Ok(job) = send_rx.try_recv() else { break };
                    sends.push(job);
                }
                if let Ok(mut rx) = ack_rx.try_lock() {
                    while acks.len() < MAX_BATCH {
                        let Ok(job) = rx.try_recv() else { break };
                        acks.push(job);
                    }
                }
                let (send_jobs, send_replies): (Vec<_>, Vec<_>) = sends.drain(..).unzip();
                let (ack_jobs, ack_replies): (Vec<_>, Vec<_>) = acks.drain(..).unzip();
                if !send_jobs.is_empty() {
                    metrics::histogram!("vestnik_send_batch_size").record(send_jobs.len() as f64);
                }
                if !ack_jobs.is_empty() {
                    metrics::histogram!("vestnik_ack_batch_size").record(ack_jobs.len() as f64);
                }
                let now = clock.now_ms();
                let started = std::time::Instant::now();
                let written = store
                    .store_and_ack(&send_jobs, &ack_jobs, now, now + retention_ms)
                    .await;
                metrics::histogram!("vestnik_write_batch_seconds", "path" => "shared")
                    .record(started.elapsed().as_secs_f64());
                match written {
                    Ok((stored, receipts)) => {
                        answer(send_replies, stored);
                        answer(ack_replies, receipts);
                    }
                    // Answered either way, never dropped: the callers' clients
                    // retry with the same ids (nothing of a failed turn is kept).
                    Err(e) => {
                        tracing::error!(error = %e, sends = send_jobs.len(), acks = ack_jobs.len(), "a batched write failed");
                        let away = e.is_unavailable();
                        fail(send_replies, away);
                        fail(ack_replies, away);
                    }
                }
            }
        });
    }
    (SendQueues { shards }, ack_tx)
}

fn answer<R>(replies: Vec<Reply<R>>, results: Vec<R>) {
    for (reply, r) in replies.into_iter().zip(results) {
        let _ = reply.send(Ok(r));
    }
}

fn fail<R>(replies: Vec<Reply<R>>, database_away: bool) {
    for reply in replies {
        let e = if database_away {
            RealtimeError::DatabaseUnavailable
        } else {
            RealtimeError::Unavailable
        };
        let _ = reply.send(Err(e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vestnik_core::SystemClock;

    /// Users ua, ub and the direct conversations `c0`, `c1`, `c2` of them.
    async fn store(url: &str) -> Arc<dyn Store> {
        let store = vestnik_store::open(url, 4).await.expect("open");
        store.migrate().await.expect("migrate");
        for (id, email) in [("ua", "a@x.org"), ("ub", "b@x.org")] {
            store.create_pending_user(id, email, 0).await.expect("user");
        }
        store
    }

    async fn conversations(store: &Arc<dyn Store>, n: usize) -> Vec<String> {
        let mut ids = Vec::new();
        // Each pair of users has one direct conversation: the others are
        // groups of the same two.
        let first = store
            .direct_conversation("c0", "ua", "ub", 0)
            .await
            .expect("direct")
            .id;
        ids.push(first);
        for i in 1..n {
            let id = format!("c{i}");
            store
                .create_group(&vestnik_store::NewGroup {
                    id: id.clone(),
                    kind: "group".into(),
                    creator: "ua".into(),
                    members: vec![("ub".into(), "member".into())],
                    title: Some(format!("g{i}")),
                    topic: None,
                    visibility: None,
                    created_at: 0,
                })
                .await
                .expect("group");
            ids.push(id);
        }
        ids
    }

    fn message(n: usize, conversation: &str) -> NewMessage {
        NewMessage {
            id: format!("m{n}"),
            conversation_id: conversation.into(),
            sender_user_id: "ua".into(),
            sender_device_id: "da".into(),
            client_msg_id: format!("x{n}"),
            created_at: 1_000,
            envelopes: vec![("db".into(), 1, format!("Q0lQSEVS{n}"))],
            group_body: None,
        }
    }

    fn writers(store: &Arc<dyn Store>) -> (SendQueues, Queue<AckBatchItem, Vec<OutboxRow>>) {
        spawn(store.clone(), 86_400_000, Arc::new(SystemClock), 2)
    }

    /// A burst of sends over three conversations, all queued before any is
    /// answered: each caller gets its answer, and each conversation numbers
    /// its messages in the order they were submitted, whatever the batches.
    async fn every_caller_of_a_burst_is_answered_in_submission_order(store: Arc<dyn Store>) {
        let convs = conversations(&store, 3).await;
        let (sends, _acks) = writers(&store);
        let mut replies = Vec::new();
        for n in 0..300 {
            let conv = &convs[n % 3];
            let (tx, rx) = oneshot::channel();
            sends.submit(message(n, conv), tx).expect("queued");
            replies.push((n, rx));
        }
        let mut last_seq = std::collections::HashMap::new();
        for (n, rx) in replies {
            let stored = rx.await.expect("answered").expect("stored");
            let prev = last_seq.insert(n % 3, stored.seq).unwrap_or(0);
            assert_eq!(stored.seq, prev + 1, "message {n} numbered in order");
            assert_eq!(stored.outbox.len(), 1);
        }
        assert_eq!(last_seq.values().copied().collect::<Vec<_>>(), vec![100; 3]);
    }

    /// A turn the database refuses (here: a message to a conversation that
    /// does not exist) answers each of its callers with an error rather
    /// than dropping them, keeps nothing, and the next turn goes on.
    async fn a_failed_turn_answers_each_caller_and_keeps_nothing(store: Arc<dyn Store>) {
        let convs = conversations(&store, 1).await;
        let (sends, _acks) = writers(&store);
        let mut replies = Vec::new();
        for n in 0..40 {
            let conv = if n % 10 == 5 { "missing" } else { &convs[0] };
            let (tx, rx) = oneshot::channel();
            sends.submit(message(n, conv), tx).expect("queued");
            replies.push((n, rx));
        }
        let mut seqs = Vec::new();
        for (n, rx) in replies {
            match rx.await.expect("every caller is answered") {
                Ok(stored) => {
                    assert_ne!(n % 10, 5, "a send to no conversation is refused");
                    seqs.push(stored.seq);
                }
                Err(e) => assert!(matches!(e, RealtimeError::Unavailable), "{e:?}"),
            }
        }
        // What was stored is numbered without a gap: a failed turn kept nothing.
        let expected: Vec<i64> = (1..=seqs.len() as i64).collect();
        assert_eq!(seqs, expected);
        let (tx, rx) = oneshot::channel();
        sends.submit(message(99, &convs[0]), tx).expect("queued");
        let stored = rx
            .await
            .expect("answered")
            .expect("stored after the failure");
        assert_eq!(stored.seq, seqs.len() as i64 + 1);
    }

    /// Dropping the queues is the writers' shutdown: their loops end and
    /// let go of the store.
    async fn the_writers_stop_when_their_queues_close(store: Arc<dyn Store>) {
        let (sends, acks) = writers(&store);
        assert!(Arc::strong_count(&store) > 1, "the writers hold the store");
        drop((sends, acks));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while Arc::strong_count(&store) > 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "the writers did not stop"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    macro_rules! both_backends {
        ($($name:ident),*) => {
            mod sqlite {
                $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                   async fn $name() {
                       let dir = std::env::temp_dir().join(format!("vestnik-batcher-{}", vestnik_core::ids::new_id()));
                       std::fs::create_dir_all(&dir).expect("dir");
                       let url = format!("sqlite:{}", dir.join("db.sqlite").display());
                       super::$name(super::store(&url).await).await;
                       let _ = std::fs::remove_dir_all(&dir);
                   } )*
            }
            mod postgres {
                $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                   async fn $name() {
                       let Some(url) = vestnik_testkit::fresh_pg_database("vestnik_test_batcher").await else { return };
                       super::$name(super::store(&url).await).await;
                   } )*
            }
        };
    }

    both_backends!(
        every_caller_of_a_burst_is_answered_in_submission_order,
        a_failed_turn_answers_each_caller_and_keeps_nothing,
        the_writers_stop_when_their_queues_close
    );
}
