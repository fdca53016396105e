//! Group chats (Megolm sender keys shared over Olm) against the real server
//! (SQLite, and PostgreSQL + Redis), over real sockets.
#[path = "../common/mod.rs"]
mod common;

mod messages;
mod sessions_and_membership;

use anyhow::{ensure, Context};
use common::{
    contains, file_contains, messages, no_more_messages, synced, system_event, unique, wait_for,
    Server,
};
use std::collections::BTreeSet;
use std::time::Duration;

use vestnik_client::{
    Client, ClientEvent, Direction, MessageState, ReceivedMessage, UpdateConversation,
    ROTATE_AFTER_MESSAGES,
};

use vestnik_core::clock::Clock;

/// The server's answer to a non-member (it does not reveal whether the
/// conversation exists).
fn refused_as_non_member(e: &vestnik_client::ClientError) -> bool {
    matches!(e.code(), Some("conversation_not_found" | "not_member"))
}

fn session_of(m: &ReceivedMessage) -> anyhow::Result<String> {
    m.megolm_session_id
        .clone()
        .with_context(|| format!("message {:?} is not a group message", m.body))
}
