//! Devices and keys: this account's devices, other users' device keys,
//! one-time key top-ups and safety numbers.
use reqwest::Method;
use vestnik_crypto::DeviceKeys;
use vestnik_proto::{DeviceInfo, DeviceList, PublicDevice};

use super::Client;
use crate::error::Result;

impl Client {
    /// This account's devices.
    pub async fn devices(&self) -> Result<Vec<DeviceInfo>> {
        let list: DeviceList = self.inner.api.get("/v1/devices").await?;
        Ok(list.devices)
    }

    /// Revokes one of this account's devices (its keys leave the directory).
    pub async fn revoke_device(&self, device_id: &str) -> Result<()> {
        self.inner
            .api
            .call_unit::<()>(Method::DELETE, &format!("/v1/devices/{device_id}"), None)
            .await
    }

    /// A user's active devices from the directory (refreshing the local cache).
    pub async fn user_devices(&self, user_id: &str) -> Result<Vec<PublicDevice>> {
        self.inner.fetch_devices(user_id).await
    }

    /// Uploads one-time keys when the server holds fewer than its low
    /// watermark (also done by itself after connecting and after pre-key
    /// messages). Returns how many were uploaded.
    pub async fn replenish_one_time_keys(&self) -> Result<usize> {
        self.inner.replenish_keys().await
    }

    /// The 60-digit safety number of this account and `peer_user_id`, over
    /// both users' current device keys: compare it out of band; it changes
    /// whenever either side's devices change.
    pub async fn safety_number(&self, peer_user_id: &str) -> Result<String> {
        let mine = self.inner.fetch_devices(self.user_id()).await?;
        let theirs = self.inner.fetch_devices(peer_user_id).await?;
        let keys = |d: Vec<PublicDevice>| -> Vec<DeviceKeys> {
            d.into_iter()
                .map(|d| DeviceKeys {
                    identity_key: d.identity_key,
                    signing_key: d.signing_key,
                })
                .collect()
        };
        Ok(vestnik_crypto::safety_number(
            self.user_id(),
            &keys(mine),
            peer_user_id,
            &keys(theirs),
        )?)
    }
}
