//! Media: upload grants, completion, download grants. The bytes never pass
//! through these bodies: clients PUT and GET them at the signed URLs.
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{ConversationId, MediaClass};

/// Ask to upload one encrypted object into a conversation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MediaUploadRequest {
    /// A conversation the caller is a member of; its members may download the object.
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
    /// `PUT` to upload, `GET` to download.
    pub method: String,
    /// Absolute URL, signed; it may point at object storage rather than this server.
    pub url: String,
    /// Headers the signature covers: send them unchanged.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Unix milliseconds after which the URL is refused.
    pub expires_at: i64,
}

/// A pending upload: PUT the bytes with `upload`, then complete it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MediaUploadGrant {
    /// The new object, `pending` until completed.
    pub media: MediaInfo,
    /// The request that uploads the bytes.
    pub upload: SignedRequest,
}

/// An uploaded (encrypted) object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MediaInfo {
    /// The object's id.
    pub id: String,
    /// The user who uploaded it.
    pub owner_id: String,
    /// The conversation whose members may download it.
    pub conversation_id: String,
    /// Bytes, as declared at upload.
    pub size: i64,
    /// Lowercase hex SHA-256 of the bytes, as declared at upload.
    pub sha256: String,
    /// `image`, `video`, `audio` or `file`, as declared at upload.
    pub class: String,
    /// `pending` until completed, then `ready`.
    pub state: String,
    /// When the upload was granted, Unix milliseconds.
    pub created_at: i64,
    /// When the object is deleted, Unix milliseconds.
    pub expires_at: i64,
}

/// Where to fetch an object's bytes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MediaDownload {
    /// The object.
    pub media: MediaInfo,
    /// The request that downloads the (encrypted) bytes.
    pub download: SignedRequest,
    /// A server-made JPEG preview (public-channel images only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<SignedRequest>,
}

/// The caller's storage use.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MediaUsage {
    /// Bytes the caller holds now, pending and ready uploads both counted.
    pub used_bytes: i64,
    /// Bytes the caller may hold in all; an upload beyond it is refused with 403 `quota_exceeded`.
    pub quota_bytes: i64,
    /// Largest object this server accepts, bytes.
    pub max_object_bytes: i64,
}
