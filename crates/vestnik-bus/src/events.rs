//! Cross-node delivery: a presence registry (which nodes hold a socket of a
//! device) and an event bus (a durable stream per node). In-process versions
//! serve a single node; the Redis versions let several nodes share devices.
//! The database stays the source of truth: an event lost here is recovered
//! from the outbox when the device fetches or reconnects.
use crate::RedisConn;
use async_trait::async_trait;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use tokio::sync::mpsc;

use crate::BusError;
pub use vestnik_core::limits::PRESENCE_TTL_MS;
pub use vestnik_core::limits::STREAM_MAXLEN;

/// Which nodes hold a WebSocket of which device, so a send is routed to those nodes.
/// Entries expire after [`PRESENCE_TTL_MS`] unless refreshed.
#[async_trait]
pub trait Presence: Send + Sync + 'static {
    /// Marks devices as connected to `node` (also the heartbeat refresh).
    async fn register(&self, node: &str, device_ids: &[String]) -> Result<(), BusError>;
    /// Forgets that `node` holds a socket of `device_id` (its socket closed).
    async fn unregister(&self, node: &str, device_id: &str) -> Result<(), BusError>;
    /// The nodes holding a socket of each device.
    async fn locate(&self, device_ids: &[String]) -> Result<Vec<Vec<String>>, BusError>;
}

/// A stream of events per node: another node publishes to the nodes that [`Presence`] located.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Appends `payload` (a serialized event) to `node`'s stream.
    async fn publish(&self, node: &str, payload: &str) -> Result<(), BusError>;
    /// Starts consuming this node's stream (resuming where a previous run of
    /// the same node id stopped).
    async fn subscribe(&self, node: &str) -> Result<mpsc::Receiver<String>, BusError>;
}

/// One node, nothing shared: every device is local.
#[derive(Default)]
pub struct LocalPresence {
    map: Mutex<HashMap<String, HashSet<String>>>,
}

#[async_trait]
impl Presence for LocalPresence {
    async fn register(&self, node: &str, device_ids: &[String]) -> Result<(), BusError> {
        if let Ok(mut m) = self.map.lock() {
            for d in device_ids {
                m.entry(d.clone()).or_default().insert(node.to_owned());
            }
        }
        Ok(())
    }

    async fn unregister(&self, node: &str, device_id: &str) -> Result<(), BusError> {
        if let Ok(mut m) = self.map.lock() {
            if let Some(nodes) = m.get_mut(device_id) {
                nodes.remove(node);
                if nodes.is_empty() {
                    m.remove(device_id);
                }
            }
        }
        Ok(())
    }

    async fn locate(&self, device_ids: &[String]) -> Result<Vec<Vec<String>>, BusError> {
        let m = self
            .map
            .lock()
            .map_err(|_| BusError::Redis("presence lock poisoned".into()))?;
        Ok(device_ids
            .iter()
            .map(|d| {
                m.get(d)
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default()
            })
            .collect())
    }
}

/// In-process streams (a single node only publishes to itself).
#[derive(Default)]
pub struct LocalEventBus {
    subs: Mutex<HashMap<String, mpsc::Sender<String>>>,
}

#[async_trait]
impl EventBus for LocalEventBus {
    async fn publish(&self, node: &str, payload: &str) -> Result<(), BusError> {
        let tx = self.subs.lock().ok().and_then(|s| s.get(node).cloned());
        if let Some(tx) = tx {
            let _ = tx.try_send(payload.to_owned());
        }
        Ok(())
    }

    async fn subscribe(&self, node: &str) -> Result<mpsc::Receiver<String>, BusError> {
        let (tx, rx) = mpsc::channel(10_000);
        if let Ok(mut s) = self.subs.lock() {
            s.insert(node.to_owned(), tx);
        }
        Ok(rx)
    }
}

/// [`Presence`] in Redis: one set of node ids per device under `{prefix}:pres:`, shared by all nodes.
pub struct RedisPresence {
    conn: RedisConn,
    prefix: String,
}

impl RedisPresence {
    /// Keys are written under `prefix` (the `redis_prefix` config key).
    pub fn new(conn: RedisConn, prefix: &str) -> Self {
        Self {
            conn,
            prefix: prefix.to_owned(),
        }
    }

    fn key(&self, device_id: &str) -> String {
        format!("{}:pres:{device_id}", self.prefix)
    }
}

