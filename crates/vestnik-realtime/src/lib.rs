//! Realtime delivery: conversations, the send path (validated, then stored by
//! a batching writer), the per-device outbox, acknowledgements and receipts,
//! and the hub that pushes frames to connected devices. It knows nothing of
//! HTTP or WebSockets: the gateway feeds it frames and drains its channels.
// The server's lint wall (as vestnik-crypto's): bad input and failed
// backends are errors, never a panic of the process.
#![deny(clippy::expect_used, clippy::panic, clippy::unwrap_used)]
#![warn(missing_docs)]

mod bans;
mod batcher;
mod channels;
mod context_cache;
mod conversations;
mod delivery;
mod erasure;
mod error;
mod groups;
mod hub;
mod invitations;
mod invites;
mod mutes;
mod presence;
mod profiles;
mod roles;
mod service;

pub use error::RealtimeError;
pub use hub::{Connection, Hub};
pub use service::{Realtime, RealtimeSettings, PAGE_MAX};
