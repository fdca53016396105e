//! Extractors that turn bad input into the JSON error shape instead of axum's
//! plain-text rejections.
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use std::sync::Arc;
use vestnik_auth::{RequestMeta, SessionAuth};

use crate::middleware::{ClientIp, RequestId};
use crate::{ApiError, Gateway};

/// A JSON body; every rejection becomes a 4xx in the one error shape.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rej) => Err(match rej {
                JsonRejection::MissingJsonContentType(_) => ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "expected Content-Type: application/json",
                ),
                JsonRejection::JsonSyntaxError(e) => {
                    ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.body_text())
                }
                JsonRejection::JsonDataError(e) => {
                    ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", e.body_text())
                }
                JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        format!(
                            "expected a body of at most {} bytes",
                            vestnik_core::limits::MAX_JSON_BODY_BYTES
                        ),
                    )
                }
                other => ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", other.body_text()),
            }),
        }
    }
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
