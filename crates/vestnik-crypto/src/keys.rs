//! Public key material as it travels to and from the server's key directory.
//!
//! All keys are strings in the exact form vodozemac writes them: unpadded
//! standard base64 (`Curve25519PublicKey::to_base64()`,
//! `Ed25519PublicKey::to_base64()`, `Ed25519Signature::to_base64()`).
use serde::{Deserialize, Serialize};
use vodozemac::{Curve25519PublicKey, Ed25519PublicKey, Ed25519Signature, KeyId};

use crate::error::{snippet, CryptoError};

/// The server accepts at most this many one-time keys per upload
/// (`vestnik_core::limits::MAX_ONE_TIME_KEYS_PER_UPLOAD`).
pub const MAX_ONE_TIME_KEYS_PER_UPLOAD: usize = 100;

/// A device's two long-term public keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceKeys {
    /// Curve25519 identity key (Olm's "sender key"), base64.
    pub identity_key: String,
    /// Ed25519 signing key (Olm's "fingerprint key"), base64.
    pub signing_key: String,
}

/// An unsigned one-time pre-key, as uploaded and as claimed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OneTimeKey {
    /// 1-64 characters of `[A-Za-z0-9-_:.]`; see [`key_id_string`].
    pub key_id: String,
    /// Curve25519 public key, base64.
    pub public_key: String,
}

/// A fallback key signed by the owning device's Ed25519 key over
/// [`fallback_key_message`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SignedKey {
    /// 1-64 characters of `[A-Za-z0-9-_:.]`; see [`key_id_string`].
    pub key_id: String,
    /// Curve25519 public key, base64.
    pub public_key: String,
    /// Ed25519 signature, base64.
    pub signature: String,
}

/// The key part of a device registration (the server's `NewDeviceRequest`
/// without `name` and `platform`): field names match the server exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceKeysUpload {
    /// Curve25519 identity key, base64.
    pub identity_key: String,
    /// Ed25519 signing key, base64.
    pub signing_key: String,
    /// The current signed fallback key.
    pub fallback_key: SignedKey,
    /// Fresh one-time keys (at most [`MAX_ONE_TIME_KEYS_PER_UPLOAD`]).
    pub one_time_keys: Vec<OneTimeKey>,
}

/// What the sender claims from the key directory for one recipient device:
/// its long-term keys plus either a one-time key (popped atomically by the
/// server) or, when the pool is empty, its signed fallback key.
///
/// When both are present the one-time key is used. The server's claim
/// response entries (which add `user_id` and `device_id`) deserialise into
/// this type directly; unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreKeyBundle {
    /// Curve25519 identity key, base64.
    pub identity_key: String,
    /// Ed25519 signing key, base64: verifies `fallback_key.signature`.
    pub signing_key: String,
    /// A one-time key, if the server still had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_time_key: Option<OneTimeKey>,
    /// The signed fallback key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_key: Option<SignedKey>,
}

/// The exact UTF-8 string a fallback key signature covers:
/// `vestnik:fallback_key:v1:<key_id>:<public_key>` (same as the server).
pub fn fallback_key_message(key_id: &str, public_key: &str) -> String {
    format!("vestnik:fallback_key:v1:{key_id}:{public_key}")
}

/// A vodozemac key id as the server accepts it.
///
/// This is `KeyId::to_base64()` with the two characters the server's
/// `[A-Za-z0-9-_:.]` alphabet rejects mapped to their URL-safe twins
/// (`+` → `-`, `/` → `_`). vodozemac's ids are a counter, and standard base64
/// of it contains `+` or `/` from the 992nd key on; for every earlier key the
/// two encodings are identical. The mapping is injective, so ids stay unique.
pub fn key_id_string(id: KeyId) -> String {
    id.to_base64().replace('+', "-").replace('/', "_")
}

pub(crate) fn parse_curve(
    field: &'static str,
    s: &str,
) -> Result<Curve25519PublicKey, CryptoError> {
    Curve25519PublicKey::from_base64(s).map_err(|_| CryptoError::InvalidKey {
        field,
        kind: "Curve25519",
        expected_len: 32,
        got: snippet(s),
    })
}

pub(crate) fn parse_ed25519(field: &'static str, s: &str) -> Result<Ed25519PublicKey, CryptoError> {
    Ed25519PublicKey::from_base64(s).map_err(|_| CryptoError::InvalidKey {
        field,
        kind: "Ed25519",
        expected_len: 32,
        got: snippet(s),
    })
}

/// Checks a fallback key signature exactly as the server does: an Ed25519
/// signature by `signing_key_b64` over
/// [`fallback_key_message`]`(key_id, public_key_b64)`, verified strictly
/// (vodozemac's `Ed25519PublicKey::verify`).
///
/// The public key string is signed as given, so it must be byte-identical to
/// what the owner signed (vodozemac's canonical base64); it is also checked to
/// be a valid Curve25519 key.
pub fn verify_fallback_signature(
    signing_key_b64: &str,
    key_id: &str,
    public_key_b64: &str,
    signature_b64: &str,
) -> Result<(), CryptoError> {
    let signing_key = parse_ed25519("signing_key", signing_key_b64)?;
    parse_curve("fallback_key.public_key", public_key_b64)?;
    let signature = Ed25519Signature::from_base64(signature_b64).map_err(|_| {
        CryptoError::InvalidSignatureEncoding {
            field: "fallback_key.signature",
            got: snippet(signature_b64),
        }
    })?;
    signing_key
        .verify(
            fallback_key_message(key_id, public_key_b64).as_bytes(),
            &signature,
        )
        .map_err(|_| CryptoError::BadSignature {
            what: "fallback key",
            signing_key: signing_key.to_base64(),
        })
}
