//! Profile pictures. Unlike other media they are not end-to-end encrypted
//! (like display names, they are shown to everyone one shares a
//! conversation with), so the server takes the image itself, scans it, and
//! keeps only a square JPEG it re-encoded: pixels, no metadata. The picture
//! is a media row of class `avatar` in no conversation, counted against the
//! owner's quota, gone with the account.
use vestnik_core::limits::{AVATAR_EDGE_PX, AVATAR_UPLOAD_MAX_BYTES};
use vestnik_core::Action;
use vestnik_proto::AvatarDownload;
use vestnik_store::{AvatarSwap, MediaRow};

use crate::{MediaError, MediaService, ScanVerdict};

/// The re-encoded picture is at most this large (a 512 px JPEG at quality
/// 85 is typically 30-80 KB; noise can make it larger, then quality drops).
const AVATAR_MAX_BYTES: usize = 256 << 10;
const AVATAR_QUALITIES: [u8; 3] = [85, 70, 50];
/// Rows of class avatar never expire: they go when replaced, cleared, or
/// with the account.
const NEVER: i64 = i64::MAX;

impl MediaService {
    /// Makes `image` (JPEG, PNG, GIF or WebP) the user's profile picture,
    /// replacing any previous one; returns the new picture's id.
    pub async fn set_avatar(&self, user_id: &str, image: Vec<u8>) -> Result<String, MediaError> {
        if image.len() > AVATAR_UPLOAD_MAX_BYTES {
            return Err(MediaError::TooLarge {
                max: AVATAR_UPLOAD_MAX_BYTES as i64,
                got: image.len() as i64,
            });
        }
        self.limit(Action::AccountChange, user_id).await?;
        let image = bytes::Bytes::from(image);
        if let Some(scanner) = &self.scanner {
            let stream = futures::stream::once(std::future::ready(Ok(image.clone())));
            match scanner.scan(Box::pin(stream)).await {
                Ok(ScanVerdict::Infected(name)) => return Err(MediaError::Infected(name)),
                Ok(ScanVerdict::Clean) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "virus scan of a profile picture failed");
                    return Err(MediaError::ScannerUnavailable);
                }
            }
        }
        let jpeg = tokio::task::spawn_blocking(move || {
            vestnik_preview::square_jpeg(
                &image,
                AVATAR_EDGE_PX,
                &AVATAR_QUALITIES,
                AVATAR_MAX_BYTES,
            )
        })
        .await
        .ok()
        .flatten()
        .ok_or(MediaError::NotAnImage)?;
        let now = self.clock.now_ms();
        let id = vestnik_core::ids::new_id();
        let row = MediaRow {
            object_key: format!("m/{id}"),
            owner_id: user_id.to_owned(),
            conversation_id: String::new(),
            size: jpeg.len() as i64,
            sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&jpeg)),
            class: "avatar".into(),
            state: "ready".into(),
            created_at: now,
            upload_expires_at: now,
            expires_at: NEVER,
            thumbnail_key: None,
            id,
        };
        // The object first: a row never points at nothing. If the row cannot
        // be written, the object is deleted (or left to the orphan sweeper).
        self.blobs.put(&row.object_key, jpeg, "image/jpeg").await?;
        match self.swap(user_id, Some(&row)).await {
            Ok(()) => Ok(row.id),
            Err(e) => {
                let _ = self.blobs.delete(&row.object_key).await;
                Err(e)
            }
        }
    }

    /// Removes the user's profile picture (nothing to remove is not an error).
    pub async fn clear_avatar(&self, user_id: &str) -> Result<(), MediaError> {
        self.limit(Action::AccountChange, user_id).await?;
        self.swap(user_id, None).await
    }

    async fn swap(&self, user_id: &str, new: Option<&MediaRow>) -> Result<(), MediaError> {
        match self
            .store
            .replace_avatar(user_id, new, self.settings.quota_bytes)
            .await?
        {
            AvatarSwap::Replaced { previous } => {
                if let Some(old) = previous {
                    // The row is gone; an object left behind is the sweeper's.
                    if let Err(e) = self.delete_objects(&old).await {
                        tracing::warn!(error = %e, "deleting a replaced profile picture; the sweeper will");
                    }
                }
                Ok(())
            }
            AvatarSwap::OverQuota { used } => Err(MediaError::QuotaExceeded {
                quota: self.settings.quota_bytes,
                used,
                size: new.map_or(0, |m| m.size),
            }),
            AvatarSwap::NoSuchUser => Err(MediaError::NotFound),
        }
    }

    /// A download URL for `user_id`'s picture, if `viewer` may see their
    /// profile (as `GET /v1/profiles` decides) and they have one.
    pub async fn avatar_download(
        &self,
        viewer: &str,
        user_id: &str,
    ) -> Result<AvatarDownload, MediaError> {
        let profile = self
            .store
            .profiles(viewer, &[user_id.to_owned()])
            .await?
            .into_iter()
            .next()
            .ok_or(MediaError::NotFound)?;
        let id = profile.avatar_media_id.ok_or(MediaError::NotFound)?;
        // Replaced between the two reads: the client asks again.
        let m = self.store.media(&id).await?.ok_or(MediaError::NotFound)?;
        let download = self.blobs.presign_get(
            &m.object_key,
            crate::service::secs(self.settings.download_url_secs),
            self.clock.now_ms(),
        )?;
        Ok(AvatarDownload {
            user_id: user_id.to_owned(),
            avatar: m.id,
            size: m.size,
            download,
        })
    }
}
