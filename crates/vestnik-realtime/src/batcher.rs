//! Coalesces concurrent writes into one transaction: a writer takes whatever
//! has queued up (up to `MAX_BATCH`) and stores it together, so the cost of a
//! commit (an fsync on PostgreSQL; the single writer connection on SQLite) is
//! shared by every item in the batch. On PostgreSQL sends and acknowledgements
//! each have their writers; on SQLite one writer serves both.
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use vestnik_store::{AckBatchItem, NewMessage, OutboxRow, Store, StoredMessage};

use crate::RealtimeError;

pub const MAX_BATCH: usize = 256;
/// Items that may wait for the writer; beyond this callers get `Unavailable`.
pub const QUEUE: usize = 16 * 1024;

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

/// Starts `writers` tasks that each run `write` on a batch of queued jobs; it
/// must return one result per job, in order.
fn spawn_batched<J, R, F, Fut>(
    what: &'static str,
    writers: usize,
    write: F,
) -> Queue<J, R>
where
    J: Send + 'static,
    R: Send + 'static,
    F: Fn(Vec<J>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<R>, vestnik_store::StoreError>> + Send,
{
    let (tx, rx) = mpsc::channel::<(J, Reply<R>)>(QUEUE);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let write = Arc::new(write);
    // Several writers keep PostgreSQL busy while one waits on its commit.
    for _ in 0..writers.max(1) {
        let (rx, write) = (rx.clone(), write.clone());
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            loop {
                {
                    let mut rx = rx.lock().await;
                    if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
                        return;
                    }
                }
                let (jobs, replies): (Vec<J>, Vec<Reply<R>>) = batch.drain(..).unzip();
                let n = jobs.len();
                match what {
                    "send" => metrics::histogram!("vestnik_send_batch_size").record(n as f64),
                    _ => metrics::histogram!("vestnik_ack_batch_size").record(n as f64),
                }
                let started = std::time::Instant::now();
                let written = write(jobs).await;
                metrics::histogram!("vestnik_write_batch_seconds", "path" => what)
                    .record(started.elapsed().as_secs_f64());
                match written {
                    Ok(results) => answer(replies, results),
                    Err(e) => {
                        tracing::error!(error = %e, n, what, "a batched write failed");
                        fail(replies);
                    }
                }
            }
        });
    }
    tx
}

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

/// The send and ack paths' writers. PostgreSQL gets `writers` of each,
/// committing in parallel. SQLite has one writer connection, where batches
/// of the two paths could only take turns: there one writer takes whatever
/// both queues hold and commits it together.
pub fn spawn(
    store: Arc<dyn Store>,
    retention_ms: i64,
    clock: Arc<dyn vestnik_core::Clock>,
    writers: usize,
) -> (SendQueues, Queue<AckBatchItem, Vec<OutboxRow>>) {
    if store.backend() == "sqlite" {
        return spawn_shared(store, retention_ms, clock);
    }
    let sends = (0..writers.max(1))
        .map(|_| {
            let (store, clock) = (store.clone(), clock.clone());
            spawn_batched("send", 1, move |msgs: Vec<NewMessage>| {
                let (store, expires_at) = (store.clone(), clock.now_ms() + retention_ms);
                async move { store.store_messages(&msgs, expires_at).await }
            })
        })
        .collect();
    let acks = spawn_batched("ack", writers, move |acks: Vec<AckBatchItem>| {
        let store = store.clone();
        let now = clock.now_ms();
        async move { store.ack(&acks, now, now + retention_ms).await }
    });
    (SendQueues { shards: sends }, acks)
}

/// One writer for both paths, each turn one transaction (`store_and_ack`).
/// Measured on SQLite under `latency` (2,000 msg/s), where a message causes
/// about five ack frames: see BENCHMARKS.md.
fn spawn_shared(
    store: Arc<dyn Store>,
    retention_ms: i64,
    clock: Arc<dyn vestnik_core::Clock>,
) -> (SendQueues, Queue<AckBatchItem, Vec<OutboxRow>>) {
    let (send_tx, mut send_rx) = mpsc::channel::<(NewMessage, Reply<StoredMessage>)>(QUEUE);
    let (ack_tx, mut ack_rx) = mpsc::channel::<(AckBatchItem, Reply<Vec<OutboxRow>>)>(QUEUE);
    writer_runtime().spawn(async move {
        let (mut sends, mut acks) = (Vec::with_capacity(MAX_BATCH), Vec::with_capacity(MAX_BATCH));
        loop {
            // Wait for either queue, then take what the other holds too.
            let open = tokio::select! {
                n = send_rx.recv_many(&mut sends, MAX_BATCH) => n > 0,
                n = ack_rx.recv_many(&mut acks, MAX_BATCH) => n > 0,
            };
            if !open {
                return;
            }
            while sends.len() < MAX_BATCH {
                let Ok(job) = send_rx.try_recv() else { break };
                sends.push(job);
            }
            while acks.len() < MAX_BATCH {
                let Ok(job) = ack_rx.try_recv() else { break };
                acks.push(job);
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
                Err(e) => {
                    tracing::error!(error = %e, sends = send_jobs.len(), acks = ack_jobs.len(), "a batched write failed");
                    fail(send_replies);
                    fail(ack_replies);
                }
            }
        }
    });
    (SendQueues { shards: vec![send_tx] }, ack_tx)
}

fn answer<R>(replies: Vec<Reply<R>>, results: Vec<R>) {
    for (reply, r) in replies.into_iter().zip(results) {
        let _ = reply.send(Ok(r));
    }
}

fn fail<R>(replies: Vec<Reply<R>>) {
    for reply in replies {
        let _ = reply.send(Err(RealtimeError::Unavailable));
    }
}
