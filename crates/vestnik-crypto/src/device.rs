//! One device's Olm account and its pairwise sessions.
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use vodozemac::megolm::{GroupSession, InboundGroupSession};
use vodozemac::olm::{Account, OlmMessage, Session, SessionConfig};
use vodozemac::{base64_decode, base64_encode, Curve25519PublicKey};

use crate::error::CryptoError;
use crate::keys::{
    fallback_key_message, key_id_string, parse_curve, verify_fallback_signature, DeviceKeys,
    DeviceKeysUpload, OneTimeKey, PreKeyBundle, SignedKey, MAX_ONE_TIME_KEYS_PER_UPLOAD,
};

/// At most this many Olm sessions are kept per peer device; the oldest are
/// dropped first. Peers normally have one; a few more appear when both sides
/// start a session at once or a peer re-establishes after losing state.
pub const MAX_SESSIONS_PER_PEER: usize = 8;

/// One encrypted Olm message for one recipient device:
/// `{"type": 0|1, "body": "<base64>"}` (0 = pre-key message, 1 = normal
/// message; the body is unpadded base64 of vodozemac's encoding). The
/// server's per-device envelope names the same two fields `msg_type` and
/// `ciphertext`; both spellings deserialise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OlmEnvelope {
    /// 0 for a pre-key message, 1 for a normal message.
    #[serde(rename = "type", alias = "msg_type")]
    pub message_type: u8,
    /// The message, unpadded base64.
    #[serde(alias = "ciphertext")]
    pub body: String,
}

impl OlmEnvelope {
    /// True for a pre-key message (type 0), which can open a new session.
    pub fn is_pre_key(&self) -> bool {
        self.message_type == 0
    }

    fn from_message(m: &OlmMessage) -> Self {
        let (t, bytes) = m.to_parts();
        // to_parts yields only 0 or 1.
        Self {
            message_type: if t == 0 { 0 } else { 1 },
            body: base64_encode(bytes),
        }
    }

    fn to_message(&self) -> Result<OlmMessage, CryptoError> {
        if self.message_type > 1 {
            return Err(CryptoError::MessageType {
                got: u64::from(self.message_type),
            });
        }
        let bytes = base64_decode(&self.body).map_err(|e| CryptoError::MalformedMessage {
            what: "Olm envelope",
            reason: format!("body is not unpadded base64: {e}"),
        })?;
        OlmMessage::from_parts(usize::from(self.message_type), &bytes).map_err(|e| {
            CryptoError::MalformedMessage {
                what: "Olm envelope",
                reason: e.to_string(),
            }
        })
    }
}

/// The public half of the current fallback key; the secret half lives in the
/// account. vodozemac forgets the public key once it is marked published, so
/// it is recorded here to be re-signed on demand.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct FallbackRecord {
    pub(crate) key_id: String,
    pub(crate) public_key: String,
}

/// An inbound Megolm session with the Curve25519 key of the device that
/// shared it with us over Olm.
pub(crate) struct InboundGroup {
    pub(crate) sender_key: String,
    pub(crate) session: InboundGroupSession,
}

/// A device: its Olm account (identity, signing, fallback and one-time keys),
/// its Olm sessions with other devices, and its Megolm sessions.
///
/// Nothing here does I/O: callers move [`DeviceKeysUpload`], [`PreKeyBundle`]
/// and [`OlmEnvelope`] values to and from the server, and persist the device
/// with [`Device::to_encrypted`] after every call that takes `&mut self`
/// (otherwise ratchet state and consumed one-time keys are lost on restart).
pub struct Device {
    pub(crate) account: Account,
    pub(crate) fallback: FallbackRecord,
    /// Peer Curve25519 key (canonical base64) → sessions, newest first.
    pub(crate) sessions: BTreeMap<String, Vec<Session>>,
    /// Session id → our outbound Megolm sessions.
    pub(crate) outbound_groups: BTreeMap<String, GroupSession>,
    /// Session id → inbound Megolm sessions.
    pub(crate) inbound_groups: BTreeMap<String, InboundGroup>,
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.identity_keys();
        f.debug_struct("Device")
            .field("identity_key", &keys.identity_key)
            .field("signing_key", &keys.signing_key)
            .field("fallback_key_id", &self.fallback.key_id)
            .field("peers", &self.sessions.len())
            .field(
                "olm_sessions",
                &self.sessions.values().map(Vec::len).sum::<usize>(),
            )
            .field("outbound_group_sessions", &self.outbound_groups.len())
            .field("inbound_group_sessions", &self.inbound_groups.len())
            .finish_non_exhaustive()
    }
}

