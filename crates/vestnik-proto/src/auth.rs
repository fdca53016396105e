//! Accounts and sessions: registration, sign-in, tokens, 2FA, devices,
//! the account and its audit log, proof of work, health.
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Secret;

/// Start registration: the server mails a six-digit code to `email`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The address to register; the code is sent there.
    #[schema(schema_with = crate::schema::email)]
    pub email: String,
    /// The solved puzzle, when an earlier answer was 403 `proof_of_work_required`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pow: Option<PowSolution>,
}

/// The request was taken; nothing more is said (so the answer reveals no account).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    /// Always `accepted`: the answer is the same whether or not the address has an account.
    pub status: String,
}

/// A key signed by the device's Ed25519 key. The signature covers the UTF-8
/// string `vestnik:fallback_key:v1:<key_id>:<public_key>`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SignedKey {
    /// Client-chosen label of the key, unique on the device.
    #[schema(schema_with = crate::schema::key_id)]
    pub key_id: String,
    /// Curve25519 public key, base64 (unpadded, as vodozemac writes it).
    #[schema(schema_with = crate::schema::key32)]
    pub public_key: String,
    /// Ed25519 signature, base64.
    #[schema(schema_with = crate::schema::signature64)]
    pub signature: String,
}

/// A one-time Curve25519 key: handed to one sender claiming the device's
/// bundle, then deleted from the server.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OneTimeKey {
    /// Client-chosen label of the key, unique on the device.
    #[schema(schema_with = crate::schema::key_id)]
    pub key_id: String,
    /// Curve25519 public key, base64.
    #[schema(schema_with = crate::schema::key32)]
    pub public_key: String,
}

/// A new device and the public half of its keys.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeviceRequest {
    /// A name the user chooses, shown in the device list.
    #[schema(schema_with = crate::schema::device_name)]
    pub name: String,
    /// e.g. `linux`, `android`, `web`.
    #[schema(schema_with = crate::schema::device_platform)]
    pub platform: String,
    /// Curve25519 identity key, base64.
    #[schema(schema_with = crate::schema::key32)]
    pub identity_key: String,
    /// Ed25519 signing key, base64 (a valid Ed25519 point, else 422).
    #[schema(schema_with = crate::schema::key32)]
    pub signing_key: String,
    /// Signed by `signing_key` (a signature that does not verify: 422).
    pub fallback_key: SignedKey,
    /// Unique key ids (a repeated id: 422).
    #[serde(default)]
    #[schema(max_items = 100)]
    pub one_time_keys: Vec<OneTimeKey>,
}

/// Finish registration: the mailed code, a password and the first device.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The address the code was sent to.
    #[schema(schema_with = crate::schema::email)]
    pub email: String,
    /// The code from the mail (a wrong one: 422 `invalid_code`).
    #[schema(value_type = String, pattern = "^[0-9]{6}$", min_length = 6, max_length = 6)]
    pub code: Secret,
    /// 8-128 characters, not a common password and not the address (else 422 `weak_password`).
    #[schema(value_type = String, min_length = 8, max_length = 128)]
    pub password: Secret,
    /// The account's first device; the session returned is bound to it.
    pub device: NewDeviceRequest,
    /// The solved puzzle, when an earlier answer was 403 `proof_of_work_required`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pow: Option<PowSolution>,
}

/// Sign in and register a new device; the session returned is bound to it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The account's address.
    #[schema(schema_with = crate::schema::email)]
    pub email: String,
    /// The account's password.
    #[schema(value_type = String, min_length = 1, max_length = 1024)]
    pub password: Secret,
    /// Current TOTP code, when 2FA is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, max_length = 64)]
    pub totp: Option<Secret>,
    /// A one-time recovery code instead of `totp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, max_length = 64)]
    pub recovery_code: Option<Secret>,
    /// The device signing in; it is added to the account.
    pub device: NewDeviceRequest,
    /// The solved puzzle, when an earlier answer was 403 `proof_of_work_required`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pow: Option<PowSolution>,
}

