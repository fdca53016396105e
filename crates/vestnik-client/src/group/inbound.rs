//! Receiving in a group: session keys installed only from member devices
//! and bound to their conversation and device; Megolm messages checked
//! against that binding and against replayed indices, or kept until their
//! key arrives.
use std::sync::atomic::Ordering;
use std::sync::Arc;

use vestnik_crypto::{Device, GroupSessionKey};
use vestnik_proto::{IncomingMessage, PublicDevice};
use zeroize::Zeroizing;

use super::{decode_megolm, MAX_PENDING};
use crate::engine::Inner;
use crate::error::{ClientError, Result};
use crate::payload::{Decrypted, Payload, KIND_TEXT};
use crate::store::GroupSessionRow;
use crate::types::{ClientEvent, Direction};

impl Inner {
    /// Installs a `group_key` that `sender` sent us over Olm (`blob` is the
    /// device state after that Olm decryption). Returns the session id when
    /// it was installed. On Err the in-memory state is back to the stored
    /// one (the message comes again).
    pub(crate) async fn install_group_key(
        &self,
        device: &mut Device,
        m: &IncomingMessage,
        sender: &PublicDevice,
        payload: &Payload,
        blob: &str,
    ) -> Result<Option<String>> {
        let outcome = self
            .try_install_group_key(device, m, sender, payload, blob)
            .await;
        if outcome.is_err() {
            self.reload_device(device).await;
        }
        outcome
    }

    async fn try_install_group_key(
        &self,
        device: &mut Device,
        m: &IncomingMessage,
        sender: &PublicDevice,
        payload: &Payload,
        blob: &str,
    ) -> Result<Option<String>> {
        let ignore = |reason: String| async move {
            tracing::warn!(message_id = %m.message_id, sender_device = %m.sender_device_id, %reason, "group key ignored");
            self.store
                .store_rejected(&m.message_id, "ignored_key", Some(blob))
                .await
                .map(|()| None)
        };
        // Keys count only from member devices of the conversation the
        // server filed them under (which the payload confirmed). This may
        // fetch the list while the device lock is held: the Olm message is
        // decrypted already and must be stored with its outcome before
        // anything else changes the device.
        let member = match self.is_member_device(&m.conversation_id, sender).await {
            Ok(b) => b,
            Err(e @ (ClientError::Store(_) | ClientError::SessionEnded(_))) => return Err(e),
            Err(e) if e.is_transient() => return Err(e),
            // e.g. 404 `conversation_not_found`: we are not in that group (any more).
            Err(e) => return ignore(format!("member devices of {}: {e}", m.conversation_id)).await,
        };
        if !member {
            return ignore(format!(
                "device {} is not a member device of {}",
                sender.device_id, m.conversation_id
            ))
            .await;
        }
        let session_id = payload.session();
        // A session is bound to the first conversation and device it came
        // with; the same id elsewhere is refused before touching the device.
        if let Some(owner) = self.store.group_session(session_id).await? {
            if owner.conversation_id != m.conversation_id
                || owner.sender_device_id != sender.device_id
            {
                return ignore(format!(
                    "session {session_id} already belongs to device {} in {}",
                    owner.sender_device_id, owner.conversation_id
                ))
                .await;
            }
        }
        let key = GroupSessionKey::new(payload.session_key.clone().unwrap_or_default());
        let imported = if payload.exported {
            device.import_exported_group_session(&sender.identity_key, &key)
        } else {
            device.import_group_session(&sender.identity_key, &key)
        };
        match imported {
            Ok(id) if id == session_id => {}
            Ok(id) => {
                // The key is for another session than it claims: undo the
                // import by going back to the state before it.
                self.store
                    .store_rejected(&m.message_id, "ignored_key", Some(blob))
                    .await?;
                self.reload_device(device).await;
                tracing::warn!(claimed = %session_id, actual = %id, "group key for another session ignored");
                return Ok(None);
            }
            Err(e) => return ignore(e.to_string()).await,
        }
        let blob = self.store.seal_device(device)?;
        let owner = GroupSessionRow {
            conversation_id: m.conversation_id.clone(),
            sender_user_id: sender.user_id.clone(),
            sender_device_id: sender.device_id.clone(),
        };
        self.store
            .save_received_session(&m.message_id, session_id, &owner, &blob)
            .await?;
        Ok(Some(session_id.to_owned()))
    }

    /// Decrypts the messages that waited for `session_id`, emitting each.
    pub(crate) async fn decrypt_pending(self: &Arc<Self>, session_id: &str) -> Result<()> {
        for m in self.store.pending_for(session_id).await? {
            if let Some(e) = self.handle_group_message(&m, true).await? {
                self.emit(e);
            }
        }
        Ok(())
    }

