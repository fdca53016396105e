//! The plaintext inside each Olm message:
//! `{"v":1,"kind":"text","body":"…","client_msg_id":"…","conversation_id":"…"}`.
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Payload version this client writes and reads.
pub const PAYLOAD_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
pub(crate) struct Payload {
    pub(crate) v: u32,
    pub(crate) kind: String,
    pub(crate) body: String,
    pub(crate) client_msg_id: String,
    pub(crate) conversation_id: String,
}

impl Payload {
    pub(crate) fn text(body: &str, client_msg_id: &str, conversation_id: &str) -> Self {
        Self {
            v: PAYLOAD_VERSION,
            kind: "text".into(),
            body: body.to_owned(),
            client_msg_id: client_msg_id.to_owned(),
            conversation_id: conversation_id.to_owned(),
        }
    }

    pub(crate) fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        // Serialising plain strings cannot fail.
        Zeroizing::new(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Parses a decrypted payload and checks it belongs to the conversation
    /// the server filed it under (so a server cannot move it elsewhere).
    pub(crate) fn parse(bytes: &[u8], conversation_id: &str) -> Result<Self, String> {
        let p: Payload = serde_json::from_slice(bytes)
            .map_err(|e| format!("payload: expected the v1 JSON payload, got: {e}"))?;
        if p.v != PAYLOAD_VERSION {
            return Err(format!(
                "payload: expected version {PAYLOAD_VERSION}, got {}",
                p.v
            ));
        }
        if p.kind != "text" {
            return Err(format!("payload: expected kind \"text\", got {:?}", p.kind));
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
}
