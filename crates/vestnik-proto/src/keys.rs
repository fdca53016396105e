//! The key directory: uploading one-time and fallback keys, claiming a
//! device's bundle, listing devices, finding a user by address.
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{OneTimeKey, SignedKey, UserId};

/// New keys for the calling device.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeysUpload {
    /// Unique key ids, not already held (a repeated id: 422); at most 500 held per device.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub one_time_keys: Vec<OneTimeKey>,
    /// Replaces the device's fallback key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_key: Option<SignedKey>,
}

/// How many one-time keys the server still holds for the calling device.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyCount {
    /// One-time keys left to claim.
    pub one_time_keys: i64,
    /// Clients should upload more when the count falls below this.
    pub low_watermark: i64,
}

/// Claim a key bundle for every active device of a user.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// The user to open sessions with.
    pub user_id: UserId,
}

/// What a sender needs to open an Olm session with one device.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct KeyBundle {
    /// The device's owner.
    pub user_id: String,
    /// The device the bundle is for.
    pub device_id: String,
    /// Curve25519 identity key, base64.
    pub identity_key: String,
    /// Ed25519 signing key, base64: verify `fallback_key` with it.
    pub signing_key: String,
    /// A one-time key, popped for this claim; absent when the pool is empty.
    pub one_time_key: Option<OneTimeKey>,
    /// The device's signed fallback key, used when no one-time key is left;
    /// absent when the device never uploaded one.
    pub fallback_key: Option<SignedKey>,
}

/// One bundle per active device of the user.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClaimResponse {
    /// One per active device.
    pub bundles: Vec<KeyBundle>,
}

/// A device as other users see it: its owner, id and public identity keys.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct PublicDevice {
    /// The device's owner.
    pub user_id: String,
    /// The device's id.
    pub device_id: String,
    /// Curve25519 identity key, base64.
    pub identity_key: String,
    /// Ed25519 signing key, base64.
    pub signing_key: String,
}

/// Active devices, with their public keys.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublicDeviceList {
    /// Every active device asked for.
    pub devices: Vec<PublicDevice>,
}

/// Find a user by e-mail address.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupRequest {
    /// The address of an active account (else 404).
    #[schema(schema_with = crate::schema::email)]
    pub email: String,
}

/// The user an address belongs to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct LookupResponse {
    /// The account with that address.
    pub user_id: String,
}
