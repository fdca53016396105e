//! The WebSocket: authenticated by a one-time ticket (browsers) or a bearer
//! header (native clients). On connect the device's backlog is sent in order,
//! then `synced`, then live frames. The connection's queue in the hub is
//! bounded: a reader too slow to drain it is disconnected (nothing is lost,
//! the outbox keeps everything unacknowledged).
//!
//! A socket lives no longer than its access: the hub closes it (4001) when
//! its session ends on any node, and when its access token expires the
//! client must send a fresh one (`reauth`) within a grace period, or it
//! closes with 4002. Every write has a timeout and the reader never waits
//! on its own outbound queue, so no client can wedge its connection.
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures::SinkExt;
use serde::Deserialize;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use vestnik_auth::AuthError;
use vestnik_proto::{ClientFrame, CloseReason, ErrorBody, Secret, ServerFrame, WsTicket};
use vestnik_realtime::Connection;
use vestnik_store::SessionAuth;

use crate::extract::Authed;
use crate::middleware::ClientIp;
use crate::sockets::SocketSlot;
use crate::{ApiError, Gateway};
use vestnik_core::limits::WS_ACKS_IN_FLIGHT as ACKS_IN_FLIGHT;
use vestnik_core::limits::WS_COALESCE_FRAMES as COALESCE;
pub use vestnik_core::limits::WS_MAX_FRAME_BYTES as MAX_FRAME_BYTES;
pub use vestnik_core::limits::WS_MAX_IN_FLIGHT as MAX_IN_FLIGHT;
use vestnik_core::limits::WS_WRITE_TIMEOUT as WRITE_TIMEOUT;

/// A single-use ticket for `/v1/ws?ticket=…`, valid 30 seconds.
#[utoipa::path(post, path = "/v1/ws/ticket", tag = "messages", security(("bearer" = [])),
    responses((status = 200, body = WsTicket), (status = 401, body = ErrorBody)))]
pub async fn ticket(
    State(gw): State<Arc<Gateway>>,
    Authed(auth): Authed,
) -> Result<axum::Json<WsTicket>, ApiError> {
    Ok(axum::Json(gw.auth.issue_ws_ticket(&auth).await?))
}

#[derive(Debug, Deserialize)]
pub struct WsQuery {
    ticket: Option<String>,
}

/// Upgrade to the WebSocket (frames: see `ClientFrame` and `ServerFrame`;
/// close codes 4001–4005: see `CloseReason`).
#[utoipa::path(get, path = "/v1/ws", tag = "messages", params(("ticket" = Option<String>, Query, description = "from /v1/ws/ticket; or send Authorization: Bearer")),
    responses((status = 101, description = "switching protocols"), (status = 401, body = ErrorBody)))]
pub async fn ws(
    State(gw): State<Arc<Gateway>>,
    ip: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    query: Result<Query<WsQuery>, axum::extract::rejection::QueryRejection>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let ticket = query.ok().and_then(|Query(q)| q.ticket);
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let auth = match (ticket, bearer) {
        (Some(t), _) => gw.auth.redeem_ws_ticket(&t).await,
        (None, Some(b)) => gw.auth.authenticate(b.trim()).await,
        (None, None) => Err(AuthError::Unauthenticated),
    };
    let auth = match auth {
        Ok(a) => a,
        Err(e) => return ApiError::from(e).into_response(),
    };
    // Counted per address before the upgrade, so a client opening sockets
    // in a loop is refused while its sockets are still open.
    let slot = match ip {
        Some(Extension(ClientIp(ip))) => {
            match gw.sockets_by_ip.acquire(ip, gw.settings.sockets_per_ip) {
                Some(slot) => Some(slot),
                None => {
                    let mut e = ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "too_many_sockets",
                        "this address holds as many WebSockets as the server allows",
                    );
                    e.retry_after_ms = Some(5000);
                    return e.into_response();
                }
            }
        }
        None => None,
    };
    match upgrade {
        // tungstenite allocates its read buffer up front (128 KiB by default):
        // idle sockets dominate a node's memory, so keep it small; big frames
        // still arrive, just in more reads.
        Ok(u) => u
            .read_buffer_size(4 * 1024)
            .write_buffer_size(4 * 1024)
            .max_message_size(MAX_FRAME_BYTES)
            .on_upgrade(move |socket| connection(gw, auth, socket, slot))
            .into_response(),
        Err(e) => ApiError::new(StatusCode::BAD_REQUEST, "websocket_required", e.body_text())
            .into_response(),
    }
}

