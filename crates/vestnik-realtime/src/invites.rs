//! Invite links to groups and channels: created by managers, shown once,
//! redeemed until used up or expired.

use vestnik_core::token;
use vestnik_core::Action;
use vestnik_proto::{
    Conversation, ConversationId, CreateInvite, Invite, InviteId, InviteList, InviteSummary,
};
use vestnik_store::{JoinOutcome, SessionAuth};

/// An invite's public name: the first half of its token's SHA-256, enough
/// to tell a group's links apart and useless for joining.
fn invite_id_of(token_hash: &str) -> InviteId {
    InviteId::from_trusted(token_hash.get(..32).unwrap_or(token_hash).to_owned())
}

use crate::groups::*;
use crate::service::bad;
use crate::{Realtime, RealtimeError};

impl Realtime {
    /// Creates an invite link to the group (bounded uses and lifetime); managers only.
    /// The secret token is returned once; only its hash is stored.
    pub async fn create_invite(
        &self,
        auth: &SessionAuth,
        conversation_id: &ConversationId,
        req: CreateInvite,
    ) -> Result<Invite, RealtimeError> {
        self.limit(Action::CreateInvite, &auth.user_id).await?;
        let (kind, role) = self.group_role(auth, conversation_id).await?;
        Self::require_manager(&kind, &role)?;
        let max_uses = req.max_uses.unwrap_or(INVITE_DEFAULT_USES);
        if !(1..=INVITE_MAX_USES).contains(&max_uses) {
            return Err(bad(format!(
                "max_uses: expected 1-{INVITE_MAX_USES}, got {max_uses}"
            )));
        }
        let ttl = req.ttl_secs.unwrap_or(INVITE_DEFAULT_TTL_SECS);
        if !INVITE_TTL_SECS.contains(&ttl) {
            return Err(bad(format!(
                "ttl_secs: expected {}-{}, got {ttl}",
                INVITE_TTL_SECS.start(),
                INVITE_TTL_SECS.end()
            )));
        }
        let now = self.clock.now_ms();
        let secret = token::new_token();
        let row = vestnik_store::InviteRow {
            token_hash: token::hash_token(&secret),
            conversation_id: conversation_id.to_string(),
            created_by: auth.user_id.clone(),
            max_uses,
            expires_at: now + ttl * 1000,
            created_at: now,
        };
        self.store.create_invite(&row).await?;
        Ok(Invite {
            invite_id: invite_id_of(&row.token_hash),
            token: secret.into(),
            conversation_id: row.conversation_id,
            max_uses,
            expires_at: row.expires_at,
        })
    }

    /// Joins the group an invite link points to (idempotent for members).
    pub async fn join_invite(
        &self,
        auth: &SessionAuth,
        invite_token: &str,
    ) -> Result<Conversation, RealtimeError> {
        if invite_token.is_empty() || invite_token.len() > 128 {
            return Err(RealtimeError::InviteNotFound);
        }
        self.limit(Action::RedeemInvite, &auth.user_id).await?;
        let max = self.settings.group_max_members;
        let (outcome, conversation_id) = self
            .store
            .redeem_invite(
                &token::hash_token(invite_token),
                &auth.user_id,
                self.clock.now_ms(),
                max,
            )
            .await?;
        let conversation_id = match (outcome, conversation_id) {
            (JoinOutcome::Full, _) => return Err(RealtimeError::GroupFull { max }),
            (JoinOutcome::Banned, _) => return Err(RealtimeError::Banned),
            (JoinOutcome::Invalid, _) | (_, None) => return Err(RealtimeError::InviteNotFound),
            (JoinOutcome::Joined, Some(c)) => {
                let kind = self
                    .store
                    .conversation(&c)
                    .await?
                    .map_or_else(|| "group".to_owned(), |c| c.kind);
                self.announce(&auth.user_id, &c, &kind, "member_joined", None, None, &[])
                    .await?;
                c
            }
            (JoinOutcome::AlreadyMember, Some(c)) => c,
        };
        self.conversation_detail(auth, &ConversationId::from_trusted(conversation_id))
            .await
    }

    /// The group's working invite links; managers only.
    pub async fn invites(
        &self,
        auth: &SessionAuth,
        conversation_id: &ConversationId,
    ) -> Result<InviteList, RealtimeError> {
        let (kind, role) = self.group_role(auth, conversation_id).await?;
        Self::require_manager(&kind, &role)?;
        let rows = self
            .store
            .invites(conversation_id, self.clock.now_ms())
            .await?;
        Ok(InviteList {
            invites: rows
                .into_iter()
                .map(|r| InviteSummary {
                    invite_id: invite_id_of(&r.token_hash),
                    created_by: r.created_by,
                    uses: r.uses,
                    max_uses: r.max_uses,
                    expires_at: r.expires_at,
                    created_at: r.created_at,
                })
                .collect(),
        })
    }

    /// Revokes an invite link at once; managers only.
    pub async fn revoke_invite(
        &self,
        auth: &SessionAuth,
        conversation_id: &ConversationId,
        invite_id: &InviteId,
    ) -> Result<(), RealtimeError> {
        let (kind, role) = self.group_role(auth, conversation_id).await?;
        Self::require_manager(&kind, &role)?;
        if self
            .store
            .revoke_invite(conversation_id, invite_id.as_str())
            .await?
        {
            Ok(())
        } else {
            Err(RealtimeError::InviteNotFound)
        }
    }
}
