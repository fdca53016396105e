//! Files. Each is encrypted on this device in 64 KiB chunks under a fresh
//! key (`vestnik_crypto::AttachmentSealer`), sent straight to the media
//! store at the URL the server signed (the server never sees the bytes on
//! S3, and never the key anywhere), and fetched and decrypted the same way.
//! Neither direction holds a whole file in memory: encryption is
//! deterministic for a given key, so the digest the server needs up front is
//! computed in a first pass and the upload streams a second one.
//!
//! `upload` encrypts and sends a file to the media store, `download`
//! fetches, verifies and decrypts one; this file holds what both share
//! (names, types, the transfer client) and sending a file as a message.
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Method;
use vestnik_proto::SignedRequest;

use crate::client::Target;
use crate::error::{ClientError, Result};
use crate::group::path_id;
use crate::types::{Attachment, SentMessage};
use crate::Client;

mod download;
mod upload;

/// A file message's text.
pub const MAX_CAPTION_BYTES: usize = 4 * 1024;
/// File names are display names; longer ones are cut.
const MAX_NAME_CHARS: usize = 255;

/// How to send a file.
#[derive(Debug, Clone, Default)]
pub struct FileOptions {
    /// The message text; the file name when absent.
    pub caption: Option<String>,
    /// Seconds until the server deletes the file; its maximum when absent.
    pub ttl_secs: Option<i64>,
    /// The MIME type; guessed from the extension when absent.
    pub mime: Option<String>,
}

fn guess_mime(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mov" => "video/quicktime",
        "mp3" => "audio/mpeg",
        "ogg" | "oga" | "opus" => "audio/ogg",
        "m4a" => "audio/mp4",
        "wav" => "audio/wav",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

fn class_of(mime: &str) -> &'static str {
    match mime.split('/').next() {
        Some("image") => "image",
        Some("video") => "video",
        Some("audio") => "audio",
        _ => "file",
    }
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> ClientError {
    ClientError::InvalidInput(format!("{what} {}: {e}", path.display()))
}

fn display_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    name.chars().take(MAX_NAME_CHARS).collect()
}

/// The part file a download is written to before it is verified.
fn part_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    out.with_file_name(name)
}

impl Client {
    pub(crate) fn transfer_client(&self) -> Result<reqwest::Client> {
        // No total timeout: a large file on a slow link takes what it takes;
        // a stalled one is cut by the read timeout.
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .user_agent(concat!("vestnik-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Transport(e.to_string()))
    }

    /// A signed URL as given (S3) or relative to the server (local store).
    pub(crate) fn signed_url(&self, r: &SignedRequest) -> String {
        if r.url.starts_with('/') {
            format!("{}{}", self.inner.api.base().trim_end_matches('/'), r.url)
        } else {
            r.url.clone()
        }
    }

    /// Deletes one's own uploaded media (the object and the server's
    /// record), e.g. together with the message that carried it.
    pub async fn delete_attachment(&self, media_id: &str) -> Result<()> {
        let id = path_id("media_id", media_id)?;
        self.inner
            .api
            .call_unit::<()>(Method::DELETE, &format!("/v1/media/{id}"), None)
            .await
    }

    /// Encrypts and uploads a file, then sends it to a user (every device
    /// of theirs and this account's other devices) and waits until the
    /// server has accepted the message.
    pub async fn send_file(
        &self,
        peer_user_id: &str,
        path: &Path,
        options: &FileOptions,
    ) -> Result<(SentMessage, Attachment)> {
        let conversation_id = self.conversation_with(peer_user_id).await?;
        self.upload_and_send(Target::Peer(peer_user_id), &conversation_id, path, options)
            .await
    }

    /// [`Client::send_file`] into a group (Megolm).
    pub async fn send_group_file(
        &self,
        conversation_id: &str,
        path: &Path,
        options: &FileOptions,
    ) -> Result<(SentMessage, Attachment)> {
        self.upload_and_send(
            Target::Group(conversation_id),
            conversation_id,
            path,
            options,
        )
        .await
    }

    /// [`Client::send_file`] as a channel post (owner or publisher): in the
    /// clear on a public channel, encrypted on a private one.
    pub async fn post_file(
        &self,
        conversation_id: &str,
        path: &Path,
        options: &FileOptions,
    ) -> Result<(SentMessage, Attachment)> {
        // Learns (and remembers) whether the channel is public first.
        self.inner.channel_is_public(conversation_id).await?;
        self.upload_and_send(
            Target::Channel(conversation_id),
            conversation_id,
            path,
            options,
        )
        .await
    }

    async fn upload_and_send(
        &self,
        target: Target<'_>,
        conversation_id: &str,
        path: &Path,
        options: &FileOptions,
    ) -> Result<(SentMessage, Attachment)> {
        let a = self.upload_file(conversation_id, path, options).await?;
        let sent = self
            .send_and_wait(target, &caption(options, &a), Some(&a))
            .await?;
        Ok((sent, a))
    }
}

fn check_caption(options: &FileOptions) -> Result<()> {
    match options.caption.as_deref() {
        Some(c) if c.len() > MAX_CAPTION_BYTES => Err(ClientError::InvalidInput(format!(
            "caption: expected at most {MAX_CAPTION_BYTES} bytes, got {}",
            c.len()
        ))),
        _ => Ok(()),
    }
}

fn caption(options: &FileOptions, a: &Attachment) -> String {
    options
        .caption
        .clone()
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| a.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_types_come_from_the_path_but_never_become_paths() {
        assert_eq!(guess_mime(Path::new("/x/Photo.JPG")), "image/jpeg");
        assert_eq!(class_of("image/jpeg"), "image");
        assert_eq!(class_of("application/pdf"), "file");
        assert_eq!(display_name(Path::new("/tmp/a/report.pdf")), "report.pdf");
        assert_eq!(
            part_path(Path::new("/tmp/out.bin")),
            Path::new("/tmp/out.bin.part")
        );
    }

    #[test]
    fn captions_are_bounded_so_the_sealed_message_fits() {
        let ok = FileOptions {
            caption: Some("x".repeat(MAX_CAPTION_BYTES)),
            ..FileOptions::default()
        };
        assert!(check_caption(&ok).is_ok());
        let long = FileOptions {
            caption: Some("x".repeat(MAX_CAPTION_BYTES + 1)),
            ..FileOptions::default()
        };
        assert!(matches!(
            check_caption(&long),
            Err(ClientError::InvalidInput(_))
        ));
    }
}
