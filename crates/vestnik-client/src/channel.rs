//! Channels: one author, many readers, fan-out on read.
//!
//! **Public channels** carry the v1 payload JSON (kind `text`) in the clear,
//! base64: anyone subscribed may read them, and the server could too (that
//! is what "public" means; it is said in the UI).
//!
//! **Private channels** reuse the group machinery: each publishing device
//! has an outbound Megolm session per channel (the "channel key"), shared
//! over Olm with every member device (`GET /v1/conversations/{id}/devices`
//! lists them all for the owner and publishers) before a post leaves. The
//! server sends a channel's membership events to its owner and publishers
//! only, and a `member_removed`/`member_left` event flags the session for
//! rotation exactly as in a group, so the next post is under a key the
//! removed subscriber never got. A subscriber's device installs keys only
//! from the channel's member devices (which, for a subscriber, are the
//! owner's and publishers'), and asks the publishing device for a key it
//! lacks.
//!
//! **Reading.** Posts come live (`channel_post`) while connected and from
//! the log (`GET /v1/conversations/{id}/posts?after=`) otherwise; both take
//! the same path and are deduplicated by message id. Only log reads move a
//! channel's cursor, so whatever a dropped connection missed is read on the
//! next reconnect (every known channel's log is read after `synced`).
use std::sync::Arc;

use base64::Engine as _;
use vestnik_proto::{
    ChannelPost, ChannelPosts, Conversation, IncomingMessage, SendKind, SendMessage, Sent,
    SystemEvent,
};

use crate::engine::Inner;
use crate::error::{ClientError, Result};
use crate::group::path_id;
use crate::payload::{Decrypted, Payload, KIND_TEXT};
use crate::store::OutboxItem;
use crate::types::{ClientEvent, Direction};

/// A post encrypted with a publisher's Megolm session (private channels).
pub(crate) const MSG_TYPE_CHANNEL_ENCRYPTED: u8 = 2;
/// A plaintext post, base64 (public channels).
pub(crate) const MSG_TYPE_PLAIN: u8 = 3;
/// A deletion record: the post whose id is the body was deleted.
pub(crate) const MSG_TYPE_DELETION: u8 = 4;
/// Posts per log page (the server's maximum is 500).
const LOG_PAGE: i64 = 500;
/// Pages per log read: one read catches up by at most this many pages, so
/// a huge backlog does not hold the caller; the next read goes on.
const MAX_PAGES_PER_READ: usize = 20;

fn to_incoming(post: &ChannelPost) -> IncomingMessage {
    IncomingMessage {
        message_id: post.message_id.clone(),
        conversation_id: post.conversation_id.clone(),
        seq: post.seq,
        sender_user_id: post.sender_user_id.clone(),
        sender_device_id: post.sender_device_id.clone(),
        msg_type: post.msg_type,
        ciphertext: post.ciphertext.clone(),
        sent_at: post.sent_at,
    }
}

impl Inner {
    /// Remembers a conversation the server returned (and, for a channel,
    /// that this device reads it).
    pub(crate) async fn remember(&self, c: &Conversation, me: &str) -> Result<()> {
        self.store.save_conversation(c, me).await?;
        self.note_channel(c).await
    }

    /// Remembers a channel this device reads (from a conversation the
    /// server returned); anything else is left alone.
    pub(crate) async fn note_channel(&self, c: &Conversation) -> Result<()> {
        if c.kind == "channel" {
            let public = c.visibility.as_deref() == Some("public");
            self.store.save_channel(&c.id, public).await?;
        }
        Ok(())
    }

    /// Whether a channel is public, from the store or else the server.
    pub(crate) async fn channel_is_public(&self, conversation_id: &str) -> Result<bool> {
        if let Some((public, _)) = self.store.channel(conversation_id).await? {
            return Ok(public);
        }
        let id = path_id("conversation_id", conversation_id)?;
        let c: Conversation = self.api.get(&format!("/v1/conversations/{id}")).await?;
        if c.kind != "channel" {
            return Err(ClientError::InvalidInput(format!(
                "conversation {conversation_id}: expected a channel, got a {}",
                c.kind
            )));
        }
        self.note_channel(&c).await?;
        Ok(c.visibility.as_deref() == Some("public"))
    }

    /// Takes a queued post to the server: in the clear for a public
    /// channel, under this device's Megolm session (keys shared first) for
    /// a private one.
    pub(crate) async fn deliver_channel(&self, item: OutboxItem) -> Result<Sent> {
        let Some(conversation_id) = item.conversation_id.clone() else {
            return Err(ClientError::InvalidInput(
                "channel post: expected a conversation id, got none".into(),
            ));
        };
        if !self.channel_is_public(&conversation_id).await? {
            return self.deliver_megolm(item, SendKind::Channel).await;
        }
        let payload = Payload::message(&item, &conversation_id)?.to_bytes();
        let ciphertext = base64::engine::general_purpose::STANDARD.encode(&*payload);
        self.transmit(SendMessage {
            client_msg_id: item.client_msg_id.clone(),
            conversation_id: conversation_id.parse()?,
            kind: SendKind::Channel,
            envelopes: Vec::new(),
            ciphertext: Some(ciphertext),
        })
        .await
    }

