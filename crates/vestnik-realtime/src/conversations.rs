//! Direct conversations, the conversation list, blocks, and telling
//! conversation partners that a user's devices changed.
use vestnik_core::ids;
use vestnik_core::Action;
use vestnik_proto::{Conversation, ConversationList, ServerFrame, UserId};
use vestnik_store::SessionAuth;

use crate::Realtime;
use crate::RealtimeError;

impl Realtime {
    /// The direct conversation between the caller and `peer`, created on first use;
    /// `NoSuchUser` for oneself, an unknown or an inactive user.
    pub async fn create_direct(
        &self,
        auth: &SessionAuth,
        peer: &UserId,
    ) -> Result<Conversation, RealtimeError> {
        self.limit(Action::CreateConversation, &auth.user_id)
            .await?;
        if *peer == auth.user_id {
            return Err(RealtimeError::NoSuchUser);
        }
        match self.store.user_by_id(peer).await? {
            Some(u) if u.is_active() => {}
            _ => return Err(RealtimeError::NoSuchUser),
        }
        let c = self
            .store
            .direct_conversation(&ids::new_id(), &auth.user_id, peer, self.clock.now_ms())
            .await?;
        let member_user_ids = self.store.members(&c.id).await?;
        // Opening a chat with someone makes them a contact: what `contacts`
        // means for presence and group adds.
        self.store
            .add_contact(&auth.user_id, peer, self.clock.now_ms())
            .await?;
        Ok(Conversation {
            id: c.id,
            kind: c.kind,
            member_user_ids,
            members: Vec::new(),
            invited_user_ids: Vec::new(),
            title: c.title,
            topic: c.topic,
            avatar_ref: c.avatar_ref,
            visibility: c.visibility,
            created_at: c.created_at,
        })
    }

    /// Every conversation the caller belongs to; a channel's subscriber list is left empty (it is private to the owner).
    pub async fn conversations(
        &self,
        auth: &SessionAuth,
    ) -> Result<ConversationList, RealtimeError> {
        let mut out = Vec::new();
        for c in self.store.conversations_of(&auth.user_id).await? {
            // A channel's subscribers are many and private to its owner.
            let member_user_ids = if c.kind == "channel" {
                Vec::new()
            } else {
                self.store.members(&c.id).await?
            };
            out.push(Conversation {
                id: c.id,
                kind: c.kind,
                member_user_ids,
                members: Vec::new(),
                invited_user_ids: Vec::new(),
                title: c.title,
                topic: c.topic,
                avatar_ref: c.avatar_ref,
                visibility: c.visibility,
                created_at: c.created_at,
            });
        }
        Ok(ConversationList { conversations: out })
    }

    /// Tells everyone who shares a conversation with `user_id` (and the user's
    /// own devices) that the user's device list changed.
    pub async fn devices_changed(&self, user_id: &str) {
        self.contexts.forget_user(user_id);
        let f = ServerFrame::DevicesChanged {
            user_id: user_id.to_owned(),
        };
        self.tell_partners(user_id, f).await;
    }

    /// Pushes `f` live to the devices of everyone who shares a (non-channel)
    /// conversation with `user_id`, and to the user's own. Best effort: a
    /// device offline now learns on its next fetch.
    pub(crate) async fn tell_partners(&self, user_id: &str, f: ServerFrame) {
        let mut users = match self.store.partners_of(user_id).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "partners lookup failed");
                return;
            }
        };
        users.push(user_id.to_owned());
        match self.store.active_devices(&users).await {
            Ok(devices) => {
                self.deliver(
                    devices
                        .into_iter()
                        .map(|d| (d.device_id, f.clone()))
                        .collect(),
                )
                .await
            }
            Err(e) => tracing::warn!(error = %e, "partners' device lookup failed"),
        }
    }

    /// Blocks (`on`) or unblocks `user_id` for the caller; takes effect on this node at once (cached contexts are dropped).
    pub async fn set_block(
        &self,
        auth: &SessionAuth,
        user_id: &UserId,
        on: bool,
    ) -> Result<(), RealtimeError> {
        if *user_id == auth.user_id {
            return Err(RealtimeError::NoSuchUser);
        }
        self.store
            .set_block(&auth.user_id, user_id, on, self.clock.now_ms())
            .await?;
        // Blocks are checked from cached contexts: drop this node's copies.
        self.contexts.forget_user(&auth.user_id);
        Ok(())
    }

    /// The users the caller blocked (not who blocked them: that is theirs).
    pub async fn blocked_users(&self, auth: &SessionAuth) -> Result<Vec<String>, RealtimeError> {
        let mut blocked = self.store.block_relations(&auth.user_id).await?.blocked;
        blocked.sort();
        Ok(blocked)
    }
}
