//! Types every Vestnik crate shares: configuration, limits, ids, the clock and
//! newtypes parsed once at the boundary.
// The server's lint wall (as vestnik-crypto's): bad input and failed
// backends are errors, never a panic of the process.
#![deny(clippy::expect_used, clippy::panic, clippy::unwrap_used)]
#![warn(missing_docs)]

pub mod clock;
pub mod config;
pub mod email;
pub mod ids;
pub mod limits;
pub mod pow;
pub mod rate_limits;
pub mod tasks;
pub mod token;

pub use clock::{Clock, SystemClock};
pub use config::{Config, ConfigError, LogFormat, MailKind};
pub use email::{Email, EmailError};
pub use rate_limits::{Action, Rate, RateTable};
pub use tasks::{Background, Shutdown};
