//! The one seam between media rules and where bytes live.
use async_trait::async_trait;
use std::time::Duration;
use vestnik_proto::SignedRequest;

use crate::BlobError;

/// What an upload URL must bind: exactly this object, length and digest.
#[derive(Debug, Clone)]
pub struct UploadSpec {
    /// Exact length in bytes the upload must have.
    pub size: u64,
    /// Hex SHA-256 of the object's bytes.
    pub sha256: String,
}

/// What the store reports about a stored object, to check it against its grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Stored length in bytes.
    pub size: u64,
    /// Hex SHA-256 when the store reports one.
    pub sha256: Option<String>,
}

/// Where media bytes live: S3 or a local directory, chosen at start from the config.
/// Clients move the bytes through presigned URLs; the server only checks, deletes and scans.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Short name of the backend (`s3` or `local`) for logs and errors.
    fn kind(&self) -> &'static str;
    /// A URL that accepts one PUT of exactly `spec` at `key` until `ttl` passes.
    fn presign_put(
        &self,
        key: &str,
        spec: &UploadSpec,
        ttl: Duration,
        now_ms: i64,
    ) -> Result<SignedRequest, BlobError>;
    /// A URL that serves `key` (with range requests) until `ttl` passes.
    fn presign_get(
        &self,
        key: &str,
        ttl: Duration,
        now_ms: i64,
    ) -> Result<SignedRequest, BlobError>;
    /// The object's size (and digest, if known), or `None` when nothing is stored at `key`.
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, BlobError>;
    /// Deleting a missing object succeeds, so retries and racing reapers do.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
    /// Stores a small object the server made itself (a public image's preview).
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), BlobError>;
    /// The object's bytes as a stream (server-side scanning of public media).
    async fn read(&self, key: &str) -> Result<ByteStream, BlobError>;
    /// Creates what the store needs (bucket, CORS rules); idempotent.
    async fn prepare(&self, cors_origins: &[String]) -> Result<(), BlobError>;
    /// Up to `limit` object keys under `m/`, in key order, after `after`
    /// (the orphan sweeper pages through the store with it).
    async fn list(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>, BlobError>;
}

pub type ByteStream = futures::stream::BoxStream<'static, Result<bytes::Bytes, BlobError>>;

/// Object keys are made by the server (`m/<id>`); anything else is refused
/// before it can reach a path or a URL.
pub(crate) fn check_key(key: &str) -> Result<(), BlobError> {
    let ok = key.len() <= 128
        && key.starts_with("m/")
        && key[2..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && key.len() > 2;
    if ok {
        Ok(())
    } else {
        Err(BlobError::BadKey(key.chars().take(64).collect()))
    }
}