impl Default for Device {
    fn default() -> Self {
        Self::new()
    }
}

fn olm_config() -> SessionConfig {
    SessionConfig::version_1()
}

impl Device {
    /// A new device with fresh identity and signing keys and a fresh fallback
    /// key. One-time keys are made by [`Device::registration_keys`].
    pub fn new() -> Self {
        let mut account = Account::new();
        let fallback = Self::new_fallback(&mut account);
        Self {
            account,
            fallback,
            sessions: BTreeMap::new(),
            outbound_groups: BTreeMap::new(),
            inbound_groups: BTreeMap::new(),
        }
    }

    fn new_fallback(account: &mut Account) -> FallbackRecord {
        account.generate_fallback_key();
        let (id, key) = account
            .fallback_key()
            .into_iter()
            .next()
            // generate_fallback_key always leaves an unpublished key behind.
            .map_or_else(
                || (String::new(), String::new()),
                |(id, key)| (key_id_string(id), key.to_base64()),
            );
        FallbackRecord {
            key_id: id,
            public_key: key,
        }
    }

    /// This device's public identity (Curve25519) and signing (Ed25519) keys.
    pub fn identity_keys(&self) -> DeviceKeys {
        let keys = self.account.identity_keys();
        DeviceKeys {
            identity_key: keys.curve25519.to_base64(),
            signing_key: keys.ed25519.to_base64(),
        }
    }

    /// The current fallback key, signed by this device.
    pub fn fallback_key(&self) -> SignedKey {
        let message = fallback_key_message(&self.fallback.key_id, &self.fallback.public_key);
        SignedKey {
            key_id: self.fallback.key_id.clone(),
            public_key: self.fallback.public_key.clone(),
            signature: self.account.sign(message.as_bytes()).to_base64(),
        }
    }

    /// Everything the server needs to register this device: its keys, the
    /// signed fallback key and `n_one_time_keys` one-time keys (including
    /// any generated earlier and not yet marked published). Call
    /// [`Device::mark_published`] once the server has accepted them.
    pub fn registration_keys(
        &mut self,
        n_one_time_keys: usize,
    ) -> Result<DeviceKeysUpload, CryptoError> {
        if n_one_time_keys > MAX_ONE_TIME_KEYS_PER_UPLOAD {
            return Err(CryptoError::TooMany {
                what: "one-time keys per upload",
                max: MAX_ONE_TIME_KEYS_PER_UPLOAD,
                got: n_one_time_keys,
            });
        }
        let pending = self.account.one_time_keys().len();
        if pending < n_one_time_keys {
            self.account
                .generate_one_time_keys(n_one_time_keys - pending);
        }
        let keys = self.identity_keys();
        Ok(DeviceKeysUpload {
            identity_key: keys.identity_key,
            signing_key: keys.signing_key,
            fallback_key: self.fallback_key(),
            one_time_keys: self.unpublished_one_time_keys(),
        })
    }

    /// One-time keys not yet marked published, oldest first.
    pub fn unpublished_one_time_keys(&self) -> Vec<OneTimeKey> {
        let mut keys: Vec<_> = self.account.one_time_keys().into_iter().collect();
        keys.sort_by_key(|(id, _)| *id);
        keys.into_iter()
            .map(|(id, key)| OneTimeKey {
                key_id: key_id_string(id),
                public_key: key.to_base64(),
            })
            .collect()
    }

