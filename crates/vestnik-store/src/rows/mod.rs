//! Rows and parameter bundles, backend-neutral: ids and keys are text, times
//! are Unix milliseconds.
mod accounts;
mod conversations;

pub use accounts::*;
pub use conversations::*;
