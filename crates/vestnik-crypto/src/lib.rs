//! Vestnik's client-side end-to-end encryption core.
//!
//! Built on [vodozemac] (Olm: Double Ratchet with X3DH-style pre-keys;
//! Megolm: sender-key group ratchet); this crate writes no ratchet of its
//! own. It does no I/O and needs no async runtime, so it compiles both
//! natively and for `wasm32-unknown-unknown` (see `scripts/build-wasm`).
//!
//! - [`Device`]: a device's Olm account — Curve25519 identity key, Ed25519
//!   signing key, signed fallback key, one-time key pool
//!   ([`Device::registration_keys`], [`Device::replenish`],
//!   [`Device::rotate_fallback`]) — and its Olm sessions
//!   ([`Device::create_outbound_session`], [`Device::encrypt`],
//!   [`Device::encrypt_with_bundle`], [`Device::decrypt`]).
//! - Megolm group sessions on the same [`Device`]
//!   ([`Device::create_group_session`], [`Device::group_encrypt`],
//!   [`Device::import_group_session`], [`Device::group_decrypt`]).
//! - Encrypted persistence of all of it ([`Device::to_encrypted`],
//!   [`Device::from_encrypted`], [`derive_local_key`] for passphrases).
//! - [`safety_number`]: the 60-digit code users compare to verify devices.
//! - [`verify_fallback_signature`]: the server's fallback-key check.
//!
//! Wire formats match the server: keys are vodozemac's unpadded base64; a
//! fallback key is signed over `vestnik:fallback_key:v1:<key_id>:<public_key>`.
#![deny(
    missing_docs,
    unsafe_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod attachment;
mod device;
mod error;
mod group;
mod keys;
mod safety;
mod store;

pub use attachment::{
    attachment_ciphertext_len, attachment_plaintext_len, AttachmentKey, AttachmentOpener,
    AttachmentSealer, ATTACHMENT_CHUNK, ATTACHMENT_TAG,
};
pub use device::{Device, OlmEnvelope, MAX_SESSIONS_PER_PEER};
pub use error::CryptoError;
pub use group::{GroupPlaintext, GroupSessionKey, MegolmEnvelope};
pub use keys::{
    fallback_key_message, key_id_string, verify_fallback_signature, DeviceKeys, DeviceKeysUpload,
    OneTimeKey, PreKeyBundle, SignedKey, MAX_ONE_TIME_KEYS_PER_UPLOAD,
};
pub use safety::{safety_number, SAFETY_NUMBER_ITERATIONS};
pub use store::{derive_local_key, LocalKey, MIN_LOCAL_SECRET_LEN, MIN_PASSPHRASE_SALT_LEN};
