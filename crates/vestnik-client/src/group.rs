//! Group chats with Megolm sender keys.
//!
//! **Sending.** Each device keeps one outbound Megolm session per group
//! (`group_outbound`), made for an exact set of member devices: those of
//! `GET /v1/conversations/{id}/devices` minus this one (cached in
//! `group_devices`, marked stale by `devices_changed`, any `system` event of
//! the group and every reconnect). Before a group message leaves, every
//! device of that set must hold the session key: it goes to those that do
//! not yet (`group_shares`) in `kind: keys` sends of Olm envelopes (payload
//! `group_key`). A new session replaces the current one when a member left
//! or was removed, when the set of member devices differs in any way (a
//! device or member added or gone), after [`ROTATE_AFTER_MESSAGES`] messages
//! or after [`ROTATE_AFTER`]. So a removed member or revoked device never
//! gets a key for what is sent after it left, and a new device can read
//! what is sent once its owner's peers have seen it appear.
//!
//! **Receiving.** A `group_key` (Olm, so its sending device is
//! authenticated) is installed only when that device is a current member
//! device of the conversation, and the session is bound to that
//! conversation and device (`group_sessions`). A Megolm message (`msg_type`
//! 2) must name a session bound to its own conversation and sender device,
//! decrypt, carry a payload for that conversation, and use a ratchet index
//! not seen before (`group_indices`; the server could otherwise replay it
//! under a new message id). One whose session is unknown waits in
//! `group_pending` (already acknowledged) and is decrypted when the key
//! arrives; meanwhile a `key_request` goes to the sending device, which
//! shares the session again, from the index it first gave, only to a device
//! it had already shared it with and that is still a member device (a
//! lost key share is recovered; nobody gains history they were not given).
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use vestnik_crypto::{Device, GroupSessionKey, MegolmEnvelope};
use vestnik_proto::{
    IncomingMessage, PublicDevice, PublicDeviceList, SendKind, SendMessage, Sent, SystemEvent,
};
use zeroize::Zeroizing;

use crate::engine::{Inner, Persist, MAX_STALE_ROUNDS};
use crate::error::{ClientError, Result};
use crate::payload::{Decrypted, Payload, KIND_TEXT};
use crate::store::{now_ms, GroupSessionRow, OutboxItem};
use crate::types::{ClientEvent, Direction};

/// An outbound session is replaced after this many messages.
pub const ROTATE_AFTER_MESSAGES: u32 = 100;
/// An outbound session is replaced once it is this old.
pub const ROTATE_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);
/// Olm envelopes per `kind: keys` send (the server takes up to 1000; a
/// pre-key envelope with a key is ~1 KiB, so this stays far below the 2 MiB
/// frame and body limits).
const KEY_SHARE_BATCH: usize = 200;
/// The server's limit for a group message's `ciphertext`.
const MAX_GROUP_CIPHERTEXT: usize = 64 * 1024;
/// Group messages kept waiting for keys; beyond this they are refused (a
/// server cannot fill the disk with messages nobody can read).
const MAX_PENDING: i64 = 10_000;
/// At most one key request per session, and one re-share per session and
/// device, in this interval.
const KEY_TRAFFIC_INTERVAL: Duration = Duration::from_secs(60);

/// Group messages travel as base64 of the JSON of the Megolm envelope.
fn encode_megolm(e: &MegolmEnvelope) -> Result<String> {
    let json = serde_json::to_vec(e).map_err(|e| ClientError::Protocol(e.to_string()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(json))
}

fn decode_megolm(ciphertext: &str) -> std::result::Result<MegolmEnvelope, String> {
    if ciphertext.len() > 2 * MAX_GROUP_CIPHERTEXT {
        return Err(format!(
            "group message: expected at most {MAX_GROUP_CIPHERTEXT} bytes of base64, got {}",
            ciphertext.len()
        ));
    }
    let json = base64::engine::general_purpose::STANDARD
        .decode(ciphertext)
        .map_err(|e| format!("group message: expected base64, got: {e}"))?;
    serde_json::from_slice(&json)
        .map_err(|e| format!("group message: expected a Megolm envelope, got: {e}"))
}

/// Conversation and user ids go into URL paths: only the id alphabet.
pub(crate) fn path_id<'a>(what: &str, id: &'a str) -> Result<&'a str> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(id)
    } else {
        Err(ClientError::InvalidInput(format!(
            "{what}: expected an id of letters, digits, '-' and '_', got {id:?}"
        )))
    }
}

