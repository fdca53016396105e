//! File attachments: a fresh key per file and the STREAM construction
//! (Hoang, Reyhanitabar, Rogaway, Vizár 2015) over ChaCha20-Poly1305, as
//! implemented by RustCrypto's `aead::stream` (big-endian 32-bit counter and
//! a last-block flag in each nonce). The plaintext is cut into 64 KiB chunks
//! and each chunk is sealed on its own, so a 100 MiB file is encrypted and
//! decrypted in 64 KiB of memory. Reordered, repeated, dropped or truncated
//! chunks fail to open: the counter binds the position and the flag binds
//! the end. The key and nonce prefix travel inside the E2EE message, never
//! to the server.
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine;
use chacha20poly1305::aead::stream::{DecryptorBE32, EncryptorBE32};
use chacha20poly1305::aead::KeyInit;
use chacha20poly1305::ChaCha20Poly1305;
use rand::RngCore;
use zeroize::Zeroizing;

use crate::CryptoError;

/// Plaintext bytes per chunk.
pub const ATTACHMENT_CHUNK: usize = 64 * 1024;
/// Bytes a chunk grows by when sealed (the Poly1305 tag).
pub const ATTACHMENT_TAG: usize = 16;
const KEY_LEN: usize = 32;
/// ChaCha20-Poly1305's 12-byte nonce minus STREAM's 5 bytes (counter, flag).
const NONCE_PREFIX_LEN: usize = 7;

/// A file's key: 32 random bytes and a 7-byte random nonce prefix.
pub struct AttachmentKey {
    key: Zeroizing<[u8; KEY_LEN]>,
    nonce: [u8; NONCE_PREFIX_LEN],
}

impl AttachmentKey {
    /// A fresh random key for one file.
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        let mut nonce = [0u8; NONCE_PREFIX_LEN];
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        Self { key, nonce }
    }

    /// Key and nonce prefix, unpadded base64 (what the message carries).
    pub fn to_base64(&self) -> Zeroizing<String> {
        let mut raw = Zeroizing::new([0u8; KEY_LEN + NONCE_PREFIX_LEN]);
        raw[..KEY_LEN].copy_from_slice(self.key.as_ref());
        raw[KEY_LEN..].copy_from_slice(&self.nonce);
        Zeroizing::new(B64.encode(raw.as_ref()))
    }

    /// Reads what [`AttachmentKey::to_base64`] wrote.
    pub fn from_base64(s: &str) -> Result<Self, CryptoError> {
        let raw = Zeroizing::new(B64.decode(s.trim_end_matches('=')).map_err(|_| bad_key())?);
        if raw.len() != KEY_LEN + NONCE_PREFIX_LEN {
            return Err(bad_key());
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(&raw[..KEY_LEN]);
        let mut nonce = [0u8; NONCE_PREFIX_LEN];
        nonce.copy_from_slice(&raw[KEY_LEN..]);
        Ok(Self { key, nonce })
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(self.key.as_ref().into())
    }
}

fn bad_key() -> CryptoError {
    CryptoError::Attachment("key: expected 39 bytes of unpadded base64".into())
}

/// Chunks a plaintext of `len` bytes is cut into (an empty file is one empty chunk).
fn chunks(len: u64) -> u64 {
    len.div_ceil(ATTACHMENT_CHUNK as u64).max(1)
}

/// Size of the encrypted object for a plaintext of `plain_len` bytes.
pub fn attachment_ciphertext_len(plain_len: u64) -> u64 {
    plain_len + chunks(plain_len) * ATTACHMENT_TAG as u64
}

/// Size of the plaintext inside an encrypted object of `ct_len` bytes, if
/// `ct_len` is a length [`attachment_ciphertext_len`] can produce.
pub fn attachment_plaintext_len(ct_len: u64) -> Option<u64> {
    let sealed = (ATTACHMENT_CHUNK + ATTACHMENT_TAG) as u64;
    let n = ct_len.div_ceil(sealed).max(1);
    let plain = ct_len.checked_sub(n * ATTACHMENT_TAG as u64)?;
    (attachment_ciphertext_len(plain) == ct_len).then_some(plain)
}

