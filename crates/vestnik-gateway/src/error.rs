//! The one JSON error shape and the one mapping from service errors to HTTP.
//!
//! The statuses follow one rule the OpenAPI document relies on: a request
//! that matches the document never gets a 400. 400 is for what fails to
//! parse (malformed JSON, a missing or unknown field, a wrong type, an id or
//! name outside its set); 422 is for a value the server refuses after
//! parsing: outside a limit the document states, or breaking a rule it cannot
//! state (a signature that does not verify, a common password, fields that
//! do not go together, a wrong e-mail code).
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use vestnik_auth::AuthError;
use vestnik_proto::{ErrorBody, ErrorDetail, PowChallenge, PublicDevice};
use vestnik_realtime::RealtimeError;

/// An error as the API answers it: a status and the JSON `{"error": {...}}` body
/// (plus `WWW-Authenticate` on 401 and `Retry-After` when set).
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status, chosen by the 400/422 rule in the module docs.
    pub status: StatusCode,
    /// Stable machine-readable code (e.g. `rate_limited`); clients branch on it, never on `message`.
    pub code: &'static str,
    /// Human-readable explanation; never contains internal details.
    pub message: String,
    /// How long to wait before retrying: whole seconds (rounded up) in the
    /// body and the `Retry-After` header, milliseconds in WebSocket frames.
    pub retry_after_ms: Option<u64>,
    /// The challenge to solve when the code is `proof_of_work_required` or `invalid_proof_of_work`.
    pub pow: Option<PowChallenge>,
    /// The recipient's current devices when the code is `device_list_stale`, so the client re-encrypts.
    pub devices: Option<Vec<PublicDevice>>,
}

