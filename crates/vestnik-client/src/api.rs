//! The REST half of the protocol: JSON over HTTP with the bearer token,
//! refreshed once on `401 unauthorized`; proof-of-work puzzles solved when
//! the auth endpoints demand one.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::Mutex;
use vestnik_proto::{ErrorBody, PowChallenge, PowSolution, RefreshRequest, SessionTokens};

use crate::error::{ClientError, Result};
use crate::store::{Store, Tokens};

/// Highest proof-of-work difficulty this client will try (2^28 hashes ≈ a
/// few seconds); a server asking for more is refused rather than obeyed.
pub const MAX_POW_DIFFICULTY: u32 = 28;

pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("vestnik-client/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ClientError::Transport(e.to_string()))
}

/// Turns a non-2xx answer into [`ClientError::Api`].
pub(crate) fn api_error(status: StatusCode, body: &[u8]) -> ClientError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => ClientError::Api {
            status: status.as_u16(),
            code: e.error.code,
            message: e.error.message,
            devices: e.error.devices,
            pow: e.error.pow,
        },
        Err(_) => ClientError::Api {
            status: status.as_u16(),
            code: format!("http_{}", status.as_u16()),
            message: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            devices: None,
            pow: None,
        },
    }
}

/// Finds a nonce with SHA-256(`challenge` ":" nonce) starting with
/// `difficulty` zero bits.
pub(crate) fn solve_pow(c: &PowChallenge) -> Result<PowSolution> {
    if c.difficulty > MAX_POW_DIFFICULTY {
        return Err(ClientError::Protocol(format!(
            "proof of work: expected difficulty at most {MAX_POW_DIFFICULTY}, got {}",
            c.difficulty
        )));
    }
    Ok(PowSolution {
        challenge: c.challenge.clone(),
        nonce: vestnik_core::pow::solve(&c.challenge, c.difficulty),
    })
}

/// Runs an unauthenticated auth call; when the server demands a proof of
/// work, solves it and tries once more with `set_pow` applied.
pub(crate) async fn with_pow<B, T, F, Fut>(
    mut body: B,
    set_pow: fn(&mut B, PowSolution),
    call: F,
) -> Result<T>
where
    B: Clone,
    F: Fn(B) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    match call(body.clone()).await {
        Err(ClientError::Api {
            code,
            pow: Some(challenge),
            ..
        }) if code == "proof_of_work_required" || code == "invalid_proof_of_work" => {
            let solution = tokio::task::spawn_blocking(move || solve_pow(&challenge))
                .await
                .map_err(|e| ClientError::Protocol(format!("proof of work: {e}")))??;
            set_pow(&mut body, solution);
            call(body).await
        }
        other => other,
    }
}

/// A bare JSON call without a session: the body of a successful answer.
async fn send_public<B: Serialize>(
    http: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    body: &B,
) -> Result<bytes::Bytes> {
    let res = http
        .request(method, format!("{base}{path}"))
        .json(body)
        .send()
        .await?;
    let status = res.status();
    let bytes = res.bytes().await?;
    if !status.is_success() {
        return Err(api_error(status, &bytes));
    }
    Ok(bytes)
}

/// A bare JSON call without a session.
pub(crate) async fn call_public<B: Serialize, T: DeserializeOwned>(
    http: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    body: &B,
) -> Result<T> {
    let bytes = send_public(http, base, method, path, body).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ClientError::Protocol(format!("{path}: expected its JSON answer, got: {e}")))
}

/// Like [`call_public`], for an answer without a body (204).
pub(crate) async fn call_public_unit<B: Serialize>(
    http: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    body: &B,
) -> Result<()> {
    send_public(http, base, method, path, body).await.map(drop)
}

/// The authenticated REST client of one device.
pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
    tokens: Mutex<Option<Tokens>>,
    store: Arc<Store>,
    refreshes: Arc<AtomicU64>,
}

impl Api {
    pub(crate) fn new(
        http: reqwest::Client,
        base: String,
        tokens: Option<Tokens>,
        store: Arc<Store>,
        refreshes: Arc<AtomicU64>,
    ) -> Self {
        Self {
            http,
            base,
            tokens: Mutex::new(tokens),
            store,
            refreshes,
        }
    }

    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// The current access token.
    pub(crate) async fn access_token(&self) -> Result<String> {
        self.tokens
            .lock()
            .await
            .as_ref()
            .map(|t| t.access_token.clone())
            .ok_or_else(|| ClientError::SessionEnded("no session tokens".into()))
    }

