use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Secret;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[schema(schema_with = crate::schema::email)]
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pow: Option<PowSolution>,
}

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
    #[schema(schema_with = crate::schema::key_id)]
    pub key_id: String,
    /// Curve25519 public key, base64 (unpadded, as vodozemac writes it).
    #[schema(schema_with = crate::schema::key32)]
    pub public_key: String,
    /// Ed25519 signature, base64.
    #[schema(schema_with = crate::schema::signature64)]
    pub signature: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OneTimeKey {
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

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    #[schema(schema_with = crate::schema::email)]
    pub email: String,
    /// The code from the mail (a wrong one: 422 `invalid_code`).
    #[schema(value_type = String, pattern = "^[0-9]{6}$", min_length = 6, max_length = 6)]
    pub code: Secret,
    /// 8-128 characters, not a common password and not the address (else 422 `weak_password`).
    #[schema(value_type = String, min_length = 8, max_length = 128)]
    pub password: Secret,
    pub device: NewDeviceRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pow: Option<PowSolution>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(schema_with = crate::schema::email)]
    pub email: String,
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
    pub device: NewDeviceRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pow: Option<PowSolution>,
}

/// Tokens of a device-bound session.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionTokens {
    pub user_id: String,
    pub device_id: String,
    pub token_type: String,
    #[schema(value_type = String)]
    pub access_token: Secret,
    /// Seconds.
    pub access_expires_in: i64,
    #[schema(value_type = String)]
    pub refresh_token: Secret,
    /// Seconds.
    pub refresh_expires_in: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    #[schema(value_type = String, min_length = 1, max_length = 256)]
    pub refresh_token: Secret,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TotpSetup {
    /// Base32 secret for manual entry.
    #[schema(value_type = String)]
    pub secret: Secret,
    /// `otpauth://totp/…` URI for QR codes.
    #[schema(value_type = String)]
    pub otpauth_uri: Secret,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// A TOTP code (or, to disable 2FA, a recovery code).
    #[schema(value_type = String, min_length = 1, max_length = 64)]
    pub code: Secret,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecoveryCodes {
    /// Shown once; each works once in place of a TOTP code.
    #[schema(value_type = Vec<String>)]
    pub recovery_codes: Vec<Secret>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeviceInfo {
    pub id: String,
    pub name: String,
    pub platform: String,
    pub identity_key: String,
    pub signing_key: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// True for the device making the request.
    pub current: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeviceList {
    pub devices: Vec<DeviceInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Account {
    pub user_id: String,
    pub email: String,
    pub totp_enabled: bool,
    pub recovery_codes_left: i64,
    pub is_admin: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub event: String,
    pub device_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// Event-specific JSON.
    pub detail: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub events: Vec<AuditEntry>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_before: Option<i64>,
}

/// A server-issued proof-of-work puzzle: find `nonce` such that
/// SHA-256(`challenge` + ":" + `nonce`) starts with `difficulty` zero bits.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PowChallenge {
    pub challenge: String,
    pub difficulty: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PowSolution {
    /// As issued (checked only when a proof of work is demanded; a wrong
    /// one is then 403 `invalid_proof_of_work`).
    pub challenge: String,
    pub nonce: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<String>,
}
