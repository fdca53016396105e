//! Media: upload grants, completion, download grants. The bytes never pass
//! through these bodies: clients PUT and GET them at the signed URLs.
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{ConversationId, MediaClass};

/// Ask to upload one encrypted object into a conversation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MediaUploadRequest {
    pub conversation_id: ConversationId,
    /// Exact bytes of the (encrypted) object that will be uploaded; more than
    /// the server's `media_max_bytes` is refused with 413 `media_too_large`.
    #[schema(minimum = 1)]
    pub size: i64,
    /// Hex SHA-256 of those bytes.
    #[schema(schema_with = crate::schema::sha256_hex)]
    pub sha256: String,
    /// A hint for clients and quotas; the bytes are ciphertext either way.
    pub class: MediaClass,
    /// Seconds until the media expires; the server's maximum when absent
    /// (more than `media_max_ttl_secs`: 422).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 60)]
    pub ttl_secs: Option<i64>,
}

/// An HTTP request to make exactly as given: method, URL and every header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SignedRequest {
    pub method: String,
    pub url: String,
    /// Headers the signature covers: send them unchanged.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Unix ms after which the URL is refused.
    pub expires_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MediaUploadGrant {
    pub media: MediaInfo,
    pub upload: SignedRequest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MediaInfo {
    pub id: String,
    pub owner_id: String,
    pub conversation_id: String,
    pub size: i64,
    pub sha256: String,
    pub class: String,
    /// `pending` until completed, then `ready`.
    pub state: String,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MediaDownload {
    pub media: MediaInfo,
    pub download: SignedRequest,
    /// A server-made JPEG preview (public-channel images only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<SignedRequest>,
}

/// The caller's storage use.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MediaUsage {
    pub used_bytes: i64,
    pub quota_bytes: i64,
    pub max_object_bytes: i64,
}
