//! Channels: creating and subscribing, posting, and reading the log (see
//! the `channel` module for what is encrypted and how).
use reqwest::Method;
use vestnik_proto::Conversation;

use super::{Client, Target};
use crate::error::Result;
use crate::group::path_id;
use crate::types::SentMessage;

impl Client {
    /// Creates a channel owned by this account, with `subscriber_user_ids`
    /// as its first subscribers. A public channel's posts are plaintext to
    /// whoever subscribes (and to the server); a private channel is joined
    /// by invite and its posts are encrypted (see the `channel` module).
    pub async fn create_channel(
        &self,
        title: &str,
        public: bool,
        subscriber_user_ids: &[String],
    ) -> Result<Conversation> {
        let visibility = if public { "public" } else { "private" };
        self.create_conversation(
            "channel",
            Some(title),
            Some(visibility),
            subscriber_user_ids,
        )
        .await
    }

    /// Subscribes to a public channel.
    pub async fn subscribe_channel(&self, conversation_id: &str) -> Result<Conversation> {
        let id = path_id("conversation_id", conversation_id)?;
        let c: Conversation = self
            .inner
            .api
            .call::<(), _>(
                Method::POST,
                &format!("/v1/conversations/{id}/subscribe"),
                None,
            )
            .await?;
        self.inner.remember(&c, self.user_id()).await?;
        Ok(c)
    }

    /// Queues a post to a channel (owner or publisher) and returns its
    /// `client_msg_id` at once; it leaves in the background.
    pub async fn queue_post(&self, conversation_id: &str, text: &str) -> Result<String> {
        self.queue(Target::Channel(conversation_id), text, None, None)
            .await
    }

    /// Posts to a channel (owner or publisher) and waits until the server
    /// has accepted it.
    pub async fn post(&self, conversation_id: &str, text: &str) -> Result<SentMessage> {
        self.send_and_wait(Target::Channel(conversation_id), text, None)
            .await
    }

    /// Reads what is new in a channel's log (posts are also pushed live
    /// while connected, and every known channel is read after a
    /// reconnect); returns how many new posts were read. They arrive as
    /// [`ClientEvent::Message`] and are in [`Client::history`].
    pub async fn read_channel(&self, conversation_id: &str) -> Result<usize> {
        self.inner.read_channel_log(conversation_id).await
    }
}
