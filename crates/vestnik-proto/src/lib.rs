//! Wire types shared by the server and clients. Request bodies reject unknown
//! fields so a typo in a client is an error, not a silently ignored option;
//! ids and names are parsed here, at the boundary, so services get them checked.
// The server's lint wall (as vestnik-crypto's): bad input and failed
// backends are errors, never a panic of the process.
#![deny(clippy::expect_used, clippy::panic, clippy::unwrap_used)]
#![warn(missing_docs)]

pub mod auth;
pub mod close;
pub mod conversations;
pub mod error;
pub mod ids;
pub mod keys;
pub mod kinds;
pub mod limits;
pub mod media;
pub mod messaging;
pub mod people;
pub mod schema;
pub mod secret;

pub use auth::*;
pub use close::CloseReason;
pub use conversations::*;
pub use error::*;
pub use ids::*;
pub use keys::*;
pub use kinds::*;
pub use media::*;
pub use messaging::*;
pub use people::*;
pub use secret::Secret;
