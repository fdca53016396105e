//! A thin layer over vodozemac's Megolm sessions (sender keys for groups).
//!
//! The sender creates an outbound session per group, shares its
//! [`GroupSessionKey`] with each member device over Olm (inside an
//! [`crate::OlmEnvelope`]), and encrypts every group message once. Rotation
//! (member left, N messages, T time) is the caller's policy: create a new
//! session and share it; [`Device::group_message_index`] gives the count.
use std::fmt;

use serde::{Deserialize, Serialize};
use vodozemac::megolm::{
    ExportedSessionKey, GroupSession, InboundGroupSession, MegolmMessage, SessionConfig, SessionKey,
};
use zeroize::Zeroizing;

use crate::device::{canonical_curve, Device, InboundGroup};
use crate::error::CryptoError;

fn megolm_config() -> SessionConfig {
    SessionConfig::version_1()
}

/// A Megolm session key in base64: the secret that lets its holder decrypt
/// a group session from some message index on. Zeroed on drop; its `Debug`
/// does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupSessionKey(Zeroizing<String>);

impl GroupSessionKey {
    /// Wraps a base64 key received from a peer (inside an Olm message).
    pub fn new(base64: String) -> Self {
        Self(Zeroizing::new(base64))
    }

    /// The key, base64, to put inside an Olm message.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for GroupSessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GroupSessionKey(<redacted>)")
    }
}

/// One Megolm-encrypted group message: `{"session_id", "body"}`, the body
/// being unpadded base64 of vodozemac's (signed) Megolm message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MegolmEnvelope {
    /// The Megolm session id (its Ed25519 public key, base64).
    pub session_id: String,
    /// The message, unpadded base64.
    pub body: String,
}

/// A decrypted group message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPlaintext {
    /// The plaintext.
    pub plaintext: Vec<u8>,
    /// The ratchet index it was sent at: the same index seen twice is a
    /// replay, which the caller should reject.
    pub message_index: u32,
    /// Curve25519 key of the device that shared the session with us: the
    /// sender the caller should attribute the message to.
    pub sender_identity_key: String,
}

impl Device {
    /// Starts a new outbound Megolm session and returns its id. An inbound
    /// copy is kept too, so this device can read its own group messages.
    pub fn create_group_session(&mut self) -> String {
        let session = GroupSession::new(megolm_config());
        let id = session.session_id();
        let inbound = InboundGroupSession::new(&session.session_key(), megolm_config());
        let sender_key = self.identity_keys().identity_key;
        self.inbound_groups.insert(
            id.clone(),
            InboundGroup {
                sender_key,
                session: inbound,
            },
        );
        self.outbound_groups.insert(id.clone(), session);
        id
    }

    fn outbound(&mut self, session_id: &str) -> Result<&mut GroupSession, CryptoError> {
        self.outbound_groups
            .get_mut(session_id)
            .ok_or_else(|| CryptoError::UnknownGroupSession {
                direction: "outbound",
                session_id: session_id.to_owned(),
            })
    }

    /// The outbound session's key at its current index, to share with
    /// member devices over Olm: they can decrypt messages from here on.
    pub fn group_session_key(&mut self, session_id: &str) -> Result<GroupSessionKey, CryptoError> {
        let key = self.outbound(session_id)?.session_key();
        Ok(GroupSessionKey::new(key.to_base64()))
    }

    /// How many messages the outbound session has encrypted (for rotation).
    pub fn group_message_index(&mut self, session_id: &str) -> Result<u32, CryptoError> {
        Ok(self.outbound(session_id)?.message_index())
    }

    /// Encrypts one group message.
    pub fn group_encrypt(
        &mut self,
        session_id: &str,
        plaintext: &[u8],
    ) -> Result<MegolmEnvelope, CryptoError> {
        let message = self.outbound(session_id)?.encrypt(plaintext);
        Ok(MegolmEnvelope {
            session_id: session_id.to_owned(),
            body: message.to_base64(),
        })
    }

    /// Drops an outbound session (after rotating). Its inbound copy stays so
    /// history remains readable. Returns whether it existed.
    pub fn remove_group_session(&mut self, session_id: &str) -> bool {
        self.outbound_groups.remove(session_id).is_some()
    }

