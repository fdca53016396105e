//! The shared state of a client and what it does with messages: decrypt and
//! store incoming ones, encrypt and send outgoing ones from the outbox.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};

use reqwest::Method;
use tokio::sync::{broadcast, mpsc, oneshot, watch, Mutex, Notify};
use vestnik_crypto::{Device, OlmEnvelope, PreKeyBundle};
use vestnik_proto::{
    ClaimRequest, ClaimResponse, ClientFrame, Conversation, CreateConversation, Envelope,
    IncomingMessage, KeyCount, KeysUpload, PublicDevice, PublicDeviceList, Receipt, SendKind,
    SendMessage, Sent, ServerFrame,
};
use zeroize::Zeroizing;

use crate::api::Api;
use crate::backoff::Backoff;
use crate::config::ClientConfig;
use crate::error::{ClientError, Result};
use crate::payload::{Decrypted, Payload, KIND_GROUP_KEY, KIND_KEY_REQUEST, KIND_TEXT};
use crate::store::{Account, ConversationRow, OutboxItem, OutboxKind, Store};
use crate::types::{ClientEvent, DeliveryReceipt, Direction, SentMessage, Stats};

/// A `device_list_stale` answer is re-encrypted for at most this many times
/// in a row before the message waits for the next retry round.
pub(crate) const MAX_STALE_ROUNDS: u32 = 5;

/// `msg_type` of a Megolm (group) message; 0 and 1 are Olm.
pub(crate) const MEGOLM_MSG_TYPE: u8 = 2;

/// Where the ratchet state that made a set of Olm envelopes is written
/// before they leave (so a crash never reuses a message key).
pub(crate) enum Persist<'a> {
    /// With the envelopes of this outbox row (a resend sends the same ones).
    Outbox(&'a str),
    /// Only the state: key shares and key requests are made anew each try.
    Device,
}

/// The answer to one `send` frame.
pub(crate) enum SendReply {
    Sent(Sent),
    Error {
        code: String,
        message: String,
        devices: Option<Vec<PublicDevice>>,
    },
}

/// Why an outbox message was given up.
#[derive(Debug, Clone)]
pub(crate) struct SendFailure {
    pub(crate) code: String,
    pub(crate) message: String,
}

pub(crate) type SendWatcher = oneshot::Sender<std::result::Result<SentMessage, SendFailure>>;

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) connections: AtomicU64,
    pub(crate) stale_resends: AtomicU64,
    pub(crate) resends: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) refreshes: Arc<AtomicU64>,
    pub(crate) one_time_keys_uploaded: AtomicU64,
    pub(crate) group_sessions_started: AtomicU64,
    pub(crate) group_keys_shared: AtomicU64,
    pub(crate) key_requests_sent: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            connections: self.connections.load(Ordering::Relaxed),
            stale_resends: self.stale_resends.load(Ordering::Relaxed),
            resends: self.resends.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            refreshes: self.refreshes.load(Ordering::Relaxed),
            one_time_keys_uploaded: self.one_time_keys_uploaded.load(Ordering::Relaxed),
            group_sessions_started: self.group_sessions_started.load(Ordering::Relaxed),
            group_keys_shared: self.group_keys_shared.load(Ordering::Relaxed),
            key_requests_sent: self.key_requests_sent.load(Ordering::Relaxed),
        }
    }
}

/// What the WebSocket task does after a frame.
pub(crate) enum Flow {
    Continue,
    Synced,
}

pub(crate) struct Inner {
    pub(crate) config: ClientConfig,
    pub(crate) store: Arc<Store>,
    pub(crate) api: Api,
    pub(crate) account: Account,
    /// The Olm account and sessions. Every change is written to the store
    /// before the lock is released; a failed write reloads the stored state.
    pub(crate) device: Mutex<Device>,
    pub(crate) events: broadcast::Sender<ClientEvent>,
    /// The open socket's outgoing frames; None while disconnected.
    pub(crate) link: watch::Sender<Option<mpsc::Sender<ClientFrame>>>,
    /// Sends on the socket waiting for `sent` / `error`, by client_msg_id.
    pub(crate) waiters: StdMutex<HashMap<String, oneshot::Sender<SendReply>>>,
    /// `send_text` calls waiting for their message to leave the outbox.
    pub(crate) watchers: StdMutex<HashMap<String, SendWatcher>>,
    pub(crate) outbox_wake: Notify,
    pub(crate) shutdown: Arc<watch::Sender<bool>>,
    pub(crate) counters: Counters,
    pub(crate) key_check_running: AtomicBool,
    /// When a key was last requested (`req:<session>`) or re-shared
    /// (`ans:<session>:<device>`), so neither floods the server.
    pub(crate) key_traffic: StdMutex<HashMap<String, std::time::Instant>>,
}

