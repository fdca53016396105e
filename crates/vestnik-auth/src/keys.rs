//! Keys derived from the one server key: each purpose gets its own subkey
//! (HKDF-SHA256), so a leak or misuse of one cannot forge another.
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

#[derive(Clone)]
pub struct ServerKeys {
    totp: [u8; 32],
    codes: [u8; 32],
    pow: [u8; 32],
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
    pub fn from_master(master: &[u8; 32]) -> Self {
        Self {
            totp: derive(master, "totp-secret-encryption/v1"),
            codes: derive(master, "code-hashing/v1"),
            pow: derive(master, "pow-challenges/v1"),
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
