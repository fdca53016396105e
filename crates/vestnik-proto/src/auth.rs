use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
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
    pub key_id: String,
    /// Curve25519 public key, base64 (unpadded, as vodozemac writes it).
    pub public_key: String,
    /// Ed25519 signature, base64.
    pub signature: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OneTimeKey {
    pub key_id: String,
    /// Curve25519 public key, base64.
    pub public_key: String,
}

/// A new device and the public half of its keys.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeviceRequest {
    pub name: String,
    /// e.g. `linux`, `android`, `web`.
    pub platform: String,
    /// Curve25519 identity key, base64.
    pub identity_key: String,
    /// Ed25519 signing key, base64.
    pub signing_key: String,
    pub fallback_key: SignedKey,
    #[serde(default)]
    pub one_time_keys: Vec<OneTimeKey>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    pub email: String,
    pub code: String,
    pub password: String,
    pub device: NewDeviceRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pow: Option<PowSolution>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// Current TOTP code, when 2FA is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp: Option<String>,
    /// A one-time recovery code instead of `totp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_code: Option<String>,
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
    pub access_token: String,
    /// Seconds.
    pub access_expires_in: i64,
    pub refresh_token: String,
    /// Seconds.
    pub refresh_expires_in: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TotpSetup {
    /// Base32 secret for manual entry.
    pub secret: String,
    /// `otpauth://totp/…` URI for QR codes.
    pub otpauth_uri: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// A TOTP code (or, to disable 2FA, a recovery code).
    pub code: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecoveryCodes {
    /// Shown once; each works once in place of a TOTP code.
    pub recovery_codes: Vec<String>,
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
