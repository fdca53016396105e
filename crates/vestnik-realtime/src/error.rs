use vestnik_proto::PublicDevice;

/// Why a conversation, message, group or presence operation was refused or failed;
/// the gateway maps each variant to one HTTP status and error code.
#[derive(Debug, thiserror::Error)]
pub enum RealtimeError {
    /// A value in the request is outside its limits or rules (the message says which).
    #[error("{0}")]
    InvalidInput(String),
    /// The conversation does not exist or the caller is not a member (indistinguishable on purpose).
    #[error("no such conversation (or you are not a member)")]
    NotMember,
    /// The user does not exist, is inactive, or is the caller where another user is required.
    #[error("no such user")]
    NoSuchUser,
    /// The caller's role does not allow this (the message says what is required).
    #[error("{0}")]
    Forbidden(String),
    /// Adding a member would exceed the group's limit.
    #[error("the group is full: it may have at most {max} members")]
    GroupFull {
        /// The group's member limit.
        max: i64,
    },
    /// The owner tried to leave; they must transfer ownership first.
    #[error("the owner must transfer ownership before leaving")]
    OwnerMustTransfer,
    /// The user is banned from the group or channel (and stays out until a
    /// manager lifts the ban).
    #[error("banned from this conversation")]
    Banned,
    /// The sender is muted in this group or channel.
    #[error("you are muted here until {until} (Unix ms)")]
    Muted {
        /// Until when.
        until: i64,
    },
    /// No such message in this conversation.
    #[error("no such message in this conversation")]
    MessageNotFound,
    /// The invite token is unknown, expired or used up.
    #[error("no such invite, or it expired or was used up")]
    InviteNotFound,
    /// The sender encrypted for an outdated device list; carries the current one to re-encrypt for.
    #[error("the device list changed: encrypt for the devices listed and send again")]
    DeviceListStale(Vec<PublicDevice>),
    /// This device already sent a message with this `client_msg_id` to
    /// another conversation; a retry must go to the same one.
    #[error("this client_msg_id was already used for a message to another conversation")]
    ClientMsgIdReused,
    /// A batched write failed because the database is away or too slow.
    #[error("the database is unavailable; retry shortly")]
    DatabaseUnavailable,
    /// The node is shutting down or its write queues are full; the client retries.
    #[error("the server is shutting down or overloaded; retry")]
    Unavailable,
    /// The action's rate limit is spent (see the rate table).
    #[error("too many requests; slow down")]
    RateLimited {
        /// Milliseconds until another frame is accepted.
        retry_after_ms: u64,
    },
    /// The presence registry or event bus failed.
    #[error("event bus: {0}")]
    Bus(String),
    /// The database failed.
    #[error("store: {0}")]
    Store(#[from] vestnik_store::StoreError),
}

impl From<vestnik_bus::LimitError> for RealtimeError {
    fn from(e: vestnik_bus::LimitError) -> Self {
        match e {
            vestnik_bus::LimitError::Limited { retry_after_ms } => {
                RealtimeError::RateLimited { retry_after_ms }
            }
            vestnik_bus::LimitError::Unavailable => RealtimeError::Unavailable,
        }
    }
}
