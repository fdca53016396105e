//! Sending to a group: the outbound session (made, reused or rotated), its
//! key shared over Olm with every member device lacking it, then the one
//! Megolm ciphertext, stored with the ratchet state before it leaves.
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use vestnik_proto::{PublicDevice, SendKind, SendMessage, Sent};

use super::{
    encode_megolm, is_stale_devices, KEY_SHARE_BATCH, MAX_GROUP_CIPHERTEXT, ROTATE_AFTER,
    ROTATE_AFTER_MESSAGES,
};
use crate::engine::{Inner, Persist, MAX_STALE_ROUNDS};
use crate::error::{ClientError, Result};
use crate::payload::Payload;
use crate::store::{now_ms, OutboxItem};

impl Inner {
    /// The outbound session to encrypt the next message of the group with,
    /// after making sure every current member device holds its key.
    async fn ensure_outbound(&self, conversation_id: &str) -> Result<String> {
        let mut force = false;
        for _ in 0..=MAX_STALE_ROUNDS {
            let targets: Vec<PublicDevice> = self
                .group_devices_for_send(conversation_id, force)
                .await?
                .into_iter()
                .filter(|d| d.device_id != self.account.device_id)
                .collect();
            let wanted: BTreeMap<String, String> = targets
                .iter()
                .map(|d| (d.device_id.clone(), d.identity_key.clone()))
                .collect();
            let session_id = self
                .current_or_new_session(conversation_id, &wanted)
                .await?;
            let shares = self.store.group_shares(&session_id).await?;
            let missing: Vec<PublicDevice> = targets
                .into_iter()
                .filter(|d| !shares.contains_key(&d.device_id))
                .collect();
            if missing.is_empty() {
                return Ok(session_id);
            }
            match self
                .share_session(conversation_id, &session_id, &missing)
                .await
            {
                Ok(()) => return Ok(session_id),
                Err(e) if is_stale_devices(&e) => {
                    // A device left or came between our fetch and the send:
                    // the next round sees the new list and rotates.
                    self.counters.stale_resends.fetch_add(1, Ordering::Relaxed);
                    self.store
                        .mark_group_devices_stale(Some(conversation_id))
                        .await?;
                    force = true;
                }
                Err(e) => return Err(e),
            }
        }
        Err(ClientError::Transport(
            "the group's devices kept changing while its key was shared; trying again later".into(),
        ))
    }

    /// The current outbound session if it may still be used for exactly
    /// `wanted`, else a new one (the old one is dropped; its inbound copy
    /// stays so our history remains readable).
    async fn current_or_new_session(
        &self,
        conversation_id: &str,
        wanted: &BTreeMap<String, String>,
    ) -> Result<String> {
        let current = self.store.group_outbound(conversation_id).await?;
        let now = now_ms();
        let max_age = i64::try_from(ROTATE_AFTER.as_millis()).unwrap_or(i64::MAX);
        let mut device = self.device.lock().await;
        if let Some(o) = &current {
            let index = device.group_message_index(&o.session_id).ok();
            let age = now.saturating_sub(o.created_at);
            let reuse = !o.rotate
                && o.devices == *wanted
                && (0..max_age).contains(&age)
                && index.is_some_and(|i| i < ROTATE_AFTER_MESSAGES);
            if reuse {
                return Ok(o.session_id.clone());
            }
            device.remove_group_session(&o.session_id);
        }
        let session_id = device.create_group_session();
        let blob = self.store.seal_device(&device)?;
        if let Err(e) = self
            .store
            .start_group_session(
                conversation_id,
                &session_id,
                wanted,
                (&self.account.user_id, &self.account.device_id),
                &blob,
            )
            .await
        {
            self.reload_device(&mut device).await;
            return Err(e);
        }
        drop(device);
        self.counters
            .group_sessions_started
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%conversation_id, %session_id, devices = wanted.len(), "new outbound group session");
        Ok(session_id)
    }

    /// Sends the session key to `targets` over Olm, recording each batch
    /// the server accepted.
    async fn share_session(
        &self,
        conversation_id: &str,
        session_id: &str,
        targets: &[PublicDevice],
    ) -> Result<()> {
        let (key, index) = {
            let mut device = self.device.lock().await;
            (
                device.group_session_key(session_id)?,
                device.group_message_index(session_id)?,
            )
        };
        let payload = Payload::group_key(conversation_id, session_id, &key, false).to_bytes();
        for batch in targets.chunks(KEY_SHARE_BATCH) {
            self.send_keys(conversation_id, batch, &payload).await?;
            self.store.record_shares(session_id, batch, index).await?;
            self.counters
                .group_keys_shared
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    /// One `kind: keys` send of `payload` to `targets`.
    pub(super) async fn send_keys(
        &self,
        conversation_id: &str,
        targets: &[PublicDevice],
        payload: &[u8],
    ) -> Result<Sent> {
        let envelopes = self.olm_encrypt(targets, payload, Persist::Device).await?;
        self.transmit(SendMessage {
            client_msg_id: uuid::Uuid::new_v4().simple().to_string(),
            conversation_id: conversation_id.parse()?,
            kind: SendKind::Keys,
            envelopes,
            ciphertext: None,
        })
        .await
    }

    /// Encrypts a queued group message and stores the ciphertext with the
    /// ratchet state before it leaves.
    async fn group_encrypt_item(
        &self,
        item: &OutboxItem,
        conversation_id: &str,
        session_id: &str,
    ) -> Result<String> {
        let payload = Payload::message(item, conversation_id)?.to_bytes();
        let mut device = self.device.lock().await;
        let envelope = device.group_encrypt(session_id, &payload)?;
        let ciphertext = encode_megolm(&envelope)?;
        if ciphertext.len() > MAX_GROUP_CIPHERTEXT {
            // The skipped ratchet index costs nothing; the state is not saved.
            return Err(ClientError::InvalidInput(format!(
                "group message: expected at most {MAX_GROUP_CIPHERTEXT} bytes once encrypted, got {} (text too long or too many escaped characters)",
                ciphertext.len()
            )));
        }
        let blob = self.store.seal_device(&device)?;
        if let Err(e) = self
            .store
            .save_group_ciphertext(&item.local_id, session_id, &ciphertext, &blob)
            .await
        {
            self.reload_device(&mut device).await;
            return Err(e);
        }
        Ok(ciphertext)
    }

    /// Takes a queued group message to the server: the key to every member
    /// device first, then the one Megolm ciphertext. A resend reuses the
    /// stored ciphertext while its session is current; after a rotation it
    /// is encrypted again under the same `client_msg_id` (the server keeps
    /// whichever version it accepted first, so it is stored once either way).
    /// `kind`: `Group`, or `Channel` for a private channel's post.
    pub(crate) async fn deliver_megolm(&self, item: OutboxItem, kind: SendKind) -> Result<Sent> {
        let Some(conversation_id) = item.conversation_id.clone() else {
            return Err(ClientError::InvalidInput(
                "group message: expected a conversation id, got none".into(),
            ));
        };
        let session_id = self.ensure_outbound(&conversation_id).await?;
        let ciphertext = match &item.ciphertext {
            Some((c, s)) if *s == session_id => {
                self.counters.resends.fetch_add(1, Ordering::Relaxed);
                c.clone()
            }
            _ => {
                self.group_encrypt_item(&item, &conversation_id, &session_id)
                    .await?
            }
        };
        self.transmit(SendMessage {
            client_msg_id: item.client_msg_id.clone(),
            conversation_id: conversation_id.parse()?,
            kind,
            envelopes: Vec::new(),
            ciphertext: Some(ciphertext),
        })
        .await
    }
}
