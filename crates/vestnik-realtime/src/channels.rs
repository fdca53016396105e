//! Channels: fan-out on read. A post is one message row (no per-subscriber
//! rows at all); subscribers read the log by seq, and the devices of online
//! subscribers get a live `channel_post` push.
use tokio::sync::oneshot;
use vestnik_core::ids;
use vestnik_proto::{
    ChannelPost, ChannelPosts, Conversation, ConversationId, SendMessage, Sent, ServerFrame,
};
use vestnik_store::{JoinOutcome, NewMessage, SessionAuth};

use crate::service::bad;
use crate::{Realtime, RealtimeError};

/// Encrypted with the channel key (private channels).
pub const MSG_TYPE_CHANNEL_ENCRYPTED: i64 = 2;
/// Plaintext, base64 (public channels).
pub const MSG_TYPE_PLAIN: i64 = 3;
/// A deletion record: the post whose id is its body was deleted for
/// everyone. It takes its own seq, so a subscriber reading the log from
/// where it left off learns of deletions of posts it already has.
pub const MSG_TYPE_DELETION: i64 = 4;
/// Posts per page of a log read.
pub const LOG_PAGE_MAX: i64 = 500;

impl Realtime {
    /// A post by the owner or a publisher: O(1) writes however many subscribe.
    pub(crate) async fn publish(
        &self,
        auth: &SessionAuth,
        msg: SendMessage,
    ) -> Result<Sent, RealtimeError> {
        let (c, role) = self.group_and_role(auth, &msg.conversation_id).await?;
        if c.kind != "channel" {
            return Err(bad("kind: channel posts go to channels"));
        }
        if role != "owner" && role != "publisher" {
            return Err(RealtimeError::Forbidden(
                "only the channel's owner and publishers may post".into(),
            ));
        }
        if let Some(until) = self
            .store
            .muted_until(&msg.conversation_id, &auth.user_id)
            .await?
        {
            if until > self.clock.now_ms() {
                return Err(RealtimeError::Muted { until });
            }
        }
        let public = c.visibility.as_deref() == Some("public");
        let msg_type = if public {
            MSG_TYPE_PLAIN
        } else {
            MSG_TYPE_CHANNEL_ENCRYPTED
        };
        let body = msg.ciphertext.unwrap_or_default();
        let new = NewMessage {
            id: ids::new_id(),
            conversation_id: msg.conversation_id.to_string(),
            sender_user_id: auth.user_id.clone(),
            sender_device_id: auth.device_id.clone(),
            client_msg_id: msg.client_msg_id.clone(),
            created_at: self.clock.now_ms(),
            envelopes: Vec::new(),
            group_body: Some((msg_type, body.clone())),
        };
        let (tx, rx) = oneshot::channel();
        self.writer.submit(new, tx)?;
        let stored = rx.await.map_err(|_| RealtimeError::Unavailable)??;
        if !stored.duplicate {
            metrics::counter!("vestnik_channel_posts_total").increment(1);
            let post = ChannelPost {
                message_id: stored.message_id.clone(),
                conversation_id: msg.conversation_id.to_string(),
                seq: stored.seq,
                sender_user_id: auth.user_id.clone(),
                sender_device_id: auth.device_id.clone(),
                msg_type: msg_type as u8,
                ciphertext: body,
                sent_at: stored.created_at,
            };
            self.push_to_members(auth, post).await?;
        }
        Ok(Sent {
            client_msg_id: msg.client_msg_id,
            message_id: stored.message_id,
            conversation_id: msg.conversation_id.into(),
            seq: stored.seq,
            sent_at: stored.created_at,
        })
    }