fn same_device(a: &PublicDevice, b: &PublicDevice) -> bool {
    a.device_id == b.device_id && a.user_id == b.user_id && a.identity_key == b.identity_key
}

fn is_stale_devices(e: &ClientError) -> bool {
    e.code() == Some("device_list_stale")
}

impl Inner {
    fn key_traffic_allowed(&self, key: String) -> bool {
        let mut map = self
            .key_traffic
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        if map.len() > 1024 {
            map.retain(|_, at| now.duration_since(*at) < KEY_TRAFFIC_INTERVAL);
        }
        match map.get(&key) {
            Some(at) if now.duration_since(*at) < KEY_TRAFFIC_INTERVAL => false,
            _ => {
                map.insert(key, now);
                true
            }
        }
    }

    // ---------- member devices ----------

    /// Fetches a group's member devices (every device of every member,
    /// ours included), pins their keys in the directory cache and caches
    /// the list.
    pub(crate) async fn fetch_group_devices(
        &self,
        conversation_id: &str,
    ) -> Result<Vec<PublicDevice>> {
        let id = path_id("conversation_id", conversation_id)?;
        let list: PublicDeviceList = self
            .api
            .get(&format!("/v1/conversations/{id}/devices"))
            .await?;
        let mut by_user: BTreeMap<&str, Vec<PublicDevice>> = BTreeMap::new();
        for d in &list.devices {
            by_user
                .entry(d.user_id.as_str())
                .or_default()
                .push(d.clone());
        }
        // The list holds every active device of each member: it is each
        // member's full device list, and a changed identity key is refused.
        for (user, devices) in &by_user {
            self.store.replace_device_list(user, devices).await?;
        }
        self.store
            .save_group_devices(conversation_id, &list.devices)
            .await?;
        Ok(list.devices)
    }

    async fn group_devices_for_send(
        &self,
        conversation_id: &str,
        force: bool,
    ) -> Result<Vec<PublicDevice>> {
        if !force {
            if let Some((devices, true)) = self.store.group_devices(conversation_id).await? {
                return Ok(devices);
            }
        }
        self.fetch_group_devices(conversation_id).await
    }

    /// Whether `device` is a member device of the conversation: the cached
    /// list first (even a stale one: what it lists was a member device when
    /// the key was sent), else the server's current list.
    async fn is_member_device(&self, conversation_id: &str, device: &PublicDevice) -> Result<bool> {
        if let Some((list, _)) = self.store.group_devices(conversation_id).await? {
            if list.iter().any(|d| same_device(d, device)) {
                return Ok(true);
            }
        }
        let list = self.fetch_group_devices(conversation_id).await?;
        Ok(list.iter().any(|d| same_device(d, device)))
    }

    // ---------- outbound sessions ----------

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
    async fn send_keys(
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

    // ---------- incoming keys ----------

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

    // ---------- incoming group messages ----------

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
        if let Err(e) = self.store.store_incoming(&row, &blob).await {
            self.reload_device(&mut device).await;
            return Err(e);
        }
        drop(device);
        Ok(Some(
            decrypted.event(false, Some(envelope.session_id.clone())),
        ))
    }

    // ---------- key requests ----------

