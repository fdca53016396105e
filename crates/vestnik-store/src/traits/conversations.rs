//! The conversation side: messages and their delivery, groups, media.
use async_trait::async_trait;

use crate::*;

/// Conversations, messages and the per-device outbox.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// The direct conversation of two users, created on first use.
    async fn direct_conversation(
        &self,
        id: &str,
        a: &str,
        b: &str,
        now: i64,
    ) -> Result<ConversationRow>;
    /// The conversation with this id.
    async fn conversation(&self, id: &str) -> Result<Option<ConversationRow>>;
    /// The members' user ids.
    async fn members(&self, conversation_id: &str) -> Result<Vec<String>>;
    /// Every conversation the user is a member of.
    async fn conversations_of(&self, user_id: &str) -> Result<Vec<ConversationRow>>;
    /// Users who share at least one direct chat or group with `user_id`
    /// (channels do not make their subscribers each other's contacts: that
    /// would fan every presence change out to every subscriber).
    async fn partners_of(&self, user_id: &str) -> Result<Vec<String>>;
    /// The partners told when `user_id` comes online or goes: those of
    /// direct chats, and of groups with at most `largest_group` members.
    async fn presence_audience(&self, user_id: &str, largest_group: i64) -> Result<Vec<String>>;
    /// Everything the send path checks, in one query: the members, their
    /// active devices, and whether any member has blocked `sender`.
    async fn send_context(&self, conversation_id: &str, sender: &str) -> Result<SendContext>;
    /// Moves the user's read marker forward (never back); true when it moved.
    async fn set_read_marker(
        &self,
        conversation_id: &str,
        user_id: &str,
        seq: i64,
        now: i64,
    ) -> Result<bool>;
    /// (user id, seq, at) per member who has read anything.
    async fn read_markers(&self, conversation_id: &str) -> Result<Vec<(String, i64, i64)>>;
    /// (last seen, visibility) of each user that exists.
    async fn presence_info(
        &self,
        user_ids: &[String],
    ) -> Result<Vec<(String, Option<i64>, String)>>;
    /// Records when the user was last online (Unix milliseconds).
    async fn set_last_seen(&self, user_id: &str, at: i64) -> Result<()>;
    /// Sets who sees the user's presence (`everyone`, `contacts`, `nobody`).
    async fn set_presence_visibility(&self, user_id: &str, visibility: &str) -> Result<()>;
    /// Blocks (`on`) or unblocks `blocked` for `user_id`.
    async fn set_block(&self, user_id: &str, blocked: &str, on: bool, now: i64) -> Result<()>;
    /// Whom `user_id` blocked, and who blocked `user_id`.
    async fn block_relations(&self, user_id: &str) -> Result<BlockRelations>;
    /// A message already stored for this sending device and client id.
    async fn stored_message(
        &self,
        sender_device_id: &str,
        client_msg_id: &str,
    ) -> Result<Option<StoredRetry>>;
    /// Stores messages and their envelopes in one transaction (one result per
    /// message, in order); a retried `client_msg_id` returns the stored one.
    async fn store_messages(
        &self,
        batch: &[NewMessage],
        expires_at: i64,
    ) -> Result<Vec<StoredMessage>> {
        Ok(self.store_and_ack(batch, &[], 0, expires_at).await?.0)
    }
    /// The device's pending items after `after`, oldest first.
    async fn outbox(&self, device_id: &str, after: i64, limit: i64) -> Result<Vec<OutboxRow>>;
    /// For each acknowledgement, in one transaction for all of them: deletes
    /// the acknowledged items and queues a delivery receipt to every active
    /// device of each acknowledged message's sender. Returns the receipts
    /// queued, one list per acknowledgement.
    async fn ack(
        &self,
        acks: &[AckBatchItem],
        now: i64,
        expires_at: i64,
    ) -> Result<Vec<Vec<OutboxRow>>> {
        Ok(self.store_and_ack(&[], acks, now, expires_at).await?.1)
    }
    /// `store_messages` and `ack` in one transaction, sends first: where a
    /// single connection writes (SQLite), both paths share one commit.
    async fn store_and_ack(
        &self,
        sends: &[NewMessage],
        acks: &[AckBatchItem],
        now: i64,
        expires_at: i64,
    ) -> Result<(Vec<StoredMessage>, Vec<Vec<OutboxRow>>)>;
    /// Deletes outbox items past their expiry, message records (and group
    /// message bodies) older than `cutoffs.messages`, and channel posts older
    /// than `cutoffs.channel_posts` (kept when `None`).
    async fn expire(&self, now: i64, cutoffs: Cutoffs, limit: i64) -> Result<u64>;
}

