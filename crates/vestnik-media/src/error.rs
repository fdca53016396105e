/// A blob-store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The key is not of the form the server makes (`m/<id>`); never sent to the store.
    #[error("object key {0:?} is not one this server makes")]
    BadKey(String),
    /// The request to the store failed or timed out before an answer.
    #[error("blob store request failed: {0}")]
    Transport(String),
    /// The store answered with an error status.
    #[error("blob store answered {status}: {body}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The response body (S3 puts the error code there).
        body: String,
    },
    /// Reading or writing the local directory failed.
    #[error("blob store: {0}")]
    Io(#[from] std::io::Error),
    /// The endpoint, bucket or credentials are unusable; found when the store is built.
    #[error("blob store configuration: {0}")]
    Config(String),
}

/// Why a media request was refused or failed; the gateway maps each variant to an HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// A request field is outside its rules (the message says which).
    #[error("{0}")]
    InvalidInput(String),
    /// The declared size is over `max_object_bytes`.
    #[error("expected at most {max} bytes, got {got}")]
    TooLarge {
        /// The limit in bytes.
        max: i64,
        /// The size asked for.
        got: i64,
    },
    /// The upload would take the user over their storage quota.
    #[error("storage quota of {quota} bytes would be exceeded ({used} used, {size} more asked)")]
    QuotaExceeded {
        /// The quota in bytes.
        quota: i64,
        /// Bytes the user already holds (pending uploads included).
        used: i64,
        /// Bytes this upload asked for.
        size: i64,
    },
    /// The conversation does not exist or the caller is not a member.
    #[error("no such conversation, or not a member of it")]
    NotMember,
    /// Only a channel's owner and publishers may upload to it.
    #[error("only the conversation's owner and publishers may post media to a channel")]
    Forbidden,
    /// A local blob URL whose signature, expiry or method does not allow this request.
    #[error("the URL is refused ({0})")]
    UrlRefused(String),
    /// No such media visible to the caller (someone else's reads the same, so ids reveal nothing).
    #[error("no such media")]
    NotFound,
    /// `complete` was called before the bytes were PUT.
    #[error("the upload is not there yet: PUT the bytes to the upload URL first")]
    NotUploaded,
    /// The stored object's length or digest differs from the grant; the object was deleted.
    #[error("the uploaded object does not match the grant ({0}); it was deleted")]
    Mismatch(String),
    /// The upload window closed before completion; ask for a new grant.
    #[error("the upload window has closed; ask for a new upload grant")]
    UploadExpired,
    /// A download was asked for before the upload was completed.
    #[error("the media is not completed yet")]
    NotReady,
    /// The bytes are not an image the server can decode (JPEG, PNG, GIF or
    /// WebP within 16,384 pixels a side).
    #[error("expected a JPEG, PNG, GIF or WebP image of at most 16384×16384 pixels")]
    NotAnImage,
    /// The virus scanner found the named signature in public media; the object was deleted.
    #[error("the file was refused by the virus scanner ({0}); it was deleted")]
    Infected(String),
    /// Public media must be scanned but clamd could not be reached; retry later.
    #[error("the virus scanner is unavailable; try again later")]
    ScannerUnavailable,
    /// Too many upload grants; retry after this long.
    #[error("too many uploads; slow down")]
    RateLimited {
        /// Milliseconds until another grant is allowed.
        retry_after_ms: u64,
    },
    /// A guard the request needs cannot take it right now; retry shortly.
    #[error("busy; retry shortly")]
    Busy,
    /// The blob store failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] vestnik_store::StoreError),
}
