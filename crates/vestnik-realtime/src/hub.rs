//! Which devices are connected to this node, and a bounded queue to each.
//! A connection whose queue is full (in frames or in bytes) is a slow
//! reader: the hub drops it (its socket closes) rather than letting memory
//! grow; nothing is lost, because undelivered items stay in the outbox until
//! acknowledged.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::mpsc;
pub use vestnik_core::limits::SOCKET_QUEUE as CONNECTION_QUEUE;
pub use vestnik_core::limits::SOCKET_QUEUE_BYTES as CONNECTION_QUEUE_BYTES;
use vestnik_proto::{CloseReason, ServerFrame};

const SHARDS: usize = 32;

struct Conn {
    id: u64,
    user_id: String,
    // Shared, not copied per slot: a queue's first block holds 32 slots, and
    // at 100k idle sockets a frame-sized slot costs ~6 KiB each.
    tx: mpsc::Sender<Arc<ServerFrame>>,
    /// What its queue holds, by [`weight`].
    queued: Arc<AtomicUsize>,
    /// Set before the hub drops `tx`, so the socket closes with the reason.
    closed: Arc<OnceLock<CloseReason>>,
}

/// What a queued frame costs, roughly: its ciphertext and an allowance for
/// the rest.
fn weight(frame: &ServerFrame) -> usize {
    const ALLOWANCE: usize = 256;
    match frame {
        ServerFrame::Message { message, .. } => ALLOWANCE + message.ciphertext.len(),
        _ => ALLOWANCE,
    }
}

impl Conn {
    fn close(self, reason: CloseReason) {
        let _ = self.closed.set(reason);
    }
}

#[derive(Default)]
struct Shard {
    by_device: HashMap<String, Vec<Conn>>,
}

/// The devices connected to this node and the bounded queue of frames to each socket.
pub struct Hub {
    shards: Vec<Mutex<Shard>>,
    /// user id → devices online (for events addressed to a user).
    users: Mutex<HashMap<String, Vec<String>>>,
    next_id: AtomicU64,
    /// Sockets a device may hold here; a new one past this closes its oldest.
    max_per_device: usize,
}

/// A registered connection; dropping it does not unregister (call `Hub::leave`).
pub struct Connection {
    /// Identifies this connection among several of the same device (passed back to `Hub::leave`).
    pub id: u64,
    /// The frames to write to the socket; closed when the hub drops a slow reader.
    rx: mpsc::Receiver<Arc<ServerFrame>>,
    queued: Arc<AtomicUsize>,
    /// No other device of this user was connected here when it joined.
    pub first_of_user: bool,
    closed: Arc<OnceLock<CloseReason>>,
}

impl Connection {
    /// The next frame for the socket; None once the hub closed the queue
    /// and it is drained.
    pub async fn recv(&mut self) -> Option<Arc<ServerFrame>> {
        let f = self.rx.recv().await?;
        self.queued.fetch_sub(weight(&f), Ordering::Relaxed);
        Some(f)
    }

    /// The next frame if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Arc<ServerFrame>> {
        let f = self.rx.try_recv().ok()?;
        self.queued.fetch_sub(weight(&f), Ordering::Relaxed);
        Some(f)
    }

    /// Why the hub closed this connection's queue (once `rx` has ended).
    pub fn close_reason(&self) -> CloseReason {
        self.closed
            .get()
            .copied()
            .unwrap_or(CloseReason::SlowReader)
    }

    /// Whether the hub closed this connection (its queue may still hold frames).
    pub fn is_closed(&self) -> bool {
        self.closed.get().is_some()
    }
}

impl Default for Hub {
    fn default() -> Self {
        // The `ws_sockets_per_device` default.
        Self::new(4)
    }
}

fn shard_of(device_id: &str) -> usize {
    // Device ids are random hex, so a cheap fold spreads them evenly.
    device_id
        .bytes()
        .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize))
        % SHARDS
}