/// What the retention reaper deletes, as creation times in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    /// Direct and group message records created before this.
    pub messages: i64,
    /// Channel posts created before this; `None` keeps them until deleted.
    pub channel_posts: Option<i64>,
}

/// Group and channel membership, roles, settings and invites. Every change
/// that must respect the size limit locks the conversation row first, so
/// concurrent joins on several nodes cannot overfill it.
#[async_trait]
pub trait GroupStore: Send + Sync {
    /// Creates the conversation, its owner and its first members.
    async fn create_group(&self, group: &NewGroup) -> Result<()>;
    /// Every member with their role.
    async fn members_with_roles(&self, conversation_id: &str) -> Result<Vec<MemberRow>>;
    /// What a channel member sees: the owner and publishers, and themselves
    /// (without reading every subscriber's row).
    async fn channel_staff(&self, conversation_id: &str, viewer: &str) -> Result<Vec<MemberRow>>;
    /// The user's role, or None when not a member.
    async fn member_role(&self, conversation_id: &str, user_id: &str) -> Result<Option<String>>;
    /// Adds a member unless the conversation already has `limit` members.
    async fn add_member(
        &self,
        conversation_id: &str,
        user_id: &str,
        role: &str,
        now: i64,
        limit: i64,
    ) -> Result<JoinOutcome>;
    /// True when the user was a member. Their invites go with them.
    async fn remove_member(&self, conversation_id: &str, user_id: &str) -> Result<bool>;
    /// True when the user is a member (whose role is now `role`). Invites
    /// they made go when the new role may not invite.
    async fn set_role(&self, conversation_id: &str, user_id: &str, role: &str) -> Result<bool>;
    /// Makes `to` the owner and demotes `from` to `demoted_role`, in one
    /// transaction that first checks `from` still owns the conversation (so
    /// two concurrent transfers cannot leave two owners).
    async fn transfer_ownership(
        &self,
        conversation_id: &str,
        from: &str,
        to: &str,
        demoted_role: &str,
    ) -> Result<TransferOutcome>;
    /// Sets the given fields; `None` leaves a field as it is.
    async fn update_conversation(
        &self,
        conversation_id: &str,
        title: Option<&str>,
        topic: Option<&str>,
        avatar_ref: Option<&str>,
    ) -> Result<()>;
    /// Stores an invite (its token's hash).
    async fn create_invite(&self, invite: &InviteRow) -> Result<()>;
    /// Joins `user_id` to the invite's conversation (as `member`, or
    /// `subscriber` of a channel) when the invite is valid and has uses left;
    /// a use is counted only for a real join. Returns the conversation id
    /// unless the invite is invalid.
    async fn redeem_invite(
        &self,
        token_hash: &str,
        user_id: &str,
        now: i64,
        limit: i64,
    ) -> Result<(JoinOutcome, Option<String>)>;
    /// The conversation's working invites (unexpired, uses left), newest first.
    async fn invites(&self, conversation_id: &str, now: i64) -> Result<Vec<InviteListRow>>;
    /// Deletes the invite whose token hash starts with `invite_id`; true when
    /// there was one.
    async fn revoke_invite(&self, conversation_id: &str, invite_id: &str) -> Result<bool>;
    /// Bans `user_id`, removes them if a member and deletes their invites, in
    /// one transaction; true when they were a member.
    async fn ban(&self, conversation_id: &str, user_id: &str, by: &str, now: i64) -> Result<bool>;
    /// Whether the user is banned from the conversation.
    async fn is_banned(&self, conversation_id: &str, user_id: &str) -> Result<bool>;
    /// Mutes a member until `until` (or, with `None`, unmutes); true when
    /// they are a member.
    async fn set_mute(
        &self,
        conversation_id: &str,
        user_id: &str,
        until: Option<i64>,
    ) -> Result<bool>;
    /// Until when the member is muted, if they are.
    async fn muted_until(&self, conversation_id: &str, user_id: &str) -> Result<Option<i64>>;
    /// A stored message's conversation, sender and time, for deleting it.
    async fn message_meta(&self, message_id: &str) -> Result<Option<MessageMeta>>;
    /// Deletes a message for everyone: its stored body (a group message's
    /// or channel post's) and every envelope of it still queued to a
    /// member's device. The record stays (retries still dedup against it).
    async fn delete_for_everyone(&self, conversation_id: &str, message_id: &str) -> Result<()>;
    /// Lifts a ban; true when there was one.
    async fn unban(&self, conversation_id: &str, user_id: &str) -> Result<bool>;
    /// The conversation's bans, newest first.
    async fn bans(&self, conversation_id: &str) -> Result<Vec<BanRow>>;
    /// Every active device of every member (a channel's live push list).
    async fn member_devices(&self, conversation_id: &str) -> Result<Vec<String>>;
    /// Messages stored with their body (group and channel messages) after
    /// `after_seq`, oldest first: a channel's log.
    async fn log(&self, conversation_id: &str, after_seq: i64, limit: i64) -> Result<Vec<LogRow>>;
    /// Members who run the conversation: owner, admins, publishers.
    async fn managers(&self, conversation_id: &str) -> Result<Vec<String>>;
    /// Queues a system event (`body`, JSON) for every active device of `user_ids`.
    async fn push_system(
        &self,
        event: &SystemEventRow,
        user_ids: &[String],
    ) -> Result<Vec<OutboxRow>>;
}

