//! Sending and reading messages: every send is written to the local outbox
//! first (direct, group and channel alike, so one order holds for all),
//! then waited for if the caller wants; history comes from the local store;
//! `sync` is the REST alternative to the socket.
use reqwest::Method;
use tokio::sync::oneshot;
use vestnik_proto::{AckRequest, PendingPage, ServerFrame};

use super::{lock, Client, Target};
use crate::config::MAX_TEXT_BYTES;
use crate::error::{ClientError, Result};
use crate::group::path_id;
use crate::store::OutboxKind;
use crate::types::{HistoryEntry, SentMessage};

impl Client {
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
        self.queue_edit(target, text, attachment, watcher, None)
            .await
    }

    /// [`Self::queue`], for an edit of `edit_of` when given.
    pub(crate) async fn queue_edit(
        &self,
        target: Target<'_>,
        text: &str,
        attachment: Option<&crate::types::Attachment>,
        watcher: Option<crate::engine::SendWatcher>,
        edit_of: Option<&str>,
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
                edit_of,
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
        self.send_and_wait_edit(target, text, attachment, None)
            .await
    }

    /// [`Self::send_and_wait`], for an edit of `edit_of` when given.
    pub(crate) async fn send_and_wait_edit(
        &self,
        target: Target<'_>,
        text: &str,
        attachment: Option<&crate::types::Attachment>,
        edit_of: Option<&str>,
    ) -> Result<SentMessage> {
        let (tx, rx) = oneshot::channel();
        self.queue_edit(target, text, attachment, Some(tx), edit_of)
            .await?;
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
}