/// Runs a socket write with [`WRITE_TIMEOUT`]; false when it failed or
/// timed out (the connection is then dropped).
async fn within<E>(write: impl Future<Output = Result<(), E>>) -> bool {
    matches!(tokio::time::timeout(WRITE_TIMEOUT, write).await, Ok(Ok(())))
}

async fn send_frame(socket: &mut WebSocket, frame: &ServerFrame) -> bool {
    within(async {
        if feed_frame(socket, frame).await {
            socket.flush().await
        } else {
            Ok(())
        }
    })
    .await
}

async fn send_frames(socket: &mut WebSocket, frames: &[ServerFrame]) -> bool {
    within(async {
        for f in frames {
            if !feed_frame(socket, f).await {
                return Err(());
            }
        }
        socket.flush().await.map_err(|_| ())
    })
    .await
}

async fn feed_frame(socket: &mut WebSocket, frame: &ServerFrame) -> bool {
    match serde_json::to_string(frame) {
        Ok(text) => socket.feed(Message::Text(text.into())).await.is_ok(),
        Err(_) => false,
    }
}

async fn close(socket: &mut WebSocket, reason: CloseReason) {
    let frame = CloseFrame {
        code: reason.code(),
        reason: reason.as_str().into(),
    };
    let _ = within(socket.send(Message::Close(Some(frame)))).await;
}

/// Writes `first` and whatever else is already queued behind it with one
/// flush: under load a socket gets several frames per wakeup, and each flush
/// is a system call.
async fn forward<Q: Queued>(socket: &mut WebSocket, first: Q::Frame, queue: &mut Q) -> bool {
    let write = async {
        if !feed_frame(socket, first.as_ref()).await {
            return Err(());
        }
        for _ in 1..COALESCE {
            match queue.try_next() {
                Some(f) => {
                    if !feed_frame(socket, f.as_ref()).await {
                        return Err(());
                    }
                }
                None => break,
            }
        }
        socket.flush().await.map_err(|_| ())
    };
    within(write).await
}

/// A queue of frames for the socket that `forward` drains without waiting.
trait Queued {
    type Frame: AsRef<ServerFrame>;
    fn try_next(&mut self) -> Option<Self::Frame>;
}

impl Queued for mpsc::Receiver<Box<ServerFrame>> {
    type Frame = Box<ServerFrame>;
    fn try_next(&mut self) -> Option<Self::Frame> {
        self.try_recv().ok()
    }
}

impl Queued for Connection {
    type Frame = Arc<ServerFrame>;
    fn try_next(&mut self) -> Option<Self::Frame> {
        self.try_recv()
    }
}

fn error_frame(e: ApiError, client_msg_id: Option<String>) -> ServerFrame {
    ServerFrame::Error {
        code: e.code.to_string(),
        message: e.message,
        client_msg_id,
        devices: e.devices,
        retry_after_ms: e.retry_after_ms,
    }
}

async fn connection(
    gw: Arc<Gateway>,
    auth: SessionAuth,
    mut socket: WebSocket,
    _slot: Option<SocketSlot>,
) {
    let hub = gw.realtime.hub().clone();
    let mut conn = hub.join(&auth.user_id, &auth.device_id);
    let device_id = auth.device_id.clone();
    let user_id = auth.user_id.clone();
    gw.realtime.online(&device_id).await;
    // Partners hear of the user's first device here coming and last going
    // (another device here means nothing changed for them). Off the
    // connection's path: it does not delay the backlog, and each update reads
    // the current state, so updates running out of order still end right.
    if conn.first_of_user {
        spawn_presence_update(&gw, &user_id);
    }
    if let Some(reason) = run(&gw, auth, &mut socket, &mut conn).await {
        close(&mut socket, reason).await;
    }
    let last_of_user = hub.leave(&user_id, &device_id, conn.id);
    gw.realtime.offline(&device_id).await;
    if last_of_user {
        spawn_presence_update(&gw, &user_id);
    }
}

fn spawn_presence_update(gw: &Arc<Gateway>, user_id: &str) {
    let (realtime, user_id) = (gw.realtime.clone(), user_id.to_owned());
    tokio::spawn(async move { realtime.presence_changed(&user_id).await });
}

/// When the socket's access runs out, as a deadline on the runtime's clock.
fn deadline_of(gw: &Gateway, access_expires_at_ms: i64) -> Instant {
    let left = (access_expires_at_ms - gw.clock.now_ms()).max(0) as u64;
    Instant::now() + Duration::from_millis(left)
}

/// Where the socket's access stands.
enum Access {
    /// Valid until this deadline.
    Until(Instant),
    /// Expired: `reauth_required` was sent; closes at this deadline.
    Grace(Instant),
}

