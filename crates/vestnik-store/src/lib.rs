//! The server's system of record: one [`Store`] trait per kind of data and two
//! implementations chosen at run time — SQLite (embedded default, WAL mode) and
//! PostgreSQL (shared by several nodes). Every operation that must be atomic is
//! one method here, executed in one transaction, so callers cannot half-apply it.
// The server's lint wall (as vestnik-crypto's): bad input and failed
// backends are errors, never a panic of the process.
#![deny(clippy::expect_used, clippy::panic, clippy::unwrap_used)]
#![warn(missing_docs)]

mod bulk;
mod migrate;
mod postgres;
mod queries;
mod rows;
mod sqlite;

use async_trait::async_trait;
use std::sync::Arc;

pub use migrate::MIGRATIONS;
pub use postgres::PgStore;
pub use rows::*;
pub use sqlite::SqliteStore;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database (through sqlx) refused or failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// From the SQLite batch writer, which runs its statements directly.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A migration could not be applied.
    #[error("migration {version} failed: {reason}")]
    Migration {
        /// The migration's version.
        version: i64,
        /// What went wrong.
        reason: String,
    },
    /// The e-mail code was consumed or replaced by a concurrent request.
    #[error("the verification code is no longer valid")]
    CodeConsumed,
    /// The account is active or disabled, not pending.
    #[error("the account is not awaiting verification")]
    NotPending,
    /// The user already has the most active devices allowed.
    #[error("expected at most {max} active devices")]
    TooManyDevices {
        /// The limit.
        max: i64,
    },
    /// An upload would leave the device more one-time keys than allowed.
    #[error("expected at most {max} one-time keys on the server for a device")]
    TooManyKeys {
        /// The limit.
        max: i64,
    },
    /// A unique value (named) is already taken.
    #[error("{0} already exists")]
    Conflict(&'static str),
}

impl StoreError {
    /// The database could not be reached or did not answer in time (as
    /// opposed to refusing the request): callers answer 503 and retry, and
    /// nothing is half-done (the transaction rolled back).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(e) => match e {
                sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::WorkerCrashed => true,
                // Class 08: connection exceptions; 57014: statement timeout;
                // 57P01-03: the server is shutting down or starting;
                // 53300: too many connections.
                sqlx::Error::Database(db) => db.code().is_some_and(|c| {
                    c.starts_with("08")
                        || matches!(&*c, "57014" | "57P01" | "57P02" | "57P03" | "53300")
                }),
                _ => false,
            },
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ),
            _ => false,
        }
    }
}

/// A store operation's result.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Accounts, e-mail codes, 2FA state and recovery codes.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// The account with this address, in any status.
    async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>>;
    /// The account with this id, in any status.
    async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>>;
    /// Creates a pending account unless one exists for the address (races are
    /// settled by the unique index: exactly one row wins).
    async fn create_pending_user(&self, id: &str, email: &str, now: i64) -> Result<()>;
    /// Stores a fresh code unless one was sent after `resend_cutoff`; false when throttled.
    async fn put_email_code(&self, code: &EmailCodeRow, resend_cutoff: i64) -> Result<bool>;
    /// The code last sent to the address.
    async fn email_code(&self, email: &str) -> Result<Option<EmailCodeRow>>;
    /// Counts a wrong guess; returns the attempts so far.
    async fn bump_email_code_attempts(&self, email: &str) -> Result<i64>;
    /// Forgets the address's code.
    async fn delete_email_code(&self, email: &str) -> Result<()>;
    /// Stores a fresh account code unless one for the same purpose was sent
    /// after `resend_cutoff`; false when throttled.
    async fn put_account_code(&self, code: &AccountCodeRow, resend_cutoff: i64) -> Result<bool>;
    /// The account's pending code for `purpose`.
    async fn account_code(
        &self,
        user_id: &str,
        purpose: CodePurpose,
    ) -> Result<Option<AccountCodeRow>>;
    /// Counts a wrong guess; returns the attempts so far.
    async fn bump_account_code_attempts(&self, user_id: &str, purpose: CodePurpose) -> Result<i64>;
    /// Consumes the code if it is still the one with `code_hash` (of two
    /// concurrent uses one wins); false otherwise.
    async fn consume_account_code(
        &self,
        user_id: &str,
        purpose: CodePurpose,
        code_hash: &str,
    ) -> Result<bool>;
    /// Sets who may find the account by address (`everyone`, `nobody`).
    async fn set_find_by_email(&self, user_id: &str, who: &str) -> Result<()>;
    /// Replaces the account's password hash.
    async fn set_password_hash(&self, user_id: &str, hash: &str, now: i64) -> Result<()>;
    /// Moves the account to a new address; `Conflict("email")` when another
    /// account holds it.
    async fn set_email(&self, user_id: &str, email: &str, now: i64) -> Result<()>;
    /// Consumes the code, activates the account, creates the first device with
    /// its keys and a session, and records the audit event — all or nothing.
    async fn complete_registration(&self, reg: &CompleteRegistration) -> Result<()>;
    /// Stores a TOTP secret (encrypted) awaiting confirmation until `expires_at`.
    async fn set_totp_pending(
        &self,
        user_id: &str,
        secret_enc: &str,
        expires_at: i64,
    ) -> Result<()>;
    /// Turns 2FA on with the confirmed secret, marks `step` used and replaces
    /// the recovery codes with `recovery_hashes`, in one transaction.
    async fn enable_totp(
        &self,
        user_id: &str,
        secret_enc: &str,
        step: i64,
        recovery_hashes: &[String],
        now: i64,
    ) -> Result<()>;
    /// Turns 2FA off and deletes the recovery codes.
    async fn disable_totp(&self, user_id: &str, now: i64) -> Result<()>;
    /// Marks a TOTP time step used; false when it (or a later one) already was,
    /// which is what stops a code being replayed.
    async fn use_totp_step(&self, user_id: &str, step: i64) -> Result<bool>;
    /// Marks a recovery code used; false when unknown or already used.
    async fn use_recovery_code(&self, user_id: &str, code_hash: &str, now: i64) -> Result<bool>;
    /// How many recovery codes the user has not used.
    async fn unused_recovery_codes(&self, user_id: &str) -> Result<i64>;
    /// Up to `limit` accounts, ordered by address, after `after_email`.
    async fn list_users(&self, after_email: Option<&str>, limit: i64) -> Result<Vec<UserRow>>;
    /// Sets the status of an existing account; false when there is none.
    async fn set_user_status(&self, user_id: &str, status: UserStatus, now: i64) -> Result<bool>;
    /// Grants or takes away administrator rights.
    async fn set_admin(&self, user_id: &str, admin: bool) -> Result<()>;
    /// Creates an active administrator, or promotes the existing account.
    async fn upsert_admin(
        &self,
        id: &str,
        email: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<()>;
}

