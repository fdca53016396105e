//! The operations handlers call: send, fetch pending, acknowledge, and the
//! conversation and device-change bookkeeping around them.
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use vestnik_core::{ids, Clock};
use vestnik_proto::{
    Conversation, ConversationList, IncomingMessage, PendingPage, PresenceVisibility, PublicDevice,
    Receipt, SendKind, SendMessage, Sent, ServerFrame, SystemEvent, UserId,
};
use vestnik_store::{NewMessage, OutboxRow, SessionAuth, Store};

use crate::batcher;
use crate::{Hub, RealtimeError};
use vestnik_bus::{EventBus, Presence};

pub use vestnik_core::limits::{
    ACK_MAX, CIPHERTEXT_MAX_CHARS as MAX_CIPHERTEXT_CHARS,
    CLIENT_MSG_ID_MAX_CHARS as MAX_CLIENT_MSG_ID_CHARS, MAX_ENVELOPES, MAX_KEY_ENVELOPES, PAGE_MAX,
    PRESENCE_SUBSCRIBE_MAX,
};
/// Megolm message type in stored rows and `message` frames.
pub const MSG_TYPE_MEGOLM: i64 = 2;
/// Typing and read frames per device: a burst of 20, then 5 a second.
pub const EPHEMERAL_RATE: vestnik_bus::Rate = vestnik_bus::Rate {
    capacity: 20,
    per_secs: 4,
};

#[derive(Debug, Clone)]
pub struct RealtimeSettings {
    /// Undelivered envelopes and receipts expire after this.
    pub retention_ms: i64,
    /// Concurrent batch writers.
    pub writers: usize,
    /// Members a group may have.
    pub group_max_members: i64,
    /// Largest group whose members are pushed each other's presence.
    pub presence_push_max_group: i64,
}

pub struct Realtime {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) hub: Arc<Hub>,
    node_id: String,
    presence: Arc<dyn Presence>,
    bus: Arc<dyn EventBus>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) writer: batcher::SendQueues,
    acks: batcher::Queue<vestnik_store::AckBatchItem, Vec<OutboxRow>>,
    pub(crate) settings: RealtimeSettings,
    ephemeral_limiter: vestnik_bus::MemoryRateLimiter,
    contexts: crate::context_cache::ContextCache,
}

/// Routed frames per stream entry.
const ROUTED_BATCH: usize = 256;

/// A frame on its way to a device connected to another node.
#[derive(serde::Serialize, serde::Deserialize)]
struct Routed {
    device_id: String,
    frame: ServerFrame,
}

pub(crate) fn bad(msg: impl Into<String>) -> RealtimeError {
    RealtimeError::InvalidInput(msg.into())
}

fn frame(row: OutboxRow) -> ServerFrame {
    if row.kind == "system" {
        let event = serde_json::from_str(&row.body).unwrap_or_else(|e| {
            tracing::warn!(error = %e, cursor = row.id, "malformed stored system event");
            SystemEvent {
                event_id: row.message_id.clone(),
                conversation_id: row.conversation_id.clone(),
                event: "unknown".into(),
                actor_user_id: row.sender_user_id.clone(),
                target_user_id: None,
                role: None,
                at: row.created_at,
            }
        });
        return ServerFrame::System {
            cursor: row.id,
            event,
        };
    }
    if row.kind == "receipt" {
        // The body lists the messages covered; older rows have none.
        let message_ids = serde_json::from_str::<Vec<String>>(&row.body)
            .ok()
            .filter(|ids| !ids.is_empty())
            .unwrap_or_else(|| vec![row.message_id.clone()]);
        ServerFrame::Receipt {
            cursor: row.id,
            receipt: Receipt {
                message_id: row.message_id,
                message_ids,
                conversation_id: row.conversation_id,
                user_id: row.sender_user_id,
                device_id: row.sender_device_id,
                kind: "delivered".into(),
                at: row.created_at,
            },
        }
    } else {
        ServerFrame::Message {
            cursor: row.id,
            message: IncomingMessage {
                message_id: row.message_id,
                conversation_id: row.conversation_id,
                seq: row.seq,
                sender_user_id: row.sender_user_id,
                sender_device_id: row.sender_device_id,
                msg_type: u8::try_from(row.msg_type).unwrap_or(1),
                ciphertext: row.body,
                sent_at: row.created_at,
            },
        }
    }
}

