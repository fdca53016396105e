//! The realtime service itself: its settings and handles, the background
//! tasks it starts, and routing frames to the node that holds a socket. Its
//! operations live by concern beside it: `delivery`, `conversations`,
//! `presence`, `groups`, `channels`.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use vestnik_core::{ids, Background, Clock};
use vestnik_proto::{PublicDevice, ServerFrame};
use vestnik_store::{Cutoffs, OutboxRow, SessionAuth, Store};

use crate::batcher;
use crate::{Hub, RealtimeError};
use vestnik_bus::{EventBus, Presence, Signal, Signals};
use vestnik_proto::CloseReason;

/// How often each node asks the database which devices were revoked: the
/// bound on how long a socket outlives its session when the bus signal is
/// lost (Redis down) or was never sent (another process revoked).
pub const REVOCATION_POLL: Duration = Duration::from_millis(500);
/// How far back each poll looks: generous, so a commit that lands late or a
/// revoking node whose clock runs behind is still seen. Closing a device
/// twice does nothing.
const REVOCATION_LOOKBACK_MS: i64 = 60_000;

pub(crate) use vestnik_core::limits::ROUTED_BATCH;
pub use vestnik_core::limits::{
    ACK_MAX, CIPHERTEXT_MAX_CHARS as MAX_CIPHERTEXT_CHARS,
    CLIENT_MSG_ID_MAX_CHARS as MAX_CLIENT_MSG_ID_CHARS, MAX_ENVELOPES, MAX_KEY_ENVELOPES, PAGE_MAX,
    PRESENCE_SUBSCRIBE_MAX,
};
/// Megolm message type in stored rows and `message` frames.
pub const MSG_TYPE_MEGOLM: i64 = 2;

/// The messaging part of the config, passed once at start.
#[derive(Debug, Clone)]
pub struct RealtimeSettings {
    /// Undelivered envelopes and receipts expire after this.
    pub retention_ms: i64,
    /// Channel posts are deleted after this; `None` keeps them.
    pub channel_retention_ms: Option<i64>,
    /// How long a sender may delete their message for everyone.
    pub edit_window_ms: i64,
    /// Concurrent batch writers.
    pub writers: usize,
    /// Members a group may have.
    pub group_max_members: i64,
    /// Largest group whose members are pushed each other's presence.
    pub presence_push_max_group: i64,
    /// Sockets a device may hold on this node (its oldest closes past this).
    pub sockets_per_device: usize,
}

/// The messaging service: conversations, groups, the send path, receipts and live delivery
/// to this node's sockets and, through presence and the event bus, to other nodes.
pub struct Realtime {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) hub: Arc<Hub>,
    pub(crate) node_id: String,
    pub(crate) presence: Arc<dyn Presence>,
    pub(crate) bus: Arc<dyn EventBus>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) writer: batcher::SendQueues,
    pub(crate) acks: batcher::Queue<vestnik_store::AckBatchItem, Vec<OutboxRow>>,
    pub(crate) settings: RealtimeSettings,
    pub(crate) limits: Arc<vestnik_bus::Limits>,
    pub(crate) contexts: crate::context_cache::ContextCache,
}

/// A frame on its way to a device connected to another node.
#[derive(serde::Serialize, serde::Deserialize)]
struct Routed {
    device_id: String,
    frame: ServerFrame,
}

pub(crate) fn bad(msg: impl Into<String>) -> RealtimeError {
    RealtimeError::InvalidInput(msg.into())
}

pub(crate) fn public(d: vestnik_store::PublicDeviceRow) -> PublicDevice {
    PublicDevice {
        user_id: d.user_id,
        device_id: d.device_id,
        identity_key: d.identity_key,
        signing_key: d.signing_key,
    }
}

