//! Muting a member for a while, and deleting a message for everyone.

use vestnik_core::ids;
use vestnik_core::limits::{MUTE_MAX_SECS, MUTE_MIN_SECS};
use vestnik_proto::{ConversationId, MessageId, MuteMember, SystemEvent, UserId};
use vestnik_store::SessionAuth;

use crate::roles::*;
use crate::service::bad;
use crate::{Realtime, RealtimeError};

impl Realtime {
    /// Mutes `user_id` for `duration_secs`: their messages and posts here
    /// are refused (403 `muted`) until then. The owner may mute anyone but
    /// themselves, a group admin plain members.
    pub async fn mute(
        &self,
        auth: &SessionAuth,
        conversation_id: &ConversationId,
        user_id: &UserId,
        req: &MuteMember,
    ) -> Result<(), RealtimeError> {
        if !(MUTE_MIN_SECS..=MUTE_MAX_SECS).contains(&req.duration_secs) {
            return Err(bad(format!(
                "duration_secs: expected {MUTE_MIN_SECS}-{MUTE_MAX_SECS}, got {}",
                req.duration_secs
            )));
        }
        let kind = self
            .require_may_moderate(auth, conversation_id, user_id)
            .await?;
        let until = self.clock.now_ms() + req.duration_secs * 1000;
        if !self
            .store
            .set_mute(conversation_id, user_id, Some(until))
            .await?
        {
            return Err(RealtimeError::NoSuchUser);
        }
        self.moderation_event(
            auth,
            conversation_id,
            &kind,
            "member_muted",
            user_id,
            Some(until),
        )
        .await
    }

    /// Lifts a mute.
    pub async fn unmute(
        &self,
        auth: &SessionAuth,
        conversation_id: &ConversationId,
        user_id: &UserId,
    ) -> Result<(), RealtimeError> {
        let kind = self
            .require_may_moderate(auth, conversation_id, user_id)
            .await?;
        if !self.store.set_mute(conversation_id, user_id, None).await? {
            return Err(RealtimeError::NoSuchUser);
        }
        self.moderation_event(
            auth,
            conversation_id,
            &kind,
            "member_unmuted",
            user_id,
            None,
        )
        .await
    }

    /// Deletes a message for everyone: its stored copy and queued envelopes
    /// go, and members get a `message_deleted` event (their clients remove
    /// it); in a channel, a deletion record in the log instead. The sender may within `message_edit_window_secs`; a group's
    /// owner and admins (a channel's owner) at any time.
    pub async fn delete_for_everyone(
        &self,
        auth: &SessionAuth,
        conversation_id: &ConversationId,
        message_id: &MessageId,
    ) -> Result<(), RealtimeError> {
        let role = self
            .store
            .member_role(conversation_id, &auth.user_id)
            .await?
            .ok_or(RealtimeError::NotMember)?;
        let meta = self
            .store
            .message_meta(message_id)
            .await?
            .filter(|m| m.conversation_id == conversation_id.as_str())
            .ok_or(RealtimeError::MessageNotFound)?;
        let kind = self
            .store
            .conversation(conversation_id)
            .await?
            .ok_or(RealtimeError::NotMember)?
            .kind;
        let own_in_time = meta.sender_user_id == auth.user_id
            && self.clock.now_ms() - meta.created_at <= self.settings.edit_window_ms;
        let manager = kind != "direct" && is_manager(&kind, &role);
        if !(own_in_time || manager) {
            return Err(RealtimeError::Forbidden(format!(
                "only the sender within {} s, or a manager of the group, may delete it",
                self.settings.edit_window_ms / 1000
            )));
        }
        self.store
            .delete_for_everyone(conversation_id, message_id)
            .await?;
        if kind == "channel" {
            // Subscribers read the log: the deletion goes there, not to
            // every subscriber's queue.
            return self.log_deletion(auth, conversation_id, message_id).await;
        }
        let ev = SystemEvent {
            event_id: ids::new_id(),
            conversation_id: conversation_id.to_string(),
            event: "message_deleted".into(),
            actor_user_id: auth.user_id.clone(),
            target_user_id: Some(meta.sender_user_id),
            role: None,
            until: None,
            message_id: Some(message_id.to_string()),
            at: self.clock.now_ms(),
        };
        let users = self.store.members(conversation_id).await?;
        self.queue_event(ev, &users).await
    }

    /// The conversation's kind, when the caller may mute `user_id` there.
    async fn require_may_moderate(
        &self,
        auth: &SessionAuth,
        conversation_id: &ConversationId,
        user_id: &UserId,
    ) -> Result<String, RealtimeError> {
        let (kind, role) = self.group_role(auth, conversation_id).await?;
        Self::require_manager(&kind, &role)?;
        if *user_id == auth.user_id {
            return Err(bad("user_id: you cannot mute yourself"));
        }
        let target = self
            .store
            .member_role(conversation_id, user_id)
            .await?
            .ok_or(RealtimeError::NoSuchUser)?;
        if !may_act_on(&kind, &role, &target) {
            return Err(RealtimeError::Forbidden(
                "the owner may mute anyone; a group admin only plain members".into(),
            ));
        }
        Ok(kind)
    }

    async fn moderation_event(
        &self,
        auth: &SessionAuth,
        conversation_id: &str,
        kind: &str,
        event: &str,
        user_id: &UserId,
        until: Option<i64>,
    ) -> Result<(), RealtimeError> {
        let users = self
            .audience(conversation_id, kind, &auth.user_id, &[user_id.to_string()])
            .await?;
        let ev = SystemEvent {
            event_id: ids::new_id(),
            conversation_id: conversation_id.to_owned(),
            event: event.to_owned(),
            actor_user_id: auth.user_id.clone(),
            target_user_id: Some(user_id.to_string()),
            role: None,
            until,
            message_id: None,
            at: self.clock.now_ms(),
        };
        self.queue_event(ev, &users).await
    }
}
