//! This device's one-time and fallback keys on the server: topped up and
//! rotated at the checks after connecting and after each new inbound
//! session.
use std::sync::atomic::Ordering;
use std::sync::Arc;

use reqwest::Method;
use vestnik_proto::{KeyCount, KeysUpload};

use super::Inner;
use crate::error::Result;

impl Inner {
    /// Tops up the server's pool of our one-time keys when it is below the
    /// server's low watermark, and replaces the fallback key once it is
    /// older than `fallback_key_max_age` (or uploads it again when its last
    /// upload did not go through). Returns how many one-time keys were
    /// uploaded.
    pub(crate) async fn replenish_keys(&self) -> Result<usize> {
        let count: KeyCount = self.api.get("/v1/keys/count").await?;
        let now = crate::store::now_ms();
        let uploaded = self.store.fallback_uploaded().await?;
        let max_age =
            i64::try_from(self.config.fallback_key_max_age.as_millis()).unwrap_or(i64::MAX);
        let need_keys = count.one_time_keys < count.low_watermark;
        let target = self
            .config
            .one_time_keys
            .max(usize::try_from(count.low_watermark.saturating_mul(2)).unwrap_or(0))
            .min(vestnik_crypto::MAX_ONE_TIME_KEYS_PER_UPLOAD);
        let server = usize::try_from(count.one_time_keys).unwrap_or(0);
        let (keys, fallback) = {
            let mut device = self.device.lock().await;
            let current = device.fallback_key();
            let fallback = match &uploaded {
                // Rotating again before the last rotation reached the server
                // would drop the secret of the key the server still hands out.
                Some((key_id, _)) if *key_id != current.key_id => Some(current),
                Some((_, at)) if now.saturating_sub(*at) >= max_age => {
                    Some(device.rotate_fallback())
                }
                Some(_) => None,
                // A store from before fallback keys were rotated.
                None => Some(current),
            };
            if !need_keys && fallback.is_none() {
                return Ok(0);
            }
            let keys = if need_keys {
                device.replenish(server, target)?
            } else {
                Vec::new()
            };
            let blob = self.store.seal_device(&device)?;
            if let Err(e) = self.store.save_device(&blob).await {
                self.reload_device(&mut device).await;
                return Err(e);
            }
            (keys, fallback)
        };
        if keys.is_empty() && fallback.is_none() {
            return Ok(0);
        }
        let n = keys.len();
        let upload = KeysUpload {
            one_time_keys: keys
                .into_iter()
                .map(|k| vestnik_proto::OneTimeKey {
                    key_id: k.key_id,
                    public_key: k.public_key,
                })
                .collect(),
            fallback_key: fallback.as_ref().map(|f| vestnik_proto::SignedKey {
                key_id: f.key_id.clone(),
                public_key: f.public_key.clone(),
                signature: f.signature.clone(),
            }),
        };
        let _: KeyCount = self
            .api
            .call(Method::PUT, "/v1/keys", Some(&upload))
            .await?;
        if let Some(f) = fallback {
            // A key sent again keeps the age it had.
            let at = match uploaded {
                Some((key_id, at)) if key_id == f.key_id => at,
                _ => now,
            };
            self.store.set_fallback_uploaded(&f.key_id, at).await?;
        }
        self.counters
            .one_time_keys_uploaded
            .fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    pub(crate) fn schedule_key_check(self: &Arc<Self>) {
        if self.key_check_running.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = self.clone();
        tokio::spawn(async move {
            if let Err(e) = inner.replenish_keys().await {
                tracing::warn!(error = %e, "one-time key top-up failed");
            }
            inner.key_check_running.store(false, Ordering::Release);
        });
    }
}
