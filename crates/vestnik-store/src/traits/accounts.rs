//! The account side: users, devices, keys, audit, profiles, contacts, erasure.
use async_trait::async_trait;

use crate::*;

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
