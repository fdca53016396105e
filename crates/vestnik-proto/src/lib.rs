//! Wire types shared by the server and clients. Request bodies reject unknown
//! fields so a typo in a client is an error, not a silently ignored option.

pub mod auth;
pub mod error;
pub mod media;
pub mod messaging;

pub use auth::*;
pub use error::*;
pub use media::*;
pub use messaging::*;
