//! Uploading a file: read twice (the digest of the stored bytes first,
//! which the server needs up front, then the same bytes streamed to the
//! signed URL), with a small JPEG preview for images.
use std::path::Path;

use base64::Engine;
use reqwest::Method;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use vestnik_crypto::{
    attachment_ciphertext_len, AttachmentKey, AttachmentSealer, ATTACHMENT_CHUNK,
};
use vestnik_proto::{MediaInfo, MediaUploadGrant, MediaUploadRequest, SignedRequest};

use super::{check_caption, class_of, display_name, guess_mime, io_error, FileOptions};
use crate::error::{ClientError, Result};
use crate::group::path_id;
use crate::types::{Attachment, Thumbnail};
use crate::Client;

/// Images larger than this get no thumbnail (decoding reads them whole).
const THUMBNAIL_MAX_SOURCE_BYTES: u64 = 20 << 20;
const THUMBNAIL_EDGE: u32 = 256;
/// The preview travels inside the message, so it must stay small: with a
/// caption and the descriptor the sealed message stays well inside the
/// server's 64 Ki-character ciphertext limit.
const THUMBNAIL_MAX_JPEG_BYTES: usize = 16 * 1024;

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

impl Client {
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
}