/// Tokens of a device-bound session.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionTokens {
    /// The signed-in account.
    pub user_id: String,
    /// The device this session belongs to.
    pub device_id: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Send as `Authorization: Bearer <access_token>`.
    #[schema(value_type = String)]
    pub access_token: Secret,
    /// Seconds until `access_token` expires, from now.
    pub access_expires_in: i64,
    /// Exchange at `POST /v1/auth/refresh` for a new pair of tokens.
    #[schema(value_type = String)]
    pub refresh_token: Secret,
    /// Seconds until `refresh_token` expires, from now.
    pub refresh_expires_in: i64,
}

/// Exchange a refresh token for a new pair of tokens.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The session's current refresh token.
    #[schema(value_type = String, min_length = 1, max_length = 256)]
    pub refresh_token: Secret,
}

/// A new TOTP secret, not yet on: confirm it with a code to enable 2FA.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TotpSetup {
    /// Base32 secret for manual entry.
    #[schema(value_type = String)]
    pub secret: Secret,
    /// `otpauth://totp/…` URI for QR codes.
    #[schema(value_type = String)]
    pub otpauth_uri: Secret,
}

/// A code that confirms a 2FA change.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// A TOTP code (or, to disable 2FA, a recovery code).
    #[schema(value_type = String, min_length = 1, max_length = 64)]
    pub code: Secret,
}

/// Turning 2FA off: the account's password again, and a current TOTP code
/// or a recovery code (a stolen session alone cannot turn it off).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpDisableRequest {
    /// The account's password.
    #[schema(value_type = String, min_length = 1, max_length = 1024)]
    pub password: Secret,
    /// A TOTP code or a recovery code.
    #[schema(value_type = String, min_length = 1, max_length = 64)]
    pub code: Secret,
}

/// A new password for the signed-in account, confirmed by the current one.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChangeRequest {
    /// The password now (a wrong one: 401 `bad_credentials`).
    #[schema(value_type = String, min_length = 1, max_length = 1024)]
    pub current_password: Secret,
    /// 8-128 characters, not a common password and not the address (else 422 `weak_password`).
    #[schema(value_type = String, min_length = 8, max_length = 128)]
    pub new_password: Secret,
    /// Also sign out every other device of the account (this one stays).
    #[serde(default)]
    pub sign_out_other_devices: bool,
}

/// Asks for a password-reset code by mail. The answer is the same whether
/// or not the address has an account.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetRequest {
    /// The account's address.
    #[schema(schema_with = crate::schema::email)]
    pub email: String,
    /// The solved puzzle, when an earlier answer was 403 `proof_of_work_required`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pow: Option<PowSolution>,
}

/// Sets a new password with the mailed code (and the second factor when 2FA
/// is on). Every session of the account ends; its devices' keys stay.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetConfirm {
    /// The account's address.
    #[schema(schema_with = crate::schema::email)]
    pub email: String,
    /// The code from the mail (a wrong one: 422 `invalid_code`).
    #[schema(value_type = String, pattern = "^[0-9]{6}$", min_length = 6, max_length = 6)]
    pub code: Secret,
    /// 8-128 characters, not a common password and not the address (else 422 `weak_password`).
    #[schema(value_type = String, min_length = 8, max_length = 128)]
    pub new_password: Secret,
    /// A current TOTP code, when 2FA is on (else 401 `totp_required`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 64)]
    pub totp: Option<Secret>,
    /// Or one of the recovery codes instead of `totp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 64)]
    pub recovery_code: Option<Secret>,
}

/// Moves the account to a new address: a code goes there to confirm it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailChangeRequest {
    /// The account's password.
    #[schema(value_type = String, min_length = 1, max_length = 1024)]
    pub password: Secret,
    /// The new address.
    #[schema(schema_with = crate::schema::email)]
    pub new_email: String,
}

/// Deletes the account for good, confirmed with the password (and a second
/// factor when 2FA is on).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountDeletion {
    /// The account's password (a wrong one: 403 `wrong_password`).
    #[schema(value_type = String, min_length = 1, max_length = 1024)]
    pub password: Secret,
    /// A current TOTP code, when 2FA is on (else 401 `totp_required`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 64)]
    pub totp: Option<Secret>,
    /// Or one of the recovery codes instead of `totp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 64)]
    pub recovery_code: Option<Secret>,
}

