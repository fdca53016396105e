//! Vestnik's native async client library (tokio).
//!
//! A [`Client`] is one device of one account:
//!
//! - **Account and device**: [`Client::request_registration_code`] then
//!   [`Client::register`] (the mailed code), or [`Client::login`] (with a
//!   [`SecondFactor`] when 2FA is on) create the device: a fresh Olm account
//!   (vestnik-crypto on vodozemac) whose identity, signing, signed fallback
//!   and one-time keys are published with it. [`Client::open`] reopens it
//!   from its store after a restart. Tokens are refreshed on `401`.
//! - **Local store**: one SQLite file per device, sealed under the
//!   [`StoreKey`] (the Olm state, the tokens and every message body; see
//!   the `store` module docs for what stays in the clear and why).
//! - **Socket**: [`Client::connect`] runs the WebSocket in the background,
//!   reconnecting with capped exponential backoff and jitter. Everything
//!   that arrives is decrypted, stored, then acknowledged; duplicates
//!   (at-least-once delivery) are acknowledged and dropped by message id.
//!   [`Client::events`] yields [`ClientEvent`]s: messages, receipts,
//!   connection changes, device changes.
//! - **Sending**: [`Client::send_text`] / [`Client::queue_text`] write to
//!   a local outbox first; a background worker encrypts one Olm envelope per
//!   device of every member except this one (claiming pre-key bundles where
//!   there is no session yet), sends over the socket (or REST when there is
//!   none), re-encrypts on `device_list_stale`, and after a broken
//!   connection sends again with the same `client_msg_id` (the server
//!   answers a repeat with the original `sent`).
//! - **Groups**: [`Client::create_group`] and the membership calls;
//!   [`Client::send_group_text`] encrypts once with this device's Megolm
//!   session for the group, after sharing its key over Olm with every member
//!   device that lacks it; the session is replaced when a member leaves or
//!   is removed, when the member devices change, after
//!   [`ROTATE_AFTER_MESSAGES`] messages or after [`ROTATE_AFTER`]. Group
//!   messages whose key has not arrived wait and are decrypted when it does
//!   (a key request goes to the sender). Membership changes arrive as
//!   [`ClientEvent::System`].
//! - **Channels**: [`Client::create_channel`], [`Client::subscribe_channel`],
//!   [`Client::post`] and [`Client::read_channel`]: public posts in the
//!   clear, private ones under each publisher's Megolm session (rotated
//!   when a subscriber is removed); posts arrive live and from the log,
//!   which is read again after every reconnect.
//! - **Keys**: one-time keys are topped up when the server's count falls
//!   below its low watermark; [`Client::safety_number`] gives the code users
//!   compare to verify each other's devices.
//!
//! The plaintext inside each Olm message is JSON:
//! `{"v":1,"kind":"text","body":"…","client_msg_id":"…","conversation_id":"…"}`;
//! a message whose `conversation_id` differs from the one the server filed
//! it under is refused.
//!
//! ```no_run
//! # async fn demo() -> Result<(), vestnik_client::ClientError> {
//! use vestnik_client::{Client, ClientConfig, ClientEvent, StoreKey};
//! let config = ClientConfig::new("https://chat.example", "alice.db", StoreKey::secret(vec![7u8; 32]));
//! let alice = Client::open(config).await?;
//! let mut events = alice.events();
//! alice.connect();
//! let bob = alice.lookup_user("bob@example.com").await?;
//! alice.send_text(&bob, "hello").await?;
//! while let Some(e) = events.recv().await {
//!     if let ClientEvent::Message(m) = e {
//!         println!("{}: {}", m.sender_user_id, m.body);
//!     }
//! }
//! # Ok(()) }
//! ```
#![deny(unsafe_code, unreachable_pub, clippy::unwrap_used)]

mod api;
mod backoff;
mod channel;
mod client;
mod config;
mod engine;
mod error;
mod events;
mod group;
mod media;
mod payload;
mod seal;
mod socket;
mod store;
mod types;

pub use api::MAX_POW_DIFFICULTY;
pub use client::{
    Client, ExportedConversation, ExportedFile, ExportedMessage, HistoryExport, SecondFactor,
};
pub use config::{
    ClientConfig, StoreKey, DEFAULT_FALLBACK_KEY_MAX_AGE, DEFAULT_ONE_TIME_KEYS, MAX_TEXT_BYTES,
};
pub use error::{ClientError, Result};
pub use events::EventStream;
pub use group::{ROTATE_AFTER, ROTATE_AFTER_MESSAGES};

/// How long after sending a message its sender may edit it (two days, the
/// server's default window for deleting): receiving clients apply an edit
/// only when the server times of the two are at most this far apart.
pub const EDIT_WINDOW_MS: i64 = 2 * 86_400_000;
pub use media::{FileOptions, MAX_CAPTION_BYTES};
pub use payload::PAYLOAD_VERSION;
pub use types::{
    Attachment, ClientEvent, DeliveryReceipt, Direction, HistoryEntry, MessageState,
    ReceivedMessage, SentMessage, Stats, Thumbnail,
};
pub use vestnik_proto::{
    Conversation, DeviceInfo, Invite, Member, Profile, PublicDevice, RecoveryCodes, SystemEvent,
    TotpSetup, UpdateConversation,
};
