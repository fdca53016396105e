//! Files. Each is encrypted on this device in 64 KiB chunks under a fresh
//! key (`vestnik_crypto::AttachmentSealer`), sent straight to the media
//! store at the URL the server signed (the server never sees the bytes on
//! S3, and never the key anywhere), and fetched and decrypted the same way.
//! Neither direction holds a whole file in memory: encryption is
//! deterministic for a given key, so the digest the server needs up front is
//! computed in a first pass and the upload streams a second one.
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use futures::StreamExt;
use reqwest::Method;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vestnik_crypto::{
    attachment_ciphertext_len, AttachmentKey, AttachmentOpener, AttachmentSealer, ATTACHMENT_CHUNK,
    ATTACHMENT_TAG,
};
use vestnik_proto::{
    MediaDownload, MediaInfo, MediaUploadGrant, MediaUploadRequest, SignedRequest,
};

use crate::client::Target;
use crate::error::{ClientError, Result};
use crate::group::path_id;
use crate::types::{Attachment, SentMessage, Thumbnail};
use crate::Client;

/// Images larger than this get no thumbnail (decoding reads them whole).
const THUMBNAIL_MAX_SOURCE_BYTES: u64 = 20 << 20;
const THUMBNAIL_EDGE: u32 = 256;
/// The preview travels inside the message, so it must stay small: with a
/// caption and the descriptor the sealed message stays well inside the
/// server's 64 Ki-character ciphertext limit.
const THUMBNAIL_MAX_JPEG_BYTES: usize = 16 * 1024;
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

/// Reads until `buf` is full or the file ends; returns the bytes read.
async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]).await? {
            0 => break,
            m => n += m,
        }
    }
    Ok(n)
}

/// The stored object of a file, produced chunk by chunk: sealed under `key`,
/// or the plain bytes when there is no key (public-channel media).
struct ObjectChunks {
    file: tokio::fs::File,
    sealer: Option<AttachmentSealer>,
    buf: Vec<u8>,
    done: bool,
}

impl ObjectChunks {
    async fn open(path: &Path, key: Option<&AttachmentKey>, len: u64) -> Result<Self> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| io_error("opening", path, e))?;
        Ok(Self {
            file,
            sealer: key.map(|k| AttachmentSealer::new(k, len)),
            buf: vec![0; ATTACHMENT_CHUNK],
            done: false,
        })
    }

    async fn next(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        let n = read_full(&mut self.file, &mut self.buf).await?;
        let chunk = &self.buf[..n];
        match self.sealer.as_mut() {
            Some(s) => {
                let sealed = s.seal_chunk(chunk).map_err(|e| {
                    std::io::Error::other(format!("the file changed while sending: {e}"))
                })?;
                self.done = s.is_done();
                Ok(Some(sealed))
            }
            None => {
                self.done = n < ATTACHMENT_CHUNK;
                Ok((n > 0).then(|| chunk.to_vec()))
            }
        }
    }
}

