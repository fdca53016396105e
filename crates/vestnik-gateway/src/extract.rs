//! Extractors that turn bad input into the JSON error shape instead of axum's
//! plain-text rejections.
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use std::sync::Arc;
use vestnik_auth::{RequestMeta, SessionAuth};

use crate::middleware::{ClientIp, RequestId};
use crate::{ApiError, Gateway};

/// Path parameters parsed into their types (ids): a malformed one is a 400
/// `invalid_path` in the one error shape.
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(rej) => Err(path_rejection(rej)),
        }
    }
}

fn path_rejection(rej: PathRejection) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", rej.body_text())
}

/// A query string parsed into its type: unknown, malformed or out-of-range
/// parameters are a 400 `invalid_query`.
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned + Checked,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", m);
        let axum::extract::Query(v) = axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e: QueryRejection| bad(e.body_text()))?;
        v.check().map_err(bad)?;
        Ok(Query(v))
    }
}

/// Range checks of query parameters that serde's types do not carry.
pub trait Checked {
    fn check(&self) -> Result<(), String>;
}

/// `name` must lie in `range` when present.
pub fn in_range(
    name: &str,
    value: Option<i64>,
    range: std::ops::RangeInclusive<i64>,
) -> Result<(), String> {
    match value {
        Some(v) if !range.contains(&v) => Err(format!(
            "{name}: expected {}..={}, got {v}",
            range.start(),
            range.end()
        )),
        _ => Ok(()),
    }
}

/// A JSON body; every rejection becomes a 4xx in the one error shape.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected Content-Type: application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        format!(
                            "expected a body of at most {} bytes",
                            vestnik_core::limits::MAX_JSON_BODY_BYTES
                        ),
                    )
                } else {
                    ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", e.body_text())
                }
            })?;
        // Every request body is an object; serde would also fill a struct
        // from an array of its fields in order, which no schema allows.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                "expected a JSON object, got an array",
            ));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(Json(v)),
            // JSON has one number type: `5.0` is the integer 5 to a JSON
            // Schema validator (and to JavaScript), so it is to us too. Only
            // a body that failed on a float is parsed a second time.
            Err(JsonRejection::JsonDataError(e)) if e.body_text().contains("floating point") => {
                integral_floats(&bytes)
                    .and_then(|v| serde_json::from_value(v).ok())
                    .map(Json)
                    .ok_or_else(|| {
                        ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", e.body_text())
                    })
            }
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                e.body_text(),
            )),
            Err(other) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                other.body_text(),
            )),
        }
    }
}

/// The media type without parameters, lowercased; empty when absent.
fn content_type(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// `application/json` or any `+json` type, as axum's own `Json` accepts.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let essence = content_type(headers);
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The image types an image body may declare (the bytes decide in the end).
pub const IMAGE_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/gif", "image/webp"];

/// A raw image body of at most `AVATAR_UPLOAD_MAX_BYTES`: another declared
/// type is a 415, a larger body a 413, both in the one error shape.
pub struct ImageBody(pub Vec<u8>);

impl<S: Send + Sync> FromRequest<S> for ImageBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !IMAGE_TYPES.contains(&content_type(req.headers()).as_str()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("expected Content-Type: one of {}", IMAGE_TYPES.join(", ")),
            ));
        }
        let max = vestnik_core::limits::AVATAR_UPLOAD_MAX_BYTES;
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        format!("expected an image of at most {max} bytes"),
                    )
                } else {
                    ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", e.body_text())
                }
            })?;
        Ok(ImageBody(bytes.into()))
    }
}

/// The body with every float that is a whole number in i64's range turned
/// into an integer.
fn integral_floats(bytes: &[u8]) -> Option<serde_json::Value> {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Number(n) if n.is_f64() => {
                if let Some(f) = n.as_f64() {
                    if f.fract() == 0.0 && f.abs() < 9.0e15 {
                        *v = serde_json::Value::from(f as i64);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(walk),
            serde_json::Value::Object(o) => o.values_mut().for_each(walk),
            _ => {}
        }
    }
    let mut v = serde_json::from_slice(bytes).ok()?;
    walk(&mut v);
    Some(v)
}

/// The caller's device session, from `Authorization: Bearer <access token>`.
pub struct Authed(pub SessionAuth);

impl FromRequestParts<Arc<Gateway>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        gw: &Arc<Gateway>,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "expected Authorization: Bearer <access token>",
                )
            })?;
        Ok(Authed(gw.auth.authenticate(token.trim()).await?))
    }
}

/// Who is asking, for the audit log.
pub struct Meta(pub RequestMeta);

impl<S: Send + Sync> FromRequestParts<S> for Meta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Meta(RequestMeta {
            ip: parts.extensions.get::<ClientIp>().map(|c| c.0.to_string()),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            request_id: parts.extensions.get::<RequestId>().map(|r| r.0.clone()),
        }))
    }
}
