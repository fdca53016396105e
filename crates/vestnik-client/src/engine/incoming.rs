//! What the server sends: each frame handled, each Olm message decrypted
//! and stored (with the ratchet state that decrypted it) before its cursor
//! is acknowledged, duplicates dropped by message id.
use std::sync::atomic::Ordering;
use std::sync::Arc;

use vestnik_crypto::OlmEnvelope;
use vestnik_proto::{IncomingMessage, PublicDevice, Receipt, ServerFrame};
use zeroize::Zeroizing;

use super::{lock, Flow, Inner, SendReply, MEGOLM_MSG_TYPE};
use crate::error::{ClientError, Result};
use crate::payload::{Decrypted, Payload, KIND_GROUP_KEY, KIND_KEY_REQUEST, KIND_TEXT};
use crate::store::Stored;
use crate::types::{ClientEvent, DeliveryReceipt, Direction};

impl Inner {
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
        let stored = match self.store.store_incoming(&row, &blob).await {
            Ok(s) => s,
            Err(e) => {
                self.reload_device(&mut device).await;
                return Err(e);
            }
        };
        drop(device);
        if envelope.is_pre_key() {
            // It may have used one of our one-time keys.
            self.schedule_key_check();
        }
        Ok((stored != Stored::Ignored).then(|| decrypted.event(envelope.is_pre_key(), None)))
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
            ServerFrame::ProfileChanged {
                user_id,
                display_name,
                avatar,
            } => {
                self.store
                    .save_profile(
                        &user_id,
                        display_name.as_deref(),
                        avatar.as_deref(),
                        crate::store::now_ms(),
                    )
                    .await?;
                self.emit(ClientEvent::ProfileChanged {
                    user_id,
                    display_name,
                    avatar,
                });
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
            // The socket task answers these (they concern the connection).
            ServerFrame::ReauthRequired { .. }
            | ServerFrame::Reauthed { .. }
            | ServerFrame::KeysLow { .. } => {}
            ServerFrame::Error {
                code,
                message,
                client_msg_id,
                devices,
                ..
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
}
