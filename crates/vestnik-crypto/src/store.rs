//! Encrypted persistence of a whole [`Device`].
//!
//! The state (vodozemac pickles of the account, every Olm session and every
//! Megolm session, plus our fallback key record) is serialised to JSON and
//! sealed with XChaCha20-Poly1305 under a key derived from the caller's
//! local secret with HKDF-SHA256 and a fresh random salt:
//!
//! ```text
//! blob = base64( 0x01 || salt[16] || nonce[24] || AEAD(key, nonce, aad = 0x01||salt||nonce, json) )
//! key  = HKDF-SHA256(ikm = local secret, salt, info = "vestnik:crypto:device-state:v1")
//! ```
//!
//! The local secret must be high-entropy key material (for instance 32
//! random bytes kept by the platform's key store). A passphrase is not: run
//! it through [`derive_local_key`] (argon2id) first and pass the result.
use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use vodozemac::megolm::{
    GroupSession, GroupSessionPickle, InboundGroupSession, InboundGroupSessionPickle,
};
use vodozemac::olm::{Account, AccountPickle, Session, SessionPickle};
use zeroize::Zeroizing;

use crate::device::{Device, FallbackRecord, InboundGroup};
use crate::error::CryptoError;

const VERSION: u8 = 1;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;
const HEADER_LEN: usize = 1 + SALT_LEN + NONCE_LEN;
const TAG_LEN: usize = 16;
const HKDF_INFO: &[u8] = b"vestnik:crypto:device-state:v1";

/// The shortest local secret [`Device::to_encrypted`] accepts.
pub const MIN_LOCAL_SECRET_LEN: usize = 16;
/// The shortest salt [`derive_local_key`] accepts.
pub const MIN_PASSPHRASE_SALT_LEN: usize = 16;

#[derive(Serialize, Deserialize)]
struct InboundGroupPickle {
    sender_key: String,
    session: InboundGroupSessionPickle,
}

#[derive(Serialize, Deserialize)]
struct StateV1 {
    account: AccountPickle,
    fallback: FallbackRecord,
    sessions: BTreeMap<String, Vec<SessionPickle>>,
    outbound_groups: BTreeMap<String, GroupSessionPickle>,
    inbound_groups: BTreeMap<String, InboundGroupPickle>,
}

/// A 32-byte key derived from a passphrase by [`derive_local_key`]. Zeroed
/// on drop; its `Debug` does not print it.
#[derive(Clone)]
pub struct LocalKey(Zeroizing<[u8; 32]>);

impl LocalKey {
    /// The key bytes, to pass to [`Device::to_encrypted`] /
    /// [`Device::from_encrypted`].
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for LocalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LocalKey(<redacted>)")
    }
}

/// Stretches a low-entropy passphrase into a local secret with argon2id
/// (argon2 crate defaults: 19 MiB, 2 passes, 1 lane — OWASP's minimum).
/// `salt` must be at least 16 random bytes, stored next to the blob; the
/// same passphrase and salt always give the same key.
pub fn derive_local_key(passphrase: &[u8], salt: &[u8]) -> Result<LocalKey, CryptoError> {
    if salt.len() < MIN_PASSPHRASE_SALT_LEN {
        return Err(CryptoError::ShortSalt {
            min: MIN_PASSPHRASE_SALT_LEN,
            got: salt.len(),
        });
    }
    let mut out = Zeroizing::new([0u8; 32]);
    argon2::Argon2::default()
        .hash_password_into(passphrase, salt, out.as_mut())
        .map_err(|e| CryptoError::Kdf(e.to_string()))?;
    Ok(LocalKey(out))
}

fn state_key(local_secret: &[u8], salt: &[u8]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    if local_secret.len() < MIN_LOCAL_SECRET_LEN {
        return Err(CryptoError::WeakLocalSecret {
            min: MIN_LOCAL_SECRET_LEN,
            got: local_secret.len(),
        });
    }
    let mut key = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(salt), local_secret)
        .expand(HKDF_INFO, key.as_mut())
        .map_err(|e| CryptoError::Serialization(format!("HKDF expand: {e}")))?;
    Ok(key)
}

