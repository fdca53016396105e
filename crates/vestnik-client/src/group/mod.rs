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
//!
//! This file holds the limits, the wire form of a Megolm message, the
//! member devices and system events; `outbound` shares keys and sends,
//! `inbound` installs keys and decrypts, `key_requests` asks for and
//! answers lost key shares.
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use base64::Engine as _;
use vestnik_crypto::MegolmEnvelope;
use vestnik_proto::{PublicDevice, PublicDeviceList, SystemEvent};

use crate::engine::Inner;
use crate::error::{ClientError, Result};
use crate::types::ClientEvent;

mod inbound;
mod key_requests;
mod outbound;

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

    /// Stores a membership/settings event once and updates what depends on
    /// the membership: the cached member devices, and the outbound session
    /// when someone left (they must not read what comes next).
    pub(crate) async fn handle_system(&self, event: SystemEvent) -> Result<Option<ClientEvent>> {
        // Invalidate first: both steps are idempotent, and a crash between
        // them must not leave the event recorded but its effect undone.
        self.store
            .mark_group_devices_stale(Some(&event.conversation_id))
            .await?;
        if matches!(
            event.event.as_str(),
            "member_left" | "member_removed" | "member_banned"
        ) {
            self.store.flag_rotation(&event.conversation_id).await?;
        }
        if event.event == "message_deleted" {
            if let Some(id) = &event.message_id {
                self.store.forget_message_body(id).await?;
            }
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
