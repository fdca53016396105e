//! The one error type of the client library.
use vestnik_proto::{PowChallenge, PublicDevice};

/// Everything a client call can fail with. Messages read "expected X, got Y".
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with its JSON error shape.
    #[error("server answered {status} {code}: {message}")]
    Api {
        /// HTTP status (or 0 for a WebSocket `error` frame).
        status: u16,
        /// The stable snake_case code (`invalid_credentials`, `totp_required`, …).
        code: String,
        /// The server's explanation.
        message: String,
        /// With `device_list_stale`: the devices to encrypt for.
        devices: Option<Vec<PublicDevice>>,
        /// With `proof_of_work_required`: the puzzle.
        pow: Option<PowChallenge>,
    },
    /// The server could not be reached, or the connection broke.
    #[error("expected an answer from the server, got a transport error: {0}")]
    Transport(String),
    /// The server answered something this client does not understand.
    #[error("server protocol: {0}")]
    Protocol(String),
    /// The local SQLite store failed.
    #[error("local store: {0}")]
    Store(#[from] sqlx::Error),
    /// End-to-end encryption failed.
    #[error(transparent)]
    Crypto(#[from] vestnik_crypto::CryptoError),
    /// The store key does not open this store (or the store was altered).
    #[error("local store: expected the key it was created with, got one that does not open it (or the file was altered)")]
    WrongStoreKey,
    /// `Client::open` on a store that holds no account yet.
    #[error("local store {0}: expected a registered device, got an empty store (register or log in first)")]
    NotRegistered(String),
    /// `register`/`login` into a store that already holds a device.
    #[error("local store {0}: expected an empty store, got one that already holds a device")]
    AlreadyRegistered(String),
    /// Another client has this store open.
    #[error("local store {0}: expected to have it to ourselves, got it locked by another client")]
    StoreInUse(String),
    /// The server refused our refresh token: this device was logged out or revoked.
    #[error("session ended: {0} (this device must log in again)")]
    SessionEnded(String),
    /// A caller-supplied value is out of range.
    #[error("{0}")]
    InvalidInput(String),
    /// An id this client was given does not have the form of one.
    #[error(transparent)]
    InvalidId(#[from] vestnik_proto::InvalidId),
    /// A role, class or setting outside its set.
    #[error(transparent)]
    UnknownName(#[from] vestnik_proto::UnknownName),
    /// A device in the directory changed its identity key: possibly an attack.
    #[error("device {device_id} of user {user_id}: expected identity key {known}, the server now says {got}")]
    IdentityKeyChanged {
        /// Owner of the device.
        user_id: String,
        /// The device.
        device_id: String,
        /// The key first seen for it.
        known: String,
        /// The key the server now reports.
        got: String,
    },
    /// The client was closed.
    #[error("the client was closed")]
    Closed,
}

impl ClientError {
    /// The server's error code, when the server answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Worth retrying later unchanged: transport trouble, overload, rate limits.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Transport(_) => true,
            ClientError::Api { status, code, .. } => {
                *status >= 500
                    || *status == 408
                    || *status == 429
                    || matches!(
                        code.as_str(),
                        "rate_limited" | "unavailable" | "too_many_in_flight" | "internal"
                    )
            }
            _ => false,
        }
    }
}

impl From<reqwest::Error> for ClientError {
    fn from(e: reqwest::Error) -> Self {
        if e.is_decode() {
            ClientError::Protocol(e.to_string())
        } else {
            ClientError::Transport(e.to_string())
        }
    }
}

impl From<tokio_tungstenite::tungstenite::Error> for ClientError {
    fn from(e: tokio_tungstenite::tungstenite::Error) -> Self {
        ClientError::Transport(format!("websocket: {e}"))
    }
}

/// Shorthand for this crate's results.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