fn check_ciphertext(field: &str, c: &str) -> Result<(), RealtimeError> {
    if c.is_empty() || c.len() > MAX_CIPHERTEXT_CHARS {
        return Err(bad(format!(
            "{field}: expected 1-{MAX_CIPHERTEXT_CHARS} base64 characters, got {}",
            c.len()
        )));
    }
    if !c
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
    {
        return Err(bad(format!("{field}: expected base64")));
    }
    Ok(())
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
    /// Starts the batch writers and the retention reaper (needs a Tokio runtime).
    pub async fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        settings: RealtimeSettings,
        node_id: String,
        presence: Arc<dyn Presence>,
        bus: Arc<dyn EventBus>,
    ) -> Result<Self, RealtimeError> {
        let (writer, acks) = batcher::spawn(
            store.clone(),
            settings.retention_ms,
            clock.clone(),
            settings.writers,
        );
        let reaper_store = store.clone();
        let reaper_clock = clock.clone();
        let retention = settings.retention_ms;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let now = reaper_clock.now_ms();
                // Bounded deletes so the reaper never holds the writer for long;
                // safe on several nodes at once (each row is deleted once).
                loop {
                    match reaper_store.expire(now, now - retention, 5000).await {
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
        });
        let vacuum_store = store.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(vacuum_store.housekeep_interval());
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match vacuum_store.housekeep().await {
                    Ok(done) if !done.is_empty() => tracing::debug!(?done, "database housekeeping"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "database housekeeping failed"),
                }
            }
        });
        let hub = Arc::new(Hub::default());
        // Frames other nodes route to devices connected here.
        let mut events = bus
            .subscribe(&node_id)
            .await
            .map_err(|e| RealtimeError::Bus(e.to_string()))?;
        let inbound_hub = hub.clone();
        tokio::spawn(async move {
            while let Some(payload) = events.recv().await {
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
        tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(Duration::from_millis(vestnik_bus::PRESENCE_TTL_MS / 3));
            loop {
                tick.tick().await;
                let devices = beat_hub.local_devices();
                if let Err(e) = beat_presence.register(&beat_node, &devices).await {
                    tracing::warn!(error = %e, "presence heartbeat failed");
                }
            }
        });
        let ephemeral_limiter = vestnik_bus::MemoryRateLimiter::new(clock.clone());
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
            ephemeral_limiter,
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

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    pub async fn create_direct(
        &self,
        auth: &SessionAuth,
        peer: &str,
    ) -> Result<Conversation, RealtimeError> {
        if !ids::is_valid_id(peer) || peer == auth.user_id {
            return Err(RealtimeError::NoSuchUser);
        }
        match self.store.user_by_id(peer).await? {
            Some(u) if u.is_active() => {}
            _ => return Err(RealtimeError::NoSuchUser),
        }
        let c = self
            .store
            .direct_conversation(&ids::new_id(), &auth.user_id, peer, self.clock.now_ms())
            .await?;
        let member_user_ids = self.store.members(&c.id).await?;
        Ok(Conversation {
            id: c.id,
            kind: c.kind,
            member_user_ids,
            members: Vec::new(),
            title: c.title,
            topic: c.topic,
            avatar_ref: c.avatar_ref,
            visibility: c.visibility,
            created_at: c.created_at,
        })
    }

    pub async fn conversations(
        &self,
        auth: &SessionAuth,
    ) -> Result<ConversationList, RealtimeError> {
        let mut out = Vec::new();
        for c in self.store.conversations_of(&auth.user_id).await? {
            // A channel's subscribers are many and private to its owner.
            let member_user_ids = if c.kind == "channel" {
                Vec::new()
            } else {
                self.store.members(&c.id).await?
            };
            out.push(Conversation {
                id: c.id,
                kind: c.kind,
                member_user_ids,
                members: Vec::new(),
                title: c.title,
                topic: c.topic,
                avatar_ref: c.avatar_ref,
                visibility: c.visibility,
                created_at: c.created_at,
            });
        }
        Ok(ConversationList { conversations: out })
    }

    fn validate(msg: &SendMessage) -> Result<(), RealtimeError> {
        let n = msg.client_msg_id.chars().count();
        if n == 0 || n > MAX_CLIENT_MSG_ID_CHARS || msg.client_msg_id.chars().any(char::is_control)
        {
            return Err(bad(format!(
                "client_msg_id: expected 1-{MAX_CLIENT_MSG_ID_CHARS} printable characters"
            )));
        }
        if !ids::is_valid_id(&msg.conversation_id) {
            return Err(RealtimeError::NotMember);
        }
        if matches!(msg.kind, SendKind::Group | SendKind::Channel) {
            if !msg.envelopes.is_empty() {
                return Err(bad(
                    "envelopes: expected none with kind group or channel (send ciphertext)",
                ));
            }
            let Some(c) = &msg.ciphertext else {
                return Err(bad("ciphertext: required with kind group or channel"));
            };
            return check_ciphertext("ciphertext", c);
        }
        if msg.ciphertext.is_some() {
            return Err(bad(
                "ciphertext: only with kind group or channel (Olm messages use envelopes)",
            ));
        }
        let max = if msg.kind == SendKind::Keys {
            MAX_KEY_ENVELOPES
        } else {
            MAX_ENVELOPES
        };
        if msg.envelopes.is_empty() || msg.envelopes.len() > max {
            return Err(bad(format!(
                "envelopes: expected 1-{max}, got {}",
                msg.envelopes.len()
            )));
        }
        let mut seen = HashSet::new();
        for e in &msg.envelopes {
            if !seen.insert(e.device_id.as_str()) {
                return Err(bad(format!(
                    "envelopes: device {} appears twice",
                    e.device_id
                )));
            }
            if e.msg_type > 1 {
                return Err(bad(format!(
                    "envelopes.msg_type: expected 0 (pre-key) or 1, got {}",
                    e.msg_type
                )));
            }
            check_ciphertext("envelopes.ciphertext", &e.ciphertext)?;
        }
        Ok(())
    }

    /// The send context: a node-local copy for a direct conversation when the
    /// sender addressed exactly the devices it lists, else the database's.
    async fn send_context_for(
        &self,
        auth: &SessionAuth,
        msg: &SendMessage,
    ) -> Result<Arc<vestnik_store::SendContext>, RealtimeError> {
        if msg.kind == SendKind::Message {
            if let Some(ctx) = self.contexts.get(&msg.conversation_id, &auth.user_id) {
                let expected: BTreeSet<&str> = ctx
                    .devices
                    .iter()
                    .map(|d| d.device_id.as_str())
                    .filter(|d| *d != auth.device_id)
                    .collect();
                let given: BTreeSet<&str> =
                    msg.envelopes.iter().map(|e| e.device_id.as_str()).collect();
                if expected == given || ctx.blocked {
                    return Ok(ctx);
                }
            }
        }
        let ctx = Arc::new(
            self.store
                .send_context(&msg.conversation_id, &auth.user_id)
                .await?,
        );
        self.contexts.put(&msg.conversation_id, &auth.user_id, &ctx);
        Ok(ctx)
    }

    /// Checks the sender may write here and encrypted for exactly the current
    /// devices, stores the message (batched), pushes it to online devices.
    pub async fn send(&self, auth: &SessionAuth, msg: SendMessage) -> Result<Sent, RealtimeError> {
        Self::validate(&msg)?;
        if msg.kind == SendKind::Channel {
            return self.publish(auth, msg).await;
        }
        let ctx = self.send_context_for(auth, &msg).await?;
        if !ctx.members.contains(&auth.user_id) {
            return Err(RealtimeError::NotMember);
        }
        // Blocking is between two people: it stops direct messages, not a group.
        if ctx.blocked && ctx.kind == "direct" {
            return Err(RealtimeError::Blocked);
        }
        if msg.kind == SendKind::Group && ctx.kind != "group" {
            return Err(bad(
                "kind: group messages go to groups; direct chats use Olm envelopes",
            ));
        }
        if ctx.kind == "channel" && msg.kind != SendKind::Keys {
            return Err(bad(
                "kind: a channel takes posts (kind channel) and key shares (kind keys)",
            ));
        }
        // A channel subscriber's key traffic (key requests) goes to the
        // owner and publishers only, never to other subscribers.
        let addressable = if ctx.kind == "channel" {
            self.staff_if_subscriber(auth, &msg.conversation_id).await?
        } else {
            None
        };
        let devices = &ctx.devices;
        let expected: BTreeSet<&str> = devices
            .iter()
            .filter(|d| addressable.as_ref().is_none_or(|u| u.contains(&d.user_id)))
            .map(|d| d.device_id.as_str())
            .filter(|d| *d != auth.device_id)
            .collect();
        let given: BTreeSet<&str> = msg.envelopes.iter().map(|e| e.device_id.as_str()).collect();
        let addressed_right = match msg.kind {
            SendKind::Message => expected == given,
            SendKind::Keys => given.is_subset(&expected),
            SendKind::Group | SendKind::Channel => true,
        };
        if !addressed_right {
            // A retry of a message stored before the device list changed gets
            // its original answer, not a demand to re-encrypt.
            if let Some((message_id, seq, sent_at)) = self
                .store
                .stored_message(&auth.device_id, &msg.client_msg_id)
                .await?
            {
                return Ok(Sent {
                    client_msg_id: msg.client_msg_id,
                    message_id,
                    conversation_id: msg.conversation_id.into(),
                    seq,
                    sent_at,
                });
            }
            return Err(RealtimeError::DeviceListStale(
                devices
                    .iter()
                    .filter(|d| addressable.as_ref().is_none_or(|u| u.contains(&d.user_id)))
                    .cloned()
                    .map(public)
                    .collect(),
            ));
        }
        let (envelopes, group_body) = match msg.ciphertext {
            // One ciphertext for all: each device gets a row pointing at it.
            Some(body) if msg.kind == SendKind::Group => (
                expected
                    .iter()
                    .map(|d| ((*d).to_owned(), MSG_TYPE_MEGOLM, String::new()))
                    .collect(),
                Some((MSG_TYPE_MEGOLM, body)),
            ),
            _ => (
                msg.envelopes
                    .into_iter()
                    .map(|e| (e.device_id.into(), i64::from(e.msg_type), e.ciphertext))
                    .collect(),
                None,
            ),
        };
        let new = NewMessage {
            id: ids::new_id(),
            conversation_id: msg.conversation_id.to_string(),
            sender_user_id: auth.user_id.clone(),
            sender_device_id: auth.device_id.clone(),
            client_msg_id: msg.client_msg_id.clone(),
            created_at: self.clock.now_ms(),
            envelopes,
            group_body: group_body.clone(),
        };
        let (tx, rx) = oneshot::channel();
        let envelopes = new.envelopes.clone();
        self.writer.submit(new, tx)?;
        let stored = rx.await.map_err(|_| RealtimeError::Unavailable)??;
        if !stored.duplicate {
            metrics::counter!("vestnik_messages_stored_total").increment(1);
            let mut frames = Vec::with_capacity(stored.outbox.len());
            let by_device: std::collections::HashMap<&str, (i64, &String)> = envelopes
                .iter()
                .map(|(d, t, b)| (d.as_str(), (*t, b)))
                .collect();
            for (cursor, device_id) in &stored.outbox {
                let Some(&(msg_type, body)) = by_device.get(device_id.as_str()) else {
                    continue;
                };
                let (msg_type, body) = match &group_body {
                    Some((t, b)) => (*t, b),
                    None => (msg_type, body),
                };
                let f = ServerFrame::Message {
                    cursor: *cursor,
                    message: IncomingMessage {
                        message_id: stored.message_id.clone(),
                        conversation_id: msg.conversation_id.to_string(),
                        seq: stored.seq,
                        sender_user_id: auth.user_id.clone(),
                        sender_device_id: auth.device_id.clone(),
                        msg_type: u8::try_from(msg_type).unwrap_or(1),
                        ciphertext: body.clone(),
                        sent_at: stored.created_at,
                    },
                };
                frames.push((device_id.clone(), f));
            }
            self.deliver(frames).await;
        }
        Ok(Sent {
            client_msg_id: msg.client_msg_id,
            message_id: stored.message_id,
            conversation_id: msg.conversation_id.into(),
            seq: stored.seq,
            sent_at: stored.created_at,
        })
    }

    /// A page of what waits for this device after `after`, oldest first.
    pub async fn pending(
        &self,
        auth: &SessionAuth,
        after: i64,
        limit: i64,
    ) -> Result<PendingPage, RealtimeError> {
        let limit = limit.clamp(1, PAGE_MAX);
        let mut rows = self.store.outbox(&auth.device_id, after, limit + 1).await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        Ok(PendingPage {
            items: rows.into_iter().map(frame).collect(),
            more,
        })
    }

    /// Deletes what this device has stored and tells the senders.
    pub async fn ack(&self, auth: &SessionAuth, cursors: &[i64]) -> Result<(), RealtimeError> {
        if cursors.len() > ACK_MAX {
            return Err(bad(format!(
                "cursors: expected at most {ACK_MAX}, got {}",
                cursors.len()
            )));
        }
        if cursors.is_empty() {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        let job = vestnik_store::AckBatchItem {
            device_id: auth.device_id.clone(),
            user_id: auth.user_id.clone(),
            cursors: cursors.to_vec(),
        };
        self.acks
            .try_send((job, tx))
            .map_err(|_| RealtimeError::Unavailable)?;
        let receipts = rx.await.map_err(|_| RealtimeError::Unavailable)??;
        self.deliver(
            receipts
                .into_iter()
                .map(|r| (r.device_id.clone(), frame(r)))
                .collect(),
        )
        .await;
        Ok(())
    }

    /// Tells everyone who shares a conversation with `user_id` (and the user's
    /// own devices) that the user's device list changed.
    pub async fn devices_changed(&self, user_id: &str) {
        self.contexts.forget_user(user_id);
        let partners = match self.store.partners_of(user_id).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "devices_changed: partners lookup failed");
                return;
            }
        };
        let f = ServerFrame::DevicesChanged {
            user_id: user_id.to_owned(),
        };
        let mut users = partners;
        users.push(user_id.to_owned());
        match self.store.active_devices(&users).await {
            Ok(devices) => {
                self.deliver(
                    devices
                        .into_iter()
                        .map(|d| (d.device_id, f.clone()))
                        .collect(),
                )
                .await
            }
            Err(e) => tracing::warn!(error = %e, "devices_changed: device lookup failed"),
        }
    }

    /// Relays "typing…" to the other members' devices; nothing is stored.
    pub async fn typing(
        &self,
        auth: &SessionAuth,
        conversation_id: &str,
        typing: bool,
    ) -> Result<(), RealtimeError> {
        self.ephemeral_rate(auth).await?;
        let members = self.member_of(auth, conversation_id).await?;
        self.not_a_channel(conversation_id).await?;
        let f = ServerFrame::Typing {
            conversation_id: conversation_id.to_owned(),
            user_id: auth.user_id.clone(),
            typing,
        };
        let others: Vec<String> = members.into_iter().filter(|m| *m != auth.user_id).collect();
        let devices = self.store.active_devices(&others).await?;
        self.deliver(
            devices
                .into_iter()
                .map(|d| (d.device_id, f.clone()))
                .collect(),
        )
        .await;
        Ok(())
    }

    /// Moves this account's read marker forward and tells every member's
    /// devices (the reader's other devices included).
    pub async fn read(
        &self,
        auth: &SessionAuth,
        conversation_id: &str,
        seq: i64,
    ) -> Result<(), RealtimeError> {
        self.ephemeral_rate(auth).await?;
        let members = self.member_of(auth, conversation_id).await?;
        self.not_a_channel(conversation_id).await?;
        let last = self
            .store
            .conversation(conversation_id)
            .await?
            .map_or(0, |c| c.last_seq);
        if seq < 1 || seq > last {
            return Err(bad(format!("seq: expected 1..={last}, got {seq}")));
        }
        if !self
            .store
            .set_read_marker(conversation_id, &auth.user_id, seq, self.clock.now_ms())
            .await?
        {
            return Ok(());
        }
        let f = ServerFrame::Read {
            conversation_id: conversation_id.to_owned(),
            user_id: auth.user_id.clone(),
            seq,
        };
        let devices = self.store.active_devices(&members).await?;
        let targets = devices
            .into_iter()
            .filter(|d| d.device_id != auth.device_id);
        self.deliver(targets.map(|d| (d.device_id, f.clone())).collect())
            .await;
        Ok(())
    }

    /// Who has read how far (for groups: every member's marker).
    pub async fn read_markers(
        &self,
        auth: &SessionAuth,
        conversation_id: &str,
    ) -> Result<vestnik_proto::ReadMarkers, RealtimeError> {
        self.member_of(auth, conversation_id).await?;
        let markers = self.store.read_markers(conversation_id).await?;
        Ok(vestnik_proto::ReadMarkers {
            markers: markers
                .into_iter()
                .map(|(user_id, seq, at)| vestnik_proto::ReadMarker { user_id, seq, at })
                .collect(),
        })
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

    /// Typing and read markers would fan out to every subscriber of a channel.
    async fn not_a_channel(&self, conversation_id: &str) -> Result<(), RealtimeError> {
        match self.store.conversation(conversation_id).await? {
            Some(c) if c.kind == "channel" => {
                Err(bad("typing and read markers are not relayed in channels"))
            }
            _ => Ok(()),
        }
    }

    /// Typing and read frames cost fan-out for nothing stored: cap them per device.
    async fn ephemeral_rate(&self, auth: &SessionAuth) -> Result<(), RealtimeError> {
        use vestnik_bus::RateLimiter;
        match self
            .ephemeral_limiter
            .check(&auth.device_id, EPHEMERAL_RATE)
            .await
        {
            Ok(vestnik_bus::Decision::Allowed) => Ok(()),
            Ok(vestnik_bus::Decision::Limited { retry_after_ms }) => {
                Err(RealtimeError::RateLimited { retry_after_ms })
            }
            Err(e) => Err(RealtimeError::Bus(e.to_string())),
        }
    }

    /// The presence of users the caller shares a conversation with; anyone
    /// else (or anyone hiding) reads as unknown, so nothing leaks.
    pub async fn subscribe_presence(
        &self,
        auth: &SessionAuth,
        user_ids: &[UserId],
    ) -> Result<Vec<ServerFrame>, RealtimeError> {
        self.ephemeral_rate(auth).await?;
        if user_ids.len() > PRESENCE_SUBSCRIBE_MAX {
            return Err(bad(format!(
                "user_ids: expected at most {PRESENCE_SUBSCRIBE_MAX}, got {}",
                user_ids.len()
            )));
        }
        let partners: HashSet<String> = self
            .store
            .partners_of(&auth.user_id)
            .await?
            .into_iter()
            .collect();
        let visible: Vec<String> = user_ids
            .iter()
            .filter(|u| partners.contains(u.as_str()))
            .map(|u| u.to_string())
            .collect();
        let mut known = std::collections::HashMap::new();
        for (user_id, last_seen, visibility) in self.store.presence_info(&visible).await? {
            if visibility != "nobody" {
                known.insert(user_id, last_seen);
            }
        }
        let online = self
            .online_users(&known.keys().cloned().collect::<Vec<_>>())
            .await?;
        Ok(user_ids
            .iter()
            .map(|u| match known.get(u.as_str()) {
                Some(last_seen) => ServerFrame::Presence {
                    user_id: u.to_string(),
                    online: Some(online.contains(u.as_str())),
                    last_seen: *last_seen,
                },
                None => ServerFrame::Presence {
                    user_id: u.to_string(),
                    online: None,
                    last_seen: None,
                },
            })
            .collect())
    }

    /// Users with at least one device connected to any node.
    async fn online_users(&self, users: &[String]) -> Result<HashSet<String>, RealtimeError> {
        let devices = self.store.active_devices(users).await?;
        let ids: Vec<String> = devices.iter().map(|d| d.device_id.clone()).collect();
        let located = self
            .presence
            .locate(&ids)
            .await
            .map_err(|e| RealtimeError::Bus(e.to_string()))?;
        Ok(devices
            .into_iter()
            .zip(located)
            .filter(|(d, nodes)| !nodes.is_empty() || self.hub.is_online(&d.device_id))
            .map(|(d, _)| d.user_id)
            .collect())
    }

    /// A device of `user_id` connected or disconnected: record last seen and
    /// tell their partners (unless hidden). Not every member of a large
    /// group: each connect would be a frame to each of its members, so a
    /// group of 1,000 coming online would be a million frames (measured: the
    /// first message after 1,000 members connected waited 0.5 s behind
    /// them). There, clients ask with `subscribe_presence`.
    pub async fn presence_changed(&self, user_id: &str) {
        let result: Result<(), RealtimeError> = async {
            let info = self.store.presence_info(&[user_id.to_owned()]).await?;
            let Some((_, _, visibility)) = info.into_iter().next() else {
                return Ok(());
            };
            let online = self
                .online_users(&[user_id.to_owned()])
                .await?
                .contains(user_id);
            let now = self.clock.now_ms();
            if !online {
                self.store.set_last_seen(user_id, now).await?;
            }
            if visibility == "nobody" {
                return Ok(());
            }
            let f = ServerFrame::Presence {
                user_id: user_id.to_owned(),
                online: Some(online),
                last_seen: (!online).then_some(now),
            };
            let partners = self
                .store
                .presence_audience(user_id, self.settings.presence_push_max_group)
                .await?;
            let devices = self.store.active_devices(&partners).await?;
            self.deliver(
                devices
                    .into_iter()
                    .map(|d| (d.device_id, f.clone()))
                    .collect(),
            )
            .await;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "presence update failed");
        }
    }

    pub async fn set_presence_visibility(
        &self,
        auth: &SessionAuth,
        visibility: PresenceVisibility,
    ) -> Result<(), RealtimeError> {
        Ok(self
            .store
            .set_presence_visibility(&auth.user_id, visibility.as_str())
            .await?)
    }

    /// Runs the retention reaper once now (it also runs every minute).
    pub async fn expire_now(&self) -> Result<u64, RealtimeError> {
        let now = self.clock.now_ms();
        Ok(self
            .store
            .expire(now, now - self.settings.retention_ms, 100_000)
            .await?)
    }

    /// Pages of the backlog for a freshly connected device.
    pub async fn backlog_page(
        &self,
        device_id: &str,
        after: i64,
    ) -> Result<Vec<ServerFrame>, RealtimeError> {
        Ok(self
            .store
            .outbox(device_id, after, PAGE_MAX)
            .await?
            .into_iter()
            .map(frame)
            .collect())
    }

    pub async fn set_block(
        &self,
        auth: &SessionAuth,
        user_id: &str,
        on: bool,
    ) -> Result<(), RealtimeError> {
        if !ids::is_valid_id(user_id) || user_id == auth.user_id {
            return Err(RealtimeError::NoSuchUser);
        }
        self.store
            .set_block(&auth.user_id, user_id, on, self.clock.now_ms())
            .await?;
        // Blocks are checked from cached contexts: drop this node's copies.
        self.contexts.forget_user(&auth.user_id);
        Ok(())
    }
}