    /// Handles one post, live or from the log. Ok(None): ours, a
    /// duplicate, or waiting for its key.
    pub(crate) async fn handle_channel_post(
        self: &Arc<Self>,
        post: &ChannelPost,
    ) -> Result<Option<ClientEvent>> {
        // Our own posts are in history since they were queued.
        if post.sender_device_id == self.account.device_id {
            return Ok(None);
        }
        let m = to_incoming(post);
        match post.msg_type {
            MSG_TYPE_CHANNEL_ENCRYPTED => self.handle_group_message(&m, false).await,
            MSG_TYPE_PLAIN => self.handle_public_post(&m).await,
            // Handled as groups' `message_deleted` events are (the record's
            // id makes it once only); the server wrote it, as it writes
            // those events.
            MSG_TYPE_DELETION => {
                let event = SystemEvent {
                    event_id: post.message_id.clone(),
                    conversation_id: post.conversation_id.clone(),
                    event: "message_deleted".into(),
                    actor_user_id: post.sender_user_id.clone(),
                    target_user_id: None,
                    role: None,
                    until: None,
                    message_id: Some(post.ciphertext.clone()),
                    at: post.sent_at,
                };
                self.handle_system(event).await
            }
            other => {
                if self.store.is_seen(&m.message_id).await? {
                    return Ok(None);
                }
                self.reject(
                    &m,
                    format!("channel post: expected msg_type 2, 3 or 4, got {other}"),
                    None,
                )
                .await
            }
        }
    }

    async fn handle_public_post(&self, m: &IncomingMessage) -> Result<Option<ClientEvent>> {
        // Under the device lock: `store_incoming` writes the device state
        // back, which must not overwrite a concurrent change.
        let device = self.device.lock().await;
        if self.store.is_seen(&m.message_id).await? {
            return Ok(None);
        }
        let payload = base64::engine::general_purpose::STANDARD
            .decode(&m.ciphertext)
            .map_err(|e| format!("public post: expected base64, got: {e}"))
            .and_then(|bytes| Payload::parse(&bytes, &m.conversation_id))
            .and_then(|p| {
                if p.kind == KIND_TEXT {
                    Ok(p)
                } else {
                    Err(format!(
                        "public post: expected kind \"text\", got {:?}",
                        p.kind
                    ))
                }
            });
        let payload = match payload {
            Ok(p) => p,
            Err(reason) => {
                drop(device);
                return self.reject(m, reason, None).await;
            }
        };
        let direction = if m.sender_user_id == self.account.user_id {
            Direction::Outgoing
        } else {
            Direction::Incoming
        };
        let blob = self.store.seal_device(&device)?;
        let decrypted = Decrypted {
            m,
            payload: &payload,
            direction,
        };
        let row = decrypted.row(None, None);
        let stored = self.store.store_incoming(&row, &blob).await?;
        drop(device);
        Ok((stored != crate::store::Stored::Ignored).then(|| decrypted.event(false, None)))
    }

    /// Reads a channel's log from its cursor, handling (and emitting) every
    /// post; returns how many new posts were read.
    pub(crate) async fn read_channel_log(self: &Arc<Self>, conversation_id: &str) -> Result<usize> {
        let id = path_id("conversation_id", conversation_id)?.to_owned();
        self.channel_is_public(&id).await?;
        let mut read = 0;
        for _ in 0..MAX_PAGES_PER_READ {
            let cursor = self.store.channel(&id).await?.map_or(0, |(_, c)| c);
            let page: ChannelPosts = self
                .api
                .get(&format!(
                    "/v1/conversations/{id}/posts?after={cursor}&limit={LOG_PAGE}"
                ))
                .await?;
            for post in &page.posts {
                if post.conversation_id != id {
                    return Err(ClientError::Protocol(format!(
                        "log of {id}: got a post of {}",
                        post.conversation_id
                    )));
                }
                if let Some(e) = self.handle_channel_post(post).await? {
                    if matches!(e, ClientEvent::Message(_)) {
                        read += 1;
                    }
                    self.emit(e);
                }
            }
            if let Some(last) = page.posts.last() {
                self.store.advance_channel_cursor(&id, last.seq).await?;
            }
            if !page.more || page.posts.is_empty() {
                break;
            }
        }
        Ok(read)
    }

    /// After (re)connecting: reads every known channel's log in the
    /// background (what was posted while this device was away).
    pub(crate) fn spawn_channel_catch_up(self: &Arc<Self>) {
        let inner = self.clone();
        tokio::spawn(async move {
            let ids = match inner.store.channel_ids().await {
                Ok(ids) => ids,
                Err(e) => return tracing::warn!(error = %e, "listing channels failed"),
            };
            for id in ids {
                match inner.read_channel_log(&id).await {
                    Ok(_) => {}
                    // Removed or the channel is gone: stop following it.
                    Err(e) if e.code() == Some("conversation_not_found") => {
                        if let Err(e) = inner.store.forget_channel(&id).await {
                            tracing::warn!(error = %e, "forgetting a channel failed");
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, conversation_id = %id, "channel catch-up failed")
                    }
                }
            }
        });
    }
}