    /// Trades the refresh token for new tokens, unless `failed_access` is no
    /// longer current (someone else refreshed meanwhile). Serialised, since
    /// a refresh token presented twice revokes the device.
    pub(crate) async fn refresh(&self, failed_access: &str) -> Result<()> {
        let mut guard = self.tokens.lock().await;
        let Some(current) = guard.as_ref() else {
            return Err(ClientError::SessionEnded("no session tokens".into()));
        };
        if current.access_token != failed_access {
            return Ok(());
        }
        let req = RefreshRequest {
            refresh_token: current.refresh_token.clone().into(),
        };
        match call_public::<_, SessionTokens>(
            &self.http,
            &self.base,
            Method::POST,
            "/v1/auth/refresh",
            &req,
        )
        .await
        {
            Ok(t) => {
                let new = Tokens {
                    access_token: t.access_token.into_exposed(),
                    refresh_token: t.refresh_token.into_exposed(),
                };
                self.store.save_tokens(Some(&new)).await?;
                *guard = Some(new);
                self.refreshes.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(ClientError::Api {
                status: 401,
                code,
                message,
                ..
            }) => {
                *guard = None;
                self.store.save_tokens(None).await?;
                Err(ClientError::SessionEnded(format!("{code}: {message}")))
            }
            Err(e) => Err(e),
        }
    }

    /// Forgets the tokens (after logout).
    pub(crate) async fn clear_tokens(&self) -> Result<()> {
        *self.tokens.lock().await = None;
        self.store.save_tokens(None).await
    }

    async fn send_once(
        &self,
        method: &Method,
        path: &str,
        body: Option<&ReqBody>,
        token: &str,
    ) -> Result<(StatusCode, Vec<u8>)> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(token);
        match body {
            Some(ReqBody::Json(b)) => req = req.json(b),
            Some(ReqBody::Raw {
                bytes,
                content_type,
            }) => {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, *content_type)
                    .body(bytes.clone())
            }
            None => {}
        }
        let res = req.send().await?;
        let status = res.status();
        Ok((status, res.bytes().await?.to_vec()))
    }

    async fn call_raw(&self, method: Method, path: &str, body: Option<ReqBody>) -> Result<Vec<u8>> {
        let token = self.access_token().await?;
        let (status, bytes) = self.send_once(&method, path, body.as_ref(), &token).await?;
        let (status, bytes) = if status == StatusCode::UNAUTHORIZED {
            match api_error(status, &bytes) {
                ClientError::Api { code, .. } if code == "unauthorized" => {
                    self.refresh(&token).await?;
                    let token = self.access_token().await?;
                    self.send_once(&method, path, body.as_ref(), &token).await?
                }
                e => return Err(e),
            }
        } else {
            (status, bytes)
        };
        if !status.is_success() {
            return Err(api_error(status, &bytes));
        }
        Ok(bytes)
    }

    fn to_value<B: Serialize>(body: &B) -> Result<serde_json::Value> {
        serde_json::to_value(body).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// An authenticated call with a JSON answer.
    pub(crate) async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        let body = body.map(Self::to_value).transpose()?.map(ReqBody::Json);
        let bytes = self.call_raw(method, path, body).await?;
        Self::answer(path, &bytes)
    }

    fn answer<T: DeserializeOwned>(path: &str, bytes: &[u8]) -> Result<T> {
        serde_json::from_slice(bytes).map_err(|e| {
            ClientError::Protocol(format!("{path}: expected its JSON answer, got: {e}"))
        })
    }

    /// An authenticated call whose body is `bytes` of `content_type` (an
    /// image), with a JSON answer.
    pub(crate) async fn call_bytes<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        bytes: bytes::Bytes,
        content_type: &'static str,
    ) -> Result<T> {
        let body = ReqBody::Raw {
            bytes,
            content_type,
        };
        let answer = self.call_raw(method, path, Some(body)).await?;
        Self::answer(path, &answer)
    }

    /// An authenticated call whose answer has no body.
    pub(crate) async fn call_unit<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<()> {
        let body = body.map(Self::to_value).transpose()?.map(ReqBody::Json);
        self.call_raw(method, path, body).await.map(|_| ())
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call::<(), T>(Method::GET, path, None).await
    }

    pub(crate) async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.call(Method::POST, path, Some(body)).await
    }
}

/// What an authenticated call sends.
pub(crate) enum ReqBody {
    /// A JSON document.
    Json(serde_json::Value),
    /// Bytes of a declared type (cheap to clone for the retry after a refresh).
    Raw {
        bytes: bytes::Bytes,
        content_type: &'static str,
    },
}
