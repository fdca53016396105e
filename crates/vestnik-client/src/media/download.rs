//! Downloading a file: streamed chunk by chunk into a part file, each
//! chunk opened as it arrives, renamed into place only once the digest
//! matched and the last chunk opened.
use std::path::Path;

use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use vestnik_crypto::{AttachmentKey, AttachmentOpener, ATTACHMENT_CHUNK, ATTACHMENT_TAG};
use vestnik_proto::{MediaDownload, SignedRequest};

use super::{io_error, part_path};
use crate::error::{ClientError, Result};
use crate::group::path_id;
use crate::types::Attachment;
use crate::Client;

impl Client {
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
        let res = self.get_signed(download).await?;
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

    /// Starts a download at a signed URL; a refusal is an `Api` error
    /// `download_refused` with the store's status.
    pub(crate) async fn get_signed(&self, download: &SignedRequest) -> Result<reqwest::Response> {
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
        Ok(res)
    }
}
