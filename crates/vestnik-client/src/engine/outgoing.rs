//! The outbox worker: one message at a time, in the order written, each
//! encrypted (Olm per device for a direct message; groups and channels in
//! their modules), sent over the socket or REST, and sent again with the
//! same `client_msg_id` after a failure.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::oneshot;
use vestnik_crypto::PreKeyBundle;
use vestnik_proto::{
    ClaimRequest, ClaimResponse, ClientFrame, Envelope, PublicDevice, SendKind, SendMessage, Sent,
};

use super::{lock, pause, Inner, Persist, SendFailure, SendReply, MAX_STALE_ROUNDS};
use crate::backoff::Backoff;
use crate::error::{ClientError, Result};
use crate::payload::Payload;
use crate::store::{ConversationRow, OutboxItem, OutboxKind};
use crate::types::{ClientEvent, SentMessage};

impl Inner {
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