    /// Imports a session key that `sender_identity_key`'s device shared
    /// with us over Olm (the caller takes the sender from the Olm message it
    /// decrypted). Returns the session id. Importing the same session again
    /// keeps the copy that reaches furthest back.
    pub fn import_group_session(
        &mut self,
        sender_identity_key: &str,
        key: &GroupSessionKey,
    ) -> Result<String, CryptoError> {
        let key = SessionKey::from_base64(key.as_str()).map_err(|e| {
            CryptoError::InvalidGroupSessionKey {
                kind: "shared",
                reason: e.to_string(),
            }
        })?;
        self.add_inbound(
            sender_identity_key,
            InboundGroupSession::new(&key, megolm_config()),
        )
    }

    /// Imports an exported session key (from [`Device::export_group_session`]:
    /// a forwarded key or a backup). Unlike a shared key it is not signed by
    /// the session, so its origin rests entirely on the channel it came by.
    pub fn import_exported_group_session(
        &mut self,
        sender_identity_key: &str,
        key: &GroupSessionKey,
    ) -> Result<String, CryptoError> {
        let key = ExportedSessionKey::from_base64(key.as_str()).map_err(|e| {
            CryptoError::InvalidGroupSessionKey {
                kind: "exported",
                reason: e.to_string(),
            }
        })?;
        self.add_inbound(
            sender_identity_key,
            InboundGroupSession::import(&key, megolm_config()),
        )
    }

    fn add_inbound(
        &mut self,
        sender_identity_key: &str,
        mut session: InboundGroupSession,
    ) -> Result<String, CryptoError> {
        let sender_key = canonical_curve("sender_identity_key", sender_identity_key)?;
        let id = session.session_id();
        let merged = match self.inbound_groups.get_mut(&id) {
            None => session,
            Some(existing) => {
                if existing.sender_key != sender_key {
                    return Err(CryptoError::GroupSessionConflict {
                        session_id: id,
                        expected: format!("sender {}", existing.sender_key),
                        got: format!("sender {sender_key}"),
                    });
                }
                existing.session.merge(&mut session).ok_or_else(|| {
                    CryptoError::GroupSessionConflict {
                        session_id: id.clone(),
                        expected: "a key from the same ratchet as the stored copy".to_owned(),
                        got: "an unrelated ratchet under the same session id".to_owned(),
                    }
                })?
            }
        };
        self.inbound_groups.insert(
            id.clone(),
            InboundGroup {
                sender_key,
                session: merged,
            },
        );
        Ok(id)
    }

    /// Exports an inbound session from `index` on (or from its first known
    /// index), e.g. to forward it to another of our devices over Olm.
    pub fn export_group_session(
        &mut self,
        session_id: &str,
        index: Option<u32>,
    ) -> Result<GroupSessionKey, CryptoError> {
        let group = self.inbound(session_id)?;
        let first = group.session.first_known_index();
        let key = match index {
            None => group.session.export_at_first_known_index(),
            Some(i) => {
                group
                    .session
                    .export_at(i)
                    .ok_or_else(|| CryptoError::GroupSessionConflict {
                        session_id: session_id.to_owned(),
                        expected: format!("an index at or after the first known index {first}"),
                        got: format!("{i}"),
                    })?
            }
        };
        Ok(GroupSessionKey::new(key.to_base64()))
    }

    fn inbound(&mut self, session_id: &str) -> Result<&mut InboundGroup, CryptoError> {
        self.inbound_groups
            .get_mut(session_id)
            .ok_or_else(|| CryptoError::UnknownGroupSession {
                direction: "inbound",
                session_id: session_id.to_owned(),
            })
    }

    /// Decrypts one group message.
    pub fn group_decrypt(
        &mut self,
        envelope: &MegolmEnvelope,
    ) -> Result<GroupPlaintext, CryptoError> {
        let message = MegolmMessage::from_base64(&envelope.body).map_err(|e| {
            CryptoError::MalformedMessage {
                what: "Megolm envelope",
                reason: e.to_string(),
            }
        })?;
        let group = self.inbound(&envelope.session_id)?;
        let decrypted = group
            .session
            .decrypt(&message)
            .map_err(|e| CryptoError::GroupDecrypt {
                session_id: envelope.session_id.clone(),
                reason: e.to_string(),
            })?;
        Ok(GroupPlaintext {
            plaintext: decrypted.plaintext,
            message_index: decrypted.message_index,
            sender_identity_key: group.sender_key.clone(),
        })
    }
}