fn make_thumbnail(path: &Path) -> Option<Thumbnail> {
    let bytes = std::fs::read(path).ok()?;
    let attempts = [(THUMBNAIL_EDGE, 70), (THUMBNAIL_EDGE / 2, 60)];
    let p = vestnik_preview::jpeg_preview(&bytes, &attempts, THUMBNAIL_MAX_JPEG_BYTES)?;
    Some(Thumbnail {
        jpeg: base64::engine::general_purpose::STANDARD.encode(&p.jpeg),
        width: p.width,
        height: p.height,
    })
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
    fn transfer_client(&self) -> Result<reqwest::Client> {
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
    fn signed_url(&self, r: &SignedRequest) -> String {
        if r.url.starts_with('/') {
            format!("{}{}", self.inner.api.base().trim_end_matches('/'), r.url)
        } else {
            r.url.clone()
        }
    }

    /// Encrypts and uploads a file into a conversation and returns the
    /// attachment to send (see [`Client::send_file`], which does both).
    /// Public-channel media is uploaded in the clear, like the posts there.
    pub async fn upload_file(
        &self,
        conversation_id: &str,
        path: &Path,
        options: &FileOptions,
    ) -> Result<Attachment> {
        check_caption(options)?;
        let conversation_id = path_id("conversation_id", conversation_id)?;
        let meta = tokio::fs::metadata(path)
            .await
            .map_err(|e| io_error("reading", path, e))?;
        if !meta.is_file() {
            return Err(ClientError::InvalidInput(format!(
                "{}: expected a regular file",
                path.display()
            )));
        }
        let size = meta.len();
        let public = matches!(
            self.inner.store.channel(conversation_id).await?,
            Some((true, _))
        );
        let key = (!public).then(AttachmentKey::generate);
        let stored_size = if public {
            size
        } else {
            attachment_ciphertext_len(size)
        };
        let mime = options
            .mime
            .clone()
            .unwrap_or_else(|| guess_mime(path).to_owned());
        let class = class_of(&mime);

        // Pass 1: the digest of exactly the bytes that will be stored.
        let mut chunks = ObjectChunks::open(path, key.as_ref(), size).await?;
        let mut hasher = Sha256::new();
        let mut counted = 0u64;
        while let Some(c) = chunks
            .next()
            .await
            .map_err(|e| io_error("reading", path, e))?
        {
            counted += c.len() as u64;
            hasher.update(&c);
        }
        if counted != stored_size {
            return Err(ClientError::InvalidInput(format!(
                "{}: the file changed while it was read",
                path.display()
            )));
        }
        let sha256 = hex::encode(hasher.finalize());
        let grant: MediaUploadGrant = self
            .inner
            .api
            .post(
                "/v1/media",
                &MediaUploadRequest {
                    conversation_id: conversation_id.parse()?,
                    size: i64::try_from(stored_size).unwrap_or(i64::MAX),
                    sha256: sha256.clone(),
                    class: class.parse()?,
                    ttl_secs: options.ttl_secs,
                },
            )
            .await?;

        // Pass 2: the same bytes again, streamed to the signed URL.
        if let Err(e) = self
            .put_object(&grant.upload, path, key.as_ref(), size, stored_size)
            .await
        {
            let _ = self.delete_attachment(&grant.media.id).await;
            return Err(e);
        }
        let done: MediaInfo = self
            .inner
            .api
            .call::<(), _>(
                Method::POST,
                &format!("/v1/media/{}/complete", grant.media.id),
                None,
            )
            .await?;
        let thumbnail = if class == "image" && size <= THUMBNAIL_MAX_SOURCE_BYTES {
            let p = path.to_owned();
            tokio::task::spawn_blocking(move || make_thumbnail(&p))
                .await
                .ok()
                .flatten()
        } else {
            None
        };
        Ok(Attachment {
            media_id: done.id,
            key: key.map(|k| k.to_base64().to_string()),
            sha256,
            stored_size,
            size,
            name: display_name(path),
            mime,
            class: class.to_owned(),
            thumbnail,
            expires_at: done.expires_at,
        })
    }

    async fn put_object(
        &self,
        upload: &SignedRequest,
        path: &Path,
        key: Option<&AttachmentKey>,
        size: u64,
        stored_size: u64,
    ) -> Result<()> {
        let chunks = ObjectChunks::open(path, key, size).await?;
        let body = futures::stream::unfold(chunks, |mut c| async move {
            match c.next().await {
                Ok(Some(bytes)) => Some((Ok(bytes::Bytes::from(bytes)), c)),
                Ok(None) => None,
                Err(e) => Some((Err(e), c)),
            }
        });
        let method = Method::from_bytes(upload.method.as_bytes())
            .map_err(|_| ClientError::Protocol(format!("upload method {:?}", upload.method)))?;
        let mut req = self
            .transfer_client()?
            .request(method, self.signed_url(upload))
            // Signed URLs refuse chunked uploads: the length is part of the signature.
            .header(reqwest::header::CONTENT_LENGTH, stored_size)
            .body(reqwest::Body::wrap_stream(body));
        for (k, v) in &upload.headers {
            if !k.eq_ignore_ascii_case("content-length") {
                req = req.header(k.as_str(), v.as_str());
            }
        }
        let res = req
            .send()
            .await
            .map_err(|e| ClientError::Transport(e.without_url().to_string()))?;
        if !res.status().is_success() {
            let status = res.status().as_u16();
            let body = res.text().await.unwrap_or_default();
            return Err(ClientError::Api {
                status,
                code: "upload_refused".into(),
                message: body.chars().take(300).collect(),
                devices: None,
                pow: None,
            });
        }
        Ok(())
    }

    /// Downloads, verifies and decrypts an attachment into `out` (written
    /// as `out.part` first and renamed only once every chunk opened and the
    /// digest matched); returns the file's size.
    pub async fn download_attachment(&self, attachment: &Attachment, out: &Path) -> Result<u64> {
        let id = path_id("media_id", &attachment.media_id)?;
        let grant: MediaDownload = self.inner.api.get(&format!("/v1/media/{id}")).await?;
        if grant.media.sha256 != attachment.sha256
            || u64::try_from(grant.media.size).ok() != Some(attachment.stored_size)
        {
            return Err(ClientError::Protocol(
                "media: the server's object is not the one the sender sent".into(),
            ));
        }
        let part = part_path(out);
        let result = self.fetch_into(&grant.download, attachment, &part).await;
        match result {
            Ok(n) => {
                tokio::fs::rename(&part, out)
                    .await
                    .map_err(|e| io_error("writing", out, e))?;
                Ok(n)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&part).await;
                Err(e)
            }
        }
    }

    async fn fetch_into(
        &self,
        download: &SignedRequest,
        a: &Attachment,
        part: &Path,
    ) -> Result<u64> {
        let key = a
            .key
            .as_deref()
            .map(AttachmentKey::from_base64)
            .transpose()?;
        let mut opener = key
            .as_ref()
            .map(|k| AttachmentOpener::new(k, a.stored_size))
            .transpose()?;
        let res = self
            .transfer_client()?
            .get(self.signed_url(download))
            .send()
            .await
            .map_err(|e| ClientError::Transport(e.without_url().to_string()))?;
        if !res.status().is_success() {
            return Err(ClientError::Api {
                status: res.status().as_u16(),
                code: "download_refused".into(),
                message: "the media store refused the download".into(),
                devices: None,
                pow: None,
            });
        }
        let mut file = tokio::fs::File::create(part)
            .await
            .map_err(|e| io_error("creating", part, e))?;
        let sealed_chunk = if opener.is_some() {
            ATTACHMENT_CHUNK + ATTACHMENT_TAG
        } else {
            ATTACHMENT_CHUNK
        };
        let mut hasher = Sha256::new();
        let mut left = a.stored_size;
        let mut buf: Vec<u8> = Vec::with_capacity(2 * sealed_chunk);
        let mut written = 0u64;
        let mut body = res.bytes_stream();
        loop {
            let next = body.next().await;
            if let Some(bytes) = &next {
                let bytes = bytes
                    .as_ref()
                    .map_err(|e| ClientError::Transport(e.to_string()))?;
                if bytes.len() as u64 > left.saturating_sub(buf.len() as u64) {
                    return Err(ClientError::Protocol(
                        "media: more bytes than the sender sent".into(),
                    ));
                }
                buf.extend_from_slice(bytes);
            }
            // Hand over whole chunks (the last one is whatever is left).
            loop {
                let want = (sealed_chunk as u64).min(left) as usize;
                if want == 0 || buf.len() < want {
                    break;
                }
                let chunk: Vec<u8> = buf.drain(..want).collect();
                hasher.update(&chunk);
                left -= want as u64;
                let plain = match opener.as_mut() {
                    Some(o) => o.open_chunk(&chunk)?,
                    None => zeroize::Zeroizing::new(chunk),
                };
                file.write_all(&plain)
                    .await
                    .map_err(|e| io_error("writing", part, e))?;
                written += plain.len() as u64;
            }
            if next.is_none() {
                break;
            }
        }
        // An empty encrypted file is still one sealed chunk, handled above.
        let complete = left == 0 && opener.as_ref().is_none_or(AttachmentOpener::is_done);
        if !complete || hex::encode(hasher.finalize()) != a.sha256 {
            return Err(ClientError::Protocol(
                "media: the download is cut short or not the file that was sent".into(),
            ));
        }
        file.sync_all()
            .await
            .map_err(|e| io_error("writing", part, e))?;
        Ok(written)
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
