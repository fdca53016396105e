//! Signals every node must hear at once: today, that sessions ended, so each
//! node closes the sockets it holds for those devices.
//!
//! A signal is a hint that makes something happen sooner, never the only way
//! it happens: the realtime service also polls the database for revoked
//! devices, so a signal lost while Redis is down (or a revocation made by
//! another process) still takes effect, only later.
use std::time::Duration;

use crate::RedisConn;
use async_trait::async_trait;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::BusError;

/// Signals a receiver may fall behind by before it skips the oldest.
const BACKLOG: usize = 4096;

/// Something every node must act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "signal", rename_all = "snake_case")]
pub enum Signal {
    /// These devices' sessions ended (logout, revocation, refresh-token
    /// reuse, a disabled account): close their sockets.
    DevicesRevoked {
        /// The devices whose sockets must close.
        device_ids: Vec<String>,
    },
}

/// Broadcast of [`Signal`]s to every node, this one included.
#[async_trait]
pub trait Signals: Send + Sync + 'static {
    /// Sends `signal` to every node. This node's receivers hear it before
    /// the call returns.
    async fn publish(&self, signal: &Signal) -> Result<(), BusError>;
    /// A receiver of every signal published from now on, by any node.
    fn subscribe(&self) -> broadcast::Receiver<Signal>;
}

/// One node: signals go straight to this process's receivers.
pub struct LocalSignals {
    tx: broadcast::Sender<Signal>,
}

impl Default for LocalSignals {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(BACKLOG).0,
        }
    }
}

#[async_trait]
impl Signals for LocalSignals {
    async fn publish(&self, signal: &Signal) -> Result<(), BusError> {
        // No receiver yet is not an error: nothing is listening to act on it.
        let _ = self.tx.send(signal.clone());
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<Signal> {
        self.tx.subscribe()
    }
}

/// Signals over Redis pub/sub on `{prefix}signals`. This node's receivers
/// hear a signal it publishes at once (and again when Redis echoes it back,
/// which acting on twice must tolerate).
pub struct RedisSignals {
    conn: RedisConn,
    channel: String,
    tx: broadcast::Sender<Signal>,
    /// Stops the listener when the last handle is dropped.
    _listening: tokio_util::sync::DropGuard,
}

impl RedisSignals {
    /// Starts the listener (needs a Tokio runtime); `target` opens the
    /// dedicated connection a subscription needs.
    pub fn new(
        conn: RedisConn,
        target: &crate::RedisTarget,
        prefix: &str,
    ) -> Result<Self, BusError> {
        let client = target.client()?;
        let channel = format!("{prefix}signals");
        let tx = broadcast::channel(BACKLOG).0;
        let listener = listen(client, channel.clone(), tx.clone());
        Ok(Self {
            conn,
            channel,
            tx,
            _listening: crate::spawn_until_dropped(listener),
        })
    }
}

#[async_trait]
impl Signals for RedisSignals {
    async fn publish(&self, signal: &Signal) -> Result<(), BusError> {
        let _ = self.tx.send(signal.clone());
        let payload = serde_json::to_string(signal).map_err(|e| BusError::InvalidValue {
            key: self.channel.clone(),
            reason: e.to_string(),
        })?;
        let mut conn = self.conn.clone();
        redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(payload)
            .query_async::<i64>(&mut conn)
            .await?;
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<Signal> {
        self.tx.subscribe()
    }
}

/// Keeps one subscription open, reconnecting after a second when it breaks.
async fn listen(client: redis::Client, channel: String, tx: broadcast::Sender<Signal>) {
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    let mut messages = pubsub.on_message();
                    while let Some(msg) = messages.next().await {
                        let payload: String = msg.get_payload().unwrap_or_default();
                        match serde_json::from_str::<Signal>(&payload) {
                            Ok(signal) => {
                                let _ = tx.send(signal);
                            }
                            Err(e) => tracing::warn!(error = %e, "ignoring a malformed signal"),
                        }
                    }
                    tracing::warn!("signal subscription ended; reconnecting");
                }
                Err(e) => tracing::warn!(error = %e, "signals: subscribe failed"),
            },
            Err(e) => tracing::warn!(error = %e, "signals: cannot connect"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
