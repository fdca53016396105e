//! Keeping a group or channel clean (its managers): invite links listed and
//! revoked, ban lists.
use reqwest::Method;
use vestnik_proto::{Ban, BanMember, InviteSummary, MuteMember};

use super::Client;
use crate::error::Result;
use crate::group::path_id;

impl Client {
    /// The group's working invite links, newest first (owner or admin).
    pub async fn invites(&self, conversation_id: &str) -> Result<Vec<InviteSummary>> {
        let id = path_id("conversation_id", conversation_id)?;
        let list: vestnik_proto::InviteList = self
            .inner
            .api
            .get(&format!("/v1/conversations/{id}/invites"))
            .await?;
        Ok(list.invites)
    }

    /// Revokes an invite link at once (owner or admin).
    pub async fn revoke_invite(&self, conversation_id: &str, invite_id: &str) -> Result<()> {
        let id = path_id("conversation_id", conversation_id)?;
        let invite = path_id("invite_id", invite_id)?;
        self.inner
            .api
            .call_unit::<()>(
                Method::DELETE,
                &format!("/v1/conversations/{id}/invites/{invite}"),
                None,
            )
            .await
    }

    /// Bans a user: removed if a member, kept out until unbanned. This
    /// device's next group message uses a new Megolm session.
    pub async fn ban(&self, conversation_id: &str, user_id: &str) -> Result<()> {
        let id = path_id("conversation_id", conversation_id)?;
        self.inner
            .api
            .call_unit(
                Method::POST,
                &format!("/v1/conversations/{id}/bans"),
                Some(&BanMember {
                    user_id: user_id.parse()?,
                }),
            )
            .await?;
        self.inner.store.mark_group_devices_stale(Some(id)).await?;
        self.inner.store.flag_rotation(id).await
    }

    /// Lifts a ban.
    pub async fn unban(&self, conversation_id: &str, user_id: &str) -> Result<()> {
        let id = path_id("conversation_id", conversation_id)?;
        let user = path_id("user_id", user_id)?;
        self.inner
            .api
            .call_unit::<()>(
                Method::DELETE,
                &format!("/v1/conversations/{id}/bans/{user}"),
                None,
            )
            .await
    }

    /// The ban list, newest first (owner or admin).
    pub async fn bans(&self, conversation_id: &str) -> Result<Vec<Ban>> {
        let id = path_id("conversation_id", conversation_id)?;
        let list: vestnik_proto::BanList = self
            .inner
            .api
            .get(&format!("/v1/conversations/{id}/bans"))
            .await?;
        Ok(list.bans)
    }

    /// Mutes a member for `duration_secs` (60 s to a year): their sends
    /// here are refused meanwhile.
    pub async fn mute(
        &self,
        conversation_id: &str,
        user_id: &str,
        duration_secs: i64,
    ) -> Result<()> {
        let id = path_id("conversation_id", conversation_id)?;
        let user = path_id("user_id", user_id)?;
        self.inner
            .api
            .call_unit(
                Method::PUT,
                &format!("/v1/conversations/{id}/members/{user}/mute"),
                Some(&MuteMember { duration_secs }),
            )
            .await
    }

    /// Lifts a mute.
    pub async fn unmute(&self, conversation_id: &str, user_id: &str) -> Result<()> {
        let id = path_id("conversation_id", conversation_id)?;
        let user = path_id("user_id", user_id)?;
        self.inner
            .api
            .call_unit::<()>(
                Method::DELETE,
                &format!("/v1/conversations/{id}/members/{user}/mute"),
                None,
            )
            .await
    }

    /// Deletes a message for everyone (one's own within the server's
    /// window, anyone's as a group manager); this device erases it at once,
    /// the others when the `message_deleted` event reaches them.
    pub async fn delete_for_everyone(&self, conversation_id: &str, message_id: &str) -> Result<()> {
        let id = path_id("conversation_id", conversation_id)?;
        let message = path_id("message_id", message_id)?;
        self.inner
            .api
            .call_unit::<()>(
                Method::DELETE,
                &format!("/v1/conversations/{id}/messages/{message}"),
                None,
            )
            .await?;
        self.inner.store.forget_message_body(message).await
    }

    /// Edits one of this account's messages: the new text goes end-to-end
    /// encrypted like any message, and every device that has the original
    /// replaces its text (shown edited) if the edit comes within
    /// [`crate::EDIT_WINDOW_MS`] of it. Waits until the server has taken
    /// the edit (offline, until the connection is back).
    pub async fn edit_message(
        &self,
        conversation_id: &str,
        message_id: &str,
        text: &str,
    ) -> Result<crate::SentMessage> {
        let id = path_id("conversation_id", conversation_id)?;
        let message = path_id("message_id", message_id)?;
        let entry = self
            .inner
            .store
            .own_sent_message(id, message, self.user_id())
            .await?
            .ok_or_else(|| {
                crate::error::ClientError::InvalidInput(
                    "message_id: not a message this account sent here".into(),
                )
            })?;
        if crate::store::now_ms() - entry.sent_at > crate::EDIT_WINDOW_MS {
            return Err(crate::error::ClientError::InvalidInput(
                "message_id: too old to edit (two days)".into(),
            ));
        }
        let kind = self.inner.store.conversation_kind(id).await?;
        let target = match (kind.as_deref(), entry.peer_user_id.as_deref()) {
            (Some("group"), _) => super::Target::Group(id),
            (Some("channel"), _) => super::Target::Channel(id),
            (_, Some(peer)) => super::Target::Peer(peer),
            _ => {
                return Err(crate::error::ClientError::InvalidInput(
                    "conversation_id: unknown on this device".into(),
                ))
            }
        };
        self.send_and_wait_edit(target, text, None, Some(message))
            .await
    }
}
