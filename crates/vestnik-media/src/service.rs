//! The media rules: who may upload where, how much, for how long, and what
//! must be true before an upload counts.
use std::sync::Arc;
use std::time::Duration;
use vestnik_core::limits::MEDIA_MIN_TTL_SECS as MIN_TTL_SECS;
use vestnik_core::Clock;
use vestnik_proto::{
    MediaDownload, MediaId, MediaInfo, MediaUploadGrant, MediaUploadRequest, MediaUsage,
};
use vestnik_store::{MediaCreate, MediaRow, Store};

use crate::{BlobStore, ClamdScanner, MediaError, ScanVerdict, UploadSpec};
use vestnik_core::limits::UPLOAD_GRACE_MS;

/// The media part of the config, passed once at start.
#[derive(Debug, Clone)]
pub struct MediaSettings {
    /// Largest object in bytes.
    pub max_object_bytes: i64,
    /// Bytes each user may hold at once across their media.
    pub quota_bytes: i64,
    /// Longest lifetime of a media object in seconds (also the default).
    pub max_ttl_secs: i64,
    /// How long an upload URL is valid.
    pub upload_url_secs: i64,
    /// How long a download URL is valid.
    pub download_url_secs: i64,
    /// Make previews of public-channel images.
    pub public_thumbnails: bool,
}

/// The media rules: upload grants, completion checks, downloads, quotas and the reaper's passes.
pub struct MediaService {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) blobs: Arc<dyn BlobStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) settings: MediaSettings,
    pub(crate) scanner: Option<ClamdScanner>,
    pub(crate) limits: Arc<vestnik_bus::Limits>,
}

fn info(m: &MediaRow) -> MediaInfo {
    MediaInfo {
        id: m.id.clone(),
        owner_id: m.owner_id.clone(),
        conversation_id: m.conversation_id.clone(),
        size: m.size,
        sha256: m.sha256.clone(),
        class: m.class.clone(),
        state: m.state.clone(),
        created_at: m.created_at,
        expires_at: m.expires_at,
    }
}

pub(crate) fn secs(s: i64) -> Duration {
    Duration::from_secs(u64::try_from(s).unwrap_or(0))
}

impl MediaService {
    /// Builds the service; `scanner` is `None` when no clamd is configured (public media then go unscanned).
    pub fn new(
        store: Arc<dyn Store>,
        blobs: Arc<dyn BlobStore>,
        clock: Arc<dyn Clock>,
        settings: MediaSettings,
        scanner: Option<ClamdScanner>,
        limits: Arc<vestnik_bus::Limits>,
    ) -> Self {
        Self {
            store,
            blobs,
            clock,
            settings,
            scanner,
            limits,
        }
    }

    /// Counts one `action` by `user_id` against its rate limit.
    pub(crate) async fn limit(
        &self,
        action: vestnik_core::Action,
        user_id: &str,
    ) -> Result<(), MediaError> {
        match self.limits.check(action, user_id).await {
            Ok(()) => Ok(()),
            Err(vestnik_bus::LimitError::Limited { retry_after_ms }) => {
                Err(MediaError::RateLimited { retry_after_ms })
            }
            Err(vestnik_bus::LimitError::Unavailable) => Err(MediaError::Busy),
        }
    }

