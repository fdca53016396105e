//! Finding users and conversations, and creating groups and channels (one
//! request shape for both).
use vestnik_proto::{
    Conversation, ConversationList, CreateConversation, LookupRequest, LookupResponse,
};

use super::Client;
use crate::error::{ClientError, Result};

impl Client {
    /// Finds a user by e-mail address.
    pub async fn lookup_user(&self, email: &str) -> Result<String> {
        let r: LookupResponse = self
            .inner
            .api
            .post(
                "/v1/users/lookup",
                &LookupRequest {
                    email: email.to_owned(),
                },
            )
            .await?;
        Ok(r.user_id)
    }

    /// The id of the direct conversation with `peer_user_id` (made on first use).
    pub async fn conversation_with(&self, peer_user_id: &str) -> Result<String> {
        Ok(self.inner.conversation_for_peer(peer_user_id).await?.id)
    }

    /// This account's conversations, from the server (and cached locally).
    pub async fn conversations(&self) -> Result<Vec<Conversation>> {
        let list: ConversationList = self.inner.api.get("/v1/conversations").await?;
        for c in &list.conversations {
            self.inner
                .store
                .save_conversation(c, self.user_id())
                .await?;
        }
        Ok(list.conversations)
    }

    pub(super) async fn create_conversation(
        &self,
        kind: &str,
        title: Option<&str>,
        visibility: Option<&str>,
        member_user_ids: &[String],
    ) -> Result<Conversation> {
        let c: Conversation = self
            .inner
            .api
            .post(
                "/v1/conversations",
                &new_conversation(kind, title, visibility, member_user_ids)?,
            )
            .await?;
        self.inner.remember(&c, self.user_id()).await?;
        Ok(c)
    }
}

/// The body that creates a group or channel.
fn new_conversation(
    kind: &str,
    title: Option<&str>,
    visibility: Option<&str>,
    member_user_ids: &[String],
) -> Result<CreateConversation> {
    let member_user_ids = member_user_ids
        .iter()
        .map(|u| u.parse())
        .collect::<std::result::Result<Vec<vestnik_proto::UserId>, _>>()?;
    let title = title.map(str::to_owned);
    Ok(match kind {
        "group" => CreateConversation::Group(vestnik_proto::NewGroupSettings {
            member_user_ids,
            title,
            topic: None,
        }),
        "channel" => CreateConversation::Channel(vestnik_proto::NewChannelSettings {
            member_user_ids,
            title,
            topic: None,
            visibility: visibility.map(str::parse).transpose()?,
        }),
        other => {
            return Err(ClientError::InvalidInput(format!(
                "kind: expected group or channel, got {other:?}"
            )))
        }
    })
}