    /// Tops the server's one-time key pool back up: when the server reports
    /// `server_count` keys left and the pool should hold `target`, generates
    /// `target - server_count` new keys (none if the pool is full enough),
    /// marks them published and returns them for upload.
    ///
    /// The private halves stay in the account (vodozemac keeps thousands), so
    /// a key that is claimed before the upload of its replacements is still
    /// usable; a failed upload only means the next report asks for more.
    pub fn replenish(
        &mut self,
        server_count: usize,
        target: usize,
    ) -> Result<Vec<OneTimeKey>, CryptoError> {
        if target > MAX_ONE_TIME_KEYS_PER_UPLOAD {
            return Err(CryptoError::TooMany {
                what: "one-time key pool target",
                max: MAX_ONE_TIME_KEYS_PER_UPLOAD,
                got: target,
            });
        }
        // Anything left unpublished from an earlier call is superseded.
        self.account.mark_keys_as_published();
        if server_count >= target {
            return Ok(Vec::new());
        }
        self.account.generate_one_time_keys(target - server_count);
        let keys = self.unpublished_one_time_keys();
        self.account.mark_keys_as_published();
        Ok(keys)
    }

    /// Replaces the fallback key with a new one and returns it signed, for
    /// upload. The previous fallback key stays usable (for bundles claimed
    /// before the rotation) until [`Device::forget_previous_fallback_key`].
    pub fn rotate_fallback(&mut self) -> SignedKey {
        self.fallback = Self::new_fallback(&mut self.account);
        self.fallback_key()
    }

    /// Forgets the fallback key that preceded the current one. Returns
    /// whether there was one.
    pub fn forget_previous_fallback_key(&mut self) -> bool {
        self.account.forget_fallback_key()
    }

    /// Marks all generated keys as published (call after a successful
    /// upload of [`Device::registration_keys`]).
    pub fn mark_published(&mut self) {
        self.account.mark_keys_as_published();
    }

    /// How many private one-time keys the account still holds (published or
    /// not, not yet used by an incoming session).
    pub fn stored_one_time_key_count(&self) -> usize {
        self.account.stored_one_time_key_count()
    }

    fn peer_key(peer_identity_key: &str) -> Result<(Curve25519PublicKey, String), CryptoError> {
        let key = parse_curve("peer identity_key", peer_identity_key)?;
        let canonical = key.to_base64();
        Ok((key, canonical))
    }

    fn insert_session(&mut self, peer: String, session: Session) {
        let list = self.sessions.entry(peer).or_default();
        list.insert(0, session);
        list.truncate(MAX_SESSIONS_PER_PEER);
    }

    /// Whether we hold at least one Olm session with this peer device.
    pub fn has_session(&self, peer_identity_key: &str) -> Result<bool, CryptoError> {
        let (_, peer) = Self::peer_key(peer_identity_key)?;
        Ok(self.sessions.get(&peer).is_some_and(|s| !s.is_empty()))
    }

    /// How many Olm sessions we hold with this peer device.
    pub fn session_count(&self, peer_identity_key: &str) -> Result<usize, CryptoError> {
        let (_, peer) = Self::peer_key(peer_identity_key)?;
        Ok(self.sessions.get(&peer).map_or(0, Vec::len))
    }

    /// Drops every Olm session with this peer device (for instance before
    /// re-establishing one after the peer reported it cannot decrypt).
    /// Returns how many were dropped.
    pub fn forget_sessions(&mut self, peer_identity_key: &str) -> Result<usize, CryptoError> {
        let (_, peer) = Self::peer_key(peer_identity_key)?;
        Ok(self.sessions.remove(&peer).map_or(0, |s| s.len()))
    }

    /// Opens a new outbound Olm session from a claimed bundle and makes it
    /// the one used for encryption to that device. Uses the bundle's
    /// one-time key, or its fallback key (whose signature must verify with
    /// the bundle's signing key) when the one-time pool was empty. Returns
    /// the session id.
    pub fn create_outbound_session(
        &mut self,
        bundle: &PreKeyBundle,
    ) -> Result<String, CryptoError> {
        let (identity, peer) = Self::peer_key(&bundle.identity_key)?;
        let pre_key = if let Some(otk) = &bundle.one_time_key {
            parse_curve("one_time_key.public_key", &otk.public_key)?
        } else if let Some(fb) = &bundle.fallback_key {
            verify_fallback_signature(
                &bundle.signing_key,
                &fb.key_id,
                &fb.public_key,
                &fb.signature,
            )?;
            parse_curve("fallback_key.public_key", &fb.public_key)?
        } else {
            return Err(CryptoError::EmptyBundle { peer });
        };
        let session = self
            .account
            .create_outbound_session(olm_config(), identity, pre_key)
            .map_err(|e| CryptoError::SessionCreation {
                peer: peer.clone(),
                reason: e.to_string(),
            })?;
        let id = session.session_id();
        self.insert_session(peer, session);
        Ok(id)
    }