impl Hub {
    /// A hub where a device holds at most `max_per_device` sockets (at least one).
    pub fn new(max_per_device: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            users: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            max_per_device: max_per_device.max(1),
        }
    }

    /// Registers a socket of `device_id` and returns the queue it reads frames from.
    /// A device may hold several connections; past the limit its oldest is
    /// closed (`replaced`), so a client reconnecting in a loop cannot pile
    /// up sockets.
    pub fn join(&self, user_id: &str, device_id: &str) -> Connection {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(CONNECTION_QUEUE);
        let closed = Arc::new(OnceLock::new());
        let queued = Arc::new(AtomicUsize::new(0));
        if let Ok(mut s) = self.shards[shard_of(device_id)].lock() {
            let conns = s.by_device.entry(device_id.to_owned()).or_default();
            while conns.len() >= self.max_per_device {
                // Kept in joining order (removal preserves it): the first is the oldest.
                conns.remove(0).close(CloseReason::Replaced);
                metrics::counter!("vestnik_ws_replaced_total").increment(1);
                metrics::gauge!("vestnik_ws_connections").decrement(1.0);
            }
            conns.push(Conn {
                id,
                user_id: user_id.to_owned(),
                tx,
                queued: queued.clone(),
                closed: closed.clone(),
            });
        }
        let mut first_of_user = false;
        if let Ok(mut u) = self.users.lock() {
            let devs = u.entry(user_id.to_owned()).or_default();
            first_of_user = devs.is_empty();
            if !devs.iter().any(|d| d == device_id) {
                devs.push(device_id.to_owned());
            }
        }
        metrics::gauge!("vestnik_ws_connections").increment(1.0);
        Connection {
            id,
            rx,
            queued,
            first_of_user,
            closed,
        }
    }

    /// Removes a connection; true when the user has no device connected
    /// here any more (decided under the lock, so of two devices leaving at
    /// once at least one sees it).
    pub fn leave(&self, user_id: &str, device_id: &str, conn_id: u64) -> bool {
        self.remove(device_id, conn_id);
        self.users
            .lock()
            .map(|u| !u.contains_key(user_id))
            .unwrap_or(true)
    }

    fn remove(&self, device_id: &str, conn_id: u64) {
        let mut user_gone: Option<String> = None;
        if let Ok(mut s) = self.shards[shard_of(device_id)].lock() {
            if let Some(conns) = s.by_device.get_mut(device_id) {
                if let Some(pos) = conns.iter().position(|c| c.id == conn_id) {
                    let c = conns.remove(pos);
                    metrics::gauge!("vestnik_ws_connections").decrement(1.0);
                    if conns.is_empty() {
                        s.by_device.remove(device_id);
                        user_gone = Some(c.user_id);
                    }
                }
            }
        }
        if let Some(user) = user_gone {
            self.forget_user_device(&user, device_id);
        }
    }

    /// Queues a frame to every connection of a device; true if one took it.
    pub fn push(&self, device_id: &str, frame: &ServerFrame) -> bool {
        let mut delivered = false;
        let mut gone_user = None;
        {
            let Ok(mut s) = self.shards[shard_of(device_id)].lock() else {
                return false;
            };
            let Some(conns) = s.by_device.get_mut(device_id) else {
                return false;
            };
            let user = conns.first().map(|c| c.user_id.clone());
            let shared = Arc::new(frame.clone());
            let w = weight(frame);
            conns.retain(|c| {
                // Counted before it is queued: the reader subtracts as it takes.
                let over = c.queued.fetch_add(w, Ordering::Relaxed) + w > CONNECTION_QUEUE_BYTES;
                let sent = if over {
                    Err(mpsc::error::TrySendError::Full(shared.clone()))
                } else {
                    c.tx.try_send(shared.clone())
                };
                if sent.is_err() {
                    c.queued.fetch_sub(w, Ordering::Relaxed);
                }
                match sent {
                    Ok(()) => {
                        delivered = true;
                        true
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        metrics::counter!("vestnik_ws_slow_reader_disconnects_total").increment(1);
                        tracing::info!(device_id, conn = c.id, "slow reader: dropping connection");
                        metrics::gauge!("vestnik_ws_connections").decrement(1.0);
                        let _ = c.closed.set(CloseReason::SlowReader);
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        metrics::gauge!("vestnik_ws_connections").decrement(1.0);
                        false
                    }
                }
            });
            if conns.is_empty() {
                s.by_device.remove(device_id);
                gone_user = user;
            }
        }
        if let Some(user) = gone_user {
            self.forget_user_device(&user, device_id);
        }
        delivered
    }

    fn forget_user_device(&self, user_id: &str, device_id: &str) {
        if let Ok(mut u) = self.users.lock() {
            if let Some(devs) = u.get_mut(user_id) {
                devs.retain(|d| d != device_id);
                if devs.is_empty() {
                    u.remove(user_id);
                }
            }
        }
    }

    /// Queues a frame to every online device of a user.
    pub fn push_user(&self, user_id: &str, frame: &ServerFrame) {
        let devices = self
            .users
            .lock()
            .ok()
            .and_then(|u| u.get(user_id).cloned())
            .unwrap_or_default();
        for d in devices {
            self.push(&d, frame);
        }
    }

    /// Closes every connection of a device with `reason` (e.g. its session
    /// ended); true if it had any here.
    pub fn close_device(&self, device_id: &str, reason: CloseReason) -> bool {
        let removed = self.shards[shard_of(device_id)]
            .lock()
            .ok()
            .and_then(|mut s| s.by_device.remove(device_id));
        let Some(conns) = removed else {
            return false;
        };
        metrics::gauge!("vestnik_ws_connections").decrement(conns.len() as f64);
        if let Some(c) = conns.first() {
            self.forget_user_device(&c.user_id, device_id);
        }
        for c in conns {
            c.close(reason);
        }
        true
    }

    /// Closes every connection here with `reason` (the node is stopping).
    pub fn close_all(&self, reason: CloseReason) {
        for device in self.local_devices() {
            self.close_device(&device, reason);
        }
    }

    /// Every device with a connection here (for the presence heartbeat).
    pub fn local_devices(&self) -> Vec<String> {
        self.shards
            .iter()
            .filter_map(|s| s.lock().ok())
            .flat_map(|s| s.by_device.keys().cloned().collect::<Vec<_>>())
            .collect()
    }

    /// Devices with a socket here.
    pub fn local_count(&self) -> usize {
        self.shards
            .iter()
            .filter_map(|s| s.lock().ok())
            .map(|s| s.by_device.len())
            .sum()
    }

    /// Whether `device_id` has at least one socket on this node.
    pub fn is_online(&self, device_id: &str) -> bool {
        self.shards[shard_of(device_id)]
            .lock()
            .map(|s| s.by_device.contains_key(device_id))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: i64) -> ServerFrame {
        ServerFrame::DevicesChanged {
            user_id: n.to_string(),
        }
    }

    #[tokio::test]
    async fn a_reader_that_falls_a_full_queue_behind_is_dropped_not_buffered() {
        let hub = Hub::default();
        let mut conn = hub.join("u", "d");
        for i in 0..CONNECTION_QUEUE as i64 {
            assert!(hub.push("d", &frame(i)), "frame {i} fits the queue");
        }
        assert!(
            !hub.push("d", &frame(-1)),
            "the frame past the bound is refused"
        );
        assert!(!hub.is_online("d"), "the slow connection is gone");
        assert_eq!(conn.close_reason(), CloseReason::SlowReader);
        // What was queued drains, then the channel ends: the socket task closes.
        let mut n = 0;
        while conn.recv().await.is_some() {
            n += 1;
        }
        assert_eq!(n, CONNECTION_QUEUE);
    }

    fn big(n: i64) -> ServerFrame {
        ServerFrame::Message {
            cursor: n,
            message: vestnik_proto::IncomingMessage {
                message_id: n.to_string(),
                conversation_id: "c".into(),
                seq: n,
                sender_user_id: "s".into(),
                sender_device_id: "sd".into(),
                msg_type: 1,
                ciphertext: "Q".repeat(64 * 1024),
                sent_at: 0,
            },
        }
    }

    #[tokio::test]
    async fn a_reader_too_many_bytes_behind_is_dropped_and_one_that_keeps_up_never_is() {
        let hub = Hub::default();
        let conn = hub.join("u", "d");
        let fits = (CONNECTION_QUEUE_BYTES / weight(&big(0))) as i64;
        assert!(fits < CONNECTION_QUEUE as i64, "bytes bind before frames");
        for i in 0..fits {
            assert!(hub.push("d", &big(i)), "frame {i} fits the budget");
        }
        assert!(!hub.push("d", &big(-1)), "past the byte budget");
        assert_eq!(conn.close_reason(), CloseReason::SlowReader);
        // Taking frames gives the budget back.
        let mut reader = hub.join("u", "d");
        for i in 0..fits * 4 {
            assert!(hub.push("d", &big(i)));
            assert_eq!(reader.recv().await.as_deref(), Some(&big(i)));
        }
        assert!(hub.is_online("d"));
    }

    #[tokio::test]
    async fn frames_reach_every_connection_of_a_device_and_of_a_user() {
        let hub = Hub::default();
        let mut a1 = hub.join("alice", "laptop");
        let mut a2 = hub.join("alice", "laptop");
        let mut p = hub.join("alice", "phone");
        hub.push_user("alice", &frame(1));
        for c in [&mut a1, &mut a2, &mut p] {
            assert_eq!(c.recv().await, Some(Arc::new(frame(1))));
        }
        assert!(!hub.leave("alice", "laptop", a1.id), "alice is still here");
        assert!(hub.is_online("laptop"));
        assert!(hub.close_device("laptop", CloseReason::SessionEnded));
        assert!(!hub.is_online("laptop"));
        assert!(a2.recv().await.is_none());
        assert_eq!(a2.close_reason(), CloseReason::SessionEnded);
        hub.push_user("alice", &frame(2));
        assert_eq!(p.recv().await, Some(Arc::new(frame(2))));
        assert!(hub.leave("alice", "phone", p.id), "her last device left");
    }

    #[test]
    fn only_the_first_device_of_a_user_to_join_is_first() {
        let hub = Hub::default();
        let a = hub.join("alice", "laptop");
        let b = hub.join("alice", "phone");
        let c = hub.join("bob", "tablet");
        assert!(a.first_of_user && !b.first_of_user && c.first_of_user);
        assert!(!hub.leave("alice", "laptop", a.id));
        assert!(hub.leave("alice", "phone", b.id));
        assert!(
            hub.join("alice", "laptop").first_of_user,
            "back after leaving"
        );
    }

    #[tokio::test]
    async fn a_device_past_its_socket_limit_loses_its_oldest_socket() {
        let hub = Hub::new(2);
        let mut first = hub.join("alice", "laptop");
        let second = hub.join("alice", "laptop");
        let third = hub.join("alice", "laptop");
        assert!(first.recv().await.is_none(), "the oldest was closed");
        assert_eq!(first.close_reason(), CloseReason::Replaced);
        hub.push("laptop", &frame(7));
        let (mut second, mut third) = (second, third);
        assert_eq!(second.recv().await, Some(Arc::new(frame(7))));
        assert_eq!(third.recv().await, Some(Arc::new(frame(7))));
        let fourth = hub.join("alice", "laptop");
        assert!(second.recv().await.is_none(), "then the next oldest");
        assert!(!hub.leave("alice", "laptop", fourth.id));
        assert!(hub.leave("alice", "laptop", third.id), "none left");
    }
}