/// Devices, their public keys and their sessions.
#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// A login: a new device with its keys and its first session.
    async fn create_device_session(
        &self,
        device: &NewDevice,
        session: &NewSession,
        max_devices: i64,
    ) -> Result<()>;
    /// The user's active devices, oldest first.
    async fn list_devices(&self, user_id: &str) -> Result<Vec<DeviceRow>>;
    /// What an access token (by hash) grants, unless it expired by `now`, its
    /// session was revoked or the account is not active.
    async fn session_by_access(&self, access_hash: &str, now: i64) -> Result<Option<SessionAuth>>;
    /// Deletes up to `limit` used refresh tokens rotated before `used_before`
    /// (by then they have expired: nothing is left to detect); returns how many.
    async fn prune_used_refresh_tokens(&self, used_before: i64, limit: i64) -> Result<u64>;
    /// Rotates a refresh token; detects reuse of an already rotated one,
    /// except a retry of a rotation made at or after `retry_since`.
    async fn rotate_refresh(
        &self,
        old_refresh_hash: &str,
        next: &NextTokens,
        now: i64,
        retry_since: i64,
    ) -> Result<RotateOutcome>;
    /// Revokes devices (all of the user's when `device_ids` is None), their
    /// sessions and their one-time and fallback keys. Returns what was
    /// revoked: caches forget its access tokens, nodes close its sockets.
    async fn revoke_devices(
        &self,
        user_id: &str,
        device_ids: Option<&[String]>,
        now: i64,
    ) -> Result<RevokedDevices>;
    /// Devices revoked at or after `since` (Unix ms), at most `limit`.
    async fn devices_revoked_since(&self, since: i64, limit: i64) -> Result<Vec<String>>;
    /// The session as it stands now, unless it was revoked, its current
    /// access token expired by `now`, or the account is not active.
    async fn live_session(&self, session_id: &str, now: i64) -> Result<Option<SessionAuth>>;
    /// One-time keys the device still has on the server.
    async fn one_time_key_count(&self, device_id: &str) -> Result<i64>;
}

/// The key directory: one-time and fallback keys of devices.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Adds one-time keys (ignoring ids already present) and optionally replaces
    /// the fallback key; returns the device's one-time key count. Refuses to
    /// hold more than `max_keys`.
    async fn upload_keys(
        &self,
        device_id: &str,
        one_time_keys: &[(String, String)],
        fallback: Option<&FallbackKey>,
        now: i64,
        max_keys: i64,
    ) -> Result<i64>;
    /// One bundle per active device of `user_id`; each one-time key is popped
    /// atomically, so concurrent claims never get the same key.
    async fn claim_keys(&self, user_id: &str) -> Result<Vec<KeyBundleRow>>;
    /// The active devices of these users, with their public keys.
    async fn active_devices(&self, user_ids: &[String]) -> Result<Vec<PublicDeviceRow>>;
}

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

/// The security audit log.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Records one event.
    async fn append_audit(&self, event: &AuditEvent) -> Result<()>;
    /// Newest first; `before` pages backwards by id.
    async fn list_audit(
        &self,
        user_id: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRow>>;
}

