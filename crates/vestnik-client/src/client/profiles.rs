//! Profiles: this account's display name and picture set, others' fetched
//! once and cached (a day, or until the server pushes a change). Pictures
//! are cached under their id, which changes whenever the picture does.
use std::collections::HashMap;

use reqwest::Method;
use vestnik_proto::{AvatarDownload, Profile, ProfileList, ProfileUpdate};

use super::Client;
use crate::error::{ClientError, Result};
use crate::group::path_id;
use crate::store::now_ms;

/// How long a cached profile is trusted without a push.
const PROFILE_FRESH_MS: i64 = 86_400_000;
/// The server's re-encoded pictures are far smaller; more is not one of them.
const AVATAR_DOWNLOAD_MAX_BYTES: i64 = 1 << 20;

/// The declared type of an image, from its first bytes (the server decodes
/// it either way; the declaration only has to be one it accepts).
fn image_type(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0xFF, 0xD8, 0xFF, ..] => Some("image/jpeg"),
        [0x89, b'P', b'N', b'G', ..] => Some("image/png"),
        [b'G', b'I', b'F', b'8', ..] => Some("image/gif"),
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some("image/webp"),
        _ => None,
    }
}

impl Client {
    /// Sets this account's display name (an empty one clears it); everyone
    /// sharing a conversation with it is told.
    pub async fn set_display_name(&self, name: &str) -> Result<Profile> {
        let p: Profile = self
            .inner
            .api
            .call(
                Method::PUT,
                "/v1/account/profile",
                Some(&ProfileUpdate {
                    display_name: name.to_owned(),
                }),
            )
            .await?;
        self.remember_profile(&p).await?;
        Ok(p)
    }

    /// Sets this account's profile picture from an image file's bytes
    /// (JPEG, PNG, GIF or WebP, at most 4 MiB). The server keeps a square
    /// JPEG of it, without metadata, and tells everyone sharing a
    /// conversation with this account. Profile pictures, like display
    /// names, are not end-to-end encrypted.
    pub async fn set_avatar(&self, image: &[u8]) -> Result<Profile> {
        let content_type = image_type(image).ok_or_else(|| {
            ClientError::InvalidInput("expected a JPEG, PNG, GIF or WebP image".into())
        })?;
        let p: Profile = self
            .inner
            .api
            .call_bytes(
                Method::PUT,
                "/v1/account/avatar",
                bytes::Bytes::copy_from_slice(image),
                content_type,
            )
            .await?;
        self.remember_profile(&p).await?;
        Ok(p)
    }

    /// Removes this account's profile picture.
    pub async fn clear_avatar(&self) -> Result<Profile> {
        let p: Profile = self
            .inner
            .api
            .call::<(), _>(Method::DELETE, "/v1/account/avatar", None)
            .await?;
        self.remember_profile(&p).await?;
        Ok(p)
    }

    async fn remember_profile(&self, p: &Profile) -> Result<()> {
        self.inner
            .store
            .save_profile(
                &p.user_id,
                p.display_name.as_deref(),
                p.avatar.as_deref(),
                now_ms(),
            )
            .await
    }

    /// The display names of `user_ids` that have one and that this account
    /// may see, from the cache or the server (100 per request).
    pub async fn display_names(&self, user_ids: &[String]) -> Result<HashMap<String, String>> {
        Ok(self
            .profiles(user_ids)
            .await?
            .into_iter()
            .filter_map(|(id, p)| p.display_name.map(|n| (id, n)))
            .collect())
    }

