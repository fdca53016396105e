//! Every fixed limit in one place, each with the reason it has the value it has.
//! Limits an operator may want to tune live in [`crate::Config`] instead.
//! The limits clients see in the API are defined in `vestnik_proto::limits`
//! (the OpenAPI document states them) and re-exported here.

pub use vestnik_proto::limits::*;

/// Largest JSON request body. Key uploads are the biggest auth bodies
/// (100 one-time keys of ~100 bytes each), so 64 KiB leaves ample room.
pub const MAX_JSON_BODY_BYTES: usize = 64 * 1024;
/// How long a request may take before the server answers 408/503.
pub const REQUEST_TIMEOUT_SECS: u64 = 30;
/// Uploads and downloads at the local store's blob URLs: 100 MiB at a slow
/// 256 kbit/s takes ~55 minutes.
pub const MEDIA_TRANSFER_TIMEOUT_SECS: u64 = 3600;

/// E-mail verification codes: 6 digits, 15 minutes, 5 wrong tries burn the code.
pub const EMAIL_CODE_DIGITS: u32 = 6;
pub const EMAIL_CODE_TTL_SECS: i64 = 15 * 60;
pub const EMAIL_CODE_MAX_ATTEMPTS: i64 = 5;
/// A new code for the same address is sent at most once a minute.
pub const EMAIL_CODE_RESEND_SECS: i64 = 60;

/// TOTP: RFC 6238 defaults (SHA-1, 6 digits, 30 s) that every authenticator app
/// supports; one step of clock drift accepted either way.
pub const TOTP_DIGITS: usize = 6;
pub const TOTP_STEP_SECS: u64 = 30;
pub const TOTP_SKEW_STEPS: i64 = 1;
/// A 2FA setup that is not confirmed within this time must be started again.
pub const TOTP_SETUP_TTL_SECS: i64 = 15 * 60;
pub const RECOVERY_CODES: usize = 10;

/// Proof-of-work challenges are valid this long.
pub const POW_CHALLENGE_TTL_SECS: i64 = 5 * 60;
/// Failed logins/verifications per account or IP within the window before a
/// proof of work is demanded.
pub const POW_FAILURE_THRESHOLD: i64 = 5;
pub const POW_FAILURE_WINDOW_SECS: i64 = 15 * 60;
