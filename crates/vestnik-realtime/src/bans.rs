//! Ban lists: a banned user is removed and kept out of a group or channel,
//! whatever invite or add they try, until a manager lifts the ban.

use vestnik_proto::{Ban, BanList, ConversationId, UserId};
use vestnik_store::SessionAuth;

use crate::roles::*;
use crate::service::bad;
use crate::{Realtime, RealtimeError};

impl Realtime {
    /// Bans `user_id` (member or not) and removes them if a member; their
    /// invites stop working. The owner may ban anyone but themselves; a
    /// group admin only plain members and outsiders.
    pub async fn ban(
        &self,
        auth: &SessionAuth,
        conversation_id: &ConversationId,
        user_id: &UserId,
    ) -> Result<(), RealtimeError> {
        let (kind, role) = self.group_role(auth, conversation_id).await?;
        Self::require_manager(&kind, &role)?;
        if *user_id == auth.user_id {
            return Err(bad("user_id: you cannot ban yourself"));
        }
        self.require_active_user(user_id).await?;
        let target = self.store.member_role(conversation_id, user_id).await?;
        if !target
            .as_deref()
            .is_none_or(|t| may_act_on(&kind, &role, t))
        {
            return Err(RealtimeError::Forbidden(
                "the owner may ban anyone; a group admin only plain members".into(),
            ));
        }
        let was_member = self
            .store
            .ban(conversation_id, user_id, &auth.user_id, self.clock.now_ms())
            .await?;
        // The banned user learns it only when they were a member (an
        // outsider's ban is the managers' business).
        let also = if was_member {
            vec![user_id.to_string()]
        } else {
            Vec::new()
        };
        self.announce(
            &auth.user_id,
            conversation_id,
            &kind,
            "member_banned",
            Some(user_id),
            None,
            &also,
        )
        .await
    }

    /// Lifts a ban (the user may then be added or join again); managers only.
    pub async fn unban(
        &self,
        auth: &SessionAuth,
        conversation_id: &ConversationId,
        user_id: &UserId,
    ) -> Result<(), RealtimeError> {
        let (kind, role) = self.group_role(auth, conversation_id).await?;
        Self::require_manager(&kind, &role)?;
        if !self.store.unban(conversation_id, user_id).await? {
            return Err(RealtimeError::NoSuchUser);
        }
        self.announce(
            &auth.user_id,
            conversation_id,
            &kind,
            "member_unbanned",
            Some(user_id),
            None,
            &[],
        )
        .await
    }

    /// The ban list, newest first; managers only.
    pub async fn bans(
        &self,
        auth: &SessionAuth,
        conversation_id: &ConversationId,
    ) -> Result<BanList, RealtimeError> {
        let (kind, role) = self.group_role(auth, conversation_id).await?;
        Self::require_manager(&kind, &role)?;
        Ok(BanList {
            bans: self
                .store
                .bans(conversation_id)
                .await?
                .into_iter()
                .map(|b| Ban {
                    user_id: b.user_id,
                    banned_by: b.banned_by,
                    created_at: b.created_at,
                })
                .collect(),
        })
    }
}
