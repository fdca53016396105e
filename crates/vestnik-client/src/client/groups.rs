//! Groups: creating them, membership and roles, invites, and group texts
//! (Megolm; see the `group` module for the key handling).
use reqwest::Method;
use vestnik_proto::{
    AddMember, Conversation, CreateInvite, Invite, PublicDevice, SetRole, TransferOwnership,
    UpdateConversation,
};

use super::{Client, Target};
use crate::error::Result;
use crate::group::path_id;
use crate::types::SentMessage;

impl Client {
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

    /// A group with its members and their roles (members only).
    pub async fn group_info(&self, conversation_id: &str) -> Result<Conversation> {
        let id = path_id("conversation_id", conversation_id)?;
        let c: Conversation = self
            .inner
            .api
            .get(&format!("/v1/conversations/{id}"))
            .await?;
        self.inner.remember(&c, self.user_id()).await?;
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
        self.inner.remember(&c, self.user_id()).await?;
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
}