/// Seals a plaintext of known length chunk by chunk: give it every
/// [`ATTACHMENT_CHUNK`] bytes in order (the last chunk may be shorter).
pub struct AttachmentSealer {
    inner: Option<EncryptorBE32<ChaCha20Poly1305>>,
    left: u64,
}

impl AttachmentSealer {
    /// For a plaintext of exactly `plain_len` bytes.
    pub fn new(key: &AttachmentKey, plain_len: u64) -> Self {
        Self {
            inner: Some(EncryptorBE32::from_aead(key.cipher(), (&key.nonce).into())),
            left: plain_len,
        }
    }

    /// Seals the next chunk; the one that reaches `plain_len` is sealed as the last.
    pub fn seal_chunk(&mut self, chunk: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let n = chunk.len() as u64;
        let is_last = n == self.left;
        if n > self.left || (!is_last && chunk.len() != ATTACHMENT_CHUNK) {
            return Err(CryptoError::Attachment(format!(
                "expected a chunk of {} bytes, got {n}",
                self.left.min(ATTACHMENT_CHUNK as u64)
            )));
        }
        let fail = || CryptoError::Attachment("sealing a chunk failed".into());
        self.left -= n;
        if is_last {
            let enc = self.inner.take().ok_or_else(|| {
                CryptoError::Attachment("the last chunk was already sealed".into())
            })?;
            enc.encrypt_last(chunk).map_err(|_| fail())
        } else {
            let enc = self.inner.as_mut().ok_or_else(fail)?;
            enc.encrypt_next(chunk).map_err(|_| fail())
        }
    }

    /// True once the last chunk is sealed.
    pub fn is_done(&self) -> bool {
        self.inner.is_none()
    }
}

/// Opens an encrypted object chunk by chunk: give it every
/// `ATTACHMENT_CHUNK + ATTACHMENT_TAG` bytes in order (the last may be shorter).
pub struct AttachmentOpener {
    inner: Option<DecryptorBE32<ChaCha20Poly1305>>,
    left: u64,
}

impl AttachmentOpener {
    /// For an encrypted object of exactly `ct_len` bytes.
    pub fn new(key: &AttachmentKey, ct_len: u64) -> Result<Self, CryptoError> {
        if attachment_plaintext_len(ct_len).is_none() {
            return Err(CryptoError::Attachment(format!(
                "{ct_len} bytes is not the length of an encrypted attachment"
            )));
        }
        Ok(Self {
            inner: Some(DecryptorBE32::from_aead(key.cipher(), (&key.nonce).into())),
            left: ct_len,
        })
    }

    /// Opens the next sealed chunk; fails on any change, reordering or cut.
    pub fn open_chunk(&mut self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let n = sealed.len() as u64;
        let is_last = n == self.left;
        if n > self.left || (!is_last && sealed.len() != ATTACHMENT_CHUNK + ATTACHMENT_TAG) {
            return Err(CryptoError::Attachment(format!(
                "expected a sealed chunk of {} bytes, got {n}",
                self.left.min((ATTACHMENT_CHUNK + ATTACHMENT_TAG) as u64)
            )));
        }
        let fail = || {
            CryptoError::Attachment(
                "a chunk does not open: the file was changed, reordered or cut".into(),
            )
        };
        self.left -= n;
        let plain = if is_last {
            let dec = self.inner.take().ok_or_else(fail)?;
            dec.decrypt_last(sealed).map_err(|_| fail())?
        } else {
            let dec = self.inner.as_mut().ok_or_else(fail)?;
            dec.decrypt_next(sealed).map_err(|_| fail())?
        };
        Ok(Zeroizing::new(plain))
    }

