//! The single error type of this crate.
//!
//! Every message reads "expected X, got Y" so a log line says what was wrong
//! without a debugger. No variant carries secret material: keys that appear
//! in messages are public keys, and vodozemac's own errors are flattened to
//! their text (which never includes secrets either).

/// Everything that can go wrong in the E2EE core.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CryptoError {
    /// An attachment key, length or chunk was refused.
    #[error("attachment: {0}")]
    Attachment(String),
    /// A public key did not decode.
    #[error(
        "{field}: expected unpadded base64 of a {expected_len}-byte {kind} public key, got {got:?}"
    )]
    InvalidKey {
        /// Which input field held the key.
        field: &'static str,
        /// "Curve25519" or "Ed25519".
        kind: &'static str,
        /// Key length in bytes.
        expected_len: usize,
        /// The offending input (public material only), truncated.
        got: String,
    },
    /// A signature did not decode (as opposed to not verifying).
    #[error("{field}: expected unpadded base64 of a 64-byte Ed25519 signature, got {got:?}")]
    InvalidSignatureEncoding {
        /// Which input field held the signature.
        field: &'static str,
        /// The offending input, truncated.
        got: String,
    },
    /// A signature decoded but does not verify.
    #[error(
        "{what}: expected a valid Ed25519 signature by {signing_key}, got one that does not verify"
    )]
    BadSignature {
        /// What was signed.
        what: &'static str,
        /// The Ed25519 key that was supposed to have signed it.
        signing_key: String,
    },
    /// A pre-key bundle carried neither a one-time key nor a fallback key.
    #[error("pre-key bundle for {peer}: expected a one-time key or a fallback key, got neither")]
    EmptyBundle {
        /// The peer's Curve25519 identity key.
        peer: String,
    },
    /// A caller-supplied count was out of range.
    #[error("{what}: expected at most {max}, got {got}")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// The allowed maximum.
        max: usize,
        /// The requested number.
        got: usize,
    },
    /// Encrypting to a peer we have no Olm session with.
    #[error("expected an Olm session with {peer}, got none (claim a pre-key bundle and create one first)")]
    NoSession {
        /// The peer's Curve25519 identity key.
        peer: String,
    },
    /// Olm could not create a session.
    #[error("Olm session with {peer}: expected a session to be created, got: {reason}")]
    SessionCreation {
        /// The peer's Curve25519 identity key.
        peer: String,
        /// vodozemac's explanation.
        reason: String,
    },
    /// An Olm envelope had an unknown type.
    #[error("Olm envelope: expected type 0 (pre-key) or 1 (normal), got {got}")]
    MessageType {
        /// The type found.
        got: u64,
    },
    /// An envelope body did not decode.
    #[error("{what}: expected a well-formed message, got one that does not decode: {reason}")]
    MalformedMessage {
        /// "Olm envelope" or "Megolm envelope".
        what: &'static str,
        /// Why decoding failed.
        reason: String,
    },
    /// No session could decrypt an Olm message.
    #[error(
        "Olm message from {peer}: expected one of our {tried} session(s) with that device to decrypt it, \
         got none that could ({reason})"
    )]
    Decrypt {
        /// The sender's Curve25519 identity key.
        peer: String,
        /// How many sessions were tried.
        tried: usize,
        /// The last failure, from vodozemac.
        reason: String,
    },
    /// Olm refused to encrypt.
    #[error("Olm session with {peer}: expected to encrypt, got: {reason}")]
    Encrypt {
        /// The peer's Curve25519 identity key.
        peer: String,
        /// vodozemac's explanation.
        reason: String,
    },
    /// A Megolm session id we do not hold.
    #[error("expected a known {direction} Megolm session {session_id}, got none")]
    UnknownGroupSession {
        /// "outbound" or "inbound".
        direction: &'static str,
        /// The session id asked for.
        session_id: String,
    },
    /// A Megolm session key that does not decode.
    #[error("Megolm session key: expected a base64 {kind} session key, got one that does not decode: {reason}")]
    InvalidGroupSessionKey {
        /// "shared" or "exported".
        kind: &'static str,
        /// Why decoding failed.
        reason: String,
    },
    /// Two copies of a Megolm session disagree.
    #[error("Megolm session {session_id}: expected {expected}, got {got}")]
    GroupSessionConflict {
        /// The session id.
        session_id: String,
        /// What the stored copy implies.
        expected: String,
        /// What the new copy says.
        got: String,
    },
    /// A Megolm message that does not decrypt.
    #[error("Megolm message in session {session_id}: expected it to decrypt, got: {reason}")]
    GroupDecrypt {
        /// The session id.
        session_id: String,
        /// vodozemac's explanation.
        reason: String,
    },
    /// A safety number side without any device.
    #[error("safety number for user {user_id:?}: expected at least one device key, got none")]
    NoDevices {
        /// The user whose device list was empty.
        user_id: String,
    },
    /// The local secret is too short to be a key.
    #[error(
        "local secret: expected at least {min} bytes of high-entropy key material, got {got} \
         (derive one from a passphrase with derive_local_key)"
    )]
    WeakLocalSecret {
        /// The minimum length.
        min: usize,
        /// The supplied length.
        got: usize,
    },
    /// A salt for the passphrase KDF was too short.
    #[error("passphrase salt: expected at least {min} bytes, got {got}")]
    ShortSalt {
        /// The minimum length.
        min: usize,
        /// The supplied length.
        got: usize,
    },
    /// The passphrase KDF failed.
    #[error("argon2id: expected a derived key, got: {0}")]
    Kdf(String),
    /// A persisted state blob is not in our format.
    #[error("encrypted device state: expected {expected}, got {got}")]
    StateFormat {
        /// What the format requires.
        expected: String,
        /// What was found.
        got: String,
    },
    /// A persisted state blob does not authenticate.
    #[error(
        "encrypted device state: expected a blob sealed under this local secret, \
         got one that does not authenticate (wrong secret, or the blob was altered)"
    )]
    StateAuthentication,
    /// Serialisation failed (should not happen for well-formed state).
    #[error("device state: expected it to serialise, got: {0}")]
    Serialization(String),
}

/// Truncates attacker- or user-controlled input before it goes into an error
/// message, so errors stay a readable size.
pub(crate) fn snippet(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}
