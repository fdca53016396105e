//! [`Client`]: one device of one account.
//!
//! This file holds the handle itself, how it starts its background work
//! (the outbox, the socket) and how that stops. Its methods are grouped by
//! concern, one `impl Client` block per file: `account` (registering,
//! logging in, reopening, 2FA, logging out), `devices` (devices and keys),
//! `conversations`, `messages` (the outbox every send goes through,
//! history, REST sync), `presence` (typing, presence, read markers),
//! `groups` and `channels`; files are in the `media` module.
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex as StdMutex};

use tokio::sync::{broadcast, watch, Mutex, Notify};
use tokio::task::JoinHandle;
use vestnik_crypto::{Device, DeviceKeys};

use crate::api::{self, Api};
use crate::config::ClientConfig;
use crate::engine::{Counters, Inner};
use crate::error::Result;
use crate::events::EventStream;
use crate::store::{Account, Store, Tokens};
use crate::types::Stats;

mod account;
mod channels;
mod consent;
mod conversations;
mod credentials;
mod devices;
mod export;
mod groups;
mod messages;
mod moderation;
mod presence;
mod profiles;

pub use account::SecondFactor;
pub use export::{ExportedConversation, ExportedFile, ExportedMessage, HistoryExport};

/// Where a queued text goes.
pub(crate) enum Target<'a> {
    /// The direct conversation with this user.
    Peer(&'a str),
    /// This group conversation.
    Group(&'a str),
    /// This channel (a post).
    Channel(&'a str),
}

/// Signals shutdown when the last [`Client`] handle is dropped.
struct Guard {
    shutdown: Arc<watch::Sender<bool>>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

#[derive(Default)]
struct Tasks {
    outbox: Option<JoinHandle<()>>,
    socket: Option<(watch::Sender<bool>, JoinHandle<()>)>,
}

/// One device of one account: its keys, its local store, its connection.
///
/// Cheap to clone (all clones share one device). Background work (the
/// outbox, and the socket once [`Client::connect`] is called) stops when
/// [`Client::close`] is called or the last clone is dropped.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
    tasks: Arc<StdMutex<Tasks>>,
    _guard: Arc<Guard>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("user_id", &self.inner.account.user_id)
            .field("device_id", &self.inner.account.device_id)
            .field("store", &self.inner.store.path())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Client {
    fn start(
        config: ClientConfig,
        store: Store,
        account: Account,
        tokens: Tokens,
        device: Device,
    ) -> Result<Client> {
        let store = Arc::new(store);
        let counters = Counters::default();
        let api = Api::new(
            api::http_client(config.request_timeout)?,
            config.server_url.clone(),
            Some(tokens),
            store.clone(),
            counters.refreshes.clone(),
        );
        let (events, _) = broadcast::channel(config.event_capacity.max(16));
        let (link, _) = watch::channel(None);
        let shutdown = Arc::new(watch::channel(false).0);
        let inner = Arc::new(Inner {
            config,
            store,
            api,
            account,
            device: Mutex::new(device),
            events,
            link,
            waiters: StdMutex::new(HashMap::new()),
            watchers: StdMutex::new(HashMap::new()),
            outbox_wake: Notify::new(),
            shutdown: shutdown.clone(),
            counters,
            key_check_running: AtomicBool::new(false),
            key_traffic: StdMutex::new(HashMap::new()),
        });
        let outbox = tokio::spawn(inner.clone().outbox_worker());
        Ok(Client {
            inner,
            tasks: Arc::new(StdMutex::new(Tasks {
                outbox: Some(outbox),
                socket: None,
            })),
            _guard: Arc::new(Guard { shutdown }),
        })
    }

    /// This account's user id.
    pub fn user_id(&self) -> &str {
        &self.inner.account.user_id
    }

    /// This device's id.
    pub fn device_id(&self) -> &str {
        &self.inner.account.device_id
    }

    /// This device's public identity and signing keys.
    pub async fn identity_keys(&self) -> DeviceKeys {
        self.inner.device.lock().await.identity_keys()
    }

    /// Counters for diagnostics.
    pub fn stats(&self) -> Stats {
        self.inner.counters.snapshot()
    }

    /// A new receiver of events (see [`EventStream`]).
    pub fn events(&self) -> EventStream {
        EventStream::new(self.inner.events.subscribe())
    }

    /// Opens the WebSocket in a background task that keeps it open:
    /// reconnecting with exponential backoff and jitter, receiving the
    /// backlog, storing and acknowledging what arrives. Does nothing when
    /// already running.
    pub fn connect(&self) {
        let mut tasks = lock(&self.tasks);
        if let Some((_, handle)) = &tasks.socket {
            if !handle.is_finished() {
                return;
            }
        }
        let (stop, stop_rx) = watch::channel(false);
        let handle = tokio::spawn(self.inner.clone().socket_task(stop_rx));
        tasks.socket = Some((stop, handle));
    }

    /// Closes the WebSocket and stops reconnecting (the outbox then sends
    /// over REST). Waits for the socket task to end.
    pub async fn disconnect(&self) {
        let socket = lock(&self.tasks).socket.take();
        if let Some((stop, handle)) = socket {
            stop.send_replace(true);
            let _ = handle.await;
        }
    }

    /// Whether the WebSocket is open right now.
    pub fn is_connected(&self) -> bool {
        self.inner.link.borrow().is_some()
    }

    /// Stops all background work and closes the store. Other clones of
    /// this client stop working too.
    pub async fn close(self) {
        self.inner.shutdown.send_replace(true);
        let (outbox, socket) = {
            let mut t = lock(&self.tasks);
            (t.outbox.take(), t.socket.take())
        };
        if let Some((_, h)) = socket {
            let _ = h.await;
        }
        if let Some(h) = outbox {
            let _ = h.await;
        }
        // Waiters on a closed client.
        lock(&self.inner.watchers).clear();
        self.inner.store.close().await;
    }
}