impl Device {
    /// Serialises all state and seals it under `local_secret` (at least
    /// [`MIN_LOCAL_SECRET_LEN`] bytes of key material; see the module docs).
    /// Returns unpadded base64. Each call uses a fresh salt and nonce.
    pub fn to_encrypted(&self, local_secret: &[u8]) -> Result<String, CryptoError> {
        let state = StateV1 {
            account: self.account.pickle(),
            fallback: self.fallback.clone(),
            sessions: self
                .sessions
                .iter()
                .map(|(peer, list)| (peer.clone(), list.iter().map(Session::pickle).collect()))
                .collect(),
            outbound_groups: self
                .outbound_groups
                .iter()
                .map(|(id, s)| (id.clone(), s.pickle()))
                .collect(),
            inbound_groups: self
                .inbound_groups
                .iter()
                .map(|(id, g)| {
                    (
                        id.clone(),
                        InboundGroupPickle {
                            sender_key: g.sender_key.clone(),
                            session: g.session.pickle(),
                        },
                    )
                })
                .collect(),
        };
        let json = Zeroizing::new(
            serde_json::to_vec(&state).map_err(|e| CryptoError::Serialization(e.to_string()))?,
        );

        let mut header = [0u8; HEADER_LEN];
        header[0] = VERSION;
        OsRng.fill_bytes(&mut header[1..]);
        let key = state_key(local_secret, &header[1..1 + SALT_LEN])?;
        let cipher = XChaCha20Poly1305::new(key.as_ref().into());
        let nonce = XNonce::from_slice(&header[1 + SALT_LEN..]);
        let sealed = cipher
            .encrypt(
                nonce,
                Payload {
                    msg: &json,
                    aad: &header,
                },
            )
            .map_err(|_| {
                CryptoError::Serialization("XChaCha20-Poly1305 refused to seal".to_owned())
            })?;

        let mut blob = Vec::with_capacity(HEADER_LEN + sealed.len());
        blob.extend_from_slice(&header);
        blob.extend_from_slice(&sealed);
        Ok(STANDARD_NO_PAD.encode(blob))
    }

    /// Restores a device sealed by [`Device::to_encrypted`]. A wrong secret
    /// or an altered blob gives [`CryptoError::StateAuthentication`].
    pub fn from_encrypted(blob: &str, local_secret: &[u8]) -> Result<Self, CryptoError> {
        let bytes = STANDARD_NO_PAD
            .decode(blob.trim())
            .map_err(|e| CryptoError::StateFormat {
                expected: "unpadded base64".to_owned(),
                got: format!("text that does not decode ({e})"),
            })?;
        if bytes.len() < HEADER_LEN + TAG_LEN {
            return Err(CryptoError::StateFormat {
                expected: format!("at least {} bytes", HEADER_LEN + TAG_LEN),
                got: format!("{} bytes", bytes.len()),
            });
        }
        let (header, sealed) = bytes.split_at(HEADER_LEN);
        if header[0] != VERSION {
            return Err(CryptoError::StateFormat {
                expected: format!("format version {VERSION}"),
                got: format!("version {}", header[0]),
            });
        }
        let key = state_key(local_secret, &header[1..1 + SALT_LEN])?;
        let cipher = XChaCha20Poly1305::new(key.as_ref().into());
        let nonce = XNonce::from_slice(&header[1 + SALT_LEN..]);
        let json = Zeroizing::new(
            cipher
                .decrypt(
                    nonce,
                    Payload {
                        msg: sealed,
                        aad: header,
                    },
                )
                .map_err(|_| CryptoError::StateAuthentication)?,
        );
        let state: StateV1 =
            serde_json::from_slice(&json).map_err(|e| CryptoError::StateFormat {
                expected: "the device state JSON".to_owned(),
                got: format!("JSON that does not fit it ({e})"),
            })?;

        Ok(Device {
            account: Account::from_pickle(state.account),
            fallback: state.fallback,
            sessions: state
                .sessions
                .into_iter()
                .map(|(peer, list)| (peer, list.into_iter().map(Session::from_pickle).collect()))
                .collect(),
            outbound_groups: state
                .outbound_groups
                .into_iter()
                .map(|(id, p)| (id, GroupSession::from_pickle(p)))
                .collect(),
            inbound_groups: state
                .inbound_groups
                .into_iter()
                .map(|(id, g)| {
                    (
                        id,
                        InboundGroup {
                            sender_key: g.sender_key,
                            session: InboundGroupSession::from_pickle(g.session),
                        },
                    )
                })
                .collect(),
        })
    }
}