    /// The profiles of `user_ids` that this account may see, from the cache
    /// or the server (100 per request); those it may not see are left out.
    pub async fn profiles(&self, user_ids: &[String]) -> Result<HashMap<String, Profile>> {
        let now = now_ms();
        let mut ids: Vec<String> = user_ids.to_vec();
        ids.sort();
        ids.dedup();
        let cached = self
            .inner
            .store
            .cached_profiles(&ids, now - PROFILE_FRESH_MS)
            .await?;
        let mut profiles = HashMap::new();
        let mut known = std::collections::HashSet::new();
        for c in cached {
            known.insert(c.user_id.clone());
            if c.display_name.is_some() || c.avatar.is_some() {
                profiles.insert(
                    c.user_id.clone(),
                    Profile {
                        user_id: c.user_id,
                        display_name: c.display_name,
                        avatar: c.avatar,
                    },
                );
            }
        }
        let missing: Vec<String> = ids.into_iter().filter(|id| !known.contains(id)).collect();
        for chunk in missing.chunks(vestnik_proto::limits::PROFILES_PER_REQUEST_MAX) {
            profiles.extend(self.fetch_profiles(chunk, now).await?);
        }
        Ok(profiles)
    }

    /// Asks the server for up to 100 profiles and caches what it says;
    /// those left out (not visible, or gone) are cached as empty too, so a
    /// history of a thousand lines asks once.
    async fn fetch_profiles(&self, ids: &[String], now: i64) -> Result<HashMap<String, Profile>> {
        let mut query = Vec::with_capacity(ids.len());
        for id in ids {
            query.push(path_id("user_id", id)?.to_owned());
        }
        let list: ProfileList = self
            .inner
            .api
            .get(&format!("/v1/profiles?ids={}", query.join(",")))
            .await?;
        let mut seen: HashMap<String, Profile> = list
            .profiles
            .into_iter()
            .map(|p| (p.user_id.clone(), p))
            .collect();
        let mut profiles = HashMap::new();
        for id in ids {
            let p = seen.remove(id);
            let (name, avatar) = p.as_ref().map_or((None, None), |p| {
                (p.display_name.as_deref(), p.avatar.as_deref())
            });
            self.inner.store.save_profile(id, name, avatar, now).await?;
            if let Some(p) = p.filter(|p| p.display_name.is_some() || p.avatar.is_some()) {
                profiles.insert(id.clone(), p);
            }
        }
        Ok(profiles)
    }

    /// A user's profile picture (JPEG bytes), if they have one this account
    /// may see now. The profile is asked for afresh (a change made while
    /// this device was offline reached it by no push), the bytes only once
    /// per picture, then read from the local store.
    pub async fn avatar(&self, user_id: &str) -> Result<Option<Vec<u8>>> {
        let id = path_id("user_id", user_id)?.to_owned();
        let Some(avatar) = self
            .fetch_profiles(std::slice::from_ref(&id), now_ms())
            .await?
            .remove(&id)
            .and_then(|p| p.avatar)
        else {
            return Ok(None);
        };
        if let Some(image) = self.inner.store.cached_avatar(&avatar).await? {
            return Ok(Some(image));
        }
        let grant: AvatarDownload = match self
            .inner
            .api
            .get(&format!("/v1/profiles/{id}/avatar"))
            .await
        {
            Ok(g) => g,
            // Removed (or no longer visible) since the profile was cached.
            Err(ClientError::Api { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        if grant.size > AVATAR_DOWNLOAD_MAX_BYTES {
            return Err(ClientError::Protocol(format!(
                "avatar: expected at most {AVATAR_DOWNLOAD_MAX_BYTES} bytes, the server offers {}",
                grant.size
            )));
        }
        let res = self.get_signed(&grant.download).await?;
        let image = res
            .bytes()
            .await
            .map_err(|e| ClientError::Transport(e.without_url().to_string()))?;
        if i64::try_from(image.len()).ok() != Some(grant.size)
            || image_type(&image) != Some("image/jpeg")
        {
            return Err(ClientError::Protocol(
                "avatar: the download is not the JPEG the server described".into(),
            ));
        }
        self.inner
            .store
            .save_avatar(&id, &grant.avatar, &image)
            .await?;
        Ok(Some(image.to_vec()))
    }
}
