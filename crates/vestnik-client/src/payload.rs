//! The plaintext inside each Olm or Megolm message, JSON with a `kind`:
//!
//! - `text` (Olm in direct chats, Megolm in groups):
//!   `{"v":1,"kind":"text","body":"…","client_msg_id":"…","conversation_id":"…"}`,
//!   with `"attachment":{…}` (see [`crate::Attachment`]) for a file message.
//!   An edit is a `text` with `"edit_of":"<message id>"`: its body replaces
//!   that message's, if the same sender wrote it at most
//!   [`crate::EDIT_WINDOW_MS`] before; it is not a message of its own.
//! - `group_key` (Olm, `kind: keys` sends): a Megolm session key for a group,
//!   `{"v":1,"kind":"group_key","conversation_id","session_id","session_key"}`,
//!   with `"exported":true` when it is a re-share answering a key request
//!   (an exported key, which is not signed by the session).
//! - `key_request` (Olm): "please share `session_id` of `conversation_id` again",
//!   `{"v":1,"kind":"key_request","conversation_id","session_id"}`.
use serde::{Deserialize, Serialize};
use vestnik_crypto::GroupSessionKey;
use zeroize::Zeroizing;

/// Payload version this client writes and reads.
pub const PAYLOAD_VERSION: u32 = 1;

pub(crate) const KIND_TEXT: &str = "text";
pub(crate) const KIND_GROUP_KEY: &str = "group_key";
pub(crate) const KIND_KEY_REQUEST: &str = "key_request";

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Serialize, Deserialize)]
pub(crate) struct Payload {
    pub(crate) v: u32,
    pub(crate) kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) body: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) client_msg_id: String,
    pub(crate) conversation_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) session_key: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) exported: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) attachment: Option<crate::types::Attachment>,
    /// A `text` that replaces the text of this earlier message of the same
    /// sender (an edit), within [`crate::EDIT_WINDOW_MS`] of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) edit_of: Option<String>,
}

impl Payload {
    fn new(kind: &str, conversation_id: &str) -> Self {
        Self {
            v: PAYLOAD_VERSION,
            kind: kind.to_owned(),
            body: String::new(),
            client_msg_id: String::new(),
            conversation_id: conversation_id.to_owned(),
            session_id: None,
            session_key: None,
            exported: false,
            attachment: None,
            edit_of: None,
        }
    }

    /// The payload of a queued message: its text and any attachment.
    pub(crate) fn message(
        item: &crate::store::OutboxItem,
        conversation_id: &str,
    ) -> Result<Self, crate::ClientError> {
        let mut p = Self::text(&item.text, &item.client_msg_id, conversation_id);
        p.edit_of = item.edit_of.clone();
        p.attachment = item
            .attachment
            .as_deref()
            .map(|j| serde_json::from_str(j))
            .transpose()
            .map_err(|e| crate::ClientError::Protocol(format!("queued attachment: {e}")))?;
        Ok(p)
    }

    pub(crate) fn text(body: &str, client_msg_id: &str, conversation_id: &str) -> Self {
        let mut p = Self::new(KIND_TEXT, conversation_id);
        p.body = body.to_owned();
        p.client_msg_id = client_msg_id.to_owned();
        p
    }

    pub(crate) fn group_key(
        conversation_id: &str,
        session_id: &str,
        key: &GroupSessionKey,
        exported: bool,
    ) -> Self {
        let mut p = Self::new(KIND_GROUP_KEY, conversation_id);
        p.session_id = Some(session_id.to_owned());
        p.session_key = Some(key.as_str().to_owned());
        p.exported = exported;
        p
    }

    pub(crate) fn key_request(conversation_id: &str, session_id: &str) -> Self {
        let mut p = Self::new(KIND_KEY_REQUEST, conversation_id);
        p.session_id = Some(session_id.to_owned());
        p
    }

    pub(crate) fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        // Serialising plain strings cannot fail.
        Zeroizing::new(serde_json::to_vec(self).unwrap_or_default())
    }

    /// The session id of a `group_key` or `key_request` (checked present by `parse`).
    pub(crate) fn session(&self) -> &str {
        self.session_id.as_deref().unwrap_or_default()
    }

    /// Parses a decrypted payload and checks it belongs to the conversation
    /// the server filed it under (so a server cannot move it elsewhere), and
    /// that its kind carries the fields that kind needs.
    pub(crate) fn parse(bytes: &[u8], conversation_id: &str) -> Result<Self, String> {
        let p: Payload = serde_json::from_slice(bytes)
            .map_err(|e| format!("payload: expected the v1 JSON payload, got: {e}"))?;
        if p.v != PAYLOAD_VERSION {
            return Err(format!(
                "payload: expected version {PAYLOAD_VERSION}, got {}",
                p.v
            ));
        }
        let complete = match p.kind.as_str() {
            KIND_TEXT => !p.client_msg_id.is_empty(),
            KIND_GROUP_KEY => p.session_id.is_some() && p.session_key.is_some(),
            KIND_KEY_REQUEST => p.session_id.is_some(),
            other => {
                return Err(format!(
                "payload: expected kind \"text\", \"group_key\" or \"key_request\", got {other:?}"
            ))
            }
        };
        if !complete {
            return Err(format!(
                "payload: expected the fields of kind {:?}, got some missing",
                p.kind
            ));
        }
        if p.conversation_id != conversation_id {
            return Err(format!(
                "payload: expected conversation {conversation_id}, got {} (moved by the server?)",
                p.conversation_id
            ));
        }
        Ok(p)
    }
}

