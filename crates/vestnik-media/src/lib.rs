//! Media: the blob-store seam (S3 or a local directory), the metadata rules
//! (membership, size, quota, TTL) and the reaper. Clients encrypt before
//! they upload; nothing here ever sees plaintext, and on S3 nothing here
//! sees the bytes at all. Profile pictures are the exception: public by
//! nature, they are uploaded to the server, which keeps only a re-encoded
//! square JPEG of them.
// The server's lint wall (as vestnik-crypto's): bad input and failed
// backends are errors, never a panic of the process.
#![deny(clippy::expect_used, clippy::panic, clippy::unwrap_used)]
#![warn(missing_docs)]

mod avatars;
mod blob;
mod error;
mod local;
mod reaper;
mod s3;
mod scan;
mod service;
mod thumbnail;

pub use blob::{BlobStore, ObjectInfo, UploadSpec};
pub use error::{BlobError, MediaError};
pub use local::{LocalBlobStore, UrlClaims};
pub use reaper::{spawn_reaper, spawn_sweeper};
pub use s3::{S3BlobStore, S3Settings};
pub use scan::{ClamdScanner, ScanVerdict};
pub use service::{MediaService, MediaSettings};
