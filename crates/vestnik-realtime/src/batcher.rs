//! Coalesces concurrent sends into one transaction: the writer takes whatever
//! has queued up (up to `MAX_BATCH`) and stores it together, so the cost of a
//! commit (an fsync on PostgreSQL) is shared by every message in the batch.
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use vestnik_store::{NewMessage, Store, StoredMessage};

use crate::RealtimeError;

pub const MAX_BATCH: usize = 256;
/// Sends that may wait for the writer; beyond this callers get `Unavailable`.
pub const QUEUE: usize = 16 * 1024;

pub type Reply = oneshot::Sender<Result<StoredMessage, RealtimeError>>;

pub fn spawn(
    store: Arc<dyn Store>,
    retention_ms: i64,
    clock: Arc<dyn vestnik_core::Clock>,
    writers: usize,
) -> mpsc::Sender<(NewMessage, Reply)> {
    let (tx, rx) = mpsc::channel::<(NewMessage, Reply)>(QUEUE);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    // Several writers keep PostgreSQL busy while one waits on its commit;
    // SQLite has one writer connection, so extra writers only queue there.
    for _ in 0..writers.max(1) {
        let (store, clock, rx) = (store.clone(), clock.clone(), rx.clone());
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            loop {
                {
                    let mut rx = rx.lock().await;
                    if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
                        return;
                    }
                }
                let (msgs, replies): (Vec<NewMessage>, Vec<Reply>) = batch.drain(..).unzip();
                metrics::histogram!("vestnik_send_batch_size").record(msgs.len() as f64);
                let expires_at = clock.now_ms() + retention_ms;
                match store.store_messages(&msgs, expires_at).await {
                    Ok(stored) => {
                        for (reply, s) in replies.into_iter().zip(stored) {
                            let _ = reply.send(Ok(s));
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, n = msgs.len(), "storing a batch of messages failed");
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