    /// Encrypts for a peer device with the newest session we hold with it.
    /// Until the peer has answered, this yields pre-key messages (type 0).
    pub fn encrypt(
        &mut self,
        peer_identity_key: &str,
        plaintext: &[u8],
    ) -> Result<OlmEnvelope, CryptoError> {
        let (_, peer) = Self::peer_key(peer_identity_key)?;
        let session = self
            .sessions
            .get_mut(&peer)
            .and_then(|s| s.first_mut())
            .ok_or_else(|| CryptoError::NoSession { peer: peer.clone() })?;
        let message = session
            .encrypt(plaintext)
            .map_err(|e| CryptoError::Encrypt {
                peer,
                reason: e.to_string(),
            })?;
        Ok(OlmEnvelope::from_message(&message))
    }

    /// Encrypts for the device a bundle describes: with an existing session
    /// if we have one, else with a new one opened from the bundle.
    pub fn encrypt_with_bundle(
        &mut self,
        bundle: &PreKeyBundle,
        plaintext: &[u8],
    ) -> Result<OlmEnvelope, CryptoError> {
        if !self.has_session(&bundle.identity_key)? {
            self.create_outbound_session(bundle)?;
        }
        self.encrypt(&bundle.identity_key, plaintext)
    }

    /// Decrypts an Olm message from the device whose Curve25519 identity key
    /// is `sender_identity_key` (from the envelope's metadata, checked
    /// against the key directory by the caller).
    ///
    /// - A normal message (type 1) is tried against every session with that
    ///   device, newest first.
    /// - A pre-key message (type 0) goes to the session it names if we have
    ///   it (the sender keeps sending pre-key messages until we reply);
    ///   otherwise it opens a new inbound session, consuming the one-time key
    ///   it used (the fallback key is not consumed). The new session becomes
    ///   the newest, so replies use it. This is also how a peer that lost its
    ///   state gets back in: its new pre-key message joins the old sessions.
    ///
    /// Failure never changes state: a forged or replayed message cannot burn
    /// a one-time key or advance a ratchet.
    pub fn decrypt(
        &mut self,
        sender_identity_key: &str,
        envelope: &OlmEnvelope,
    ) -> Result<Vec<u8>, CryptoError> {
        let (identity, peer) = Self::peer_key(sender_identity_key)?;
        let message = envelope.to_message()?;
        match &message {
            OlmMessage::Normal(_) => {
                let sessions = self
                    .sessions
                    .get_mut(&peer)
                    .map(Vec::as_mut_slice)
                    .unwrap_or_default();
                let tried = sessions.len();
                let mut reason = String::from("no session");
                for session in sessions.iter_mut() {
                    match session.decrypt(&message) {
                        Ok(plaintext) => return Ok(plaintext),
                        Err(e) => reason = e.to_string(),
                    }
                }
                Err(CryptoError::Decrypt {
                    peer,
                    tried,
                    reason,
                })
            }
            OlmMessage::PreKey(pre_key) => {
                let session_id = pre_key.session_id();
                if let Some(session) = self
                    .sessions
                    .get_mut(&peer)
                    .and_then(|list| list.iter_mut().find(|s| s.session_id() == session_id))
                {
                    return session.decrypt(&message).map_err(|e| CryptoError::Decrypt {
                        peer,
                        tried: 1,
                        reason: e.to_string(),
                    });
                }
                let created = self
                    .account
                    .create_inbound_session(olm_config(), identity, pre_key)
                    .map_err(|e| CryptoError::SessionCreation {
                        peer: peer.clone(),
                        reason: e.to_string(),
                    })?;
                self.insert_session(peer, created.session);
                Ok(created.plaintext)
            }
        }
    }
}

/// Decodes a Curve25519 key into its canonical base64 (map keys).
pub(crate) fn canonical_curve(field: &'static str, s: &str) -> Result<String, CryptoError> {
    parse_curve(field, s).map(|k| k.to_base64())
}
