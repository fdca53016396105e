//! Keys derived from the one server key: each purpose gets its own subkey
//! (HKDF-SHA256), so a leak or misuse of one cannot forge another.
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// The server's secret subkeys, one per purpose, derived from the server key (`server_key`):
/// TOTP secret encryption, code hashing, proof-of-work challenges, refresh retries.
#[derive(Clone)]
pub struct ServerKeys {
    totp: [u8; 32],
    codes: [u8; 32],
    pow: [u8; 32],
    refresh_retry: [u8; 32],
}

impl std::fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKeys(<redacted>)")
    }
}

/// A 32-byte key for one purpose (`info`), derived from the server master key.
pub fn derive(master: &[u8; 32], info: &str) -> [u8; 32] {
    let hk = hkdf::Hkdf::<Sha256>::new(Some(b"vestnik-server-key"), master);
    let mut out = [0u8; 32];
    // 32 bytes is always a valid HKDF-SHA256 output length.
    let _ = hk.expand(info.as_bytes(), &mut out);
    out
}

impl ServerKeys {
    /// Derives every subkey from the 32-byte master key; every node with the same master agrees.
    pub fn from_master(master: &[u8; 32]) -> Self {
        Self {
            totp: derive(master, "totp-secret-encryption/v1"),
            codes: derive(master, "code-hashing/v1"),
            pow: derive(master, "pow-challenges/v1"),
            refresh_retry: derive(master, "refresh-retry/v1"),
        }
    }

    /// Encrypts a TOTP secret bound to its user (the user id is the AAD, so a
    /// ciphertext copied to another row does not decrypt).
    pub(crate) fn seal_totp(
        &self,
        user_id: &str,
        secret: &[u8],
    ) -> Result<String, crate::AuthError> {
        let cipher = XChaCha20Poly1305::new((&self.totp).into());
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: secret,
                    aad: user_id.as_bytes(),
                },
            )
            .map_err(|_| crate::AuthError::Internal("totp seal".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(STANDARD.encode(out))
    }

    pub(crate) fn open_totp(
        &self,
        user_id: &str,
        sealed: &str,
    ) -> Result<Vec<u8>, crate::AuthError> {
        let raw = STANDARD
            .decode(sealed)
            .map_err(|_| crate::AuthError::Internal("totp secret encoding".into()))?;
        if raw.len() < 24 {
            return Err(crate::AuthError::Internal("totp secret too short".into()));
        }
        let (nonce, ct) = raw.split_at(24);
        XChaCha20Poly1305::new((&self.totp).into())
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: user_id.as_bytes(),
                },
            )
            .map_err(|_| {
                crate::AuthError::Internal(
                    "totp secret does not decrypt: was server_key changed?".into(),
                )
            })
    }

    /// The key that seals a rotation's successor pair for a retry: from the
    /// refresh token that was rotated (only its holder has it) and the server
    /// key (a copy of the database plus an old token is not enough).
    fn retry_cipher(&self, old_refresh_token: &str) -> XChaCha20Poly1305 {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(&self.refresh_retry), old_refresh_token.as_bytes());
        let mut key = [0u8; 32];
        // 32 bytes is always a valid HKDF-SHA256 output length.
        let _ = hk.expand(b"successor", &mut key);
        XChaCha20Poly1305::new((&key).into())
    }

    pub(crate) fn seal_successor(
        &self,
        old_refresh_token: &str,
        pair: &[u8],
    ) -> Result<Vec<u8>, crate::AuthError> {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .retry_cipher(old_refresh_token)
            .encrypt(XNonce::from_slice(&nonce), pair)
            .map_err(|_| crate::AuthError::Internal("successor seal".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// None when it does not open (another server key, or not this token's).
    pub(crate) fn open_successor(&self, old_refresh_token: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < 24 {
            return None;
        }
        let (nonce, ct) = sealed.split_at(24);
        self.retry_cipher(old_refresh_token)
            .decrypt(XNonce::from_slice(nonce), ct)
            .ok()
    }

    /// Keyed hash of a short code (6-digit e-mail codes, recovery codes): a
    /// stolen database alone does not let anyone brute-force them offline.
    pub(crate) fn hash_code(&self, scope: &str, code: &str) -> String {
        hex::encode(self.mac(&self.codes, &[scope.as_bytes(), b"\0", code.as_bytes()]))
    }

    pub(crate) fn pow_mac(&self, data: &[u8]) -> [u8; 32] {
        self.mac(&self.pow, &[data])
    }

    fn mac(&self, key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_successor_opens_only_with_its_token_and_server_key() {
        let keys = ServerKeys::from_master(&[7; 32]);
        let sealed = keys.seal_successor("vsr_old", b"pair").expect("seal");
        assert_eq!(
            keys.open_successor("vsr_old", &sealed).as_deref(),
            Some(&b"pair"[..])
        );
        assert_eq!(keys.open_successor("vsr_other", &sealed), None);
        let other_server = ServerKeys::from_master(&[8; 32]);
        assert_eq!(other_server.open_successor("vsr_old", &sealed), None);
        assert_eq!(keys.open_successor("vsr_old", &sealed[..20]), None);
    }
}