impl Realtime {
    /// Starts the batch writers and the background tasks: the retention
    /// reaper, database housekeeping, the consumer of frames routed here and
    /// the presence heartbeat, each stopping with `background` (needs a
    /// Tokio runtime). The writers stop when the last handle to the service
    /// is dropped, after committing what was queued.
    pub async fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        settings: RealtimeSettings,
        node_id: String,
        cluster: &vestnik_bus::Cluster,
        limits: Arc<vestnik_bus::Limits>,
        background: &Background,
    ) -> Result<Self, RealtimeError> {
        let (presence, bus) = (cluster.presence.clone(), cluster.events.clone());
        let (writer, acks) = batcher::spawn(
            store.clone(),
            settings.retention_ms,
            clock.clone(),
            settings.writers,
        );
        let (reaper_store, reaper_clock) = (store.clone(), clock.clone());
        let retention = (settings.retention_ms, settings.channel_retention_ms);
        background.every(Duration::from_secs(60), move || {
            let (store, clock) = (reaper_store.clone(), reaper_clock.clone());
            async move { reap(&*store, &*clock, retention).await }
        });
        let housekeeping_store = store.clone();
        background.every(store.housekeep_interval(), move || {
            let store = housekeeping_store.clone();
            async move {
                match store.housekeep().await {
                    Ok(done) if !done.is_empty() => tracing::debug!(?done, "database housekeeping"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "database housekeeping failed"),
                }
            }
        });
        let hub = Arc::new(Hub::new(settings.sockets_per_device));
        spawn_revocation_watch(&hub, &store, &clock, cluster.signals.as_ref(), background);
        // Sockets hear the node is going (1001) rather than just losing it.
        let (closing_hub, stopping) = (hub.clone(), background.shutdown().clone());
        background.spawn(async move {
            stopping.cancelled().await;
            closing_hub.close_all(CloseReason::GoingAway);
        });
        // Frames other nodes route to devices connected here.
        let mut events = bus
            .subscribe(&node_id)
            .await
            .map_err(|e| RealtimeError::Bus(e.to_string()))?;
        let (inbound_hub, stop) = (hub.clone(), background.shutdown().clone());
        background.spawn(async move {
            loop {
                let payload = tokio::select! {
                    _ = stop.cancelled() => break,
                    p = events.recv() => match p {
                        Some(p) => p,
                        None => break,
                    },
                };
                match serde_json::from_str::<Vec<Routed>>(&payload) {
                    Ok(batch) => {
                        for r in batch {
                            inbound_hub.push(&r.device_id, &r.frame);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "malformed routed event"),
                }
            }
        });
        // Presence entries expire unless refreshed, so a dead node's devices
        // stop being routed to it.
        let (beat_hub, beat_presence, beat_node) = (hub.clone(), presence.clone(), node_id.clone());
        background.every(
            Duration::from_millis(vestnik_bus::PRESENCE_TTL_MS / 3),
            move || {
                let (hub, presence, node) =
                    (beat_hub.clone(), beat_presence.clone(), beat_node.clone());
                async move {
                    let devices = hub.local_devices();
                    if let Err(e) = presence.register(&node, &devices).await {
                        tracing::warn!(error = %e, "presence heartbeat failed");
                    }
                }
            },
        );
        Ok(Self {
            store,
            hub,
            node_id,
            presence,
            bus,
            clock,
            writer,
            acks,
            settings,
            limits,
            contexts: Default::default(),
        })
    }

    /// A device connected here: route its frames to this node.
    pub async fn online(&self, device_id: &str) {
        if let Err(e) = self
            .presence
            .register(&self.node_id, &[device_id.to_owned()])
            .await
        {
            tracing::warn!(error = %e, "presence register failed");
        }
    }

    /// A socket of `device_id` closed: unregister its presence unless another socket of it remains here.
    /// Call after `Hub::leave`.
    pub async fn offline(&self, device_id: &str) {
        if !self.hub.is_online(device_id) {
            if let Err(e) = self.presence.unregister(&self.node_id, device_id).await {
                tracing::warn!(error = %e, "presence unregister failed");
            }
        }
    }

    /// Pushes frames to devices here, and routes the rest to the nodes that
    /// hold their sockets. Devices connected nowhere get them from the outbox.
    pub(crate) async fn deliver(&self, frames: Vec<(String, ServerFrame)>) {
        let mut remote = Vec::new();
        for (device, frame) in frames {
            if !self.hub.push(&device, &frame) {
                remote.push((device, frame));
            }
        }
        if remote.is_empty() {
            return;
        }
        let ids: Vec<String> = remote.iter().map(|(d, _)| d.clone()).collect();
        let nodes = match self.presence.locate(&ids).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "presence lookup failed; devices will fetch from the outbox");
                return;
            }
        };
        // One stream entry per node and batch, not per device: a channel
        // post to 10,000 subscribers spread over 3 nodes is a few dozen
        // XADDs, sent to the nodes concurrently.
        let mut by_node: HashMap<String, Vec<Routed>> = HashMap::new();
        for ((device_id, frame), nodes) in remote.into_iter().zip(nodes) {
            for node in nodes.into_iter().filter(|n| *n != self.node_id) {
                by_node.entry(node).or_default().push(Routed {
                    device_id: device_id.clone(),
                    frame: frame.clone(),
                });
            }
        }
        let sends = by_node.into_iter().map(|(node, items)| async move {
            for chunk in items.chunks(ROUTED_BATCH) {
                match serde_json::to_string(chunk) {
                    Ok(p) => {
                        if let Err(e) = self.bus.publish(&node, &p).await {
                            tracing::warn!(error = %e, node, "routing events failed");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "encoding routed events failed"),
                }
            }
        });
        futures::future::join_all(sends).await;
    }

    /// Tells a device (wherever its socket is) that its one-time keys run
    /// low; a device offline hears nothing and tops up when it next checks.
    pub async fn notify_keys_low(&self, device_id: &str, one_time_keys: i64) {
        self.deliver(vec![(
            device_id.to_owned(),
            ServerFrame::KeysLow { one_time_keys },
        )])
        .await;
    }

    /// This node's connection registry (the WebSocket handler joins and leaves it).
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Spends a token of `action` for `subject` (see the rate table).
    pub(crate) async fn limit(
        &self,
        action: vestnik_core::Action,
        subject: &str,
    ) -> Result<(), RealtimeError> {
        Ok(self.limits.check(action, subject).await?)
    }

    pub(crate) async fn member_of(
        &self,
        auth: &SessionAuth,
        conversation_id: &str,
    ) -> Result<Vec<String>, RealtimeError> {
        if !ids::is_valid_id(conversation_id) {
            return Err(RealtimeError::NotMember);
        }
        let members = self.store.members(conversation_id).await?;
        if !members.contains(&auth.user_id) {
            return Err(RealtimeError::NotMember);
        }
        Ok(members)
    }
}