fn lock<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sleeps `d`, or less when the link changes or the client shuts down.
pub(crate) async fn pause(
    d: std::time::Duration,
    link: &mut watch::Receiver<Option<mpsc::Sender<ClientFrame>>>,
    shutdown: &mut watch::Receiver<bool>,
) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = link.changed() => {}
        _ = shutdown.wait_for(|v| *v) => {}
    }
}

impl Inner {
    pub(crate) fn emit(&self, e: ClientEvent) {
        let _ = self.events.send(e);
    }

    pub(crate) fn me(&self) -> &str {
        &self.account.user_id
    }

    /// After a failed write, the in-memory ratchet state may be ahead of the
    /// stored one; go back to the stored state (the message will come again).
    pub(crate) async fn reload_device(&self, device: &mut Device) {
        match self.store.device().await {
            Ok(Some(d)) => *device = d,
            Ok(None) => tracing::error!("device state missing from the local store"),
            Err(e) => tracing::error!(error = %e, "reloading device state failed"),
        }
    }

    // ---------- directory ----------

    /// Fetches a user's devices and caches them.
    pub(crate) async fn fetch_devices(&self, user_id: &str) -> Result<Vec<PublicDevice>> {
        let list: PublicDeviceList = self
            .api
            .get(&format!("/v1/users/{user_id}/devices"))
            .await?;
        self.store
            .replace_device_list(user_id, &list.devices)
            .await?;
        Ok(list.devices)
    }

    async fn devices_of(&self, user_id: &str) -> Result<Vec<PublicDevice>> {
        match self.store.device_list(user_id).await? {
            Some(d) => Ok(d),
            None => self.fetch_devices(user_id).await,
        }
    }

    /// The sending device's keys, from the cache or the directory.
    pub(crate) async fn sender_device(
        &self,
        user_id: &str,
        device_id: &str,
    ) -> Result<Option<PublicDevice>> {
        if let Some(d) = self.store.known_device(device_id).await? {
            return Ok((d.user_id == user_id).then_some(d));
        }
        let list = self.fetch_devices(user_id).await?;
        Ok(list.into_iter().find(|d| d.device_id == device_id))
    }

    // ---------- conversations ----------

    pub(crate) async fn conversation_for_peer(&self, peer: &str) -> Result<ConversationRow> {
        if let Some(c) = self.store.conversation_with(peer).await? {
            return Ok(c);
        }
        let c: Conversation = self
            .api
            .post(
                "/v1/conversations",
                &CreateConversation::Direct {
                    peer_user_id: peer.parse()?,
                },
            )
            .await?;
        self.store.save_conversation(&c, self.me()).await?;
        Ok(ConversationRow {
            id: c.id,
            members: c.member_user_ids,
        })
    }

    // ---------- incoming ----------

    pub(crate) async fn reject(
        &self,
        m: &IncomingMessage,
        reason: String,
        device_blob: Option<&str>,
    ) -> Result<Option<ClientEvent>> {
        tracing::warn!(message_id = %m.message_id, sender_device = %m.sender_device_id, %reason, "undecryptable message dropped");
        self.store
            .store_rejected(&m.message_id, "undecryptable", device_blob)
            .await?;
        Ok(Some(ClientEvent::Undecryptable {
            message_id: m.message_id.clone(),
            conversation_id: m.conversation_id.clone(),
            sender_user_id: m.sender_user_id.clone(),
            sender_device_id: m.sender_device_id.clone(),
            reason,
        }))
    }

