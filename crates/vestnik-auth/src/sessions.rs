//! Device-bound sessions: opaque tokens stored as hashes, the hot-path token
//! check through the cache, refresh rotation with reuse detection, logout,
//! devices and the account's own audit log.
use vestnik_core::limits::AUDIT_PAGE_MAX;
use vestnik_core::{ids, token};
use vestnik_proto::{
    Account, AuditEntry, AuditPage, DeviceInfo, DeviceList, RefreshRequest, SessionTokens,
};
use vestnik_store::{NewSession, NextTokens, RotateOutcome, SessionAuth};

use crate::{AuthError, AuthService, RequestMeta};
use vestnik_core::limits::CACHE_TTL_MAX_MS;
use vestnik_core::limits::DEVICE_LIST_CACHE_MS;
use vestnik_core::limits::REFRESH_RETRY_MS;

const ACCESS_PREFIX: &str = "vsa_";
const REFRESH_PREFIX: &str = "vsr_";

/// `access|access expiry|refresh|refresh expiry`, as sealed for a retry.
fn parse_pair(raw: &[u8]) -> Option<(String, i64, String, i64)> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut parts = text.split('|');
    let pair = (
        parts.next()?.to_owned(),
        parts.next()?.parse().ok()?,
        parts.next()?.to_owned(),
        parts.next()?.parse().ok()?,
    );
    parts.next().is_none().then_some(pair)
}

/// Cache keys that are read on every request and deleted whenever they
/// change: worth a node-local copy (see `vestnik_bus::NearCacheKv`).
pub const NEAR_CACHED_PREFIXES: &[&str] = &["at:", "devs:"];

fn devices_key(user_id: &str) -> String {
    format!("devs:{user_id}")
}

fn cache_key(access_hash: &str) -> String {
    format!("at:{access_hash}")
}

/// `session|user|device|expires|admin`: ids are hex, so `|` cannot appear.
pub(crate) fn encode(a: &SessionAuth) -> String {
    format!(
        "{}|{}|{}|{}|{}",
        a.session_id,
        a.user_id,
        a.device_id,
        a.access_expires_at,
        u8::from(a.is_admin)
    )
}

pub(crate) fn decode(s: &str) -> Option<SessionAuth> {
    let mut it = s.split('|');
    Some(SessionAuth {
        session_id: it.next()?.to_owned(),
        user_id: it.next()?.to_owned(),
        device_id: it.next()?.to_owned(),
        access_expires_at: it.next()?.parse().ok()?,
        is_admin: it.next()? == "1",
    })
}

impl AuthService {
    pub(crate) fn new_session(
        &self,
        user_id: &str,
        device_id: &str,
        now: i64,
    ) -> (NewSession, SessionTokens) {
        let access = format!("{ACCESS_PREFIX}{}", token::new_token());
        let refresh = format!("{REFRESH_PREFIX}{}", token::new_token());
        let s = &self.settings;
        let session = NewSession {
            id: ids::new_id(),
            user_id: user_id.to_owned(),
            device_id: device_id.to_owned(),
            access_hash: token::hash_token(&access),
            access_expires_at: now + s.access_ttl_secs * 1000,
            refresh_hash: token::hash_token(&refresh),
            refresh_expires_at: now + s.refresh_ttl_secs * 1000,
            created_at: now,
        };
        let tokens = SessionTokens {
            user_id: user_id.to_owned(),
            device_id: device_id.to_owned(),
            token_type: "Bearer".into(),
            access_token: access.into(),
            access_expires_in: s.access_ttl_secs,
            refresh_token: refresh.into(),
            refresh_expires_in: s.refresh_ttl_secs,
        };
        (session, tokens)
    }

