//! Coalesces concurrent writes into one transaction: a writer takes whatever
//! has queued up (up to `MAX_BATCH`) and stores it together, so the cost of a
//! commit (an fsync on PostgreSQL; the single writer connection on SQLite) is
//! shared by every item in the batch. Sends and acknowledgements each have one.
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use vestnik_store::{AckBatchItem, NewMessage, OutboxRow, Store, StoredMessage};

use crate::RealtimeError;

pub const MAX_BATCH: usize = 256;
/// Items that may wait for the writer; beyond this callers get `Unavailable`.
pub const QUEUE: usize = 16 * 1024;

pub type Reply<R> = oneshot::Sender<Result<R, RealtimeError>>;

/// SQLite's batch writers run on a thread of their own. A batch is a chain
/// of short round trips to the connection's thread, and on the main runtime
/// every step waited behind the ready socket tasks for a worker (measured,
/// `throughput` on SQLite, 3 runs each: 3,348 → 4,607 msg/s). PostgreSQL's
/// writers stay on the main runtime, whose reactor drives their sockets:
/// moved, they measured no better (6,373 → 5,677, within the noise).
fn writes_on_own_thread(store: &dyn Store) -> bool {
    store.backend() == "sqlite"
}

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
    own_thread: bool,
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
    // Several writers keep PostgreSQL busy while one waits on its commit;
    // SQLite has one writer connection, so extra writers only queue there.
    for _ in 0..writers.max(1) {
        let (rx, write) = (rx.clone(), write.clone());
        let runtime = if own_thread {
            writer_runtime().clone()
        } else {
            tokio::runtime::Handle::current()
        };
        runtime.spawn(async move {
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
                match write(jobs).await {
                    Ok(results) => {
                        for (reply, r) in replies.into_iter().zip(results) {
                            let _ = reply.send(Ok(r));
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, n, what, "a batched write failed");
                        for reply in replies {
                            let _ = reply.send(Err(RealtimeError::Unavailable));
                        }
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

pub fn spawn(
    store: Arc<dyn Store>,
    retention_ms: i64,
    clock: Arc<dyn vestnik_core::Clock>,
    writers: usize,
) -> SendQueues {
    let own_thread = writes_on_own_thread(store.as_ref());
    let shards = (0..writers.max(1))
        .map(|_| {
            let (store, clock) = (store.clone(), clock.clone());
            spawn_batched("send", 1, own_thread, move |msgs: Vec<NewMessage>| {
                let (store, expires_at) = (store.clone(), clock.now_ms() + retention_ms);
                async move { store.store_messages(&msgs, expires_at).await }
            })
        })
        .collect();
    SendQueues { shards }
}

/// The acknowledgement path's writer: each job's result is the receipts it queued.
pub fn spawn_acks(
    store: Arc<dyn Store>,
    retention_ms: i64,
    clock: Arc<dyn vestnik_core::Clock>,
    writers: usize,
) -> Queue<AckBatchItem, Vec<OutboxRow>> {
    let own_thread = writes_on_own_thread(store.as_ref());
    spawn_batched(
        "ack",
        writers,
        own_thread,
        move |acks: Vec<AckBatchItem>| {
            let store = store.clone();
            let now = clock.now_ms();
            async move { store.ack(&acks, now, now + retention_ms).await }
        },
    )
}