    /// True once the last chunk is opened: only then is the file complete.
    pub fn is_done(&self) -> bool {
        self.inner.is_none()
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seal_all(key: &AttachmentKey, plain: &[u8]) -> Vec<Vec<u8>> {
        let mut s = AttachmentSealer::new(key, plain.len() as u64);
        let mut out = Vec::new();
        if plain.is_empty() {
            out.push(s.seal_chunk(&[]).expect("seal"));
        }
        for c in plain.chunks(ATTACHMENT_CHUNK) {
            out.push(s.seal_chunk(c).expect("seal"));
        }
        assert!(s.is_done());
        out
    }

    fn open_all(key: &AttachmentKey, sealed: &[Vec<u8>]) -> Result<Vec<u8>, CryptoError> {
        let total: u64 = sealed.iter().map(|c| c.len() as u64).sum();
        let mut o = AttachmentOpener::new(key, total)?;
        let mut out = Vec::new();
        for c in sealed {
            out.extend_from_slice(&o.open_chunk(c)?);
        }
        if !o.is_done() {
            return Err(CryptoError::Attachment("cut".into()));
        }
        Ok(out)
    }

    #[test]
    fn lengths_match_the_chunking() {
        for len in [0u64, 1, 65_535, 65_536, 65_537, 3 * 65_536, 100 << 20] {
            let ct = attachment_ciphertext_len(len);
            assert_eq!(attachment_plaintext_len(ct), Some(len), "{len}");
        }
        // A length no plaintext produces.
        assert_eq!(attachment_plaintext_len(5), None);
        assert_eq!(attachment_plaintext_len(65_536 + 16 + 3), None);
    }

    #[test]
    fn chunk_boundaries_round_trip_and_cuts_reorders_and_flips_fail() {
        let key = AttachmentKey::generate();
        for len in [
            0usize,
            1,
            ATTACHMENT_CHUNK,
            ATTACHMENT_CHUNK + 1,
            3 * ATTACHMENT_CHUNK,
        ] {
            let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let sealed = seal_all(&key, &plain);
            assert_eq!(
                sealed.iter().map(Vec::len).sum::<usize>() as u64,
                attachment_ciphertext_len(len as u64)
            );
            assert_eq!(open_all(&key, &sealed).expect("open"), plain);
            if sealed.len() > 1 {
                // Dropping the last chunk: the rest is not a complete file.
                assert!(open_all(&key, &sealed[..sealed.len() - 1]).is_err());
                let mut swapped = sealed.clone();
                swapped.swap(0, 1);
                assert!(open_all(&key, &swapped).is_err());
            }
            let mut flipped = sealed.clone();
            flipped[0][0] ^= 1;
            assert!(open_all(&key, &flipped).is_err());
            // Another file's key does not open it.
            assert!(open_all(&AttachmentKey::generate(), &sealed).is_err());
        }
    }

    #[test]
    fn the_key_travels_as_base64_and_bad_keys_are_refused() {
        let key = AttachmentKey::generate();
        let again = AttachmentKey::from_base64(&key.to_base64()).expect("parse");
        let sealed = seal_all(&key, b"hello");
        assert_eq!(open_all(&again, &sealed).expect("open"), b"hello");
        assert!(AttachmentKey::from_base64("short").is_err());
        assert!(AttachmentKey::from_base64("!!!!").is_err());
    }

    #[test]
    fn wrong_chunk_sizes_are_refused() {
        let key = AttachmentKey::generate();
        let mut s = AttachmentSealer::new(&key, 100_000);
        assert!(s.seal_chunk(&[0; 10]).is_err(), "short middle chunk");
        let mut s = AttachmentSealer::new(&key, 10);
        assert!(s.seal_chunk(&[0; 11]).is_err(), "more than declared");
        assert!(AttachmentOpener::new(&key, 7).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn any_plaintext_round_trips(plain in proptest::collection::vec(any::<u8>(), 0..200_000)) {
            let key = AttachmentKey::generate();
            let sealed = seal_all(&key, &plain);
            prop_assert_eq!(open_all(&key, &sealed).expect("open"), plain);
        }
    }
}
