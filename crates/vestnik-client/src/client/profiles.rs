//! Display names: this account's set, others' fetched once and cached (a
//! day, or until the server pushes a change).
use std::collections::HashMap;

use reqwest::Method;
use vestnik_proto::{Profile, ProfileList, ProfileUpdate};

use super::Client;
use crate::error::Result;
use crate::group::path_id;
use crate::store::now_ms;

/// How long a cached name is trusted without a push.
const PROFILE_FRESH_MS: i64 = 86_400_000;

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
        self.inner
            .store
            .save_profile(&p.user_id, p.display_name.as_deref(), now_ms())
            .await?;
        Ok(p)
    }

    /// The display names of `user_ids` that have one and that this account
    /// may see, from the cache or the server (100 per request).
    pub async fn display_names(&self, user_ids: &[String]) -> Result<HashMap<String, String>> {
        let now = now_ms();
        let mut ids: Vec<String> = user_ids.to_vec();
        ids.sort();
        ids.dedup();
        let cached = self
            .inner
            .store
            .cached_profiles(&ids, now - PROFILE_FRESH_MS)
            .await?;
        let mut names = HashMap::new();
        let mut known = std::collections::HashSet::new();
        for (id, name) in cached {
            known.insert(id.clone());
            if let Some(n) = name {
                names.insert(id, n);
            }
        }
        let missing: Vec<&String> = ids.iter().filter(|id| !known.contains(*id)).collect();
        for chunk in missing.chunks(vestnik_proto::limits::PROFILES_PER_REQUEST_MAX) {
            let mut query = Vec::with_capacity(chunk.len());
            for id in chunk {
                query.push(path_id("user_id", id)?.to_owned());
            }
            let list: ProfileList = self
                .inner
                .api
                .get(&format!("/v1/profiles?ids={}", query.join(",")))
                .await?;
            let seen: HashMap<String, Option<String>> = list
                .profiles
                .into_iter()
                .map(|p| (p.user_id, p.display_name))
                .collect();
            // Those left out (not visible, or gone) are cached as nameless
            // too, so a history of a thousand lines asks once.
            for id in chunk {
                let name = seen.get(*id).cloned().flatten();
                self.inner
                    .store
                    .save_profile(id, name.as_deref(), now)
                    .await?;
                if let Some(n) = name {
                    names.insert((*id).clone(), n);
                }
            }
        }
        Ok(names)
    }
}
