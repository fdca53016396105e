//! A device's self-description and public keys, validated before anything is
//! stored: sizes, base64, key lengths, and the fallback key's signature.
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use std::collections::HashSet;
use vestnik_core::limits::{
    DEVICE_NAME_MAX_CHARS, DEVICE_PLATFORM_MAX_CHARS, KEY_ID_MAX_CHARS,
    MAX_ONE_TIME_KEYS_PER_UPLOAD,
};
use vestnik_proto::NewDeviceRequest;
use vestnik_store::{FallbackKey, NewDevice};

use crate::AuthError;

fn bad(msg: impl Into<String>) -> AuthError {
    AuthError::InvalidDevice(msg.into())
}

/// vodozemac writes unpadded base64; accept padded too.
pub(crate) fn b64(field: &str, s: &str, len: usize) -> Result<Vec<u8>, AuthError> {
    let bytes = STANDARD_NO_PAD
        .decode(s)
        .or_else(|_| STANDARD.decode(s))
        .map_err(|_| {
            bad(format!(
                "{field}: expected base64, got {} characters that do not decode",
                s.len()
            ))
        })?;
    if bytes.len() != len {
        return Err(bad(format!(
            "{field}: expected {len} bytes, got {}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

pub(crate) fn key_id(field: &str, id: &str) -> Result<(), AuthError> {
    let ok = !id.is_empty()
        && id.len() <= KEY_ID_MAX_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_:.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "{field}: expected 1-{KEY_ID_MAX_CHARS} characters of [A-Za-z0-9-_:.]"
        )))
    }
}

fn text(field: &str, s: &str, max: usize) -> Result<String, AuthError> {
    let t = s.trim();
    let n = t.chars().count();
    if n == 0 || n > max || t.chars().any(char::is_control) {
        return Err(bad(format!(
            "{field}: expected 1-{max} printable characters, got {n}"
        )));
    }
    Ok(t.to_owned())
}

/// The exact bytes a fallback key's signature covers.
pub fn fallback_key_message(key_id: &str, public_key: &str) -> String {
    format!("vestnik:fallback_key:v1:{key_id}:{public_key}")
}

/// Checks a signed fallback key against the device's Ed25519 key.
pub(crate) fn verify_fallback(
    vk: &VerifyingKey,
    fb: &vestnik_proto::SignedKey,
    field: &str,
) -> Result<(), AuthError> {
    key_id(&format!("{field}.key_id"), &fb.key_id)?;
    b64(&format!("{field}.public_key"), &fb.public_key, 32)?;
    let sig = b64(&format!("{field}.signature"), &fb.signature, 64)?;
    let sig: [u8; 64] = sig
        .try_into()
        .map_err(|_| bad(format!("{field}.signature: expected 64 bytes")))?;
    vk.verify_strict(
        fallback_key_message(&fb.key_id, &fb.public_key).as_bytes(),
        &Signature::from_bytes(&sig),
    )
    .map_err(|_| {
        bad(format!(
            "{field}.signature: does not verify with the device's signing key"
        ))
    })
}

/// Parses a stored or submitted Ed25519 public key.
pub(crate) fn verifying_key(field: &str, s: &str) -> Result<VerifyingKey, AuthError> {
    let bytes = b64(field, s, 32)?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| bad(format!("{field}: expected 32 bytes")))?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|_| bad(format!("{field}: not a valid Ed25519 public key")))
}

/// Validates one-time keys: count, ids, encodings, no duplicates.
pub(crate) fn one_time_keys(
    keys: &[vestnik_proto::OneTimeKey],
    field: &str,
) -> Result<Vec<(String, String)>, AuthError> {
    if keys.len() > MAX_ONE_TIME_KEYS_PER_UPLOAD {
        return Err(bad(format!(
            "{field}: expected at most {MAX_ONE_TIME_KEYS_PER_UPLOAD}, got {}",
            keys.len()
        )));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        key_id(&format!("{field}.key_id"), &k.key_id)?;
        b64(&format!("{field}.public_key"), &k.public_key, 32)?;
        if !seen.insert(k.key_id.as_str()) {
            return Err(bad(format!("{field}: key id {:?} appears twice", k.key_id)));
        }
        out.push((k.key_id.clone(), k.public_key.clone()));
    }
    Ok(out)
}

pub(crate) fn validate(
    req: &NewDeviceRequest,
    id: String,
    user_id: String,
    now: i64,
) -> Result<NewDevice, AuthError> {
    let name = text("device.name", &req.name, DEVICE_NAME_MAX_CHARS)?;
    let platform = text("device.platform", &req.platform, DEVICE_PLATFORM_MAX_CHARS)?;
    b64("device.identity_key", &req.identity_key, 32)?;
    let signing = b64("device.signing_key", &req.signing_key, 32)?;
    let signing: [u8; 32] = signing
        .try_into()
        .map_err(|_| bad("device.signing_key: expected 32 bytes"))?;
    let vk = VerifyingKey::from_bytes(&signing)
        .map_err(|_| bad("device.signing_key: not a valid Ed25519 public key"))?;

    let fb = &req.fallback_key;
    key_id("device.fallback_key.key_id", &fb.key_id)?;
    b64("device.fallback_key.public_key", &fb.public_key, 32)?;
    let sig = b64("device.fallback_key.signature", &fb.signature, 64)?;
    let sig: [u8; 64] = sig
        .try_into()
        .map_err(|_| bad("device.fallback_key.signature: expected 64 bytes"))?;
    vk.verify_strict(
        fallback_key_message(&fb.key_id, &fb.public_key).as_bytes(),
        &Signature::from_bytes(&sig),
    )
    .map_err(|_| bad("device.fallback_key.signature: does not verify with device.signing_key"))?;

    let otks = one_time_keys(&req.one_time_keys, "device.one_time_keys")?;
    Ok(NewDevice {
        id,
        user_id,
        name,
        platform,
        identity_key: req.identity_key.clone(),
        signing_key: req.signing_key.clone(),
        fallback_key: FallbackKey {
            key_id: fb.key_id.clone(),
            public_key: fb.public_key.clone(),
            signature: fb.signature.clone(),
        },
        one_time_keys: otks,
        created_at: now,
    })
}
