//! The device's own decrypted history as one JSON document: what the server
//! cannot export, since it never had the contents.
use serde::Serialize;

use super::Client;
use crate::error::Result;
use crate::types::{Direction, HistoryEntry, MessageState};

/// Everything this device can read, per conversation, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryExport {
    /// The account.
    pub user_id: String,
    /// The device that made the export (its history may differ from another
    /// device's: each holds what it received).
    pub device_id: String,
    /// Unix milliseconds.
    pub exported_at: i64,
    /// Conversations with at least one message on this device.
    pub conversations: Vec<ExportedConversation>,
}

/// One conversation's messages.
#[derive(Debug, Clone, Serialize)]
pub struct ExportedConversation {
    /// The conversation's id.
    pub conversation_id: String,
    /// `direct`, `group` or `channel` (empty when this device never
    /// fetched the conversation).
    pub kind: String,
    /// The other user of a direct conversation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_user_id: Option<String>,
    /// Oldest first.
    pub messages: Vec<ExportedMessage>,
}

/// One message, decrypted.
#[derive(Debug, Clone, Serialize)]
pub struct ExportedMessage {
    /// Server id; absent while pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Server order; absent while pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    /// Who wrote it.
    pub sender_user_id: String,
    /// From which device.
    pub sender_device_id: String,
    /// Incoming or outgoing.
    pub direction: Direction,
    /// Pending, sent, received or failed.
    pub state: MessageState,
    /// The text.
    pub body: String,
    /// Server time, Unix milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<i64>,
    /// Devices that took delivery (outgoing messages).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub delivered_to: Vec<String>,
    /// When it was last edited, Unix milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<i64>,
    /// A file message's file, without its key (the file itself is fetched
    /// with `get-file`, while the server keeps it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<ExportedFile>,
}

/// What a file message carried, but its key.
#[derive(Debug, Clone, Serialize)]
pub struct ExportedFile {
    /// The media object.
    pub media_id: String,
    /// The sender's file name.
    pub name: String,
    /// Its type.
    pub mime: String,
    /// Bytes.
    pub size: u64,
    /// When the server deletes the object, Unix milliseconds.
    pub expires_at: i64,
}

impl From<HistoryEntry> for ExportedMessage {
    fn from(m: HistoryEntry) -> Self {
        ExportedMessage {
            message_id: m.message_id,
            seq: m.seq,
            sender_user_id: m.sender_user_id,
            sender_device_id: m.sender_device_id,
            direction: m.direction,
            state: m.state,
            body: m.body,
            sent_at: m.sent_at,
            delivered_to: m.delivered_to,
            edited_at: m.edited_at,
            file: m.attachment.map(|a| ExportedFile {
                // Attachment zeroes its key on drop, so it is read, not taken apart.
                media_id: a.media_id.clone(),
                name: a.name.clone(),
                mime: a.mime.clone(),
                size: a.size,
                expires_at: a.expires_at,
            }),
        }
    }
}

impl Client {
    /// What the server holds about the account (`GET /v1/account/export`):
    /// the account, devices, conversations and roles, blocks and audit.
    pub async fn export_account(&self) -> Result<vestnik_proto::AccountExport> {
        self.inner.api.get("/v1/account/export").await
    }

    /// This device's decrypted history, every conversation, oldest first.
    pub async fn export_history(&self) -> Result<HistoryExport> {
        let mut conversations = Vec::new();
        for (conversation_id, kind, peer_user_id) in
            self.inner.store.history_conversations().await?
        {
            let messages = self
                .inner
                .store
                .history(&conversation_id, i64::MAX)
                .await?
                .into_iter()
                .map(ExportedMessage::from)
                .collect();
            conversations.push(ExportedConversation {
                conversation_id,
                kind,
                peer_user_id,
                messages,
            });
        }
        Ok(HistoryExport {
            user_id: self.user_id().to_owned(),
            device_id: self.device_id().to_owned(),
            exported_at: crate::store::now_ms(),
            conversations,
        })
    }
}