    /// Appends a deletion record for `message_id` to the channel's log and
    /// pushes it to the members' devices online: fan-out on read, like
    /// posts, so a deletion costs O(1) writes however many subscribe.
    pub(crate) async fn log_deletion(
        &self,
        auth: &SessionAuth,
        conversation_id: &ConversationId,
        message_id: &str,
    ) -> Result<(), RealtimeError> {
        let new = NewMessage {
            id: ids::new_id(),
            conversation_id: conversation_id.to_string(),
            sender_user_id: auth.user_id.clone(),
            sender_device_id: auth.device_id.clone(),
            // A retry of the same deletion is answered with the first record.
            client_msg_id: format!("deleted:{message_id}"),
            created_at: self.clock.now_ms(),
            envelopes: Vec::new(),
            group_body: Some((MSG_TYPE_DELETION, message_id.to_owned())),
        };
        let (tx, rx) = oneshot::channel();
        self.writer.submit(new, tx)?;
        let stored = rx.await.map_err(|_| RealtimeError::Unavailable)??;
        if stored.duplicate {
            return Ok(());
        }
        let record = ChannelPost {
            message_id: stored.message_id,
            conversation_id: conversation_id.to_string(),
            seq: stored.seq,
            sender_user_id: auth.user_id.clone(),
            sender_device_id: auth.device_id.clone(),
            msg_type: MSG_TYPE_DELETION as u8,
            ciphertext: message_id.to_owned(),
            sent_at: stored.created_at,
        };
        self.push_to_members(auth, record).await
    }

    /// Pushes a log entry to the channel members' devices that are online,
    /// but the one that wrote it.
    async fn push_to_members(
        &self,
        auth: &SessionAuth,
        entry: ChannelPost,
    ) -> Result<(), RealtimeError> {
        let devices = self.store.member_devices(&entry.conversation_id).await?;
        let frame = ServerFrame::ChannelPost(entry);
        self.deliver(
            devices
                .into_iter()
                .filter(|d| *d != auth.device_id)
                .map(|d| (d, frame.clone()))
                .collect(),
        )
        .await;
        Ok(())
    }

    /// A page of a channel's log after `after` (a seq), for its members.
    pub async fn posts(
        &self,
        auth: &SessionAuth,
        conversation_id: &ConversationId,
        after: i64,
        limit: i64,
    ) -> Result<ChannelPosts, RealtimeError> {
        let (kind, _) = self.group_role(auth, conversation_id).await?;
        if kind != "channel" {
            return Err(bad("posts: only channels keep a readable log"));
        }
        if after < 0 {
            return Err(bad(format!("after: expected a seq >= 0, got {after}")));
        }
        let limit = limit.clamp(1, LOG_PAGE_MAX);
        let mut rows = self.store.log(conversation_id, after, limit + 1).await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        Ok(ChannelPosts {
            posts: rows
                .into_iter()
                .map(|r| ChannelPost {
                    message_id: r.id,
                    conversation_id: conversation_id.to_string(),
                    seq: r.seq,
                    sender_user_id: r.sender_user_id,
                    sender_device_id: r.sender_device_id,
                    msg_type: u8::try_from(r.msg_type).unwrap_or(0),
                    ciphertext: r.body,
                    sent_at: r.created_at,
                })
                .collect(),
            more,
        })
    }

    /// Subscribes to a public channel (private ones take an invite link).
    pub async fn subscribe(
        &self,
        auth: &SessionAuth,
        conversation_id: &ConversationId,
    ) -> Result<Conversation, RealtimeError> {
        let c = self
            .store
            .conversation(conversation_id)
            .await?
            .ok_or(RealtimeError::NotMember)?;
        // A private channel looks like no channel at all to outsiders.
        if c.kind != "channel" || c.visibility.as_deref() != Some("public") {
            return Err(RealtimeError::NotMember);
        }
        let outcome = self
            .store
            .add_member(
                conversation_id,
                &auth.user_id,
                "subscriber",
                self.clock.now_ms(),
                i64::MAX,
            )
            .await?;
        if outcome == JoinOutcome::Banned {
            return Err(RealtimeError::Banned);
        }
        if outcome == JoinOutcome::Joined {
            self.announce(
                &auth.user_id,
                conversation_id,
                "channel",
                "member_joined",
                None,
                None,
                &[],
            )
            .await?;
        }
        self.conversation_detail(auth, conversation_id).await
    }
}