    /// Decrypts and stores one message. Ok(None): a duplicate (ack, do not
    /// emit). Err: a failure worth another try (do not ack; it comes again).
    pub(crate) async fn handle_message(
        self: &Arc<Self>,
        m: &IncomingMessage,
    ) -> Result<Option<ClientEvent>> {
        if self.store.is_seen(&m.message_id).await? {
            self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        if m.msg_type == MEGOLM_MSG_TYPE {
            return self.handle_group_message(m, false).await;
        }
        let sender = match self.message_sender(m).await? {
            Ok(d) => d,
            Err(reason) => return self.reject(m, reason, None).await,
        };
        let envelope = OlmEnvelope {
            message_type: m.msg_type,
            body: m.ciphertext.clone(),
        };
        let mut device = self.device.lock().await;
        // Checked again under the lock: the socket and `sync` may race, and
        // an Olm message decrypts only once.
        if self.store.is_seen(&m.message_id).await? {
            self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        let plaintext = match device.decrypt(&sender.identity_key, &envelope) {
            Ok(p) => Zeroizing::new(p),
            Err(e) => {
                drop(device);
                return self.reject(m, e.to_string(), None).await;
            }
        };
        let blob = self.store.seal_device(&device)?;
        let payload = match Payload::parse(&plaintext, &m.conversation_id) {
            Ok(p) => p,
            Err(reason) => {
                let r = self.reject(m, reason, Some(&blob)).await;
                if r.is_err() {
                    self.reload_device(&mut device).await;
                }
                return r;
            }
        };
        match payload.kind.as_str() {
            KIND_GROUP_KEY => {
                let installed = self
                    .install_group_key(&mut device, m, &sender, &payload, &blob)
                    .await;
                drop(device);
                if envelope.is_pre_key() {
                    self.schedule_key_check();
                }
                if let Some(session_id) = installed? {
                    self.decrypt_pending(&session_id).await?;
                }
                return Ok(None);
            }
            KIND_KEY_REQUEST => {
                if let Err(e) = self
                    .store
                    .store_rejected(&m.message_id, "key_request", Some(&blob))
                    .await
                {
                    self.reload_device(&mut device).await;
                    return Err(e);
                }
                drop(device);
                if envelope.is_pre_key() {
                    self.schedule_key_check();
                }
                self.spawn_key_answer(&m.conversation_id, sender, payload.session());
                return Ok(None);
            }
            _ => debug_assert_eq!(payload.kind, KIND_TEXT),
        }
        let direction = if m.sender_user_id == self.account.user_id {
            Direction::Outgoing
        } else {
            Direction::Incoming
        };
        let decrypted = Decrypted {
            m,
            payload: &payload,
            direction,
        };
        let row = decrypted.row(
            (direction == Direction::Incoming).then_some(m.sender_user_id.as_str()),
            None,
        );
        if let Err(e) = self.store.store_incoming(&row, &blob).await {
            self.reload_device(&mut device).await;
            return Err(e);
        }
        drop(device);
        if envelope.is_pre_key() {
            // It may have used one of our one-time keys.
            self.schedule_key_check();
        }
        Ok(Some(decrypted.event(envelope.is_pre_key(), None)))
    }

    /// The sending device of a message: Ok(Err(reason)) when it can never
    /// be known (the message is then rejected), Err when worth another try.
    pub(crate) async fn message_sender(
        &self,
        m: &IncomingMessage,
    ) -> Result<std::result::Result<PublicDevice, String>> {
        match self
            .sender_device(&m.sender_user_id, &m.sender_device_id)
            .await
        {
            Ok(Some(d)) => Ok(Ok(d)),
            Ok(None) => Ok(Err(format!(
                "sender device {} is not in the directory",
                m.sender_device_id
            ))),
            Err(e @ (ClientError::Store(_) | ClientError::SessionEnded(_))) => Err(e),
            Err(e) if e.is_transient() => Err(e),
            Err(e) => Ok(Err(e.to_string())),
        }
    }

    /// Stores a receipt and returns one event per message it newly covers.
    pub(crate) async fn handle_receipt(&self, r: &Receipt) -> Result<Vec<ClientEvent>> {
        let ids = if r.message_ids.is_empty() {
            std::slice::from_ref(&r.message_id)
        } else {
            r.message_ids.as_slice()
        };
        let mut events = Vec::with_capacity(ids.len());
        for id in ids {
            if !self.store.store_receipt(id, r).await? {
                self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            events.push(ClientEvent::Receipt(DeliveryReceipt {
                message_id: id.clone(),
                conversation_id: r.conversation_id.clone(),
                user_id: r.user_id.clone(),
                device_id: r.device_id.clone(),
                at: r.at,
            }));
        }
        Ok(events)
    }

    /// Handles one server frame; message and receipt cursors go to `acks`
    /// once stored.
    pub(crate) async fn on_frame(
        self: &Arc<Self>,
        frame: ServerFrame,
        acks: &mut Vec<i64>,
    ) -> Result<Flow> {
        match frame {
            ServerFrame::Message { cursor, message } => {
                if let Some(e) = self.handle_message(&message).await? {
                    self.emit(e);
                }
                acks.push(cursor);
            }
            ServerFrame::Receipt { cursor, receipt } => {
                for e in self.handle_receipt(&receipt).await? {
                    self.emit(e);
                }
                acks.push(cursor);
            }
            ServerFrame::System { cursor, event } => {
                if let Some(e) = self.handle_system(event).await? {
                    self.emit(e);
                }
                acks.push(cursor);
            }
            ServerFrame::Sent(sent) => {
                let waiter = lock(&self.waiters).remove(&sent.client_msg_id);
                match waiter {
                    Some(w) => {
                        let _ = w.send(SendReply::Sent(sent));
                    }
                    None => {
                        tracing::debug!(client_msg_id = %sent.client_msg_id, "late `sent`; the outbox asks again")
                    }
                }
            }
            ServerFrame::Synced => return Ok(Flow::Synced),
            ServerFrame::DevicesChanged { user_id } => {
                self.store.mark_device_list_stale(&user_id).await?;
                // The frame does not say which groups they share with us;
                // refetching each group's devices on its next send is cheap.
                self.store.mark_group_devices_stale(None).await?;
                self.emit(ClientEvent::DevicesChanged { user_id });
            }
            ServerFrame::Typing {
                conversation_id,
                user_id,
                typing,
            } => self.emit(ClientEvent::Typing {
                conversation_id,
                user_id,
                typing,
            }),
            ServerFrame::Read {
                conversation_id,
                user_id,
                seq,
            } => self.emit(ClientEvent::Read {
                conversation_id,
                user_id,
                seq,
            }),
            ServerFrame::Presence {
                user_id,
                online,
                last_seen,
            } => self.emit(ClientEvent::Presence {
                user_id,
                online,
                last_seen,
            }),
            ServerFrame::Pong { .. } => {}
            // Live only (nothing to acknowledge): the log is the record.
            ServerFrame::ChannelPost(post) => {
                if let Some(e) = self.handle_channel_post(&post).await? {
                    self.emit(e);
                }
            }
            ServerFrame::Error {
                code,
                message,
                client_msg_id,
                devices,
            } => match client_msg_id.and_then(|id| lock(&self.waiters).remove(&id)) {
                Some(w) => {
                    let _ = w.send(SendReply::Error {
                        code,
                        message,
                        devices,
                    });
                }
                None => tracing::warn!(%code, %message, "error frame from the server"),
            },
        }
        Ok(Flow::Continue)
    }

    // ---------- one-time keys ----------

    /// Tops up the server's pool of our one-time keys when it is below the
    /// server's low watermark, and replaces the fallback key once it is
    /// older than `fallback_key_max_age` (or uploads it again when its last
    /// upload did not go through). Returns how many one-time keys were
    /// uploaded.
    pub(crate) async fn replenish_keys(&self) -> Result<usize> {
        let count: KeyCount = self.api.get("/v1/keys/count").await?;
        let now = crate::store::now_ms();
        let uploaded = self.store.fallback_uploaded().await?;
        let max_age =
            i64::try_from(self.config.fallback_key_max_age.as_millis()).unwrap_or(i64::MAX);
        let need_keys = count.one_time_keys < count.low_watermark;
        let target = self
            .config
            .one_time_keys
            .max(usize::try_from(count.low_watermark.saturating_mul(2)).unwrap_or(0))
            .min(vestnik_crypto::MAX_ONE_TIME_KEYS_PER_UPLOAD);
        let server = usize::try_from(count.one_time_keys).unwrap_or(0);
        let (keys, fallback) = {
            let mut device = self.device.lock().await;
            let current = device.fallback_key();
            let fallback = match &uploaded {
                // Rotating again before the last rotation reached the server
                // would drop the secret of the key the server still hands out.
                Some((key_id, _)) if *key_id != current.key_id => Some(current),
                Some((_, at)) if now.saturating_sub(*at) >= max_age => {
                    Some(device.rotate_fallback())
                }
                Some(_) => None,
                // A store from before fallback keys were rotated.
                None => Some(current),
            };
            if !need_keys && fallback.is_none() {
                return Ok(0);
            }
            let keys = if need_keys {
                device.replenish(server, target)?
            } else {
                Vec::new()
            };
            let blob = self.store.seal_device(&device)?;
            if let Err(e) = self.store.save_device(&blob).await {
                self.reload_device(&mut device).await;
                return Err(e);
            }
            (keys, fallback)
        };
        if keys.is_empty() && fallback.is_none() {
            return Ok(0);
        }
        let n = keys.len();
        let upload = KeysUpload {
            one_time_keys: keys
                .into_iter()
                .map(|k| vestnik_proto::OneTimeKey {
                    key_id: k.key_id,
                    public_key: k.public_key,
                })
                .collect(),
            fallback_key: fallback.as_ref().map(|f| vestnik_proto::SignedKey {
                key_id: f.key_id.clone(),
                public_key: f.public_key.clone(),
                signature: f.signature.clone(),
            }),
        };
        let _: KeyCount = self
            .api
            .call(Method::PUT, "/v1/keys", Some(&upload))
            .await?;
        if let Some(f) = fallback {
            // A key sent again keeps the age it had.
            let at = match uploaded {
                Some((key_id, at)) if key_id == f.key_id => at,
                _ => now,
            };
            self.store.set_fallback_uploaded(&f.key_id, at).await?;
        }
        self.counters
            .one_time_keys_uploaded
            .fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    pub(crate) fn schedule_key_check(self: &Arc<Self>) {
        if self.key_check_running.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = self.clone();
        tokio::spawn(async move {
            if let Err(e) = inner.replenish_keys().await {
                tracing::warn!(error = %e, "one-time key top-up failed");
            }
            inner.key_check_running.store(false, Ordering::Release);
        });
    }

    // ---------- outgoing ----------

    /// The devices a message to `conversation` must be encrypted for.
    async fn targets(&self, conversation: &ConversationRow) -> Result<Vec<PublicDevice>> {
        let mut out = Vec::new();
        for member in &conversation.members {
            out.extend(self.devices_of(member).await?);
        }
        out.retain(|d| d.device_id != self.account.device_id);
        Ok(out)
    }

    /// Encrypts `item` for exactly `targets` and stores the envelopes
    /// together with the ratchet state.
    async fn encrypt_for(
        &self,
        item: &OutboxItem,
        conversation_id: &str,
        targets: &[PublicDevice],
    ) -> Result<Vec<Envelope>> {
        let payload = Payload::message(item, conversation_id)?.to_bytes();
        self.olm_encrypt(targets, &payload, Persist::Outbox(&item.local_id))
            .await
    }

    /// Encrypts `payload` with Olm for exactly `targets` (opening sessions
    /// from claimed bundles where needed) and writes the ratchet state as
    /// `persist` says before returning the envelopes.
    pub(crate) async fn olm_encrypt(
        &self,
        targets: &[PublicDevice],
        payload: &[u8],
        persist: Persist<'_>,
    ) -> Result<Vec<Envelope>> {
        let need: BTreeSet<String> = {
            let device = self.device.lock().await;
            let mut need = BTreeSet::new();
            for t in targets {
                if !device.has_session(&t.identity_key)? {
                    need.insert(t.user_id.clone());
                }
            }
            need
        };
        let mut bundles = BTreeMap::new();
        for user_id in need {
            let claimed: ClaimResponse = self
                .api
                .post(
                    "/v1/keys/claim",
                    &ClaimRequest {
                        user_id: user_id.parse()?,
                    },
                )
                .await?;
            for b in claimed.bundles {
                bundles.insert(b.device_id.clone(), b);
            }
        }
        let mut device = self.device.lock().await;
        let mut envelopes = Vec::with_capacity(targets.len());
        for t in targets {
            if !device.has_session(&t.identity_key)? {
                let Some(b) = bundles.get(&t.device_id) else {
                    drop(device);
                    self.store.mark_device_list_stale(&t.user_id).await?;
                    return Err(ClientError::Transport(format!(
                        "device {} has no key bundle (removed meanwhile?); its list will be fetched again",
                        t.device_id
                    )));
                };
                if b.identity_key != t.identity_key || b.signing_key != t.signing_key {
                    return Err(ClientError::IdentityKeyChanged {
                        user_id: t.user_id.clone(),
                        device_id: t.device_id.clone(),
                        known: t.identity_key.clone(),
                        got: b.identity_key.clone(),
                    });
                }
                let bundle = PreKeyBundle {
                    identity_key: b.identity_key.clone(),
                    signing_key: b.signing_key.clone(),
                    one_time_key: b.one_time_key.as_ref().map(|k| vestnik_crypto::OneTimeKey {
                        key_id: k.key_id.clone(),
                        public_key: k.public_key.clone(),
                    }),
                    fallback_key: b.fallback_key.as_ref().map(|k| vestnik_crypto::SignedKey {
                        key_id: k.key_id.clone(),
                        public_key: k.public_key.clone(),
                        signature: k.signature.clone(),
                    }),
                };
                device.create_outbound_session(&bundle)?;
            }
            let e = device.encrypt(&t.identity_key, payload)?;
            envelopes.push(Envelope {
                device_id: t.device_id.parse()?,
                msg_type: e.message_type,
                ciphertext: e.body,
            });
        }
        let blob = self.store.seal_device(&device)?;
        let saved = match persist {
            Persist::Outbox(local_id) => {
                self.store.save_envelopes(local_id, &envelopes, &blob).await
            }
            Persist::Device => self.store.save_device(&blob).await,
        };
        if let Err(e) = saved {
            self.reload_device(&mut device).await;
            return Err(e);
        }
        Ok(envelopes)
    }

    /// Sends one frame and waits for its answer: over the socket when it is
    /// open, else over REST.
    pub(crate) async fn transmit(&self, msg: SendMessage) -> Result<Sent> {
        let link = self.link.borrow().clone();
        let Some(tx) = link else {
            return self.api.post("/v1/messages", &msg).await;
        };
        let id = msg.client_msg_id.clone();
        let (wtx, wrx) = oneshot::channel();
        lock(&self.waiters).insert(id.clone(), wtx);
        if tx.send(ClientFrame::Send(msg)).await.is_err() {
            lock(&self.waiters).remove(&id);
            return Err(ClientError::Transport("the socket closed".into()));
        }
        match tokio::time::timeout(self.config.send_timeout, wrx).await {
            Ok(Ok(SendReply::Sent(s))) => Ok(s),
            Ok(Ok(SendReply::Error {
                code,
                message,
                devices,
            })) => Err(ClientError::Api {
                status: 0,
                code,
                message,
                devices,
                pow: None,
            }),
            Ok(Err(_)) => Err(ClientError::Transport(
                "the socket closed before the server answered".into(),
            )),
            Err(_) => {
                lock(&self.waiters).remove(&id);
                Err(ClientError::Transport(format!(
                    "no answer within {:?}",
                    self.config.send_timeout
                )))
            }
        }
    }

    /// Takes the oldest outbox message to the server: resolves its
    /// conversation, encrypts it if that was not done yet, sends it (again
    /// with the same `client_msg_id` and envelopes after a failure), and
    /// re-encrypts for the current devices on `device_list_stale`.
    async fn deliver(&self, mut item: OutboxItem) -> Result<Sent> {
        let conversation = match &item.conversation_id {
            Some(id) => match self.store.conversation(id).await? {
                Some(c) => c,
                None => self.conversation_for_peer(&item.peer_user_id).await?,
            },
            None => {
                let c = self.conversation_for_peer(&item.peer_user_id).await?;
                self.store
                    .set_outbox_conversation(&item.local_id, &c.id)
                    .await?;
                c
            }
        };
        let mut envelopes = match item.envelopes.take() {
            Some(e) => {
                // Stored before an earlier attempt: this is a resend.
                self.counters.resends.fetch_add(1, Ordering::Relaxed);
                e
            }
            None => {
                let targets = self.targets(&conversation).await?;
                self.encrypt_for(&item, &conversation.id, &targets).await?
            }
        };
        let mut stale_rounds = 0;
        loop {
            let msg = SendMessage {
                client_msg_id: item.client_msg_id.clone(),
                conversation_id: conversation.id.parse()?,
                kind: SendKind::Message,
                envelopes: envelopes.clone(),
                ciphertext: None,
            };
            match self.transmit(msg).await {
                Ok(sent) => return Ok(sent),
                Err(ClientError::Api {
                    code,
                    devices: Some(devices),
                    ..
                }) if code == "device_list_stale" && stale_rounds < MAX_STALE_ROUNDS => {
                    stale_rounds += 1;
                    self.counters.stale_resends.fetch_add(1, Ordering::Relaxed);
                    let mut by_user: BTreeMap<&str, Vec<PublicDevice>> = conversation
                        .members
                        .iter()
                        .map(|m| (m.as_str(), Vec::new()))
                        .collect();
                    for d in &devices {
                        by_user
                            .entry(d.user_id.as_str())
                            .or_default()
                            .push(d.clone());
                    }
                    for (user, list) in &by_user {
                        self.store.replace_device_list(user, list).await?;
                    }
                    let targets: Vec<PublicDevice> = devices
                        .into_iter()
                        .filter(|d| d.device_id != self.account.device_id)
                        .collect();
                    envelopes = self.encrypt_for(&item, &conversation.id, &targets).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One step of the outbox worker: true when a message left the outbox
    /// (sent or given up), false when it is empty.
    pub(crate) async fn outbox_step(&self) -> Result<bool> {
        let Some(item) = self.store.outbox_head().await? else {
            return Ok(false);
        };
        let local_id = item.local_id.clone();
        let client_msg_id = item.client_msg_id.clone();
        let delivered = match item.kind {
            OutboxKind::Direct => self.deliver(item).await,
            OutboxKind::Group => self.deliver_megolm(item, SendKind::Group).await,
            OutboxKind::Channel => self.deliver_channel(item).await,
        };
        match delivered {
            Ok(sent) => {
                self.store.complete_send(&local_id, &sent).await?;
                let done = SentMessage {
                    client_msg_id: sent.client_msg_id,
                    message_id: sent.message_id,
                    conversation_id: sent.conversation_id,
                    seq: sent.seq,
                    sent_at: sent.sent_at,
                };
                self.emit(ClientEvent::Sent(done.clone()));
                if let Some(w) = lock(&self.watchers).remove(&client_msg_id) {
                    let _ = w.send(Ok(done));
                }
                Ok(true)
            }
            Err(e) if Self::retry_later(&e) => Err(e),
            Err(e) => {
                tracing::warn!(%client_msg_id, error = %e, "message refused for good");
                self.store.fail_send(&local_id).await?;
                let failure = SendFailure {
                    code: e.code().unwrap_or("client_error").to_owned(),
                    message: e.to_string(),
                };
                self.emit(ClientEvent::SendFailed {
                    client_msg_id: client_msg_id.clone(),
                    reason: failure.code.clone(),
                });
                if let Some(w) = lock(&self.watchers).remove(&client_msg_id) {
                    let _ = w.send(Err(failure));
                }
                Ok(true)
            }
        }
    }

    /// Errors after which the message stays queued for another try.
    fn retry_later(e: &ClientError) -> bool {
        e.is_transient()
            || matches!(
                e,
                ClientError::Store(_) | ClientError::SessionEnded(_) | ClientError::Closed
            )
            || e.code() == Some("device_list_stale")
    }

    /// Runs until shutdown: empties the outbox in order, one message at a
    /// time (so the server assigns sequence numbers in the order written).
    pub(crate) async fn outbox_worker(self: Arc<Self>) {
        let mut shutdown = self.shutdown.subscribe();
        let mut link = self.link.subscribe();
        let mut backoff = Backoff::new(self.config.reconnect_min, self.config.reconnect_max);
        loop {
            if *shutdown.borrow() {
                return;
            }
            let step = tokio::select! {
                r = self.outbox_step() => r,
                _ = shutdown.wait_for(|v| *v) => return,
            };
            match step {
                Ok(true) => backoff.reset(),
                Ok(false) => {
                    tokio::select! {
                        _ = self.outbox_wake.notified() => {}
                        _ = link.changed() => {}
                        _ = shutdown.wait_for(|v| *v) => return,
                    }
                }
                Err(e) => {
                    let d = backoff.next_delay();
                    tracing::debug!(error = %e, delay = ?d, "outbox: will retry");
                    pause(d, &mut link, &mut shutdown).await;
                }
            }
        }
    }
}
