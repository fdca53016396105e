//! Opaque secrets (tokens, codes) and the hashes under which they are stored.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// 256 random bits, URL-safe base64 (43 characters).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Tokens are high-entropy, so a plain SHA-256 is the right storage hash (no
/// salt or stretching needed, and lookups by hash stay possible).
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Constant-time equality of two byte strings.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// A uniformly random decimal code of `digits` digits (e-mail codes).
pub fn random_digits(digits: u32) -> String {
    use rand::Rng;
    let max = 10u32.pow(digits);
    let n = rand::rngs::OsRng.gen_range(0..max);
    format!("{n:0width$}", width = digits as usize)
}
