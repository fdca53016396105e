use vestnik_proto::PowChallenge;

/// What went wrong, named for what the caller did. The gateway maps each
/// variant to a status and a stable code in one place.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    InvalidEmail(#[from] vestnik_core::EmailError),
    #[error("expected an address mail can be sent to, got one the mail system refuses")]
    UndeliverableEmail,
    #[error("{0}")]
    WeakPassword(String),
    #[error("{0}")]
    InvalidDevice(String),
    #[error("the code is wrong or has expired; request a new one if needed")]
    InvalidCode,
    #[error("too many wrong codes: this code no longer works, request a new one")]
    CodeBurned,
    #[error("a code was sent recently; wait before asking for another")]
    ResendTooSoon { retry_after_ms: u64 },
    #[error("e-mail or password is wrong")]
    BadCredentials,
    #[error("this account has two-factor authentication on: send `totp` or `recovery_code`")]
    TotpRequired,
    #[error("the two-factor code is wrong or was already used")]
    InvalidTotp,
    #[error("two-factor authentication is already on")]
    TotpAlreadyEnabled,
    #[error("two-factor authentication is not on")]
    TotpNotEnabled,
    #[error("no two-factor setup is in progress (or it expired): call setup first")]
    NoTotpSetup,
    #[error("missing, invalid, expired or revoked token")]
    Unauthenticated,
    #[error("this refresh token was already used; the session is revoked, log in again")]
    RefreshReused,
    #[error("the account is disabled")]
    AccountDisabled,
    #[error("expected at most {max} active devices; revoke one first")]
    TooManyDevices { max: i64 },
    #[error("no such user")]
    UserNotFound,
    #[error("no such device")]
    DeviceNotFound,
    #[error("too many requests")]
    RateLimited { retry_after_ms: u64 },
    #[error("too many failed attempts: solve the proof-of-work challenge and resend with `pow`")]
    PowRequired(PowChallenge),
    #[error("the proof of work is invalid, expired or already used")]
    InvalidPow(PowChallenge),
    #[error("mail could not be sent: {0}")]
    Mail(#[from] vestnik_mail::MailError),
    #[error("store: {0}")]
    Store(#[from] vestnik_store::StoreError),
    #[error("bus: {0}")]
    Bus(#[from] vestnik_bus::BusError),
    #[error("internal: {0}")]
    Internal(String),
}
