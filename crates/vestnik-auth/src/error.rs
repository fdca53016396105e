use vestnik_proto::PowChallenge;

/// What went wrong, named for what the caller did. The gateway maps each
/// variant to a status and a stable code in one place.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The e-mail address does not parse.
    #[error("{0}")]
    InvalidEmail(#[from] vestnik_core::EmailError),
    /// The address parses, but the mail libraries refuse it (their address rules are stricter than the API's).
    #[error("expected an address mail can be sent to, got one the mail system refuses")]
    UndeliverableEmail,
    /// The password breaks the policy (length, common password, equal to the address).
    #[error("{0}")]
    WeakPassword(String),
    /// The device description or its keys are malformed or their signatures do not verify.
    #[error("{0}")]
    InvalidDevice(String),
    /// The e-mail code is wrong, expired or was never sent.
    #[error("the code is wrong or has expired; request a new one if needed")]
    InvalidCode,
    /// Too many wrong tries: the code is burnt and a new one must be requested.
    #[error("too many wrong codes: this code no longer works, request a new one")]
    CodeBurned,
    /// A code was sent to this address within the resend interval.
    #[error("a code was sent recently; wait before asking for another")]
    ResendTooSoon {
        /// Milliseconds until another code may be sent.
        retry_after_ms: u64,
    },
    /// Unknown address or wrong password (deliberately not told apart).
    #[error("e-mail or password is wrong")]
    BadCredentials,
    /// The password was right but the account needs a TOTP or recovery code as well.
    #[error("this account has two-factor authentication on: send `totp` or `recovery_code`")]
    TotpRequired,
    /// The TOTP or recovery code is wrong or was already used.
    #[error("the two-factor code is wrong or was already used")]
    InvalidTotp,
    /// 2FA setup was asked for while 2FA is already on.
    #[error("two-factor authentication is already on")]
    TotpAlreadyEnabled,
    /// 2FA was to be disabled but is not on.
    #[error("two-factor authentication is not on")]
    TotpNotEnabled,
    /// 2FA enable without a pending (unexpired) setup.
    #[error("no two-factor setup is in progress (or it expired): call setup first")]
    NoTotpSetup,
    /// The access token, refresh token or WebSocket ticket is missing, invalid, expired or revoked.
    #[error("missing, invalid, expired or revoked token")]
    Unauthenticated,
    /// A rotated refresh token was presented again: the device and its tokens are now revoked.
    #[error("this refresh token was already used; the session is revoked, log in again")]
    RefreshReused,
    /// The account is disabled; nothing may be done with it.
    #[error("the account is disabled")]
    AccountDisabled,
    /// The account already has its maximum number of active devices.
    #[error("expected at most {max} active devices; revoke one first")]
    TooManyDevices {
        /// The per-account device limit.
        max: i64,
    },
    /// No active user with this id.
    #[error("no such user")]
    UserNotFound,
    /// No device with this id among the caller's.
    #[error("no such device")]
    DeviceNotFound,
    /// A rate limit was hit.
    #[error("too many requests")]
    RateLimited {
        /// Milliseconds until the bucket has a token again.
        retry_after_ms: u64,
    },
    /// Too many recent failures from this IP or address: the request must carry a solved proof of work (the challenge).
    #[error("too many failed attempts: solve the proof-of-work challenge and resend with `pow`")]
    PowRequired(PowChallenge),
    /// The proof of work sent is wrong, expired or reused; a fresh challenge is attached.
    #[error("the proof of work is invalid, expired or already used")]
    InvalidPow(PowChallenge),
    /// The verification mail could not be sent.
    #[error("mail could not be sent: {0}")]
    Mail(#[from] vestnik_mail::MailError),
    /// The signed-in account's password, asked again to confirm a change, was wrong.
    #[error("the password is wrong")]
    WrongPassword,
    /// Another account took the new address while the change waited for its code.
    #[error("the address belongs to another account")]
    EmailTaken,
    /// A shared limiter guarding this action cannot be asked (it fails
    /// closed), or password hashing is saturated: retry shortly.
    #[error("busy; retry shortly")]
    Busy {
        /// Milliseconds to wait before retrying.
        retry_after_ms: u64,
    },
    /// The database failed.
    #[error("store: {0}")]
    Store(#[from] vestnik_store::StoreError),
    /// The cache or rate limiter failed.
    #[error("bus: {0}")]
    Bus(#[from] vestnik_bus::BusError),
    /// A server-side fault (crypto, hashing); the message goes only to the log.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<vestnik_bus::LimitError> for AuthError {
    fn from(e: vestnik_bus::LimitError) -> Self {
        match e {
            vestnik_bus::LimitError::Limited { retry_after_ms } => {
                AuthError::RateLimited { retry_after_ms }
            }
            vestnik_bus::LimitError::Unavailable => AuthError::Busy {
                retry_after_ms: 1000,
            },
        }
    }
}
