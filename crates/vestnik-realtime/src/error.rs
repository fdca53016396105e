use vestnik_proto::PublicDevice;

#[derive(Debug, thiserror::Error)]
pub enum RealtimeError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("no such conversation (or you are not a member)")]
    NotMember,
    #[error("no such user")]
    NoSuchUser,
    #[error("a recipient does not accept messages from you")]
    Blocked,
    #[error("{0}")]
    Forbidden(String),
    #[error("the group is full: it may have at most {max} members")]
    GroupFull { max: i64 },
    #[error("the owner must transfer ownership before leaving")]
    OwnerMustTransfer,
    #[error("no such invite, or it expired or was used up")]
    InviteNotFound,
    #[error("the device list changed: encrypt for the devices listed and send again")]
    DeviceListStale(Vec<PublicDevice>),
    #[error("the server is shutting down or overloaded; retry")]
    Unavailable,
    #[error("too many typing/read frames; slow down")]
    RateLimited { retry_after_ms: u64 },
    #[error("event bus: {0}")]
    Bus(String),
    #[error("store: {0}")]
    Store(#[from] vestnik_store::StoreError),
}