impl Drop for Payload {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.body.zeroize();
        if let Some(k) = self.session_key.as_mut() {
            k.zeroize();
        }
    }
}

/// A decrypted message: its history row and the event announcing it.
pub(crate) struct Decrypted<'a> {
    pub(crate) m: &'a vestnik_proto::IncomingMessage,
    pub(crate) payload: &'a Payload,
    pub(crate) direction: crate::types::Direction,
}

impl<'a> Decrypted<'a> {
    pub(crate) fn row(
        &self,
        peer_user_id: Option<&'a str>,
        group: Option<(&'a str, u32)>,
    ) -> crate::store::IncomingRow<'a> {
        crate::store::IncomingRow {
            message_id: &self.m.message_id,
            client_msg_id: &self.payload.client_msg_id,
            conversation_id: &self.m.conversation_id,
            peer_user_id,
            seq: self.m.seq,
            sender_user_id: &self.m.sender_user_id,
            sender_device_id: &self.m.sender_device_id,
            direction: self.direction,
            body: &self.payload.body,
            attachment: self
                .payload
                .attachment
                .as_ref()
                .and_then(|a| serde_json::to_string(a).ok()),
            sent_at: self.m.sent_at,
            group,
            edit_of: self.payload.edit_of.as_deref(),
        }
    }

    pub(crate) fn event(
        &self,
        prekey: bool,
        megolm_session_id: Option<String>,
    ) -> crate::types::ClientEvent {
        if let Some(target) = &self.payload.edit_of {
            return crate::types::ClientEvent::Edited {
                conversation_id: self.m.conversation_id.clone(),
                message_id: target.clone(),
                body: self.payload.body.clone(),
                edited_at: self.m.sent_at,
            };
        }
        crate::types::ClientEvent::Message(crate::types::ReceivedMessage {
            message_id: self.m.message_id.clone(),
            conversation_id: self.m.conversation_id.clone(),
            seq: self.m.seq,
            sender_user_id: self.m.sender_user_id.clone(),
            sender_device_id: self.m.sender_device_id.clone(),
            sent_at: self.m.sent_at,
            body: self.payload.body.clone(),
            client_msg_id: self.payload.client_msg_id.clone(),
            direction: self.direction,
            prekey,
            megolm_session_id,
            attachment: self.payload.attachment.clone().map(Box::new),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_round_trips_and_is_bound_to_its_conversation() {
        let p = Payload::text("hi", "c1", "conv1");
        let bytes = p.to_bytes();
        let back = Payload::parse(&bytes, "conv1").expect("parse");
        assert_eq!(back.body, "hi");
        assert_eq!(back.client_msg_id, "c1");
        assert!(Payload::parse(&bytes, "conv2").is_err());
        assert!(Payload::parse(
            br#"{"v":2,"kind":"text","body":"","client_msg_id":"","conversation_id":"conv1"}"#,
            "conv1"
        )
        .is_err());
    }

    #[test]
    fn a_text_payload_keeps_the_v1_wire_shape() {
        let bytes = Payload::text("hi", "c1", "conv1").to_bytes();
        assert_eq!(
            std::str::from_utf8(&bytes).expect("utf-8"),
            r#"{"v":1,"kind":"text","body":"hi","client_msg_id":"c1","conversation_id":"conv1"}"#
        );
    }

    #[test]
    fn key_payloads_need_their_fields() {
        let key = GroupSessionKey::new("secret".into());
        let bytes = Payload::group_key("g1", "s1", &key, false).to_bytes();
        let back = Payload::parse(&bytes, "g1").expect("parse");
        assert_eq!(back.kind, KIND_GROUP_KEY);
        assert_eq!(back.session(), "s1");
        assert_eq!(back.session_key.as_deref(), Some("secret"));
        assert!(!back.exported);
        assert!(Payload::parse(&bytes, "g2").is_err());
        assert!(Payload::parse(
            br#"{"v":1,"kind":"group_key","conversation_id":"g1","session_id":"s1"}"#,
            "g1"
        )
        .is_err());
        assert!(Payload::parse(
            br#"{"v":1,"kind":"key_request","conversation_id":"g1"}"#,
            "g1"
        )
        .is_err());
        assert!(Payload::parse(br#"{"v":1,"kind":"other","conversation_id":"g1"}"#, "g1").is_err());
        let req = Payload::key_request("g1", "s1").to_bytes();
        assert_eq!(
            Payload::parse(&req, "g1").expect("parse").kind,
            KIND_KEY_REQUEST
        );
    }
}
