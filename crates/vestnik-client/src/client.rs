//! [`Client`]: one device of one account.
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex as StdMutex};

use reqwest::Method;
use tokio::sync::{broadcast, oneshot, watch, Mutex, Notify};
use tokio::task::JoinHandle;
use vestnik_crypto::{Device, DeviceKeys};
use vestnik_proto::{
    AckRequest, AddMember, CodeRequest, Conversation, ConversationList, CreateConversation,
    CreateInvite, DeviceInfo, DeviceList, Invite, LoginRequest, LookupRequest, LookupResponse,
    NewDeviceRequest, PendingPage, PublicDevice, RecoveryCodes, RegisterRequest, ServerFrame,
    SessionTokens, SetRole, TotpSetup, TransferOwnership, UpdateConversation, VerifyRequest,
};

use crate::api::{self, Api};
use crate::config::{ClientConfig, MAX_TEXT_BYTES};
use crate::engine::{Counters, Inner};
use crate::error::{ClientError, Result};
use crate::events::EventStream;
use crate::group::path_id;
use crate::store::{Account, OutboxKind, Store, Tokens};
use crate::types::{HistoryEntry, SentMessage, Stats};

/// The second factor for logging in to an account with 2FA on.
#[derive(Debug, Clone)]
pub enum SecondFactor {
    /// The current code of the authenticator app.
    Totp(String),
    /// One of the one-time recovery codes.
    RecoveryCode(String),
}

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
    // ---------- getting a device ----------

    /// Starts registration: the server mails a 6-digit code to `email`
    /// (the answer is the same whether or not the address has an account).
    pub async fn request_registration_code(server_url: &str, email: &str) -> Result<()> {
        let base = server_url.trim_end_matches('/');
        let http = api::http_client(std::time::Duration::from_secs(30))?;
        let req = RegisterRequest {
            email: email.to_owned(),
            pow: None,
        };
        let _: vestnik_proto::Accepted =
            api::with_pow(
                req,
                |r, p| r.pow = Some(p),
                |r| {
                    let http = http.clone();
                    async move {
                        api::call_public(&http, base, Method::POST, "/v1/auth/register", &r).await
                    }
                },
            )
            .await?;
        Ok(())
    }

    /// Finishes registration with the mailed code: creates this device (new
    /// Olm account, keys published) and its store at `config.store_path`.
    pub async fn register(
        config: ClientConfig,
        email: &str,
        code: &str,
        password: &str,
    ) -> Result<Client> {
        let email_owned = email.to_owned();
        let (code, password) = (code.to_owned(), password.to_owned());
        Self::enroll(config, email, move |http, base, device| {
            let req = VerifyRequest {
                email: email_owned,
                code: code.into(),
                password: password.into(),
                device,
                pow: None,
            };
            async move {
                api::with_pow(
                    req,
                    |r, p| r.pow = Some(p),
                    |r| {
                        let http = http.clone();
                        let base = base.clone();
                        async move {
                            api::call_public(
                                &http,
                                &base,
                                Method::POST,
                                "/v1/auth/register/verify",
                                &r,
                            )
                            .await
                        }
                    },
                )
                .await
            }
        })
        .await
    }

    /// Logs in a new device of an existing account (with the second factor
    /// when 2FA is on; without it the server answers `totp_required`).
    pub async fn login(
        config: ClientConfig,
        email: &str,
        password: &str,
        second_factor: Option<SecondFactor>,
    ) -> Result<Client> {
        let email_owned = email.to_owned();
        let password = password.to_owned();
        Self::enroll(config, email, move |http, base, device| {
            let (totp, recovery_code) = match second_factor {
                Some(SecondFactor::Totp(c)) => (Some(c), None),
                Some(SecondFactor::RecoveryCode(c)) => (None, Some(c)),
                None => (None, None),
            };
            let req = LoginRequest {
                email: email_owned,
                password: password.into(),
                totp: totp.map(Into::into),
                recovery_code: recovery_code.map(Into::into),
                device,
                pow: None,
            };
            async move {
                api::with_pow(
                    req,
                    |r, p| r.pow = Some(p),
                    |r| {
                        let http = http.clone();
                        let base = base.clone();
                        async move {
                            api::call_public(&http, &base, Method::POST, "/v1/auth/login", &r).await
                        }
                    },
                )
                .await
            }
        })
        .await
    }

    async fn enroll<F, Fut>(config: ClientConfig, email: &str, call: F) -> Result<Client>
    where
        F: FnOnce(reqwest::Client, String, NewDeviceRequest) -> Fut,
        Fut: Future<Output = Result<SessionTokens>>,
    {
        if config.one_time_keys > vestnik_crypto::MAX_ONE_TIME_KEYS_PER_UPLOAD {
            return Err(ClientError::InvalidInput(format!(
                "one_time_keys: expected at most {}, got {}",
                vestnik_crypto::MAX_ONE_TIME_KEYS_PER_UPLOAD,
                config.one_time_keys
            )));
        }
        let store = Store::open(&config.store_path, &config.store_key).await?;
        if store.account().await?.is_some() {
            store.close().await;
            return Err(ClientError::AlreadyRegistered(
                config.store_path.display().to_string(),
            ));
        }
        let mut device = Device::new();
        let keys = device.registration_keys(config.one_time_keys)?;
        let fallback_id = keys.fallback_key.key_id.clone();
        let request = NewDeviceRequest {
            name: config.device_name.clone(),
            platform: config.platform.clone(),
            identity_key: keys.identity_key,
            signing_key: keys.signing_key,
            fallback_key: vestnik_proto::SignedKey {
                key_id: keys.fallback_key.key_id,
                public_key: keys.fallback_key.public_key,
                signature: keys.fallback_key.signature,
            },
            one_time_keys: keys
                .one_time_keys
                .into_iter()
                .map(|k| vestnik_proto::OneTimeKey {
                    key_id: k.key_id,
                    public_key: k.public_key,
                })
                .collect(),
        };
        let http = api::http_client(config.request_timeout)?;
        let tokens = match call(http, config.server_url.clone(), request).await {
            Ok(t) => t,
            Err(e) => {
                store.close().await;
                return Err(e);
            }
        };
        device.mark_published();
        let account = Account {
            server_url: config.server_url.clone(),
            email: email.to_owned(),
            user_id: tokens.user_id,
            device_id: tokens.device_id,
        };
        let tokens = Tokens {
            access_token: tokens.access_token.into_exposed(),
            refresh_token: tokens.refresh_token.into_exposed(),
        };
        store
            .save_registration(&account, &tokens, &store.seal_device(&device)?)
            .await?;
        store
            .set_fallback_uploaded(&fallback_id, crate::store::now_ms())
            .await?;
        Self::start(config, store, account, tokens, device)
    }

    /// Opens the device stored at `config.store_path` (after a restart).
    pub async fn open(config: ClientConfig) -> Result<Client> {
        let store = Store::open(&config.store_path, &config.store_key).await?;
        let loaded = async {
            let account = store.account().await?;
            let tokens = store.tokens().await?;
            let device = store.device().await?;
            Ok::<_, ClientError>((account, tokens, device))
        }
        .await;
        match loaded {
            Ok((Some(account), Some(tokens), Some(device))) => {
                Self::start(config, store, account, tokens, device)
            }
            Ok((Some(_), None, Some(_))) => {
                store.close().await;
                Err(ClientError::SessionEnded(
                    "the stored device has no session (logged out or revoked)".into(),
                ))
            }
            Ok(_) => {
                store.close().await;
                Err(ClientError::NotRegistered(
                    config.store_path.display().to_string(),
                ))
            }
            Err(e) => {
                store.close().await;
                Err(e)
            }
        }
    }

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

    // ---------- identity ----------

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

    // ---------- connection ----------

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

    // ---------- messaging ----------

    /// Finds a user by e-mail address.
    pub async fn lookup_user(&self, email: &str) -> Result<String> {
        let r: LookupResponse = self
            .inner
            .api
            .post(
                "/v1/users/lookup",
                &LookupRequest {
                    email: email.to_owned(),
                },
            )
            .await?;
        Ok(r.user_id)
    }

    /// The id of the direct conversation with `peer_user_id` (made on first use).
    pub async fn conversation_with(&self, peer_user_id: &str) -> Result<String> {
        Ok(self.inner.conversation_for_peer(peer_user_id).await?.id)
    }

    /// This account's conversations, from the server (and cached locally).
    pub async fn conversations(&self) -> Result<Vec<Conversation>> {
        let list: ConversationList = self.inner.api.get("/v1/conversations").await?;
        for c in &list.conversations {
            self.inner
                .store
                .save_conversation(c, self.user_id())
                .await?;
        }
        Ok(list.conversations)
    }

    /// Writes a text message to the local outbox and returns its
    /// `client_msg_id` at once; it is encrypted and sent in the background,
    /// as soon as the server can be reached (events: `Sent` or `SendFailed`).
    pub async fn queue_text(&self, peer_user_id: &str, text: &str) -> Result<String> {
        self.queue(Target::Peer(peer_user_id), text, None, None)
            .await
    }

    pub(crate) async fn queue(
        &self,
        target: Target<'_>,
        text: &str,
        attachment: Option<&crate::types::Attachment>,
        watcher: Option<crate::engine::SendWatcher>,
    ) -> Result<String> {
        if text.is_empty() || text.len() > MAX_TEXT_BYTES {
            return Err(ClientError::InvalidInput(format!(
                "text: expected 1-{MAX_TEXT_BYTES} bytes, got {}",
                text.len()
            )));
        }
        let (kind, peer_user_id, conversation_id) = match target {
            Target::Peer(peer_user_id) => {
                if peer_user_id == self.user_id() {
                    return Err(ClientError::InvalidInput(
                        "peer_user_id: expected another user, got this account".into(),
                    ));
                }
                // Known or made now; offline, the outbox resolves it later.
                let conversation_id = match self.inner.conversation_for_peer(peer_user_id).await {
                    Ok(c) => Some(c.id),
                    Err(e) if e.is_transient() => None,
                    Err(e) => return Err(e),
                };
                (OutboxKind::Direct, peer_user_id, conversation_id)
            }
            Target::Group(conversation_id) => (
                OutboxKind::Group,
                "",
                Some(path_id("conversation_id", conversation_id)?.to_owned()),
            ),
            Target::Channel(conversation_id) => (
                OutboxKind::Channel,
                "",
                Some(path_id("conversation_id", conversation_id)?.to_owned()),
            ),
        };
        let local_id = uuid::Uuid::new_v4().simple().to_string();
        let client_msg_id = uuid::Uuid::new_v4().simple().to_string();
        if let Some(w) = watcher {
            lock(&self.inner.watchers).insert(client_msg_id.clone(), w);
        }
        if let Err(e) = self
            .inner
            .store
            .queue_outgoing(
                &local_id,
                &client_msg_id,
                kind,
                peer_user_id,
                conversation_id.as_deref(),
                text,
                attachment
                    .map(serde_json::to_string)
                    .transpose()
                    .map_err(|e| ClientError::Protocol(e.to_string()))?
                    .as_deref(),
                self.user_id(),
                self.device_id(),
            )
            .await
        {
            lock(&self.inner.watchers).remove(&client_msg_id);
            return Err(e);
        }
        self.inner.outbox_wake.notify_one();
        Ok(client_msg_id)
    }

    /// Sends a text message to a user (all their devices, and this
    /// account's other devices) and waits until the server has accepted it.
    /// Offline, this waits for the connection to come back; use
    /// [`Client::queue_text`] not to wait.
    pub async fn send_text(&self, peer_user_id: &str, text: &str) -> Result<SentMessage> {
        self.send_and_wait(Target::Peer(peer_user_id), text, None)
            .await
    }

    pub(crate) async fn send_and_wait(
        &self,
        target: Target<'_>,
        text: &str,
        attachment: Option<&crate::types::Attachment>,
    ) -> Result<SentMessage> {
        let (tx, rx) = oneshot::channel();
        self.queue(target, text, attachment, Some(tx)).await?;
        match rx.await {
            Ok(Ok(sent)) => Ok(sent),
            Ok(Err(f)) => Err(ClientError::Api {
                status: 0,
                code: f.code,
                message: f.message,
                devices: None,
                pow: None,
            }),
            Err(_) => Err(ClientError::Closed),
        }
    }

    async fn send_frame(&self, frame: vestnik_proto::ClientFrame) -> Result<()> {
        let link = self.inner.link.borrow().clone();
        match link {
            Some(tx) => tx
                .send(frame)
                .await
                .map_err(|_| ClientError::Transport("the socket closed".into())),
            None => Err(ClientError::Transport("not connected".into())),
        }
    }

    /// Tells the other members this user is (or stopped) typing. Needs the
    /// socket; best effort (nothing is stored).
    pub async fn set_typing(&self, conversation_id: &str, typing: bool) -> Result<()> {
        self.send_frame(vestnik_proto::ClientFrame::Typing {
            conversation_id: conversation_id.parse()?,
            typing,
        })
        .await
    }

    /// Asks for the presence of users this account shares a conversation
    /// with (over the socket): one `Presence` event each now, then changes.
    pub async fn subscribe_presence(&self, user_ids: &[String]) -> Result<()> {
        self.send_frame(vestnik_proto::ClientFrame::SubscribePresence {
            user_ids: user_ids
                .iter()
                .map(|u| u.parse())
                .collect::<std::result::Result<_, _>>()?,
        })
        .await
    }

    /// Marks a conversation read up to `seq` (over the socket).
    pub async fn mark_read(&self, conversation_id: &str, seq: i64) -> Result<()> {
        self.send_frame(vestnik_proto::ClientFrame::Read {
            conversation_id: conversation_id.parse()?,
            seq,
        })
        .await
    }

    /// Messages waiting in the local outbox.
    pub async fn outbox_len(&self) -> Result<i64> {
        self.inner.store.outbox_len().await
    }

    /// The newest `limit` messages of a conversation from the local store,
    /// oldest first.
    pub async fn history(&self, conversation_id: &str, limit: i64) -> Result<Vec<HistoryEntry>> {
        self.inner.store.history(conversation_id, limit).await
    }

    /// Fetches everything pending for this device over REST (paged,
    /// `ClientConfig::sync_page` per page), stores it, acknowledges it and
    /// emits the events — for when no socket is wanted. Returns the number
    /// of items handled (duplicates included).
    pub async fn sync(&self) -> Result<usize> {
        let page_size = self.inner.config.sync_page.clamp(1, 500);
        // Device changes while no socket was open were not pushed to us.
        self.inner.store.mark_group_devices_stale(None).await?;
        let mut after = 0i64;
        let mut handled = 0usize;
        loop {
            let page: PendingPage = self
                .inner
                .api
                .get(&format!(
                    "/v1/messages/pending?after={after}&limit={page_size}"
                ))
                .await?;
            let mut acks = Vec::new();
            for item in page.items {
                if let Some(c) = item.cursor() {
                    after = after.max(c);
                }
                if matches!(
                    item,
                    ServerFrame::Message { .. }
                        | ServerFrame::Receipt { .. }
                        | ServerFrame::System { .. }
                ) {
                    self.inner.on_frame(item, &mut acks).await?;
                    handled += 1;
                }
            }
            if !acks.is_empty() {
                self.inner
                    .api
                    .call_unit(
                        Method::POST,
                        "/v1/messages/ack",
                        Some(&AckRequest { cursors: acks }),
                    )
                    .await?;
            }
            if !page.more {
                self.inner.decrypt_all_pending().await?;
                return Ok(handled);
            }
        }
    }

    // ---------- groups ----------

    /// Creates a group with this account as its owner and `member_user_ids`
    /// as members; returns its conversation id.
    pub async fn create_group(
        &self,
        title: Option<&str>,
        member_user_ids: &[String],
    ) -> Result<String> {
        let c = self
            .create_conversation("group", title, None, member_user_ids)
            .await?;
        Ok(c.id)
    }

    async fn create_conversation(
        &self,
        kind: &str,
        title: Option<&str>,
        visibility: Option<&str>,
        member_user_ids: &[String],
    ) -> Result<Conversation> {
        let c: Conversation = self
            .inner
            .api
            .post(
                "/v1/conversations",
                &new_conversation(kind, title, visibility, member_user_ids)?,
            )
            .await?;
        self.inner
            .store
            .save_conversation(&c, self.user_id())
            .await?;
        self.inner.note_channel(&c).await?;
        Ok(c)
    }

    /// A group with its members and their roles (members only).
    pub async fn group_info(&self, conversation_id: &str) -> Result<Conversation> {
        let id = path_id("conversation_id", conversation_id)?;
        let c: Conversation = self
            .inner
            .api
            .get(&format!("/v1/conversations/{id}"))
            .await?;
        self.inner
            .store
            .save_conversation(&c, self.user_id())
            .await?;
        self.inner.note_channel(&c).await?;
        Ok(c)
    }

    /// Changes a group's title, topic or avatar (owner or admin).
    pub async fn update_group(
        &self,
        conversation_id: &str,
        update: &UpdateConversation,
    ) -> Result<Conversation> {
        let id = path_id("conversation_id", conversation_id)?;
        let c: Conversation = self
            .inner
            .api
            .call(
                Method::PATCH,
                &format!("/v1/conversations/{id}"),
                Some(update),
            )
            .await?;
        self.inner
            .store
            .save_conversation(&c, self.user_id())
            .await?;
        Ok(c)
    }

    /// Adds a user to a group (owner or admin). Their devices get the key of
    /// the next message each member sends (a new Megolm session): nothing
    /// sent before.
    pub async fn add_member(&self, conversation_id: &str, user_id: &str) -> Result<Conversation> {
        let id = path_id("conversation_id", conversation_id)?;
        let c: Conversation = self
            .inner
            .api
            .post(
                &format!("/v1/conversations/{id}/members"),
                &AddMember {
                    user_id: user_id.parse()?,
                },
            )
            .await?;
        self.inner.store.mark_group_devices_stale(Some(id)).await?;
        self.inner
            .store
            .save_conversation(&c, self.user_id())
            .await?;
        Ok(c)
    }

    /// Removes a member from a group (owner or admin; this account's own id
    /// leaves). This device's next message in the group uses a new Megolm
    /// session the removed member never gets.
    pub async fn remove_member(&self, conversation_id: &str, user_id: &str) -> Result<()> {
        let id = path_id("conversation_id", conversation_id)?;
        let user = path_id("user_id", user_id)?;
        self.inner
            .api
            .call_unit::<()>(
                Method::DELETE,
                &format!("/v1/conversations/{id}/members/{user}"),
                None,
            )
            .await?;
        // At once, not when the `system` event arrives: a message sent right
        // after this call must already use a new session.
        self.inner.store.mark_group_devices_stale(Some(id)).await?;
        self.inner.store.flag_rotation(id).await
    }

    /// Leaves a group or channel (an owner must transfer ownership first
    /// unless alone).
    pub async fn leave(&self, conversation_id: &str) -> Result<()> {
        let me = self.user_id().to_owned();
        self.remove_member(conversation_id, &me).await?;
        self.inner.store.forget_channel(conversation_id).await
    }

    /// Makes a member `admin` or `member` (owner only).
    pub async fn set_role(&self, conversation_id: &str, user_id: &str, role: &str) -> Result<()> {
        let id = path_id("conversation_id", conversation_id)?;
        let user = path_id("user_id", user_id)?;
        self.inner
            .api
            .call_unit(
                Method::PUT,
                &format!("/v1/conversations/{id}/members/{user}/role"),
                Some(&SetRole {
                    role: role.parse()?,
                }),
            )
            .await
    }

    /// Makes another member the owner; this account becomes an admin.
    pub async fn transfer_ownership(&self, conversation_id: &str, user_id: &str) -> Result<()> {
        let id = path_id("conversation_id", conversation_id)?;
        self.inner
            .api
            .call_unit(
                Method::POST,
                &format!("/v1/conversations/{id}/owner"),
                Some(&TransferOwnership {
                    user_id: user_id.parse()?,
                }),
            )
            .await
    }

    /// An invite link token for a group (owner or admin); `None`s take the
    /// server's defaults (100 uses, 7 days).
    pub async fn create_invite(
        &self,
        conversation_id: &str,
        max_uses: Option<i64>,
        ttl_secs: Option<i64>,
    ) -> Result<Invite> {
        let id = path_id("conversation_id", conversation_id)?;
        self.inner
            .api
            .post(
                &format!("/v1/conversations/{id}/invites"),
                &CreateInvite { max_uses, ttl_secs },
            )
            .await
    }

    /// Joins a group with an invite token.
    pub async fn join_invite(&self, token: &str) -> Result<Conversation> {
        let token = path_id("invite token", token)?;
        let c: Conversation = self
            .inner
            .api
            .call::<(), _>(Method::POST, &format!("/v1/invites/{token}/join"), None)
            .await?;
        self.inner
            .store
            .save_conversation(&c, self.user_id())
            .await?;
        self.inner.note_channel(&c).await?;
        Ok(c)
    }

    /// Every active device of every member of a group, from the server
    /// (refreshing the cache the group's key sharing uses).
    pub async fn group_devices(&self, conversation_id: &str) -> Result<Vec<PublicDevice>> {
        self.inner.fetch_group_devices(conversation_id).await
    }

    /// Writes a text for a group to the local outbox and returns its
    /// `client_msg_id` at once; it is encrypted (Megolm, keys shared first)
    /// and sent in the background, in order with everything else queued.
    pub async fn queue_group_text(&self, conversation_id: &str, text: &str) -> Result<String> {
        self.queue(Target::Group(conversation_id), text, None, None)
            .await
    }

    /// Sends a text to a group and waits until the server has accepted it.
    pub async fn send_group_text(&self, conversation_id: &str, text: &str) -> Result<SentMessage> {
        self.send_and_wait(Target::Group(conversation_id), text, None)
            .await
    }

    /// The Megolm sessions this device can decrypt in a conversation (its
    /// own and those shared with it), oldest first.
    pub async fn group_session_ids(&self, conversation_id: &str) -> Result<Vec<String>> {
        self.inner.store.group_sessions_of(conversation_id).await
    }

    /// This device's current outbound Megolm session in a group, if any.
    pub async fn outbound_group_session(&self, conversation_id: &str) -> Result<Option<String>> {
        Ok(self
            .inner
            .store
            .group_outbound(conversation_id)
            .await?
            .map(|o| o.session_id))
    }

    // ---------- channels ----------

    /// Creates a channel owned by this account, with `subscriber_user_ids`
    /// as its first subscribers. A public channel's posts are plaintext to
    /// whoever subscribes (and to the server); a private channel is joined
    /// by invite and its posts are encrypted (see the `channel` module).
    pub async fn create_channel(
        &self,
        title: &str,
        public: bool,
        subscriber_user_ids: &[String],
    ) -> Result<Conversation> {
        let visibility = if public { "public" } else { "private" };
        self.create_conversation(
            "channel",
            Some(title),
            Some(visibility),
            subscriber_user_ids,
        )
        .await
    }

    /// Subscribes to a public channel.
    pub async fn subscribe_channel(&self, conversation_id: &str) -> Result<Conversation> {
        let id = path_id("conversation_id", conversation_id)?;
        let c: Conversation = self
            .inner
            .api
            .call::<(), _>(
                Method::POST,
                &format!("/v1/conversations/{id}/subscribe"),
                None,
            )
            .await?;
        self.inner
            .store
            .save_conversation(&c, self.user_id())
            .await?;
        self.inner.note_channel(&c).await?;
        Ok(c)
    }

    /// Queues a post to a channel (owner or publisher) and returns its
    /// `client_msg_id` at once; it leaves in the background.
    pub async fn queue_post(&self, conversation_id: &str, text: &str) -> Result<String> {
        self.queue(Target::Channel(conversation_id), text, None, None)
            .await
    }

    /// Posts to a channel (owner or publisher) and waits until the server
    /// has accepted it.
    pub async fn post(&self, conversation_id: &str, text: &str) -> Result<SentMessage> {
        self.send_and_wait(Target::Channel(conversation_id), text, None)
            .await
    }

    /// Reads what is new in a channel's log (posts are also pushed live
    /// while connected, and every known channel is read after a
    /// reconnect); returns how many new posts were read. They arrive as
    /// [`ClientEvent::Message`] and are in [`Client::history`].
    pub async fn read_channel(&self, conversation_id: &str) -> Result<usize> {
        self.inner.read_channel_log(conversation_id).await
    }

    // ---------- devices and keys ----------

    /// This account's devices.
    pub async fn devices(&self) -> Result<Vec<DeviceInfo>> {
        let list: DeviceList = self.inner.api.get("/v1/devices").await?;
        Ok(list.devices)
    }

    /// Revokes one of this account's devices (its keys leave the directory).
    pub async fn revoke_device(&self, device_id: &str) -> Result<()> {
        self.inner
            .api
            .call_unit::<()>(Method::DELETE, &format!("/v1/devices/{device_id}"), None)
            .await
    }

    /// A user's active devices from the directory (refreshing the local cache).
    pub async fn user_devices(&self, user_id: &str) -> Result<Vec<PublicDevice>> {
        self.inner.fetch_devices(user_id).await
    }

    /// Uploads one-time keys when the server holds fewer than its low
    /// watermark (also done by itself after connecting and after pre-key
    /// messages). Returns how many were uploaded.
    pub async fn replenish_one_time_keys(&self) -> Result<usize> {
        self.inner.replenish_keys().await
    }

    /// The 60-digit safety number of this account and `peer_user_id`, over
    /// both users' current device keys: compare it out of band; it changes
    /// whenever either side's devices change.
    pub async fn safety_number(&self, peer_user_id: &str) -> Result<String> {
        let mine = self.inner.fetch_devices(self.user_id()).await?;
        let theirs = self.inner.fetch_devices(peer_user_id).await?;
        let keys = |d: Vec<PublicDevice>| -> Vec<DeviceKeys> {
            d.into_iter()
                .map(|d| DeviceKeys {
                    identity_key: d.identity_key,
                    signing_key: d.signing_key,
                })
                .collect()
        };
        Ok(vestnik_crypto::safety_number(
            self.user_id(),
            &keys(mine),
            peer_user_id,
            &keys(theirs),
        )?)
    }

    // ---------- two-factor authentication ----------

    /// Starts TOTP setup: a secret for the authenticator app.
    pub async fn setup_totp(&self) -> Result<TotpSetup> {
        self.inner
            .api
            .call::<(), _>(Method::POST, "/v1/auth/2fa/setup", None)
            .await
    }

    /// Confirms TOTP setup with a current code; returns the recovery codes.
    pub async fn enable_totp(&self, code: &str) -> Result<RecoveryCodes> {
        self.inner
            .api
            .post("/v1/auth/2fa/enable", &CodeRequest { code: code.into() })
            .await
    }

    /// Turns TOTP off (with a current code or a recovery code).
    pub async fn disable_totp(&self, code: &str) -> Result<()> {
        self.inner
            .api
            .call_unit(
                Method::POST,
                "/v1/auth/2fa/disable",
                Some(&CodeRequest { code: code.into() }),
            )
            .await
    }

    /// Ends this device's session on the server and closes the client. The
    /// store keeps the history but can no longer be opened as a device.
    pub async fn logout(self) -> Result<()> {
        self.disconnect().await;
        let r = self
            .inner
            .api
            .call_unit::<()>(Method::POST, "/v1/auth/logout", None)
            .await;
        if r.is_ok() {
            self.inner.api.clear_tokens().await?;
        }
        self.close().await;
        r
    }
}

/// The body that creates a group or channel.
fn new_conversation(
    kind: &str,
    title: Option<&str>,
    visibility: Option<&str>,
    member_user_ids: &[String],
) -> Result<CreateConversation> {
    let member_user_ids = member_user_ids
        .iter()
        .map(|u| u.parse())
        .collect::<std::result::Result<Vec<vestnik_proto::UserId>, _>>()?;
    let title = title.map(str::to_owned);
    Ok(match kind {
        "group" => CreateConversation::Group(vestnik_proto::NewGroupSettings {
            member_user_ids,
            title,
            topic: None,
        }),
        "channel" => CreateConversation::Channel(vestnik_proto::NewChannelSettings {
            member_user_ids,
            title,
            topic: None,
            visibility: visibility.map(str::parse).transpose()?,
        }),
        other => {
            return Err(ClientError::InvalidInput(format!(
                "kind: expected group or channel, got {other:?}"
            )))
        }
    })
}
