//! Types every Vestnik crate shares: configuration, limits, ids, the clock and
//! newtypes parsed once at the boundary.

pub mod clock;
pub mod config;
pub mod email;
pub mod ids;
pub mod limits;
pub mod pow;
pub mod tasks;
pub mod token;

pub use clock::{Clock, SystemClock};
pub use config::{Config, ConfigError, LogFormat, MailKind};
pub use email::{Email, EmailError};
pub use tasks::{Background, Shutdown};