impl Access {
    fn deadline(&self) -> Instant {
        match self {
            Access::Until(d) | Access::Grace(d) => *d,
        }
    }
}

/// Serves the socket until it ends; returns the close to send, if any.
async fn run(
    gw: &Arc<Gateway>,
    auth: SessionAuth,
    socket: &mut WebSocket,
    conn: &mut Connection,
) -> Option<CloseReason> {
    // Fixed before any await: the application clock may move on while the
    // backlog is sent, and the token's lifetime counts from when it was checked.
    let mut access = Access::Until(deadline_of(gw, auth.access_expires_at));
    // Joined before the backlog is read, so nothing committed meanwhile is
    // missed; an item may then arrive twice, which clients dedup by cursor.
    let mut after = 0;
    loop {
        let page = match gw.realtime.backlog_page(&auth.device_id, after).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "ws backlog");
                return Some(CloseReason::GoingAway);
            }
        };
        let full = page.len() as i64 >= vestnik_realtime::PAGE_MAX;
        for f in &page {
            after = f.cursor().unwrap_or(after).max(after);
        }
        if !send_frames(socket, &page).await {
            return None;
        }
        if !full {
            break;
        }
    }
    if !send_frame(socket, &ServerFrame::Synced).await {
        return None;
    }

    let auth = Arc::new(auth);
    let (out_tx, mut out_rx) = mpsc::channel::<Box<ServerFrame>>(MAX_IN_FLIGHT);
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let acks_in_flight = Arc::new(Semaphore::new(ACKS_IN_FLIGHT));
    let limits = Limits {
        sends: &in_flight,
        acks: &acks_in_flight,
    };
    let idle_limit = gw.settings.ws_idle;
    let mut ping = tokio::time::interval(idle_limit / 3);
    ping.tick().await;
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            // Live frames and a close by the hub come before the client's
            // next frame: once its session ended nothing more it sends is
            // taken.
            biased;
            f = conn.recv() => match f {
                Some(f) => if !forward(socket, f, conn).await { return None },
                None => return Some(conn.close_reason()),
            },
            Some(f) = out_rx.recv() => if !forward(socket, f, &mut out_rx).await { return None },
            _ = tokio::time::sleep_until(access.deadline()) => {
                match access {
                    Access::Until(_) => match on_expiry(gw, &auth).await {
                        Expiry::Extended(until) => access = Access::Until(until),
                        Expiry::AskClient => {
                            let grace = gw.settings.ws_reauth_grace;
                            let ask = ServerFrame::ReauthRequired { within_ms: grace.as_millis() as u64 };
                            if !send_frame(socket, &ask).await { return None }
                            access = Access::Grace(Instant::now() + grace);
                        }
                    },
                    Access::Grace(_) => return Some(CloseReason::Reauthenticate),
                }
            }
            m = socket.recv() => match m {
                Some(Ok(Message::Text(text))) => {
                    last_heard = Instant::now();
                    if conn.is_closed() {
                        continue;
                    }
                    let replies = match serde_json::from_str::<ClientFrame>(text.as_str()) {
                        Ok(ClientFrame::Reauth { access_token }) => {
                            let (reply, until) = reauth(gw, &auth, &access_token).await;
                            if let Some(until) = until {
                                access = Access::Until(until);
                            }
                            vec![reply]
                        }
                        Ok(frame) => handle(gw, &auth, frame, &out_tx, limits).await,
                        Err(e) => vec![error_frame(
                            ApiError::new(StatusCode::BAD_REQUEST, "invalid_frame", e.to_string()),
                            None,
                        )],
                    };
                    if !replies.is_empty() && !send_frames(socket, &replies).await { return None }
                }
                Some(Ok(Message::Binary(_))) => {
                    let e = ApiError::new(StatusCode::BAD_REQUEST, "invalid_frame", "expected JSON text frames");
                    if !send_frame(socket, &error_frame(e, None)).await { return None }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => last_heard = Instant::now(),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > idle_limit {
                    return Some(CloseReason::Idle);
                }
                if !within(socket.send(Message::Ping(Vec::new().into()))).await {
                    return None;
                }
            }
        }
    }
}

enum Expiry {
    /// The session has a later token (the client refreshed over HTTP).
    Extended(Instant),
    /// The session's token expired too: the client must refresh.
    AskClient,
}