    /// The hot path: one cache lookup; the database only on a miss. Revocation
    /// deletes cache entries, so a cached grant is never staler than the store.
    pub async fn authenticate(&self, access_token: &str) -> Result<SessionAuth, AuthError> {
        if !access_token.starts_with(ACCESS_PREFIX) || access_token.len() > 128 {
            return Err(AuthError::Unauthenticated);
        }
        let hash = token::hash_token(access_token);
        let now = self.clock.now_ms();
        // A cache that cannot be asked is a miss: the database answers.
        let cached = match self.kv.get(&cache_key(&hash)).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "token cache unavailable; asking the database");
                None
            }
        };
        if let Some(auth) = cached.as_deref().and_then(decode) {
            return if auth.access_expires_at > now {
                Ok(auth)
            } else {
                Err(AuthError::Unauthenticated)
            };
        }
        let auth = self
            .store
            .session_by_access(&hash, now)
            .await?
            .ok_or(AuthError::Unauthenticated)?;
        // Capped so that a change made by another process without a shared
        // cache (the `vestnik admin` CLI next to an embedded server) takes
        // effect within a minute; with Redis, revocation clears it at once.
        let ttl = (auth.access_expires_at - now).clamp(1, CACHE_TTL_MAX_MS) as u64;
        if let Err(e) = self.kv.set(&cache_key(&hash), &encode(&auth), ttl).await {
            tracing::debug!(error = %e, "token cache unavailable; not caching");
        }
        Ok(auth)
    }

    async fn forget(&self, access_hashes: Vec<String>) -> Result<(), AuthError> {
        if !access_hashes.is_empty() {
            let keys: Vec<String> = access_hashes.iter().map(|h| cache_key(h)).collect();
            forget_or_warn(&*self.kv, &keys).await;
        }
        Ok(())
    }

    /// After a revocation: caches forget its access tokens and the device
    /// list, and every node hears to close the devices' sockets.
    pub(crate) async fn forget_devices(
        &self,
        user_id: &str,
        revoked: vestnik_store::RevokedDevices,
    ) -> Result<(), AuthError> {
        if !revoked.device_ids.is_empty() {
            let signal = vestnik_bus::Signal::DevicesRevoked {
                device_ids: revoked.device_ids,
            };
            // Not fatal: every node also polls the database for revoked
            // devices, so their sockets close a moment later.
            if let Err(e) = self.signals.publish(&signal).await {
                tracing::warn!(error = %e, "publishing a revocation failed");
            }
        }
        let mut keys: Vec<String> = revoked.access_hashes.iter().map(|h| cache_key(h)).collect();
        keys.push(devices_key(user_id));
        forget_or_warn(&*self.kv, &keys).await;
        Ok(())
    }

    /// Trades a refresh token for a new access/refresh pair (rotation). A retry within
    /// `REFRESH_RETRY_MS` gets the same pair; any later reuse revokes the device (`RefreshReused`).
    pub async fn refresh(
        &self,
        meta: &RequestMeta,
        req: &RefreshRequest,
    ) -> Result<SessionTokens, AuthError> {
        if !req.refresh_token.expose().starts_with(REFRESH_PREFIX)
            || req.refresh_token.expose().len() > 128
        {
            return Err(AuthError::Unauthenticated);
        }
        let now = self.clock.now_ms();
        let old = token::hash_token(req.refresh_token.expose());
        let access = format!("{ACCESS_PREFIX}{}", token::new_token());
        let refresh = format!("{REFRESH_PREFIX}{}", token::new_token());
        let access_expires_at = now + self.settings.access_ttl_secs * 1000;
        let refresh_expires_at = now + self.settings.refresh_ttl_secs * 1000;
        let pair = format!("{access}|{access_expires_at}|{refresh}|{refresh_expires_at}");
        let next = NextTokens {
            access_hash: token::hash_token(&access),
            access_expires_at,
            refresh_hash: token::hash_token(&refresh),
            refresh_expires_at,
            sealed: self
                .keys
                .seal_successor(req.refresh_token.expose(), pair.as_bytes())?,
        };
        let retry_since = now - REFRESH_RETRY_MS;
        match self
            .store
            .rotate_refresh(&old, &next, now, retry_since)
            .await?
        {
            RotateOutcome::Rotated {
                session,
                old_access_hash,
            } => {
                self.forget(vec![old_access_hash]).await?;
                Ok(SessionTokens {
                    user_id: session.user_id,
                    device_id: session.device_id,
                    token_type: "Bearer".into(),
                    access_token: access.into(),
                    access_expires_in: self.settings.access_ttl_secs,
                    refresh_token: refresh.into(),
                    refresh_expires_in: self.settings.refresh_ttl_secs,
                })
            }
            RotateOutcome::Retry {
                sealed,
                user_id,
                device_id,
            } => {
                // The same answer as the rotation gave, so a client whose
                // answer was lost carries on with the pair it never saw.
                let (access, access_expires_at, refresh, refresh_expires_at) = self
                    .keys
                    .open_successor(req.refresh_token.expose(), &sealed)
                    .and_then(|p| parse_pair(&p))
                    .ok_or(AuthError::Unauthenticated)?;
                Ok(SessionTokens {
                    user_id,
                    device_id,
                    token_type: "Bearer".into(),
                    access_token: access.into(),
                    access_expires_in: (access_expires_at - now) / 1000,
                    refresh_token: refresh.into(),
                    refresh_expires_in: (refresh_expires_at - now) / 1000,
                })
            }
            RotateOutcome::Reused { user_id, device_id } => {
                // Someone else holds a copy of this device's refresh token: end
                // the whole family (the device and every token it has).
                let revoked = self
                    .store
                    .revoke_devices(&user_id, Some(std::slice::from_ref(&device_id)), now)
                    .await?;
                self.forget_devices(&user_id, revoked).await?;
                self.audit(
                    meta,
                    Some(&user_id),
                    Some(&device_id),
                    "refresh_reuse",
                    None,
                )
                .await;
                Err(AuthError::RefreshReused)
            }
            RotateOutcome::Expired | RotateOutcome::Unknown => Err(AuthError::Unauthenticated),
        }
    }

    /// Forgets used refresh tokens that have expired since (a refresh token
    /// lives at most the refresh TTL, so one rotated longer ago than that has
    /// expired), in batches of `batch`; returns how many went. Without this
    /// every refresh would leave a row for good.
    pub async fn prune_used_refresh_tokens(&self, batch: i64) -> Result<u64, AuthError> {
        let before = self.clock.now_ms() - self.settings.refresh_ttl_secs * 1000;
        let mut total = 0;
        loop {
            let n = self.store.prune_used_refresh_tokens(before, batch).await?;
            total += n;
            if (n as i64) < batch {
                return Ok(total);
            }
        }
    }

    /// Ends this device: its session, and its keys leave the directory.
    pub async fn logout(&self, meta: &RequestMeta, auth: &SessionAuth) -> Result<(), AuthError> {
        let revoked = self
            .store
            .revoke_devices(
                &auth.user_id,
                Some(std::slice::from_ref(&auth.device_id)),
                self.clock.now_ms(),
            )
            .await?;
        self.forget_devices(&auth.user_id, revoked).await?;
        self.audit(
            meta,
            Some(&auth.user_id),
            Some(&auth.device_id),
            "logout",
            None,
        )
        .await;
        Ok(())
    }

    /// Logs out every device of the caller's account, revoking all their tokens.
    pub async fn logout_all(
        &self,
        meta: &RequestMeta,
        auth: &SessionAuth,
    ) -> Result<(), AuthError> {
        let revoked = self
            .store
            .revoke_devices(&auth.user_id, None, self.clock.now_ms())
            .await?;
        self.forget_devices(&auth.user_id, revoked).await?;
        self.audit(
            meta,
            Some(&auth.user_id),
            Some(&auth.device_id),
            "logout_all",
            None,
        )
        .await;
        Ok(())
    }

    /// Revokes one of the caller's devices and its tokens (e.g. a lost phone).
    pub async fn revoke_device(
        &self,
        meta: &RequestMeta,
        auth: &SessionAuth,
        device_id: &vestnik_proto::DeviceId,
    ) -> Result<(), AuthError> {
        let devices = self.store.list_devices(&auth.user_id).await?;
        if !devices.iter().any(|d| *device_id == d.id) {
            return Err(AuthError::DeviceNotFound);
        }
        let revoked = self
            .store
            .revoke_devices(
                &auth.user_id,
                Some(&[device_id.to_string()]),
                self.clock.now_ms(),
            )
            .await?;
        self.forget_devices(&auth.user_id, revoked).await?;
        let detail = format!(r#"{{"revoked_device":"{device_id}"}}"#);
        self.audit(
            meta,
            Some(&auth.user_id),
            Some(&auth.device_id),
            "device_revoked",
            Some(detail),
        )
        .await;
        Ok(())
    }

    /// The account's devices. Cached (in Redis when configured) because
    /// clients poll it; every change deletes the entry, and it lives at most
    /// `DEVICE_LIST_CACHE_MS` in case a concurrent reader re-filled it with
    /// the list from just before a change.
    pub async fn list_devices(&self, auth: &SessionAuth) -> Result<DeviceList, AuthError> {
        let key = devices_key(&auth.user_id);
        let cached = self
            .kv
            .get(&key)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "device list cache unavailable; asking the database");
                None
            })
            .and_then(|j| serde_json::from_str::<Vec<DeviceInfo>>(&j).ok());
        let mut devices = match cached {
            Some(d) => d,
            None => {
                let rows = self.store.list_devices(&auth.user_id).await?;
                let d: Vec<DeviceInfo> = rows
                    .into_iter()
                    .map(|d| DeviceInfo {
                        current: false,
                        id: d.id,
                        name: d.name,
                        platform: d.platform,
                        identity_key: d.identity_key,
                        signing_key: d.signing_key,
                        created_at: d.created_at,
                    })
                    .collect();
                if let Ok(json) = serde_json::to_string(&d) {
                    if let Err(e) = self.kv.set(&key, &json, DEVICE_LIST_CACHE_MS).await {
                        tracing::debug!(error = %e, "device list cache unavailable");
                    }
                }
                d
            }
        };
        for d in &mut devices {
            d.current = d.id == auth.device_id;
        }
        Ok(DeviceList { devices })
    }

    /// The caller's account: e-mail, 2FA state and recovery codes left, admin flag, creation time.
    pub async fn account(&self, auth: &SessionAuth) -> Result<Account, AuthError> {
        let u = self
            .store
            .user_by_id(&auth.user_id)
            .await?
            .ok_or(AuthError::Unauthenticated)?;
        Ok(Account {
            recovery_codes_left: self.store.unused_recovery_codes(&u.id).await?,
            totp_enabled: u.totp_enabled(),
            user_id: u.id,
            email: u.email,
            is_admin: u.is_admin,
            find_by_email: u
                .find_by_email
                .parse()
                .unwrap_or(vestnik_proto::Discoverability::Everyone),
            group_adds: u
                .group_adds
                .parse()
                .unwrap_or(vestnik_proto::GroupAdds::Everyone),
            created_at: u.created_at,
        })
    }

    /// One page of the caller's audit log, newest first; pass the previous page's `next_before` as `before`.
    pub async fn audit_page(
        &self,
        auth: &SessionAuth,
        before: Option<i64>,
        limit: Option<i64>,
    ) -> Result<AuditPage, AuthError> {
        let limit = limit.unwrap_or(50).clamp(1, AUDIT_PAGE_MAX);
        let rows = self.store.list_audit(&auth.user_id, before, limit).await?;
        let next_before = (rows.len() as i64 == limit)
            .then(|| rows.last().map(|r| r.id))
            .flatten();
        Ok(AuditPage {
            events: rows
                .into_iter()
                .map(|r| AuditEntry {
                    id: r.id,
                    event: r.event,
                    device_id: r.device_id,
                    ip: r.ip,
                    user_agent: r.user_agent,
                    request_id: r.request_id,
                    detail: r.detail,
                    created_at: r.created_at,
                })
                .collect(),
            next_before,
        })
    }

    /// Operator action: disable an account and end every session it has.
    pub async fn disable_user(&self, email: &str) -> Result<bool, AuthError> {
        let Some(u) = self.store.user_by_email(email).await? else {
            return Ok(false);
        };
        let now = self.clock.now_ms();
        self.store
            .set_user_status(&u.id, vestnik_store::UserStatus::Disabled, now)
            .await?;
        let revoked = self.store.revoke_devices(&u.id, None, now).await?;
        self.forget_devices(&u.id, revoked).await?;
        self.audit(
            &RequestMeta::default(),
            Some(&u.id),
            None,
            "account_disabled",
            None,
        )
        .await;
        Ok(true)
    }
}

/// Deletes cache entries after a change the database already holds. When
/// the cache is away the change stands: a copy cached before it lives at
/// most `CACHE_TTL_MAX_MS`, and a Redis that comes back after a restart
/// holds none (it keeps nothing on disk in the deployments we document).
async fn forget_or_warn(kv: &dyn vestnik_bus::Kv, keys: &[String]) {
    if let Err(e) = kv.del(keys).await {
        tracing::warn!(error = %e, keys = keys.len(), "cache unavailable; entries expire on their own");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_grants_round_trip() {
        let a = SessionAuth {
            session_id: "s".repeat(32),
            user_id: "u".repeat(32),
            device_id: "d".repeat(32),
            access_expires_at: 123,
            is_admin: true,
        };
        assert_eq!(decode(&encode(&a)), Some(a));
        assert_eq!(decode("a|b"), None);
    }
}
