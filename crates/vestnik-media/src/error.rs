#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("object key {0:?} is not one this server makes")]
    BadKey(String),
    #[error("blob store request failed: {0}")]
    Transport(String),
    #[error("blob store answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("blob store: {0}")]
    Io(#[from] std::io::Error),
    #[error("blob store configuration: {0}")]
    Config(String),
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("expected at most {max} bytes, got {got}")]
    TooLarge { max: i64, got: i64 },
    #[error("storage quota of {quota} bytes would be exceeded ({used} used, {size} more asked)")]
    QuotaExceeded { quota: i64, used: i64, size: i64 },
    #[error("no such conversation, or not a member of it")]
    NotMember,
    #[error("only the conversation's owner and publishers may post media to a channel")]
    Forbidden,
    #[error("the URL is refused ({0})")]
    UrlRefused(String),
    #[error("no such media")]
    NotFound,
    #[error("the upload is not there yet: PUT the bytes to the upload URL first")]
    NotUploaded,
    #[error("the uploaded object does not match the grant ({0}); it was deleted")]
    Mismatch(String),
    #[error("the upload window has closed; ask for a new upload grant")]
    UploadExpired,
    #[error("the media is not completed yet")]
    NotReady,
    #[error("the file was refused by the virus scanner ({0}); it was deleted")]
    Infected(String),
    #[error("the virus scanner is unavailable; try again later")]
    ScannerUnavailable,
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Store(#[from] vestnik_store::StoreError),
}