#[async_trait]
impl Presence for RedisPresence {
    async fn register(&self, node: &str, device_ids: &[String]) -> Result<(), BusError> {
        if device_ids.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for d in device_ids {
            let k = self.key(d);
            pipe.cmd("SADD").arg(&k).arg(node).ignore();
            pipe.cmd("PEXPIRE").arg(&k).arg(PRESENCE_TTL_MS).ignore();
        }
        let mut c = self.conn.clone();
        pipe.query_async::<()>(&mut c).await?;
        Ok(())
    }

    async fn unregister(&self, node: &str, device_id: &str) -> Result<(), BusError> {
        let mut c = self.conn.clone();
        redis::cmd("SREM")
            .arg(self.key(device_id))
            .arg(node)
            .query_async::<()>(&mut c)
            .await?;
        Ok(())
    }

    async fn locate(&self, device_ids: &[String]) -> Result<Vec<Vec<String>>, BusError> {
        if device_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for d in device_ids {
            pipe.cmd("SMEMBERS").arg(self.key(d));
        }
        let mut c = self.conn.clone();
        Ok(pipe.query_async(&mut c).await?)
    }
}

/// [`EventBus`] on Redis streams (`{prefix}:ev:{node}`), capped at [`STREAM_MAXLEN`] entries,
/// read through a consumer group so a restarted node resumes after its last acknowledged entry.
pub struct RedisEventBus {
    conn: RedisConn,
    client: redis::Client,
    prefix: String,
}

impl RedisEventBus {
    /// `target` opens the dedicated connection a blocking stream read needs.
    pub fn new(
        conn: RedisConn,
        target: &crate::RedisTarget,
        prefix: &str,
    ) -> Result<Self, BusError> {
        let client = target.client()?;
        Ok(Self {
            conn,
            client,
            prefix: prefix.to_owned(),
        })
    }

    fn stream(&self, node: &str) -> String {
        format!("{}:ev:{node}", self.prefix)
    }
}

type StreamReply = Option<Vec<(String, Vec<(String, Vec<(String, String)>)>)>>;

#[async_trait]
impl EventBus for RedisEventBus {
    async fn publish(&self, node: &str, payload: &str) -> Result<(), BusError> {
        let mut c = self.conn.clone();
        redis::cmd("XADD")
            .arg(self.stream(node))
            .arg("MAXLEN")
            .arg("~")
            .arg(STREAM_MAXLEN)
            .arg("*")
            .arg("e")
            .arg(payload)
            .query_async::<()>(&mut c)
            .await?;
        Ok(())
    }

    async fn subscribe(&self, node: &str) -> Result<mpsc::Receiver<String>, BusError> {
        let stream = self.stream(node);
        let mut c = self.conn.clone();
        // The group survives restarts of the node: a node that comes back with
        // the same id resumes after the last entry it acknowledged.
        let created: Result<(), redis::RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&stream)
            .arg("node")
            .arg("$")
            .arg("MKSTREAM")
            .query_async(&mut c)
            .await;
        if let Err(e) = created {
            if e.code() != Some("BUSYGROUP") {
                return Err(e.into());
            }
        }
        let mut reader = self.client.get_multiplexed_async_connection().await?;
        let (tx, rx) = mpsc::channel(10_000);
        let mut acker = self.conn.clone();
        tokio::spawn(async move {
            // First what was delivered but not acknowledged before a restart, then new entries.
            let mut cursor = "0".to_string();
            // Ends when the subscriber drops its receiver (the node stops):
            // the read below blocks for at most a second.
            while !tx.is_closed() {
                let reply: Result<StreamReply, redis::RedisError> = redis::cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg("node")
                    .arg("consumer")
                    .arg("COUNT")
                    .arg(500)
                    .arg("BLOCK")
                    .arg(1000)
                    .arg("STREAMS")
                    .arg(&stream)
                    .arg(&cursor)
                    .query_async(&mut reader)
                    .await;
                let entries = match reply {
                    Ok(Some(streams)) => {
                        streams.into_iter().flat_map(|(_, e)| e).collect::<Vec<_>>()
                    }
                    Ok(None) => Vec::new(),
                    Err(e) => {
                        tracing::warn!(error = %e, "event stream read failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                        continue;
                    }
                };
                if entries.is_empty() && cursor == "0" {
                    cursor = ">".into();
                    continue;
                }
                let mut ids = Vec::with_capacity(entries.len());
                for (id, fields) in entries {
                    for (_, payload) in fields {
                        if tx.send(payload).await.is_err() {
                            return;
                        }
                    }
                    ids.push(id);
                }
                if !ids.is_empty() {
                    let _: Result<(), _> = redis::cmd("XACK")
                        .arg(&stream)
                        .arg("node")
                        .arg(&ids)
                        .query_async(&mut acker)
                        .await;
                }
            }
        });
        Ok(rx)
    }
}