/// Display names.
#[async_trait]
pub trait ProfileStore: Send + Sync {
    /// Sets (or with `None` clears) the user's display name.
    async fn set_display_name(&self, user_id: &str, name: Option<&str>, now: i64) -> Result<()>;
    /// The profiles among `user_ids` that `viewer` may see: its own, and
    /// those of active users it shares a conversation with (in a channel,
    /// subscribers see the owner's and publishers' only, and are seen by
    /// them).
    async fn profiles(&self, viewer: &str, user_ids: &[String]) -> Result<Vec<ProfileRow>>;
}

/// Contacts, who may add whom to groups, and the invitations that replace
/// an add someone's setting does not allow.
#[async_trait]
pub trait ContactStore: Send + Sync {
    /// Adds `contact` to `user_id`'s contacts (idempotent).
    async fn add_contact(&self, user_id: &str, contact: &str, now: i64) -> Result<()>;
    /// True when it was a contact.
    async fn remove_contact(&self, user_id: &str, contact: &str) -> Result<bool>;
    /// `user_id`'s contacts, sorted.
    async fn contacts(&self, user_id: &str) -> Result<Vec<String>>;
    /// Those of `owners` who have `who` among their contacts.
    async fn having_contact(&self, owners: &[String], who: &str) -> Result<Vec<String>>;
    /// Sets who may add the user to groups: `everyone`, `contacts`, `nobody`.
    async fn set_group_adds(&self, user_id: &str, who: &str) -> Result<()>;
    /// For each of `user_ids`: its `group_adds` setting and whether `adder`
    /// is among its contacts.
    async fn group_add_policies(
        &self,
        user_ids: &[String],
        adder: &str,
    ) -> Result<Vec<(String, String, bool)>>;
    /// Records (or renews) an invitation to a group or channel.
    async fn put_invitation(&self, invitation: &InvitationRow) -> Result<()>;
    /// The user's invitations not yet expired, newest first.
    async fn invitations(&self, user_id: &str, now: i64) -> Result<Vec<InvitationRow>>;
    /// Deletes the invitation; true when there was one not yet expired.
    async fn take_invitation(&self, conversation_id: &str, user_id: &str, now: i64)
        -> Result<bool>;
}

/// Deleting an account.
#[async_trait]
pub trait ErasureStore: Send + Sync {
    /// Deletes the account and everything that points at it in one
    /// transaction: devices, keys, sessions, codes, memberships, direct
    /// conversations, queued envelopes to and from it, its messages and
    /// posts, media rows, invites, blocks and read markers. Groups it owned
    /// pass to the longest-standing admin (publisher) or member, or are
    /// dissolved when it was alone; its audit rows lose address, agent and
    /// detail. Blob objects are the caller's to delete.
    async fn erase_account(&self, user_id: &str, email: &str) -> Result<ErasedAccount>;
}

/// Everything a node needs from its database.
#[async_trait]
pub trait Store:
    UserStore
    + DeviceStore
    + AuditStore
    + KeyStore
    + MessageStore
    + GroupStore
    + MediaStore
    + ErasureStore
    + ProfileStore
    + ContactStore
{
    /// Checks the database answers.
    async fn ping(&self) -> Result<()>;
    /// Applies pending migrations; returns the versions applied now.
    async fn migrate(&self) -> Result<Vec<i64>>;
    /// A name for logs and metrics (`sqlite`, `postgres`); callers decide
    /// nothing by it: what differs is asked for by capability below.
    fn backend(&self) -> &'static str;
    /// Whether `store_and_ack` runs synchronously on one writer connection
    /// (SQLite through rusqlite): then there is exactly one batch writer, and
    /// it needs a thread of its own rather than a worker of the runtime.
    fn blocking_single_writer(&self) -> bool {
        false
    }
    /// Reclaims the rows the delivery queue has deleted, and refreshes planner
    /// statistics, where the database leaves that to a vacuum; returns what it
    /// did. Cheap to call every `housekeep_interval`: it acts only when
    /// enough has changed.
    async fn housekeep(&self) -> Result<Vec<String>>;
    /// How often a node calls `housekeep`.
    fn housekeep_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }
}

/// Opens the store named by a URL: `postgres://…`, or `sqlite:<path>`.
pub async fn open(url: &str, pool_size: u32) -> Result<Arc<dyn Store>> {
    open_with(url, pool_size, Durability::default()).await
}

/// What an answered commit survives on SQLite (PostgreSQL commits are
/// durable by its own settings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// An OS crash or power loss (`synchronous = FULL`): the default.
    #[default]
    PowerLoss,
    /// A process crash only (`synchronous = NORMAL`): fewer fsyncs.
    ProcessCrash,
}

/// [`open`] with the SQLite durability chosen.
pub async fn open_with(
    url: &str,
    pool_size: u32,
    durability: Durability,
) -> Result<Arc<dyn Store>> {
    if url.starts_with("postgres") {
        Ok(Arc::new(PgStore::connect(url, pool_size).await?))
    } else {
        Ok(Arc::new(
            SqliteStore::open(url, pool_size, durability).await?,
        ))
    }
}