    /// The blob store in use (the gateway serves local blob URLs through it).
    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }

    /// The media settings (the OpenAPI document states their limits).
    pub fn settings(&self) -> &MediaSettings {
        &self.settings
    }

    fn validate(&self, req: &MediaUploadRequest) -> Result<i64, MediaError> {
        let bad = |m: String| Err(MediaError::InvalidInput(m));
        if req.size < 1 {
            return bad(format!("size: expected at least 1 byte, got {}", req.size));
        }
        if req.size > self.settings.max_object_bytes {
            return Err(MediaError::TooLarge {
                max: self.settings.max_object_bytes,
                got: req.size,
            });
        }
        if req.sha256.len() != 64
            || !req
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return bad("sha256: expected 64 lowercase hex characters".into());
        }
        let max = self.settings.max_ttl_secs;
        let ttl = req.ttl_secs.unwrap_or(max);
        if !(MIN_TTL_SECS..=max).contains(&ttl) {
            return bad(format!(
                "ttl_secs: expected {MIN_TTL_SECS}..={max}, got {ttl}"
            ));
        }
        Ok(ttl)
    }

    /// Membership, and posting rights in channels.
    async fn check_uploader(&self, user_id: &str, conversation_id: &str) -> Result<(), MediaError> {
        let role = self
            .store
            .member_role(conversation_id, user_id)
            .await?
            .ok_or(MediaError::NotMember)?;
        if role == "subscriber" {
            return Err(MediaError::Forbidden);
        }
        Ok(())
    }

    /// Grants an upload: checks the size, TTL and the caller's right to post in the conversation,
    /// reserves quota, and returns a presigned PUT URL bound to the exact length and digest.
    pub async fn grant_upload(
        &self,
        user_id: &str,
        req: &MediaUploadRequest,
    ) -> Result<MediaUploadGrant, MediaError> {
        let ttl = self.validate(req)?;
        self.limit(vestnik_core::Action::UploadGrant, user_id)
            .await?;
        self.check_uploader(user_id, &req.conversation_id).await?;
        let now = self.clock.now_ms();
        let id = vestnik_core::ids::new_id();
        let url_ms = self.settings.upload_url_secs * 1000;
        let row = MediaRow {
            object_key: format!("m/{id}"),
            id,
            owner_id: user_id.to_owned(),
            conversation_id: req.conversation_id.to_string(),
            size: req.size,
            sha256: req.sha256.clone(),
            class: req.class.as_str().to_owned(),
            state: "pending".into(),
            created_at: now,
            upload_expires_at: now + url_ms + UPLOAD_GRACE_MS,
            expires_at: now + ttl * 1000,
            thumbnail_key: None,
        };
        let spec = UploadSpec {
            size: u64::try_from(req.size).unwrap_or(0),
            sha256: req.sha256.clone(),
        };
        // Signed before the row exists, so a signing failure leaves nothing.
        let upload = self.blobs.presign_put(
            &row.object_key,
            &spec,
            secs(self.settings.upload_url_secs),
            now,
        )?;
        match self
            .store
            .create_media(&row, self.settings.quota_bytes)
            .await?
        {
            MediaCreate::Created => {}
            MediaCreate::OverQuota { used } => {
                return Err(MediaError::QuotaExceeded {
                    quota: self.settings.quota_bytes,
                    used,
                    size: req.size,
                })
            }
        }
        metrics::counter!("vestnik_media_grants_total").increment(1);
        Ok(MediaUploadGrant {
            media: info(&row),
            upload,
        })
    }

    /// The caller's own media (another user's is "not found", not "forbidden":
    /// ids do not reveal that they exist).
    async fn owned(&self, user_id: &str, id: &str) -> Result<MediaRow, MediaError> {
        if !vestnik_core::ids::is_valid_id(id) {
            return Err(MediaError::NotFound);
        }
        match self.store.media(id).await? {
            Some(m) if m.owner_id == user_id => Ok(m),
            _ => Err(MediaError::NotFound),
        }
    }

    /// Removes the object, then the row: a crash in between leaves a row the
    /// reaper finishes, never an object nobody accounts for.
    async fn discard(&self, m: &MediaRow) -> Result<(), MediaError> {
        self.delete_objects(m).await?;
        self.store.delete_media(&m.id).await?;
        Ok(())
    }

    /// Marks an uploaded object ready once its length and digest match the grant; public media are
    /// also scanned and (images) given a preview. Idempotent once ready.
    pub async fn complete(&self, user_id: &str, id: &MediaId) -> Result<MediaInfo, MediaError> {
        let m = self.owned(user_id, id).await?;
        if m.state == "ready" {
            return Ok(info(&m));
        }
        if m.upload_expires_at <= self.clock.now_ms() {
            return Err(MediaError::UploadExpired);
        }
        let Some(object) = self.blobs.head(&m.object_key).await? else {
            return Err(MediaError::NotUploaded);
        };
        let size_ok = i64::try_from(object.size).ok() == Some(m.size);
        let sha_ok = object.sha256.as_deref().is_none_or(|s| s == m.sha256);
        if !(size_ok && sha_ok) {
            self.discard(&m).await?;
            let why = if size_ok {
                "SHA-256 differs".to_owned()
            } else {
                format!("{} bytes stored, {} declared", object.size, m.size)
            };
            return Err(MediaError::Mismatch(why));
        }
        let public = self.is_public(&m).await?;
        if public {
            if let Some(ScanVerdict::Infected(name)) = self.scan(&m).await? {
                self.discard(&m).await?;
                return Err(MediaError::Infected(name));
            }
        }
        let thumbnail_key = if public && m.class == "image" && self.settings.public_thumbnails {
            self.make_thumbnail(&m).await
        } else {
            None
        };
        let ready = self
            .store
            .mark_media_ready(&m.id, self.clock.now_ms(), thumbnail_key.as_deref())
            .await?;
        if !ready {
            if let Some(k) = &thumbnail_key {
                let _ = self.blobs.delete(k).await;
            }
            return Err(MediaError::UploadExpired);
        }
        metrics::counter!("vestnik_media_completed_total").increment(1);
        Ok(MediaInfo {
            state: "ready".into(),
            ..info(&m)
        })
    }

    /// Public-channel media is plaintext by design, so the server may look
    /// at it (clamd, previews). Encrypted media is never read.
    async fn is_public(&self, m: &MediaRow) -> Result<bool, MediaError> {
        Ok(self
            .store
            .conversation(&m.conversation_id)
            .await?
            .is_some_and(|c| c.kind == "channel" && c.visibility.as_deref() == Some("public")))
    }

    /// The clamd verdict, when clamd is configured.
    async fn scan(&self, m: &MediaRow) -> Result<Option<ScanVerdict>, MediaError> {
        let Some(scanner) = &self.scanner else {
            return Ok(None);
        };
        let stream = self.blobs.read(&m.object_key).await?;
        match scanner.scan(stream).await {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                tracing::warn!(error = %e, "virus scan failed");
                Err(MediaError::ScannerUnavailable)
            }
        }
    }

    /// A JPEG preview of a public image, stored next to it. Best effort: an
    /// image that does not decode simply has none.
    async fn make_thumbnail(&self, m: &MediaRow) -> Option<String> {
        if m.size > crate::thumbnail::MAX_SOURCE_BYTES {
            return None;
        }
        let bytes = match self.read_all(&m.object_key).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, media = %m.id, "reading an image for its preview failed");
                return None;
            }
        };
        let jpeg = tokio::task::spawn_blocking(move || crate::thumbnail::jpeg_preview(&bytes))
            .await
            .ok()
            .flatten()?;
        let key = format!("{}-thumb", m.object_key);
        match self.blobs.put(&key, jpeg, "image/jpeg").await {
            Ok(()) => Some(key),
            Err(e) => {
                tracing::warn!(error = %e, media = %m.id, "storing a preview failed");
                None
            }
        }
    }

    async fn read_all(&self, key: &str) -> Result<Vec<u8>, MediaError> {
        use futures::TryStreamExt;
        let chunks: Vec<bytes::Bytes> = self.blobs.read(key).await?.try_collect().await?;
        Ok(chunks.concat())
    }

    /// The object and its preview; missing ones count as deleted.
    pub(crate) async fn delete_objects(&self, m: &MediaRow) -> Result<(), MediaError> {
        if let Some(t) = &m.thumbnail_key {
            self.blobs.delete(t).await?;
        }
        self.blobs.delete(&m.object_key).await?;
        Ok(())
    }

    /// A member's view of a media item that is ready and not expired.
    async fn visible(&self, user_id: &str, id: &str) -> Result<MediaRow, MediaError> {
        if !vestnik_core::ids::is_valid_id(id) {
            return Err(MediaError::NotFound);
        }
        let m = self.store.media(id).await?.ok_or(MediaError::NotFound)?;
        if m.expires_at <= self.clock.now_ms() {
            return Err(MediaError::NotFound);
        }
        if self
            .store
            .member_role(&m.conversation_id, user_id)
            .await?
            .is_none()
        {
            return Err(MediaError::NotFound);
        }
        if m.state != "ready" {
            return Err(MediaError::NotReady);
        }
        Ok(m)
    }

    /// A presigned GET URL for media in a conversation the caller belongs to.
    pub async fn grant_download(
        &self,
        user_id: &str,
        id: &MediaId,
    ) -> Result<MediaDownload, MediaError> {
        let m = self.visible(user_id, id).await?;
        let ttl = secs(self.settings.download_url_secs);
        let now = self.clock.now_ms();
        let download = self.blobs.presign_get(&m.object_key, ttl, now)?;
        let thumbnail = m
            .thumbnail_key
            .as_deref()
            .map(|k| self.blobs.presign_get(k, ttl, now))
            .transpose()?;
        Ok(MediaDownload {
            media: info(&m),
            download,
            thumbnail,
        })
    }

    /// The owner deletes their media (e.g. with the message that carried it).
    pub async fn delete(&self, user_id: &str, id: &MediaId) -> Result<(), MediaError> {
        let m = self.owned(user_id, id).await?;
        // The profile points at it: that goes through `clear_avatar`.
        if m.class == "avatar" {
            return Err(MediaError::NotFound);
        }
        self.discard(&m).await
    }

    /// Deletes the objects of a deleted account's media (their rows went
    /// with the account). One that cannot be deleted now is left to the
    /// orphan sweeper, which removes objects no row accounts for.
    pub async fn discard_objects(&self, keys: &[String]) {
        for key in keys {
            if let Err(e) = self.blobs.delete(key).await {
                tracing::warn!(error = %e, "deleting a deleted account's object; the sweeper will");
            }
        }
    }

    /// The caller's stored bytes against their quota and the largest object allowed.
    pub async fn usage(&self, user_id: &str) -> Result<MediaUsage, MediaError> {
        Ok(MediaUsage {
            used_bytes: self.store.media_usage(user_id).await?,
            quota_bytes: self.settings.quota_bytes,
            max_object_bytes: self.settings.max_object_bytes,
        })
    }

    /// Whether the upload `key` names may still receive bytes: its row is
    /// pending and its upload window open. A URL of an upload completed,
    /// deleted or expired is refused, so it cannot store an object outside
    /// any quota (the local store asks before it takes a PUT).
    pub async fn check_upload_open(&self, key: &str) -> Result<(), MediaError> {
        let closed =
            || MediaError::UrlRefused("the upload is completed, deleted or expired".into());
        let Some(id) = key
            .strip_prefix("m/")
            .filter(|id| vestnik_core::ids::is_valid_id(id))
        else {
            return Err(closed());
        };
        match self.store.media(id).await? {
            Some(m)
                if m.object_key == key
                    && m.state == "pending"
                    && m.upload_expires_at > self.clock.now_ms() =>
            {
                Ok(())
            }
            _ => Err(closed()),
        }
    }
}
