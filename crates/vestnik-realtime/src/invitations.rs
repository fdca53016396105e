//! Invitations: what an add becomes when the user's `group_adds` setting
//! does not let the adder add them. The user accepts (and joins) or
//! declines; the adder is not told which.

use vestnik_core::ids;
use vestnik_core::limits::GROUP_INVITATION_TTL_SECS;
use vestnik_core::Action;
use vestnik_proto::{
    Conversation, ConversationId, GroupAddSettings, Invitation, InvitationList, SystemEvent,
};
use vestnik_store::{InvitationRow, JoinOutcome, SessionAuth};

use crate::roles::plain_role;
use crate::{Realtime, RealtimeError};

impl Realtime {
    /// Records an invitation for each of `users` and tells their devices
    /// (an `invited` system event, to them alone).
    pub(crate) async fn invite_to_group(
        &self,
        auth: &SessionAuth,
        conversation_id: &str,
        users: &[String],
    ) -> Result<(), RealtimeError> {
        let now = self.clock.now_ms();
        for user in users {
            self.store
                .put_invitation(&InvitationRow {
                    conversation_id: conversation_id.to_owned(),
                    user_id: user.clone(),
                    invited_by: Some(auth.user_id.clone()),
                    created_at: now,
                    expires_at: now + GROUP_INVITATION_TTL_SECS * 1000,
                })
                .await?;
            let ev = SystemEvent {
                event_id: ids::new_id(),
                conversation_id: conversation_id.to_owned(),
                event: "invited".to_owned(),
                actor_user_id: auth.user_id.clone(),
                target_user_id: Some(user.clone()),
                role: None,
                until: None,
                message_id: None,
                at: now,
            };
            self.queue_event(ev, std::slice::from_ref(user)).await?;
        }
        Ok(())
    }

    /// The caller's pending invitations, newest first.
    pub async fn invitations(&self, auth: &SessionAuth) -> Result<InvitationList, RealtimeError> {
        let mut invitations = Vec::new();
        for row in self
            .store
            .invitations(&auth.user_id, self.clock.now_ms())
            .await?
        {
            // A conversation deleted meanwhile took its invitations along.
            let Some(c) = self.store.conversation(&row.conversation_id).await? else {
                continue;
            };
            invitations.push(Invitation {
                conversation_id: row.conversation_id,
                kind: c.kind,
                title: c.title,
                invited_by: row.invited_by,
                created_at: row.created_at,
                expires_at: row.expires_at,
            });
        }
        Ok(InvitationList { invitations })
    }

    /// Accepts an invitation: joins the group or channel (bans and the
    /// member limit hold as for any add).
    pub async fn accept_invitation(
        &self,
        auth: &SessionAuth,
        conversation_id: &ConversationId,
    ) -> Result<Conversation, RealtimeError> {
        self.limit(Action::RedeemInvite, &auth.user_id).await?;
        if !self
            .store
            .take_invitation(conversation_id, &auth.user_id, self.clock.now_ms())
            .await?
        {
            return Err(RealtimeError::InviteNotFound);
        }
        let c = self
            .store
            .conversation(conversation_id)
            .await?
            .ok_or(RealtimeError::InviteNotFound)?;
        let max = self.member_limit(&c.kind);
        match self
            .store
            .add_member(
                conversation_id,
                &auth.user_id,
                plain_role(&c.kind),
                self.clock.now_ms(),
                max,
            )
            .await?
        {
            JoinOutcome::Joined => {
                self.announce(
                    &auth.user_id,
                    conversation_id,
                    &c.kind,
                    "member_joined",
                    None,
                    None,
                    &[],
                )
                .await?
            }
            JoinOutcome::AlreadyMember => {}
            JoinOutcome::Banned => return Err(RealtimeError::Banned),
            JoinOutcome::Full => return Err(RealtimeError::GroupFull { max }),
            JoinOutcome::Invalid => return Err(RealtimeError::InviteNotFound),
        }
        self.conversation_detail(auth, conversation_id).await
    }

    /// Declines an invitation; nobody is told.
    pub async fn decline_invitation(
        &self,
        auth: &SessionAuth,
        conversation_id: &ConversationId,
    ) -> Result<(), RealtimeError> {
        if self
            .store
            .take_invitation(conversation_id, &auth.user_id, self.clock.now_ms())
            .await?
        {
            Ok(())
        } else {
            Err(RealtimeError::InviteNotFound)
        }
    }

    /// Sets who may add the caller to groups and channels.
    pub async fn set_group_adds(
        &self,
        auth: &SessionAuth,
        req: &GroupAddSettings,
    ) -> Result<(), RealtimeError> {
        Ok(self
            .store
            .set_group_adds(&auth.user_id, req.who.as_str())
            .await?)
    }

    /// The caller's contacts.
    pub async fn contacts(&self, auth: &SessionAuth) -> Result<Vec<String>, RealtimeError> {
        Ok(self.store.contacts(&auth.user_id).await?)
    }

    /// Adds (`on`) or removes a contact.
    pub async fn set_contact(
        &self,
        auth: &SessionAuth,
        user_id: &vestnik_proto::UserId,
        on: bool,
    ) -> Result<(), RealtimeError> {
        if on {
            if *user_id == auth.user_id {
                return Err(RealtimeError::NoSuchUser);
            }
            self.require_active_user(user_id).await?;
            self.store
                .add_contact(&auth.user_id, user_id, self.clock.now_ms())
                .await?;
        } else if !self.store.remove_contact(&auth.user_id, user_id).await? {
            return Err(RealtimeError::NoSuchUser);
        }
        Ok(())
    }
}
