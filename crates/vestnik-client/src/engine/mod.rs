//! The shared state of a client and what it does with messages: decrypt and
//! store incoming ones, encrypt and send outgoing ones from the outbox.
//!
//! This file holds that state ([`Inner`]), the device directory and direct
//! conversations every path needs; `incoming` handles what the server
//! sends, `outgoing` takes the outbox to the server (Olm encryption
//! included), and `keys` keeps the server's supply of this device's
//! one-time and fallback keys. Groups and channels extend [`Inner`] in the
//! `group` and `channel` modules.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};

use tokio::sync::{broadcast, mpsc, oneshot, watch, Mutex, Notify};
use vestnik_crypto::Device;
use vestnik_proto::{
    ClientFrame, Conversation, CreateConversation, PublicDevice, PublicDeviceList, Sent,
};

use crate::api::Api;
use crate::config::ClientConfig;
use crate::error::Result;
use crate::store::{Account, ConversationRow, Store};
use crate::types::{ClientEvent, SentMessage, Stats};

mod incoming;
mod keys;
mod outgoing;

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
    pub(crate) reauths: AtomicU64,
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
            reauths: self.reauths.load(Ordering::Relaxed),
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
}