    /// Asks `sender` (in the background, at most once a minute per session)
    /// to share `session_id` again.
    fn spawn_key_request(
        self: &Arc<Self>,
        conversation_id: &str,
        sender: PublicDevice,
        session_id: &str,
    ) {
        if !self.key_traffic_allowed(format!("req:{session_id}")) {
            return;
        }
        let inner = self.clone();
        let (conversation_id, session_id) = (conversation_id.to_owned(), session_id.to_owned());
        // Not awaited here: on the socket, a send's answer arrives through
        // the very frame loop that is handling this message.
        tokio::spawn(async move {
            let payload = Payload::key_request(&conversation_id, &session_id).to_bytes();
            match inner.send_keys(&conversation_id, &[sender], &payload).await {
                Ok(_) => {
                    inner
                        .counters
                        .key_requests_sent
                        .fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => tracing::debug!(error = %e, %session_id, "key request failed"),
            }
        });
    }

    /// Answers a key request from `requester` in the background.
    pub(crate) fn spawn_key_answer(
        self: &Arc<Self>,
        conversation_id: &str,
        requester: PublicDevice,
        session_id: &str,
    ) {
        let inner = self.clone();
        let (conversation_id, session_id) = (conversation_id.to_owned(), session_id.to_owned());
        tokio::spawn(async move {
            if let Err(e) = inner
                .answer_key_request(&conversation_id, &requester, &session_id)
                .await
            {
                tracing::debug!(error = %e, %session_id, requester = %requester.device_id, "answering a key request failed");
            }
        });
    }

    async fn answer_key_request(
        &self,
        conversation_id: &str,
        requester: &PublicDevice,
        session_id: &str,
    ) -> Result<()> {
        let Some(owner) = self.store.group_session(session_id).await? else {
            return Ok(());
        };
        if owner.sender_device_id != self.account.device_id
            || owner.conversation_id != conversation_id
        {
            return Ok(());
        }
        let shares = self.store.group_shares(session_id).await?;
        let Some((identity_key, index)) = shares.get(&requester.device_id) else {
            // Never given this session: it is a device we did not know of
            // when it was made. Our next message rotates and includes it.
            tracing::debug!(requester = %requester.device_id, %session_id, "key request from a device the session was not made for");
            self.store
                .mark_group_devices_stale(Some(conversation_id))
                .await?;
            return Ok(());
        };
        if *identity_key != requester.identity_key {
            return Ok(());
        }
        // The server's current list, not the cache: a removal may be seconds old.
        let current = self.fetch_group_devices(conversation_id).await?;
        if !current.iter().any(|d| same_device(d, requester)) {
            return Ok(());
        }
        if !self.key_traffic_allowed(format!("ans:{session_id}:{}", requester.device_id)) {
            return Ok(());
        }
        let key = self
            .device
            .lock()
            .await
            .export_group_session(session_id, Some(*index))?;
        let payload = Payload::group_key(conversation_id, session_id, &key, true).to_bytes();
        self.send_keys(conversation_id, std::slice::from_ref(requester), &payload)
            .await?;
        self.counters
            .group_keys_shared
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    // ---------- system events ----------

    /// Stores a membership/settings event once and updates what depends on
    /// the membership: the cached member devices, and the outbound session
    /// when someone left (they must not read what comes next).
    pub(crate) async fn handle_system(&self, event: SystemEvent) -> Result<Option<ClientEvent>> {
        // Invalidate first: both steps are idempotent, and a crash between
        // them must not leave the event recorded but its effect undone.
        self.store
            .mark_group_devices_stale(Some(&event.conversation_id))
            .await?;
        if matches!(event.event.as_str(), "member_left" | "member_removed") {
            self.store.flag_rotation(&event.conversation_id).await?;
        }
        if !self.store.store_system_event(&event).await? {
            self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        Ok(Some(ClientEvent::System(event)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn megolm_envelopes_round_trip_and_garbage_is_refused() {
        let e = MegolmEnvelope {
            session_id: "s".into(),
            body: "b".into(),
        };
        let text = encode_megolm(&e).expect("encode");
        assert_eq!(decode_megolm(&text).expect("decode"), e);
        assert!(decode_megolm("not base64!").is_err());
        assert!(decode_megolm("aGVsbG8=").is_err());
        assert!(decode_megolm(&"A".repeat(3 * MAX_GROUP_CIPHERTEXT)).is_err());
    }

    #[test]
    fn only_plain_ids_go_into_paths() {
        assert!(path_id("id", "0193abcdef").is_ok());
        assert!(path_id("id", "a_b-c").is_ok());
        for bad in ["", "../x", "a/b", "a?b", "a b", "%2e"] {
            assert!(path_id("id", bad).is_err(), "{bad}");
        }
    }
}