/// Media metadata and per-user storage usage.
#[async_trait]
pub trait MediaStore: Send + Sync {
    /// Records a pending upload and adds its size to the owner's usage,
    /// unless that would pass `quota` bytes.
    async fn create_media(&self, media: &MediaRow, quota: i64) -> Result<MediaCreate>;
    /// The media row with this id.
    async fn media(&self, id: &str) -> Result<Option<MediaRow>>;
    /// Makes `new` (a ready row of class `avatar`, counted against `quota`)
    /// the user's profile picture, or with `None` clears it, and deletes the
    /// previous picture's row in the same transaction; its objects are the
    /// caller's to delete.
    async fn replace_avatar(
        &self,
        user_id: &str,
        new: Option<&MediaRow>,
        quota: i64,
    ) -> Result<AvatarSwap>;
    /// Pending → ready (with its preview's object, if one was made) while the
    /// upload window is open; false otherwise.
    async fn mark_media_ready(
        &self,
        id: &str,
        now: i64,
        thumbnail_key: Option<&str>,
    ) -> Result<bool>;
    /// Deletes the row and takes its size off the owner's usage; returns the
    /// row when this call deleted it (so exactly one of several concurrent
    /// deleters, e.g. reapers on two nodes, releases the usage).
    async fn delete_media(&self, id: &str) -> Result<Option<MediaRow>>;
    /// Expired media and abandoned pending uploads, oldest expiry first.
    async fn reapable_media(&self, now: i64, limit: i64) -> Result<Vec<MediaRow>>;
    /// Bytes the user holds (pending and ready media).
    async fn media_usage(&self, user_id: &str) -> Result<i64>;
}