/// The code mailed to the new address.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailChangeConfirm {
    /// The code from the mail (a wrong one: 422 `invalid_code`).
    #[schema(value_type = String, pattern = "^[0-9]{6}$", min_length = 6, max_length = 6)]
    pub code: Secret,
}

/// Recovery codes, issued when 2FA is enabled.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecoveryCodes {
    /// Shown once; each works once in place of a TOTP code.
    #[schema(value_type = Vec<String>)]
    pub recovery_codes: Vec<Secret>,
}

/// One of the caller's own devices.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeviceInfo {
    /// The device's id.
    pub id: String,
    /// The name given when the device was added.
    pub name: String,
    /// The platform given when the device was added.
    pub platform: String,
    /// Curve25519 identity key, base64.
    pub identity_key: String,
    /// Ed25519 signing key, base64.
    pub signing_key: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// True for the device making the request.
    pub current: bool,
}

/// The caller's active devices.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeviceList {
    /// Every active device, the current one included.
    pub devices: Vec<DeviceInfo>,
}

/// Everything the server holds about the caller's account, in one document
/// (GDPR art. 15 and 20). The server has no message contents: those are on
/// the devices (`vestnik-chat export` writes a device's decrypted history).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AccountExport {
    /// Unix milliseconds.
    pub exported_at: i64,
    /// The account and its settings.
    pub account: Account,
    /// What others see of it: display name and picture id.
    pub profile: crate::Profile,
    /// Its active devices.
    pub devices: Vec<DeviceInfo>,
    /// Its direct chats, groups and channels, with the roles in them.
    pub conversations: Vec<crate::Conversation>,
    /// The users it blocked.
    pub blocked_user_ids: Vec<String>,
    /// Its security events, newest first (the most recent 10,000).
    pub audit: Vec<AuditEntry>,
}

/// The caller's account.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Account {
    /// The account's id.
    pub user_id: String,
    /// The verified address the account signs in with.
    pub email: String,
    /// Whether sign-in asks for a TOTP code.
    pub totp_enabled: bool,
    /// Recovery codes not used yet.
    pub recovery_codes_left: i64,
    /// Whether the account is a server administrator.
    pub is_admin: bool,
    /// Who may find the account by its address (`PUT /v1/account/discovery`).
    pub find_by_email: crate::Discoverability,
    /// Who may add it to groups (`PUT /v1/account/group-adds`).
    pub group_adds: crate::GroupAdds,
    /// When the account was created, Unix milliseconds.
    pub created_at: i64,
}

/// One security-relevant event of the caller's account.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// Increases with time; use it as `before` to page back.
    pub id: i64,
    /// What happened, snake_case (e.g. `register_requested`, `login_ok`,
    /// `verify_failed`, `recovery_code_used`).
    pub event: String,
    /// The device concerned or acting; absent when there was none.
    pub device_id: Option<String>,
    /// Client IP address of the request; absent when unknown.
    pub ip: Option<String>,
    /// `User-Agent` of the request; absent when not sent.
    pub user_agent: Option<String>,
    /// The request's id (the `x-request-id` header), for matching server logs.
    pub request_id: Option<String>,
    /// Event-specific JSON.
    pub detail: Option<String>,
    /// When it happened, Unix milliseconds.
    pub created_at: i64,
}

/// A page of the caller's audit log, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub events: Vec<AuditEntry>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_before: Option<i64>,
}

/// A server-issued proof-of-work puzzle: find `nonce` such that
/// SHA-256(`challenge` + ":" + `nonce`) starts with `difficulty` zero bits.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PowChallenge {
    /// Opaque, server-issued; send it back unchanged in `PowSolution`.
    pub challenge: String,
    /// Leading zero bits the hash must have.
    pub difficulty: u32,
}

/// The answer to a `PowChallenge`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PowSolution {
    /// As issued (checked only when a proof of work is demanded; a wrong
    /// one is then 403 `invalid_proof_of_work`).
    pub challenge: String,
    /// The value found, in decimal or hex.
    pub nonce: String,
}

/// Liveness (`/healthz`) or readiness (`/readyz`) of this node.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` when a dependency does not answer (with 503).
    pub status: String,
    /// `/readyz` only: `ok` or `unavailable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// `/readyz` only, when this node uses Redis: `ok` or `unavailable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<String>,
}