/// Closes the sockets of revoked devices: at once on a bus signal, and
/// from the database every [`REVOCATION_POLL`] whatever the bus did.
fn spawn_revocation_watch(
    hub: &Arc<Hub>,
    store: &Arc<dyn Store>,
    clock: &Arc<dyn Clock>,
    signals: &dyn Signals,
    background: &Background,
) {
    let mut heard = signals.subscribe();
    let (signal_hub, stop) = (hub.clone(), background.shutdown().clone());
    background.spawn(async move {
        loop {
            let signal = tokio::select! {
                _ = stop.cancelled() => break,
                s = heard.recv() => s,
            };
            match signal {
                Ok(Signal::DevicesRevoked { device_ids }) => {
                    for d in &device_ids {
                        if signal_hub.close_device(d, CloseReason::SessionEnded) {
                            tracing::info!(device_id = %d, "session ended: sockets closed");
                        }
                    }
                }
                // Missed signals are caught by the poll below.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "revocation signals lagged");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    let (poll_hub, poll_store, poll_clock) = (hub.clone(), store.clone(), clock.clone());
    background.every(REVOCATION_POLL, move || {
        let (hub, store, clock) = (poll_hub.clone(), poll_store.clone(), poll_clock.clone());
        async move {
            if hub.local_count() == 0 {
                return;
            }
            let since = clock.now_ms() - REVOCATION_LOOKBACK_MS;
            match store.devices_revoked_since(since, 10_000).await {
                Ok(devices) => {
                    for d in &devices {
                        if hub.close_device(d, CloseReason::SessionEnded) {
                            tracing::info!(device_id = %d, "revoked device found by poll: sockets closed");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "polling revoked devices failed"),
            }
        }
    });
}

pub(crate) fn cutoffs(now: i64, (messages, channel_posts): (i64, Option<i64>)) -> Cutoffs {
    Cutoffs {
        messages: now - messages,
        channel_posts: channel_posts.map(|c| now - c),
    }
}

/// One pass of the retention reaper: bounded deletes, so it never holds the
/// writer for long; safe on several nodes at once (each row is deleted once).
async fn reap(store: &dyn Store, clock: &dyn Clock, retention: (i64, Option<i64>)) {
    let now = clock.now_ms();
    let cutoffs = cutoffs(now, retention);
    loop {
        match store.expire(now, cutoffs, 5000).await {
            Ok(n) if n >= 5000 => continue,
            Ok(n) => {
                if n > 0 {
                    tracing::info!(expired = n, "retention reaper");
                }
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, "retention reaper failed");
                break;
            }
        }
    }
}