impl ApiError {
    /// An error with no retry hint, challenge or device list.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_ms: None,
            pow: None,
            devices: None,
        }
    }

    /// 429 `rate_limited`; `retry_after_ms` is rounded up to whole seconds (at least 1).
    pub fn rate_limited(retry_after_ms: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests; retry later",
        );
        e.retry_after_ms = Some(retry_after_ms.max(1));
        e
    }

    /// 503 `busy` with `Retry-After`: a guard this request needs (a shared
    /// rate limiter, the password hashers) cannot take it right now.
    pub fn busy(retry_after_ms: u64) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "the server is busy; retry shortly",
        );
        e.retry_after_ms = Some(retry_after_ms.max(1));
        e
    }

    /// Whole seconds to wait (at least 1), as `Retry-After` says it.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after_ms.map(|ms| ms.div_ceil(1000).max(1))
    }

    /// 500 `internal`: logs `err` with `context` and tells the client only that it was logged.
    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        // The detail goes to the log (with the request id from the span), never to the client.
        tracing::error!(error = %err, context, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; it has been logged",
        )
    }

    /// A store failure: 503 `database_unavailable` (with `Retry-After`) when
    /// the database is away or too slow, else a logged 500.
    pub fn store(err: vestnik_store::StoreError) -> Self {
        if err.is_unavailable() {
            tracing::warn!(error = %err, "database unavailable");
            let mut e = Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the database is unavailable; retry shortly",
            );
            e.retry_after_ms = Some(1000);
            e
        } else {
            Self::internal("store", err)
        }
    }

    /// The shared cache (Redis) failed where it cannot be skipped (single-use
    /// tickets, counters): 503 `cache_unavailable`, retry shortly.
    pub fn cache(err: vestnik_bus::BusError) -> Self {
        tracing::warn!(error = %err, "cache unavailable");
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "cache_unavailable",
            "a shared service is unavailable; retry shortly",
        );
        e.retry_after_ms = Some(1000);
        e
    }

    /// 404 `not_found` for a path no route matches.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        use StatusCode as S;
        let msg = e.to_string();
        match e {
            AuthError::InvalidEmail(_) => Self::new(S::BAD_REQUEST, "invalid_email", msg),
            AuthError::UndeliverableEmail => {
                Self::new(S::UNPROCESSABLE_ENTITY, "undeliverable_email", msg)
            }
            AuthError::WeakPassword(_) => Self::new(S::UNPROCESSABLE_ENTITY, "weak_password", msg),
            AuthError::InvalidDevice(_) => {
                Self::new(S::UNPROCESSABLE_ENTITY, "invalid_device", msg)
            }
            AuthError::InvalidCode => Self::new(S::UNPROCESSABLE_ENTITY, "invalid_code", msg),
            AuthError::CodeBurned => Self::new(S::UNPROCESSABLE_ENTITY, "code_burned", msg),
            AuthError::ResendTooSoon { retry_after_ms } => {
                let mut e = Self::rate_limited(retry_after_ms);
                e.code = "resend_too_soon";
                e.message = msg;
                e
            }
            AuthError::BadCredentials => Self::new(S::UNAUTHORIZED, "invalid_credentials", msg),
            AuthError::TotpRequired => Self::new(S::UNAUTHORIZED, "totp_required", msg),
            AuthError::WrongPassword => Self::new(S::FORBIDDEN, "wrong_password", msg),
            AuthError::EmailTaken => Self::new(S::CONFLICT, "email_taken", msg),
            AuthError::InvalidTotp => Self::new(S::UNAUTHORIZED, "invalid_totp", msg),
            AuthError::TotpAlreadyEnabled => Self::new(S::CONFLICT, "totp_already_enabled", msg),
            AuthError::TotpNotEnabled => Self::new(S::CONFLICT, "totp_not_enabled", msg),
            AuthError::NoTotpSetup => Self::new(S::CONFLICT, "no_totp_setup", msg),
            AuthError::Unauthenticated => Self::new(S::UNAUTHORIZED, "unauthorized", msg),
            AuthError::RefreshReused => Self::new(S::UNAUTHORIZED, "refresh_token_reused", msg),
            AuthError::AccountDisabled => Self::new(S::FORBIDDEN, "account_disabled", msg),
            AuthError::TooManyDevices { .. } => Self::new(S::CONFLICT, "too_many_devices", msg),
            AuthError::UserNotFound => Self::new(S::NOT_FOUND, "user_not_found", msg),
            AuthError::DeviceNotFound => Self::new(S::NOT_FOUND, "device_not_found", msg),
            AuthError::RateLimited { retry_after_ms } => Self::rate_limited(retry_after_ms),
            AuthError::Busy { retry_after_ms } => Self::busy(retry_after_ms),
            AuthError::PowRequired(c) => {
                let mut e = Self::new(S::FORBIDDEN, "proof_of_work_required", msg);
                e.pow = Some(c);
                e
            }
            AuthError::InvalidPow(c) => {
                let mut e = Self::new(S::FORBIDDEN, "invalid_proof_of_work", msg);
                e.pow = Some(c);
                e
            }
            AuthError::Mail(err) => {
                tracing::error!(error = %err, "mail delivery failed");
                Self::new(
                    S::SERVICE_UNAVAILABLE,
                    "mail_unavailable",
                    "the mail could not be sent; try again later",
                )
            }
            AuthError::Store(err) => Self::store(err),
            AuthError::Bus(err) => Self::cache(err),
            AuthError::Internal(err) => Self::internal("auth", err),
        }
    }
}