    /// Retries every waiting message whose key is known by now (e.g. the
    /// key arrived but decrypting failed on a full disk).
    pub(crate) async fn decrypt_all_pending(self: &Arc<Self>) -> Result<()> {
        for session_id in self.store.pending_sessions_known().await? {
            self.decrypt_pending(&session_id).await?;
        }
        Ok(())
    }

    /// Decrypts and stores one Megolm message (`from_pending`: one that
    /// waited for its key and is already acknowledged).
    pub(crate) async fn handle_group_message(
        self: &Arc<Self>,
        m: &IncomingMessage,
        from_pending: bool,
    ) -> Result<Option<ClientEvent>> {
        let envelope = match decode_megolm(&m.ciphertext) {
            Ok(e) => e,
            Err(reason) => return self.reject(m, reason, None).await,
        };
        let sender = match self.message_sender(m).await? {
            Ok(d) => d,
            Err(reason) => return self.reject(m, reason, None).await,
        };
        let mut device = self.device.lock().await;
        // Checked again under the lock: the socket and `sync` may race, and
        // a key may have been installed meanwhile.
        let current = if from_pending {
            self.store.is_pending(&m.message_id).await?
        } else {
            !self.store.is_seen(&m.message_id).await?
        };
        if !current {
            if !from_pending {
                self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
            }
            return Ok(None);
        }
        let Some(owner) = self.store.group_session(&envelope.session_id).await? else {
            if from_pending {
                return Ok(None);
            }
            if self.store.pending_count().await? >= MAX_PENDING {
                drop(device);
                return self
                    .reject(
                        m,
                        format!("more than {MAX_PENDING} group messages wait for keys"),
                        None,
                    )
                    .await;
            }
            // Under the device lock, so a key installed concurrently either
            // came first (and the session was found) or finds this row.
            self.store.add_pending(m, &envelope.session_id).await?;
            drop(device);
            tracing::debug!(message_id = %m.message_id, session_id = %envelope.session_id, "group message waits for its key");
            self.spawn_key_request(&m.conversation_id, sender, &envelope.session_id);
            return Ok(None);
        };
        if owner.conversation_id != m.conversation_id
            || owner.sender_device_id != m.sender_device_id
            || owner.sender_user_id != m.sender_user_id
        {
            drop(device);
            let reason = format!(
                "Megolm session {}: expected sender device {} in conversation {}, got device {} in {}",
                envelope.session_id,
                owner.sender_device_id,
                owner.conversation_id,
                m.sender_device_id,
                m.conversation_id
            );
            return self.reject(m, reason, None).await;
        }
        let decrypted = match device.group_decrypt(&envelope) {
            Ok(d) => d,
            Err(e) => {
                drop(device);
                return self.reject(m, e.to_string(), None).await;
            }
        };
        let index = decrypted.message_index;
        let plaintext = Zeroizing::new(decrypted.plaintext);
        if decrypted.sender_identity_key != sender.identity_key {
            drop(device);
            let reason = format!(
                "Megolm session {}: expected the key of device {}, got it from another device",
                envelope.session_id, sender.device_id
            );
            return self.reject(m, reason, None).await;
        }
        if self.store.index_used(&envelope.session_id, index).await? {
            drop(device);
            let reason = format!(
                "replay: index {index} of Megolm session {} was already decrypted",
                envelope.session_id
            );
            return self.reject(m, reason, None).await;
        }
        let blob = self.store.seal_device(&device)?;
        let parsed = Payload::parse(&plaintext, &m.conversation_id).and_then(|p| {
            if p.kind == KIND_TEXT {
                Ok(p)
            } else {
                Err(format!(
                    "group message: expected kind \"text\", got {:?}",
                    p.kind
                ))
            }
        });
        let payload = match parsed {
            Ok(p) => p,
            Err(reason) => {
                let r = self.reject(m, reason, Some(&blob)).await;
                if r.is_err() {
                    self.reload_device(&mut device).await;
                }
                return r;
            }
        };
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
        let row = decrypted.row(None, Some((&envelope.session_id, index)));
        let stored = match self.store.store_incoming(&row, &blob).await {
            Ok(s) => s,
            Err(e) => {
                self.reload_device(&mut device).await;
                return Err(e);
            }
        };
        drop(device);
        Ok((stored != crate::store::Stored::Ignored)
            .then(|| decrypted.event(false, Some(envelope.session_id.clone()))))
    }
}
