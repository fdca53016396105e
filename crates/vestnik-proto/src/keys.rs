//! The key directory: uploading one-time and fallback keys, claiming a
//! device's bundle, listing devices, finding a user by address.
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{OneTimeKey, SignedKey, UserId};

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

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyCount {
    pub one_time_keys: i64,
    /// Clients should upload more when the count falls below this.
    pub low_watermark: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    pub user_id: UserId,
}

/// What a sender needs to open an Olm session with one device.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct KeyBundle {
    pub user_id: String,
    pub device_id: String,
    pub identity_key: String,
    pub signing_key: String,
    /// A one-time key, popped for this claim; absent when the pool is empty.
    pub one_time_key: Option<OneTimeKey>,
    pub fallback_key: Option<SignedKey>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClaimResponse {
    pub bundles: Vec<KeyBundle>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct PublicDevice {
    pub user_id: String,
    pub device_id: String,
    pub identity_key: String,
    pub signing_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublicDeviceList {
    pub devices: Vec<PublicDevice>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupRequest {
    #[schema(schema_with = crate::schema::email)]
    pub email: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct LookupResponse {
    pub user_id: String,
}