impl From<RealtimeError> for ApiError {
    fn from(e: RealtimeError) -> Self {
        use StatusCode as S;
        let msg = e.to_string();
        match e {
            RealtimeError::InvalidInput(_) => {
                Self::new(S::UNPROCESSABLE_ENTITY, "invalid_input", msg)
            }
            RealtimeError::NotMember => Self::new(S::NOT_FOUND, "conversation_not_found", msg),
            RealtimeError::NoSuchUser => Self::new(S::NOT_FOUND, "user_not_found", msg),
            RealtimeError::Forbidden(_) => Self::new(S::FORBIDDEN, "forbidden", msg),
            RealtimeError::GroupFull { .. } => Self::new(S::CONFLICT, "group_full", msg),
            RealtimeError::OwnerMustTransfer => Self::new(S::CONFLICT, "owner_must_transfer", msg),
            RealtimeError::Banned => Self::new(S::FORBIDDEN, "banned", msg),
            RealtimeError::Muted { .. } => Self::new(S::FORBIDDEN, "muted", msg),
            RealtimeError::MessageNotFound => Self::new(S::NOT_FOUND, "message_not_found", msg),
            RealtimeError::InviteNotFound => Self::new(S::NOT_FOUND, "invite_not_found", msg),
            RealtimeError::DeviceListStale(devices) => {
                let mut e = Self::new(S::CONFLICT, "device_list_stale", msg);
                e.devices = Some(devices);
                e
            }
            RealtimeError::ClientMsgIdReused => Self::new(S::CONFLICT, "client_msg_id_reused", msg),
            RealtimeError::Unavailable => Self::new(S::SERVICE_UNAVAILABLE, "unavailable", msg),
            RealtimeError::DatabaseUnavailable => {
                let mut e = Self::new(S::SERVICE_UNAVAILABLE, "database_unavailable", msg);
                e.retry_after_ms = Some(1000);
                e
            }
            RealtimeError::Store(err) => Self::store(err),
            RealtimeError::Bus(err) => Self::internal("bus", err),
            RealtimeError::RateLimited { retry_after_ms } => Self::rate_limited(retry_after_ms),
        }
    }
}

impl From<vestnik_media::MediaError> for ApiError {
    fn from(e: vestnik_media::MediaError) -> Self {
        use vestnik_media::MediaError as M;
        use StatusCode as S;
        let msg = e.to_string();
        match e {
            M::InvalidInput(_) => Self::new(S::UNPROCESSABLE_ENTITY, "invalid_input", msg),
            M::TooLarge { .. } => Self::new(S::UNPROCESSABLE_ENTITY, "media_too_large", msg),
            M::QuotaExceeded { .. } => Self::new(S::FORBIDDEN, "quota_exceeded", msg),
            M::RateLimited { retry_after_ms } => Self::rate_limited(retry_after_ms),
            M::Busy => Self::busy(1000),
            M::NotMember => Self::new(S::NOT_FOUND, "conversation_not_found", msg),
            M::Forbidden => Self::new(S::FORBIDDEN, "forbidden", msg),
            M::UrlRefused(_) => Self::new(S::FORBIDDEN, "url_refused", msg),
            M::NotFound => Self::new(S::NOT_FOUND, "media_not_found", msg),
            M::NotUploaded => Self::new(S::CONFLICT, "media_not_uploaded", msg),
            M::Mismatch(_) => Self::new(S::UNPROCESSABLE_ENTITY, "media_mismatch", msg),
            M::UploadExpired => Self::new(S::GONE, "upload_expired", msg),
            M::NotReady => Self::new(S::CONFLICT, "media_not_ready", msg),
            M::NotAnImage => Self::new(S::UNPROCESSABLE_ENTITY, "not_an_image", msg),
            M::Infected(_) => Self::new(S::UNPROCESSABLE_ENTITY, "media_infected", msg),
            M::ScannerUnavailable => Self::new(S::SERVICE_UNAVAILABLE, "scanner_unavailable", msg),
            M::Blob(err) => {
                tracing::error!(error = %err, "blob store failed");
                Self::new(
                    S::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "the media store is unavailable; try again later",
                )
            }
            M::Store(err) => Self::store(err),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after_secs = self.retry_after_secs();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                retry_after_secs,
                pow: self.pow,
                devices: self.devices,
            },
        };
        let mut res = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3: a 401 names the scheme; an expired or revoked
            // token is `invalid_token` (refresh, then retry).
            let v = if self.code == "unauthorized" {
                "Bearer realm=\"vestnik\", error=\"invalid_token\""
            } else {
                "Bearer realm=\"vestnik\""
            };
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(v));
        }
        if let Some(secs) = retry_after_secs {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        res
    }
}
