//! Who may add this account to groups, its contacts, and the invitations an
//! add becomes when its setting does not allow it.
use reqwest::Method;
use vestnik_proto::{
    ContactList, Conversation, GroupAddSettings, GroupAdds, Invitation, InvitationList,
};

use super::Client;
use crate::error::Result;
use crate::group::path_id;

impl Client {
    /// Who may add this account to groups and channels; anyone else's add
    /// becomes an invitation ([`invitations`](Self::invitations)).
    pub async fn set_group_adds(&self, who: GroupAdds) -> Result<()> {
        self.inner
            .api
            .call_unit(
                Method::PUT,
                "/v1/account/group-adds",
                Some(&GroupAddSettings { who }),
            )
            .await
    }

    /// This account's contacts (whom it opened a chat with, or added).
    pub async fn contacts(&self) -> Result<Vec<String>> {
        let list: ContactList = self.inner.api.get("/v1/contacts").await?;
        Ok(list.user_ids)
    }

    /// Adds (`true`) or removes a contact.
    pub async fn set_contact(&self, user_id: &str, on: bool) -> Result<()> {
        let user = path_id("user_id", user_id)?;
        let method = if on { Method::PUT } else { Method::DELETE };
        self.inner
            .api
            .call_unit::<()>(method, &format!("/v1/contacts/{user}"), None)
            .await
    }

    /// Invitations to groups and channels waiting for an answer.
    pub async fn invitations(&self) -> Result<Vec<Invitation>> {
        let list: InvitationList = self.inner.api.get("/v1/invitations").await?;
        Ok(list.invitations)
    }

    /// Accepts an invitation: joins the group or channel.
    pub async fn accept_invitation(&self, conversation_id: &str) -> Result<Conversation> {
        let id = path_id("conversation_id", conversation_id)?;
        let c: Conversation = self
            .inner
            .api
            .call::<(), _>(Method::POST, &format!("/v1/invitations/{id}/accept"), None)
            .await?;
        self.inner.remember(&c, self.user_id()).await?;
        Ok(c)
    }

    /// Declines an invitation (nobody is told).
    pub async fn decline_invitation(&self, conversation_id: &str) -> Result<()> {
        let id = path_id("conversation_id", conversation_id)?;
        self.inner
            .api
            .call_unit::<()>(Method::DELETE, &format!("/v1/invitations/{id}"), None)
            .await
    }
}