/// The socket's token expired. A session that ended was closed by the hub
/// already (revocations reach every node); what is left is a session whose
/// client refreshed over HTTP meanwhile, or one whose client must now.
async fn on_expiry(gw: &Gateway, auth: &SessionAuth) -> Expiry {
    match gw.auth.live_session(&auth.session_id).await {
        Ok(Some(s)) if s.device_id == auth.device_id => {
            Expiry::Extended(deadline_of(gw, s.access_expires_at))
        }
        Ok(_) => Expiry::AskClient,
        Err(e) => {
            // The database is away: ask the client; its reauth is checked
            // when it comes, and without one the socket closes after the grace.
            tracing::warn!(error = %e, "checking an expiring socket's session");
            Expiry::AskClient
        }
    }
}

/// Checks a `reauth`: a valid access token of this socket's own device.
async fn reauth(
    gw: &Gateway,
    auth: &SessionAuth,
    access_token: &Secret,
) -> (ServerFrame, Option<Instant>) {
    match gw.auth.authenticate(access_token.expose().trim()).await {
        Ok(fresh) if fresh.device_id == auth.device_id && fresh.user_id == auth.user_id => {
            let expires_in = (fresh.access_expires_at - gw.clock.now_ms()) / 1000;
            (
                ServerFrame::Reauthed { expires_in },
                Some(deadline_of(gw, fresh.access_expires_at)),
            )
        }
        Ok(_) => (
            error_frame(
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "wrong_device",
                    "the token belongs to another device than this socket's",
                ),
                None,
            ),
            None,
        ),
        Err(e) => (error_frame(e.into(), None), None),
    }
}

#[derive(Clone, Copy)]
struct Limits<'a> {
    sends: &'a Arc<Semaphore>,
    acks: &'a Arc<Semaphore>,
}

/// Handles one client frame; what it returns is written at once. Sends and
/// acks run concurrently and answer through `out`: while one waits for its
/// batch to commit, the connection keeps delivering (an ack awaited here
/// held up every frame to the device for a commit; measured, `latency` at
/// 2,000 msg/s on PostgreSQL, p50 22.9 → 15.7 ms, one run each). Nothing
/// here waits on `out`: the loop that drains it is the caller.
async fn handle(
    gw: &Arc<Gateway>,
    auth: &Arc<SessionAuth>,
    frame: ClientFrame,
    out: &mpsc::Sender<Box<ServerFrame>>,
    limits: Limits<'_>,
) -> Vec<ServerFrame> {
    let refused = |e: vestnik_realtime::RealtimeError| vec![error_frame(e.into(), None)];
    match frame {
        ClientFrame::Ping { nonce } => vec![ServerFrame::Pong { nonce }],
        // Answered by the caller (it changes the connection's own state).
        ClientFrame::Reauth { .. } => Vec::new(),
        ClientFrame::SubscribePresence { user_ids } => {
            match gw.realtime.subscribe_presence(auth, &user_ids).await {
                Ok(frames) => frames,
                Err(e) => refused(e),
            }
        }
        ClientFrame::Typing {
            conversation_id,
            typing,
        } => match gw.realtime.typing(auth, &conversation_id, typing).await {
            Ok(()) => Vec::new(),
            Err(e) => refused(e),
        },
        ClientFrame::Read {
            conversation_id,
            seq,
        } => match gw.realtime.read(auth, &conversation_id, seq).await {
            Ok(()) => Vec::new(),
            Err(e) => refused(e),
        },
        ClientFrame::Ack(a) => {
            let Ok(permit) = limits.acks.clone().try_acquire_owned() else {
                return match gw.realtime.ack(auth, &a.cursors).await {
                    Ok(()) => Vec::new(),
                    Err(e) => refused(e),
                };
            };
            let (gw, auth, out) = (gw.clone(), auth.clone(), out.clone());
            tokio::spawn(async move {
                if let Err(e) = gw.realtime.ack(&auth, &a.cursors).await {
                    let _ = out.send(Box::new(error_frame(e.into(), None))).await;
                }
                drop(permit);
            });
            Vec::new()
        }
        ClientFrame::Send(msg) => {
            let Ok(permit) = limits.sends.clone().try_acquire_owned() else {
                let mut e = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_in_flight",
                    "wait for `sent` answers before sending more",
                );
                e.retry_after_ms = Some(1000);
                return vec![error_frame(e, Some(msg.client_msg_id))];
            };
            let (gw, auth, out) = (gw.clone(), auth.clone(), out.clone());
            tokio::spawn(async move {
                let id = msg.client_msg_id.clone();
                let reply = match gw.realtime.send(&auth, msg).await {
                    Ok(sent) => ServerFrame::Sent(sent),
                    Err(e) => error_frame(e.into(), Some(id)),
                };
                let _ = out.send(Box::new(reply)).await;
                drop(permit);
            });
            Vec::new()
        }
    }
}
