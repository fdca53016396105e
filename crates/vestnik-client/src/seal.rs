//! Sealing values at rest in the local store: XChaCha20-Poly1305 under a
//! subkey of the local secret.
//!
//! ```text
//! key  = HKDF-SHA256(ikm = local secret, salt = the store's random salt, info = "vestnik:client:store:v1")
//! blob = nonce[24] || AEAD(key, nonce, aad = "vestnik:client:" || context, plaintext)
//! ```
//!
//! The context names the row (`message:<local id>`, `tokens`, …) so a sealed
//! value cannot be moved to another row or column without failing to open.
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{ClientError, Result};

const INFO: &[u8] = b"vestnik:client:store:v1";
const NONCE_LEN: usize = 24;

pub(crate) struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl Sealer {
    pub(crate) fn new(local_secret: &[u8], salt: &[u8]) -> Result<Self> {
        let mut key = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(Some(salt), local_secret)
            .expand(INFO, key.as_mut())
            .map_err(|e| ClientError::InvalidInput(format!("HKDF expand: {e}")))?;
        Ok(Self {
            cipher: XChaCha20Poly1305::new(key.as_ref().into()),
        })
    }

    fn aad(context: &str) -> Vec<u8> {
        let mut aad = b"vestnik:client:".to_vec();
        aad.extend_from_slice(context.as_bytes());
        aad
    }

    pub(crate) fn seal(&self, context: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &Self::aad(context),
                },
            )
            .map_err(|_| ClientError::InvalidInput("XChaCha20-Poly1305 refused to seal".into()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub(crate) fn open(&self, context: &str, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if blob.len() < NONCE_LEN + 16 {
            return Err(ClientError::WrongStoreKey);
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &Self::aad(context),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| ClientError::WrongStoreKey)
    }

    pub(crate) fn open_string(&self, context: &str, blob: &[u8]) -> Result<Zeroizing<String>> {
        let bytes = self.open(context, blob)?;
        String::from_utf8(bytes.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| ClientError::WrongStoreKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_in_its_own_context_and_under_its_own_key() {
        let s = Sealer::new(&[7u8; 32], b"salt-salt-salt-s").expect("sealer");
        let blob = s.seal("message:1", b"hello").expect("seal");
        assert_eq!(&*s.open("message:1", &blob).expect("open"), b"hello");
        assert!(matches!(
            s.open("message:2", &blob),
            Err(ClientError::WrongStoreKey)
        ));
        let other = Sealer::new(&[8u8; 32], b"salt-salt-salt-s").expect("sealer");
        assert!(matches!(
            other.open("message:1", &blob),
            Err(ClientError::WrongStoreKey)
        ));
        assert!(!blob.windows(5).any(|w| w == b"hello"));
    }
}
